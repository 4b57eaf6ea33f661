/**
 * Whole IPv4/IPv6 TCP packets and UDP datagrams from plain descriptions (`Repr`s), for the session
 * engine's own segments, copied datagrams and tests. The hot rewrite path uses the views instead.
 */
import { finishChecksum, onesComplementSum } from "./checksum.ts";
import { type Ipv4Address } from "./address.ts";
import { IpProtocol, IPV4_MIN_HEADER_LENGTH, Ipv4View } from "./ipv4.ts";
import { IPV6_HEADER_LENGTH, Ipv6View } from "./ipv6.ts";
import {
  emitTcpRepr,
  fillTcpChecksumIpv4,
  fillTcpChecksumIpv6,
  type TcpRepr,
  tcpReprLength,
  TcpView,
} from "./tcp.ts";
import { UDP_HEADER_LENGTH, UdpView } from "./udp.ts";

/** An IPv4 packet carrying a TCP segment. */
export interface Ipv4TcpRepr {
  src: Ipv4Address;
  dst: Ipv4Address;
  /** Time to live; default 64. */
  ttl?: number;
  /** Identification; default 0. */
  id?: number;
  tcp: TcpRepr;
}

/** An IPv6 packet carrying a TCP segment (no extension headers). */
export interface Ipv6TcpRepr {
  /** 16-byte source address. */
  src: Uint8Array;
  /** 16-byte destination address. */
  dst: Uint8Array;
  /** Hop limit; default 64. */
  hopLimit?: number;
  /** Traffic class and flow label, the low 28 bits of the header's first word; default 0. */
  flowInfo?: number;
  tcp: TcpRepr;
}

const DEFAULT_TTL = 64;
const EMPTY = new Uint8Array(0);
/** The views the emitters write through, pointed at each packet in turn: no new view per packet. */
const ipv4Scratch = new Ipv4View(EMPTY, 0);
const ipv6Scratch = new Ipv6View(EMPTY, 0);
const tcpScratch = new TcpView(EMPTY, 0, 0);
const IPV4_FLAG_DONT_FRAGMENT = 0b010;
const MAX_IP_LENGTH = 0xffff;

/**
 * Writes the IPv4 packet `repr` at `into[offset..]`, with DF set and both checksums filled, and returns its
 * length. Throws `RangeError` if `into` is too small or the packet would exceed 65535 bytes.
 */
export function emitIpv4Tcp(repr: Ipv4TcpRepr, into: Uint8Array, offset = 0): number {
  const segmentLength = tcpReprLength(repr.tcp);
  const total = IPV4_MIN_HEADER_LENGTH + segmentLength;
  ensureRoom(into, offset, total, total);
  const ip = emitIpv4Header(repr, IpProtocol.TCP, IPV4_FLAG_DONT_FRAGMENT, total, into, offset);
  fillTcpChecksumIpv4(ip, emitTcpRepr(repr.tcp, into, ip.payloadOffset, segmentLength, tcpScratch));
  return total;
}

