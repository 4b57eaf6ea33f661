/**
 * Addresses and address+port pairs as map keys, for the session table and intercept's routes.
 *
 * An IPv4 address stays a 32-bit number, and its key with a port a 48-bit number, so the IPv4
 * hot path builds no strings. An IPv6 address is an 8-character string of its 16-bit groups (no text
 * formatting), and its key with a port one more character: maps take both kinds side by side, and
 * `typeof` tells the family.
 *
 * So that the IPv6 hot path does not build two new strings per packet either (and have each hashed anew
 * by the map it looks up), the strings decoded from packets and the keys made from them are remembered
 * in two small direct-mapped caches of fixed size (issue #15): a packet of a session seen a moment ago
 * gets the very same strings, their hashes already computed. A miss costs the string it always did and
 * a few stores, and the caches never grow, whatever addresses arrive: they hold values, never state.
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

/** `::`, the address every cache slot starts with (its words all zero), so a slot is never empty. */
const UNSPECIFIED6 = "\0".repeat(8);
/** Fibonacci hashing's multiplier (2**32 / golden ratio): a slot index from a 32-bit value's top bits. */
const GOLDEN32 = 0x9e3779b9;
/** An odd 32-bit constant (murmur3's first) that spreads a port's 16 bits over a whole word. */
const PORT_SPREAD = 0x85ebca6b;

/** log2 of the slots of the decoded-address cache: 1,024 addresses, about 50 KB. */
const ADDRESS_SLOT_BITS = 10;
/** Each slot's address as four 32-bit words, the way it is compared with a packet's. */
const addressWords = new Int32Array(4 << ADDRESS_SLOT_BITS);
const addressStrings: string[] = new Array(1 << ADDRESS_SLOT_BITS).fill(UNSPECIFIED6);

/** The IPv6 address at `bytes[offset..offset + 16]` as an `Address` (the cached string when it is there). */
export function ipv6Address(bytes: Uint8Array, offset = 0): string {
  return ipv6AddressOfWords(
    bytes[offset] << 24 | bytes[offset + 1] << 16 | bytes[offset + 2] << 8 | bytes[offset + 3],
    bytes[offset + 4] << 24 | bytes[offset + 5] << 16 | bytes[offset + 6] << 8 | bytes[offset + 7],
    bytes[offset + 8] << 24 | bytes[offset + 9] << 16 | bytes[offset + 10] << 8 | bytes[offset + 11],
    bytes[offset + 12] << 24 | bytes[offset + 13] << 16 | bytes[offset + 14] << 8 | bytes[offset + 15],
  );
}

/**
 * The IPv6 address of the four 32-bit words `w0`..`w3` (big-endian order, as signed or unsigned numbers) as
 * an `Address`: the cached string when it is there, so an address made again (a copy's client address,
 * once per session) is no new string either.
 */
export function ipv6AddressOfWords(w0: number, w1: number, w2: number, w3: number): string {
  // As the cache's Int32Array holds them.
  w0 |= 0;
  w1 |= 0;
  w2 |= 0;
  w3 |= 0;
  const slot = Math.imul(w0 ^ w1 ^ Math.imul(w2, GOLDEN32) ^ w3, GOLDEN32) >>> (32 - ADDRESS_SLOT_BITS);
  const at = slot << 2;
  if (
    addressWords[at] === w0 && addressWords[at + 1] === w1 && addressWords[at + 2] === w2 &&
    addressWords[at + 3] === w3
  ) {
    return addressStrings[slot];
  }
  const address = String.fromCharCode(
    w0 >>> 16,
    w0 & 0xffff,
    w1 >>> 16,
    w1 & 0xffff,
    w2 >>> 16,
    w2 & 0xffff,
    w3 >>> 16,
    w3 & 0xffff,
  );
  addressWords[at] = w0;
  addressWords[at + 1] = w1;
  addressWords[at + 2] = w2;
  addressWords[at + 3] = w3;
  addressStrings[slot] = address;
  return address;
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

/** log2 of the slots of the IPv6 endpoint-key cache: 4,096 keys (sessions have two), at most ~300 KB. */
const KEY_SLOT_BITS = 12;
const keyAddresses: string[] = new Array(1 << KEY_SLOT_BITS).fill(UNSPECIFIED6);
const keyPorts = new Uint16Array(1 << KEY_SLOT_BITS);
const ipv6Keys: string[] = new Array(1 << KEY_SLOT_BITS).fill(UNSPECIFIED6 + "\0");

/** The key of `address` and `port`. */
export function endpointKey(address: Address, port: number): EndpointKey {
  if (typeof address === "number") return (address >>> 0) * 65536 + port;
  // The port is spread over all 32 bits before it meets the address: xored in as it comes, a client range's
  // addresses and ports that rise together (address n on port p + n) would cancel out into one slot.
  const slot = Math.imul(addressHash(address) + Math.imul(port, PORT_SPREAD), GOLDEN32) >>>
    (32 - KEY_SLOT_BITS);
  if (keyPorts[slot] === port && keyAddresses[slot] === address) return ipv6Keys[slot];
  const key = address + String.fromCharCode(port);
  keyAddresses[slot] = address;
  keyPorts[slot] = port;
  ipv6Keys[slot] = key;
  return key;
}

/** The address of a key made by `endpointKey`. */
export function keyAddress(key: EndpointKey): Address {
  return typeof key === "number" ? Math.floor(key / 65536) | 0 : key.slice(0, 8);
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

/**
 * A 32-bit integer hash, murmur3's finaliser: a bijection of 32-bit words in which every bit of the result
 * depends on every bit of `value`.
 */
export function mix32(value: number): number {
  let x = value | 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
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
