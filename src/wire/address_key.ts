/**
 * Addresses and address+port pairs as map keys, for the session table and intercept's routes.
 *
 * An IPv4 address stays an unsigned 32-bit number, and its key with a port a 48-bit number, so the IPv4
 * hot path builds no strings. An IPv6 address is an 8-character string of its 16-bit groups (no text
 * formatting, interned by V8 like any short string), and its key with a port one more character: maps
 * take both kinds side by side, and `typeof` tells the family.
 */
import { formatIpv4, formatIpv6, ipv4Bytes } from "./address.ts";

/** An address as the session table holds it: IPv4 as a number, IPv6 as an 8-character group string. */
export type Address = number | string;

/** An address and port as one map key: a 48-bit number for IPv4, a 9-character string for IPv6. */
export type EndpointKey = number | string;

/** The address family of `address`. */
export function addressFamily(address: Address): 4 | 6 {
  return typeof address === "number" ? 4 : 6;
}

/** The IPv6 address at `bytes[offset..offset + 16]` as an `Address`. */
export function ipv6Address(bytes: Uint8Array, offset = 0): string {
  return String.fromCharCode(
    bytes[offset] << 8 | bytes[offset + 1],
    bytes[offset + 2] << 8 | bytes[offset + 3],
    bytes[offset + 4] << 8 | bytes[offset + 5],
    bytes[offset + 6] << 8 | bytes[offset + 7],
    bytes[offset + 8] << 8 | bytes[offset + 9],
    bytes[offset + 10] << 8 | bytes[offset + 11],
    bytes[offset + 12] << 8 | bytes[offset + 13],
    bytes[offset + 14] << 8 | bytes[offset + 15],
  );
}

/** Writes the 16 bytes of an IPv6 `Address` at `into[offset..]`. */
export function writeIpv6Address(address: string, into: Uint8Array, offset = 0): void {
  for (let i = 0; i < 8; i++) {
    const group = address.charCodeAt(i);
    into[offset + 2 * i] = group >>> 8;
    into[offset + 2 * i + 1] = group & 0xff;
  }
}

/** The 16 bytes of an IPv6 `Address`. */
export function ipv6AddressBytes(address: string): Uint8Array {
  const bytes = new Uint8Array(16);
  writeIpv6Address(address, bytes);
  return bytes;
}

/** The 4 bytes of an IPv4 `Address`, or the 16 of an IPv6 one. */
export function addressBytes(address: Address): Uint8Array {
  return typeof address === "number" ? ipv4Bytes(address) : ipv6AddressBytes(address);
}

/** The key of `address` and `port`. */
export function endpointKey(address: Address, port: number): EndpointKey {
  return typeof address === "number" ? address * 65536 + port : address + String.fromCharCode(port);
}

/** The address of a key made by `endpointKey`. */
export function keyAddress(key: EndpointKey): Address {
  return typeof key === "number" ? Math.floor(key / 65536) : key.slice(0, 8);
}

/** The port of a key made by `endpointKey`. */
export function keyPort(key: EndpointKey): number {
  return typeof key === "number" ? key % 65536 : key.charCodeAt(8);
}

/** A 32-bit number standing for `address` in hashes: the IPv4 address itself, or its IPv6 groups folded. */
export function addressHash(address: Address): number {
  if (typeof address === "number") return address;
  let hash = 0;
  for (let i = 0; i < 8; i += 2) {
    hash = (Math.imul(hash, 31) + (address.charCodeAt(i) << 16 | address.charCodeAt(i + 1))) | 0;
  }
  return hash >>> 0;
}

/** `address` as text: dotted quad or canonical IPv6. */
export function formatAddress(address: Address): string {
  return typeof address === "number" ? formatIpv4(address) : formatIpv6(ipv6AddressBytes(address));
}

/** `address:port` as text, IPv6 in brackets. */
export function formatEndpoint(address: Address, port: number): string {
  return typeof address === "number"
    ? `${formatIpv4(address)}:${port}`
    : `[${formatAddress(address)}]:${port}`;
}