/** An IPv4 packet carrying a UDP datagram. */
export interface Ipv4UdpRepr {
  src: Ipv4Address;
  dst: Ipv4Address;
  /** Time to live; default 64. */
  ttl?: number;
  /** Identification; default 0. */
  id?: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/**
 * Writes the IPv4 UDP datagram `repr` at `into[offset..]` with both checksums filled and returns its
 * length. DF stays clear: a datagram the way to the target cannot carry whole may be fragmented, as the
 * client's was. Throws `RangeError` if `into` is too small or the packet would exceed 65535 bytes.
 */
export function emitIpv4Udp(repr: Ipv4UdpRepr, into: Uint8Array, offset = 0): number {
  const udpLength = UDP_HEADER_LENGTH + repr.payload.length;
  const total = IPV4_MIN_HEADER_LENGTH + udpLength;
  ensureRoom(into, offset, total, total);
  const ip = emitIpv4Header(repr, IpProtocol.UDP, 0, total, into, offset);
  emitUdp(repr, into, ip.payloadOffset, ip.pseudoHeaderSum(IpProtocol.UDP, udpLength));
  return total;
}

/** An IPv6 packet carrying a UDP datagram (no extension headers). */
export interface Ipv6UdpRepr {
  /** 16-byte source address. */
  src: Uint8Array;
  /** 16-byte destination address. */
  dst: Uint8Array;
  /** Hop limit; default 64. */
  hopLimit?: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/**
 * Writes the IPv6 UDP datagram `repr` at `into[offset..]` with its checksum filled and returns its length.
 * Throws `RangeError` if `into` is too small or the payload would exceed 65535 bytes.
 */
export function emitIpv6Udp(repr: Ipv6UdpRepr, into: Uint8Array, offset = 0): number {
  const udpLength = UDP_HEADER_LENGTH + repr.payload.length;
  const total = IPV6_HEADER_LENGTH + udpLength;
  ensureRoom(into, offset, total, udpLength);
  const ip = emitIpv6Header(repr, IpProtocol.UDP, udpLength, into, offset);
  emitUdp(repr, into, ip.payloadOffset, ip.pseudoHeaderSum(IpProtocol.UDP, udpLength));
  return total;
}

/** The UDP header and payload of `repr` at `into[offset..]`, its checksum over `pseudoSum`. */
function emitUdp(
  repr: { readonly srcPort: number; readonly dstPort: number; readonly payload: Uint8Array },
  into: Uint8Array,
  offset: number,
  pseudoSum: number,
): void {
  const udpLength = UDP_HEADER_LENGTH + repr.payload.length;
  into.fill(0, offset, offset + UDP_HEADER_LENGTH); // the checksum field counts as 0 in the sum
  const udp = new UdpView(into, offset);
  udp.srcPort = repr.srcPort;
  udp.dstPort = repr.dstPort;
  udp.length = udpLength;
  into.set(repr.payload, udp.payloadOffset);
  const sum = onesComplementSum(into, offset, offset + udpLength, pseudoSum);
  // 0 means "no checksum" over IPv4 and is not allowed over IPv6: a computed 0 is sent as its other form,
  // 0xffff (RFC 768, RFC 8200 8.1).
  udp.checksum = finishChecksum(sum) || 0xffff;
}

/** The IPv4 packet `repr` in a new array of exactly its length. */
export function buildIpv4Tcp(repr: Ipv4TcpRepr): Uint8Array {
  const packet = new Uint8Array(IPV4_MIN_HEADER_LENGTH + tcpReprLength(repr.tcp));
  emitIpv4Tcp(repr, packet);
  return packet;
}

/**
 * Writes the IPv6 packet `repr` at `into[offset..]` with the TCP checksum filled and returns its length.
 * Throws `RangeError` if `into` is too small or the payload would exceed 65535 bytes.
 */
export function emitIpv6Tcp(repr: Ipv6TcpRepr, into: Uint8Array, offset = 0): number {
  const segmentLength = tcpReprLength(repr.tcp);
  const total = IPV6_HEADER_LENGTH + segmentLength;
  ensureRoom(into, offset, total, segmentLength);
  const ip = emitIpv6Header(repr, IpProtocol.TCP, segmentLength, into, offset);
  fillTcpChecksumIpv6(ip, emitTcpRepr(repr.tcp, into, ip.payloadOffset, segmentLength, tcpScratch));
  return total;
}

/** The IPv6 packet `repr` in a new array of exactly its length. */
export function buildIpv6Tcp(repr: Ipv6TcpRepr): Uint8Array {
  const packet = new Uint8Array(IPV6_HEADER_LENGTH + tcpReprLength(repr.tcp));
  emitIpv6Tcp(repr, packet);
  return packet;
}

/**
 * A 20-byte IPv4 header at `into[offset..]` for a packet of `total` bytes carrying `protocol`, its checksum
 * filled; returns the emitters' shared view of it.
 */
function emitIpv4Header(
  repr: { readonly src: Ipv4Address; readonly dst: Ipv4Address; readonly ttl?: number; readonly id?: number },
  protocol: number,
  flags: number,
  total: number,
  into: Uint8Array,
  offset: number,
): Ipv4View {
  into.fill(0, offset, offset + IPV4_MIN_HEADER_LENGTH);
  const ip = ipv4Scratch.pointAt(into, offset);
  ip.version = 4;
  ip.headerLength = IPV4_MIN_HEADER_LENGTH;
  ip.totalLength = total;
  ip.id = repr.id ?? 0;
  ip.flags = flags;
  ip.ttl = repr.ttl ?? DEFAULT_TTL;
  ip.protocol = protocol;
  ip.src = repr.src;
  ip.dst = repr.dst;
  ip.fillChecksum();
  return ip;
}

/**
 * A 40-byte IPv6 header at `into[offset..]` before `payloadLength` bytes of `nextHeader`; returns the
 * emitters' view. Every byte of it is a field written here, so unlike IPv4's it needs no zeroing first.
 */
function emitIpv6Header(
  repr: {
    readonly src: Uint8Array;
    readonly dst: Uint8Array;
    readonly hopLimit?: number;
    readonly flowInfo?: number;
  },
  nextHeader: number,
  payloadLength: number,
  into: Uint8Array,
  offset: number,
): Ipv6View {
  const ip = ipv6Scratch.pointAt(into, offset);
  ip.setVersionAndFlowInfo(repr.flowInfo ?? 0);
  ip.payloadLength = payloadLength;
  ip.nextHeader = nextHeader;
  ip.hopLimit = repr.hopLimit ?? DEFAULT_TTL;
  ip.src = repr.src;
  ip.dst = repr.dst;
  return ip;
}

function ensureRoom(into: Uint8Array, offset: number, total: number, ipLengthField: number): void {
  if (ipLengthField > MAX_IP_LENGTH) throw new RangeError(`IP length ${ipLengthField} exceeds 65535`);
  if (into.length - offset < total) {
    throw new RangeError(`packet needs ${total} bytes, have ${into.length - offset}`);
  }
}

/** `parts` one after the other in one new array (`parts[0]` itself when there is only one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
