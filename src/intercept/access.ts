/**
 * Who may connect to intercept (`--allow`), and the rate limit on the log lines about those refused.
 */
import { type Cidr, cidrContains, ipv4Bytes, parseIpv4, parseIpv6 } from "../wire/address.ts";

/** The hosts `--allow` lets in. */
export class AllowList {
  constructor(readonly cidrs: readonly Cidr[]) {}

  /** Whether `hostname` (an address as `Deno.NetAddr` gives it) is in one of the ranges. */
  allows(hostname: string): boolean {
    const bytes = addressBytes(hostname);
    if (bytes === undefined) return false;
    return this.cidrs.some((cidr) => cidrContains(cidr, bytes));
  }
}

/** 4 bytes for IPv4 (also IPv4-mapped IPv6, as a dual-stack listener reports it), 16 for IPv6. */
function addressBytes(hostname: string): Uint8Array | undefined {
  const v4 = parseIpv4(hostname);
  if (v4 !== undefined) return ipv4Bytes(v4);
  const v6 = parseIpv6(hostname.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, ""));
  if (v6 === undefined) return undefined;
  const mapped = v6.subarray(0, 10).every((byte) => byte === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

/** How long a refusal of one address (for one reason) stays quiet after it was logged. */
export const REFUSAL_LOG_MS = 60_000;
/** Addresses remembered at most; past it, old ones are forgotten (and a flood is logged less, not more). */
const MAX_REMEMBERED = 4096;

/** Lets a refusal be logged once per key (an address and a reason) per minute, in bounded memory. */
export class RefusalLog {
  readonly #loggedAt = new Map<string, number>();

  /** Whether the refusal `key` should be logged at `now` (ms); if so, it is quiet for a minute. */
  shouldLog(key: string, now: number): boolean {
    const at = this.#loggedAt.get(key);
    if (at !== undefined && now - at < REFUSAL_LOG_MS) return false;
    if (this.#loggedAt.size >= MAX_REMEMBERED) {
      for (const [old, when] of this.#loggedAt) if (now - when >= REFUSAL_LOG_MS) this.#loggedAt.delete(old);
      if (this.#loggedAt.size >= MAX_REMEMBERED) return false;
    }
    this.#loggedAt.set(key, now);
    return true;
  }
}
