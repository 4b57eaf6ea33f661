/**
 * IP addresses and ranges as the command line and the hot path see them.
 *
 * IPv4 addresses are their 32 bits as a signed 32-bit number, so sessions can be keyed without
 * building strings, and no address is a heap number (V8's small integers are signed 32-bit here: an
 * unsigned address above 2**31 was one, made anew each time it crossed a call); IPv6 addresses are
 * 16-byte arrays.
 */

/**
 * An IPv4 address as its 32 bits in host order, read as a signed 32-bit number (1.2.3.4 is 0x01020304,
 * 200.0.0.1 is `0xc8000001 | 0`): every producer makes it so, so that `===` compares any two.
 */
export type Ipv4Address = number;

/** A network range: the masked network address, its prefix length and its family. */
export interface Cidr {
  readonly family: 4 | 6;
  /** Network address, 4 or 16 bytes, host bits cleared. */
  readonly network: Uint8Array;
  readonly prefix: number;
}

const IPV4_PART = /^(0|[1-9][0-9]{0,2})$/;

/** Parses dotted-quad IPv4 text; `undefined` when it is not exactly four parts of 0..255. */
export function parseIpv4(text: string): Ipv4Address | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!IPV4_PART.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value | 0;
}

/** Formats an IPv4 address number as dotted-quad text. */
export function formatIpv4(address: Ipv4Address): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/** The 4 bytes of an IPv4 address number, in network order. */
export function ipv4Bytes(address: Ipv4Address): Uint8Array {
  return new Uint8Array([address >>> 24, (address >>> 16) & 0xff, (address >>> 8) & 0xff, address & 0xff]);
}

/** Reads 4 bytes in network order as an IPv4 address number. */
export function ipv4FromBytes(bytes: Uint8Array, offset = 0): Ipv4Address {
  return (bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3];
}

/** Parses IPv6 text (with `::` and an optional trailing dotted quad) into 16 bytes. */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const pieces = half.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** Formats 16 bytes as canonical IPv6 text (RFC 5952: lower case, longest zero run as `::`). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1, bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i > 1) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * Parses a range: `a.b.c.d/n`, IPv6 `x::/n`, TCPCopy's `a.b.c.x` (a /24), or a bare address (a /32 or
 * /128). Host bits are cleared, as `ip route` wants. `undefined` when the text is none of these.
 */
export function parseCidr(text: string): Cidr | undefined {
  const legacy = /^(\d+\.\d+\.\d+)\.x$/i.exec(text);
  if (legacy) return parseCidr(`${legacy[1]}.0/24`);
  const [addressText, prefixText, extra] = text.split("/");
  if (extra !== undefined) return undefined;
  if (prefixText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const v4 = parseIpv4(addressText);
  const bytes = v4 !== undefined ? ipv4Bytes(v4) : parseIpv6(addressText);
  if (bytes === undefined) return undefined;
  const bits = bytes.length * 8;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  const network = bytes.slice();
  for (let bit = prefix; bit < bits; bit++) network[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: v4 !== undefined ? 4 : 6, network, prefix };
}

/** Whether `address` (4 or 16 bytes) is inside `cidr`; an address of the other family never is. */
export function cidrContains(cidr: Pick<Cidr, "network" | "prefix">, address: Uint8Array): boolean {
  if (cidr.network.length !== address.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit += 8) {
    const mask = (0xff << (8 - Math.min(8, cidr.prefix - bit))) & 0xff;
    if ((address[bit >> 3] & mask) !== (cidr.network[bit >> 3] & mask)) return false;
  }
  return true;
}

/** Formats a range as `network/prefix`. */
export function formatCidr(cidr: Cidr): string {
  const address = cidr.family === 4 ? formatIpv4(ipv4FromBytes(cidr.network)) : formatIpv6(cidr.network);
  return `${address}/${cidr.prefix}`;
}

/** The dotted-quad netmask of an IPv4 prefix length (24 gives 255.255.255.0). */
export function ipv4Netmask(prefix: number): string {
  return formatIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}
