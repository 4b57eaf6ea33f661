/**
 * Addresses `route` refuses unless `--force`: a client range or next hop that would route far more
 * than the copied clients' replies, or that no host can be. `0.0.0.0/0` through the assistant takes
 * the target off its own network (its ssh session included); a multicast or broadcast next hop is
 * no host at all.
 */
import { type Cidr, formatCidr } from "../wire/mod.ts";
import type { Gateway } from "./script.ts";

/** Why `cidr` is no range of copied clients to route, or `undefined` when it may be one. */
export function riskyClientRange(cidr: Cidr): string | undefined {
  const text = formatCidr(cidr);
  if (cidr.prefix === 0) return `${text} is every address: the target would lose its own network`;
  if (isMulticast(cidr.family, cidr.network)) return `${text} is multicast, never a client`;
  if (cidr.family === 4 && cidr.prefix === 32 && isAllOnes(cidr.network)) {
    return `${text} is the broadcast address, never a client`;
  }
  return undefined;
}

/** Why `gateway` can be no next hop, or `undefined` when it may be one. */
export function riskyGateway(gateway: Gateway, bytes: Uint8Array): string | undefined {
  if (bytes.every((byte) => byte === 0)) return `${gateway.address} is the unspecified address, no host`;
  if (isMulticast(gateway.family, bytes)) return `${gateway.address} is multicast, no host`;
  if (gateway.family === 4 && isAllOnes(bytes)) return `${gateway.address} is the broadcast address, no host`;
  return undefined;
}

function isMulticast(family: 4 | 6, network: Uint8Array): boolean {
  return family === 4 ? (network[0] & 0xf0) === 0xe0 : network[0] === 0xff;
}

function isAllOnes(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0xff);
}
