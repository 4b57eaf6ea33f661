/**
 * Whole IPv4/IPv6 TCP packets from plain descriptions (`Repr`s), for the session engine's own segments
 * and for tests. The hot rewrite path uses the views instead.
 */
import { isWireError, type WireError, wireError } from "./errors.ts";
import { type Ipv4Address } from "./address.ts";
import { IpProtocol, IPV4_MIN_HEADER_LENGTH, Ipv4View } from "./ipv4.ts";
import { IPV6_HEADER_LENGTH, Ipv6View } from "./ipv6.ts";
import {
  emitTcpOptions,
  fillTcpChecksumIpv4,
  fillTcpChecksumIpv6,
  TCP_MIN_HEADER_LENGTH,
  type TcpOptions,
  tcpOptionsLength,
  TcpView,
} from "./tcp.ts";

/** A TCP segment's meaning, without checksum or header length. */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Sum of `TcpFlag` bits. */
  flags: number;
  window: number;
  /** Urgent pointer; absent means 0. */
  urgent?: number;
  options?: TcpOptions;
  payload?: Uint8Array;
}

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
const IPV4_FLAG_DONT_FRAGMENT = 0b010;
const MAX_IP_LENGTH = 0xffff;

/**
 * Writes the IPv4 packet `repr` at `into[offset..]`, with DF set and both checksums filled, and returns its
 * length. Throws `RangeError` if `into` is too small or the packet would exceed 65535 bytes.
 */
export function emitIpv4Tcp(repr: Ipv4TcpRepr, into: Uint8Array, offset = 0): number {
  const segmentLength = tcpSegmentLength(repr.tcp);
  const total = IPV4_MIN_HEADER_LENGTH + segmentLength;
  ensureRoom(into, offset, total, total);
  into.fill(0, offset, offset + IPV4_MIN_HEADER_LENGTH);
  const ip = new Ipv4View(into, offset);
  ip.version = 4;
  ip.headerLength = IPV4_MIN_HEADER_LENGTH;
  ip.totalLength = total;
  ip.id = repr.id ?? 0;
  ip.flags = IPV4_FLAG_DONT_FRAGMENT;
  ip.ttl = repr.ttl ?? DEFAULT_TTL;
  ip.protocol = IpProtocol.TCP;
  ip.src = repr.src;
  ip.dst = repr.dst;
  ip.fillChecksum();
  fillTcpChecksumIpv4(ip, emitTcp(repr.tcp, into, ip.payloadOffset, segmentLength));
  return total;
}

/** The IPv4 packet `repr` in a new array of exactly its length. */
export function buildIpv4Tcp(repr: Ipv4TcpRepr): Uint8Array {
  const packet = new Uint8Array(IPV4_MIN_HEADER_LENGTH + tcpSegmentLength(repr.tcp));
  emitIpv4Tcp(repr, packet);
  return packet;
}

/**
 * Writes the IPv6 packet `repr` at `into[offset..]` with the TCP checksum filled and returns its length.
 * Throws `RangeError` if `into` is too small or the payload would exceed 65535 bytes.
 */
export function emitIpv6Tcp(repr: Ipv6TcpRepr, into: Uint8Array, offset = 0): number {
  const segmentLength = tcpSegmentLength(repr.tcp);
  const total = IPV6_HEADER_LENGTH + segmentLength;
  ensureRoom(into, offset, total, segmentLength);
  into.fill(0, offset, offset + IPV6_HEADER_LENGTH);
  const ip = new Ipv6View(into, offset);
  ip.version = 6;
  ip.flowInfo = repr.flowInfo ?? 0;
  ip.payloadLength = segmentLength;
  ip.nextHeader = IpProtocol.TCP;
  ip.hopLimit = repr.hopLimit ?? DEFAULT_TTL;
  ip.src = repr.src;
  ip.dst = repr.dst;
  fillTcpChecksumIpv6(ip, emitTcp(repr.tcp, into, ip.payloadOffset, segmentLength));
  return total;
}

/** The IPv6 packet `repr` in a new array of exactly its length. */
export function buildIpv6Tcp(repr: Ipv6TcpRepr): Uint8Array {
  const packet = new Uint8Array(IPV6_HEADER_LENGTH + tcpSegmentLength(repr.tcp));
  emitIpv6Tcp(repr, packet);
  return packet;
}

/**
 * Reads a segment's meaning back. `urgent`, `options` and `payload` are present only when non-zero or
 * non-empty; `payload` is a subarray of the view's bytes. A payload cut by the capture is `truncated`.
 */
export function parseTcpRepr(tcp: TcpView): TcpRepr | WireError {
  const repr: TcpRepr = {
    srcPort: tcp.srcPort,
    dstPort: tcp.dstPort,
    seq: tcp.seq,
    ack: tcp.ack,
    flags: tcp.flags,
    window: tcp.window,
  };
  if (tcp.urgent !== 0) repr.urgent = tcp.urgent;
  if (tcp.headerLength > TCP_MIN_HEADER_LENGTH) {
    const options = tcp.options();
    if (isWireError(options)) return options;
    repr.options = options;
  }
  if (tcp.capturedPayloadLength < tcp.payloadLength) {
    return wireError(
      "truncated",
      `TCP payload of ${tcp.payloadLength} bytes cut to ${tcp.capturedPayloadLength}`,
    );
  }
  if (tcp.payloadLength > 0) repr.payload = tcp.payload();
  return repr;
}

function tcpSegmentLength(repr: TcpRepr): number {
  return TCP_MIN_HEADER_LENGTH + (repr.options ? tcpOptionsLength(repr.options) : 0) +
    (repr.payload?.length ?? 0);
}

function ensureRoom(into: Uint8Array, offset: number, total: number, ipLengthField: number): void {
  if (ipLengthField > MAX_IP_LENGTH) throw new RangeError(`IP length ${ipLengthField} exceeds 65535`);
  if (into.length - offset < total) {
    throw new RangeError(`packet needs ${total} bytes, have ${into.length - offset}`);
  }
}

function emitTcp(repr: TcpRepr, into: Uint8Array, at: number, segmentLength: number): TcpView {
  into.fill(0, at, at + TCP_MIN_HEADER_LENGTH);
  const tcp = new TcpView(into, at, segmentLength);
  tcp.srcPort = repr.srcPort;
  tcp.dstPort = repr.dstPort;
  tcp.seq = repr.seq;
  tcp.ack = repr.ack;
  const optionsLength = repr.options ? emitTcpOptions(repr.options, into, at + TCP_MIN_HEADER_LENGTH) : 0;
  tcp.headerLength = TCP_MIN_HEADER_LENGTH + optionsLength;
  tcp.flags = repr.flags;
  tcp.window = repr.window;
  tcp.urgent = repr.urgent ?? 0;
  if (repr.payload) into.set(repr.payload, tcp.payloadOffset);
  return tcp;
}
