/**
 * intercept 1.0's `-D dockerIP-origIP`: when the target runs in a container, its replies leave for the
 * client address as the container saw it (dockerIP); copy registered the address it sent from
 * (origIP). Replies to dockerIP are routed, and passed on, as replies to origIP.
 */

/** `-D`'s two addresses (uint32). */
export interface DestinationRewrite {
  readonly from: number;
  readonly to: number;
}

/** Where a reply record's IPv4 header (it starts the record) holds the destination address. */
const IPV4_DESTINATION = 16;

/**
 * The destination a reply with destination `destination` is routed by; when that is `rewrite.from`,
 * the reply `record` (a 64-byte reply record) is changed to say `rewrite.to` too, as C intercept does.
 */
export function rewriteDestination(
  record: Uint8Array,
  destination: number,
  rewrite: DestinationRewrite | undefined,
): number {
  if (rewrite === undefined || destination !== rewrite.from) return destination;
  for (let i = 0; i < 4; i++) record[IPV4_DESTINATION + i] = rewrite.to >>> (24 - 8 * i) & 0xff;
  return rewrite.to;
}
