/** Link-layer dispatch: from a captured frame of any supported link type to its IP and TCP (or UDP) views. */
import { type Address, ipv6Address } from "./address_key.ts";
import { EthernetView, EtherType } from "./ethernet.ts";
import { isWireError, type WireError, wireError } from "./errors.ts";
import { IpProtocol, Ipv4View } from "./ipv4.ts";
import { Ipv6View } from "./ipv6.ts";
import { Sll2View, SllView } from "./sll.ts";
import { TcpView } from "./tcp.ts";
import { UdpView } from "./udp.ts";

/** pcap link types (LINKTYPE_* as stored in files and returned by `pcap_datalink`) that tcpshadow decodes. */
export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

// Some platforms' libpcap report raw IP under these DLT_RAW values instead of LINKTYPE_RAW.
const DLT_RAW_12 = 12;
const DLT_RAW_14 = 14;

/** Length of the address-family word that starts NULL and LOOP frames. */
const LOOPBACK_HEADER_LENGTH = 4;
const AF_INET = 2;
// AF_INET6 differs by platform: Linux, NetBSD/OpenBSD, FreeBSD, macOS.
const AF_INET6_VALUES = [10, 24, 28, 30];

/** A captured TCP segment: views over the frame, and whether the capturing host sent it. */
export interface TcpPacket {
  ip: Ipv4View | Ipv6View;
  tcp: TcpView;
  /** True for packets the capturing host sent; known only for SLL and SLL2 frames, else false. */
  outgoing: boolean;
}

const IPV6_SOURCE = 8;
const IPV6_DESTINATION = 24;

/** The source address of a decoded packet as a map key (`Address`): no copy for IPv4. */
export function sourceAddress(ip: Ipv4View | Ipv6View): Address {
  return ip instanceof Ipv4View ? ip.src : ipv6Address(ip.bytes, ip.offset + IPV6_SOURCE);
}

/** The destination address of a decoded packet as a map key (`Address`). */
export function destinationAddress(ip: Ipv4View | Ipv6View): Address {
  return ip instanceof Ipv4View ? ip.dst : ipv6Address(ip.bytes, ip.offset + IPV6_DESTINATION);
}

/**
 * Finds the IP and TCP headers in one captured frame. Returns `undefined` for a well-formed frame that is
 * not TCP over IP (ARP, UDP, ...), and a `WireError` for a frame that cannot be read, an IP fragment, or an
 * unknown link type. The views point into `frame`; nothing is copied. The packet and its views are new: a
 * capture loop decodes with one `TcpPacketDecoder` instead, which makes none.
 */
export function decodeTcpPacket(linkType: number, frame: Uint8Array): TcpPacket | WireError | undefined {
  return new TcpPacketDecoder().decode(linkType, frame);
}

/** The views one frame is read through: a decoder's own, reused. */
class LinkViews {
  readonly ethernet = new EthernetView(EMPTY, 0);
  readonly sll = new SllView(EMPTY, 0);
  readonly sll2 = new Sll2View(EMPTY, 0);
}

const EMPTY = new Uint8Array(0);

/**
 * `decodeTcpPacket` for a capture loop: the packet it returns, and its views, are the same objects for
 * every frame, pointed at the frame just decoded, so decoding allocates nothing. What it returned is
 * good until the next `decode`; a caller that keeps a packet longer uses `decodeTcpPacket`.
 */
export class TcpPacketDecoder {
  readonly #link = new LinkViews();
  readonly #ipv4 = new Ipv4View(EMPTY, 0);
  readonly #ipv6 = new Ipv6View(EMPTY, 0);
  readonly #tcp = new TcpView(EMPTY, 0, 0);
  readonly #packet: TcpPacket = { ip: this.#ipv4, tcp: this.#tcp, outgoing: false };

  /** As `decodeTcpPacket`, into this decoder's packet and views. */
  decode(linkType: number, frame: Uint8Array): TcpPacket | WireError | undefined {
    const found = locateIp(this.#link, linkType, frame);
    if (found === undefined || isWireError(found)) return found;
    return found.version === 4
      ? this.#decodeIpv4(frame, found.offset, found.outgoing)
      : this.#decodeIpv6(frame, found.offset, found.outgoing);
  }

  #decodeIpv4(frame: Uint8Array, ipOffset: number, outgoing: boolean): TcpPacket | WireError | undefined {
    const ip = this.#ipv4.checkAt(frame, ipOffset);
    if (isWireError(ip)) return ip;
    if (ip.protocol !== IpProtocol.TCP) return undefined;
    if (ip.isFragment) return wireError("unsupported", "IPv4 fragment");
    const tcp = this.#tcp.checkAt(frame, ip.payloadOffset, ip.payloadLength);
    if (isWireError(tcp)) return tcp;
    return this.#decoded(ip, outgoing);
  }

  #decodeIpv6(frame: Uint8Array, ipOffset: number, outgoing: boolean): TcpPacket | WireError | undefined {
    const ip = this.#ipv6.checkAt(frame, ipOffset);
    if (isWireError(ip)) return ip;
    let tcp: TcpView | WireError;
    if (ip.nextHeader === IpProtocol.TCP) {
      tcp = this.#tcp.checkAt(frame, ip.payloadOffset, ip.payloadLength);
    } else {
      const upper = ip.upperLayer();
      if (isWireError(upper)) return upper;
      if (upper.protocol !== IpProtocol.TCP) return undefined;
      tcp = this.#tcp.checkAt(frame, upper.offset, upper.length);
    }
    if (isWireError(tcp)) return tcp;
    return this.#decoded(ip, outgoing);
  }

  #decoded(ip: Ipv4View | Ipv6View, outgoing: boolean): TcpPacket {
    const packet = this.#packet;
    packet.ip = ip;
    packet.outgoing = outgoing;
    return packet;
  }
}

/** A captured UDP datagram: views over the frame, and whether the capturing host sent it. */
export interface UdpPacket {
  ip: Ipv4View | Ipv6View;
  udp: UdpView;
  /** True for packets the capturing host sent; known only for SLL and SLL2 frames, else false. */
  outgoing: boolean;
}

/**
 * Finds the IP (IPv4 or IPv6, after any extension headers) and UDP headers in one captured frame, as
 * `decodeTcpPacket` does for TCP: `undefined` for a well-formed frame that is not UDP, a `WireError` for
 * one that cannot be read or an IP fragment (the UDP header is in the first fragment only).
 */
export function decodeUdpPacket(linkType: number, frame: Uint8Array): UdpPacket | WireError | undefined {
  const found = locateIp(new LinkViews(), linkType, frame);
  if (found === undefined || isWireError(found)) return found;
  if (found.version === 6) return decodeIpv6Udp(frame, found.offset, found.outgoing);
  const ip = Ipv4View.check(frame, found.offset);
  if (isWireError(ip)) return ip;
  if (ip.protocol !== IpProtocol.UDP) return undefined;
  if (ip.isFragment) return wireError("unsupported", "IPv4 fragment");
  const udp = UdpView.check(frame.subarray(0, ip.offset + ip.capturedLength), ip.payloadOffset);
  if (isWireError(udp)) return udp;
  if (udp.length > ip.payloadLength) {
    return wireError("malformed", `UDP length ${udp.length} beyond the IP payload's ${ip.payloadLength}`);
  }
  return { ip, udp, outgoing: found.outgoing };
}

function decodeIpv6Udp(
  frame: Uint8Array,
  ipOffset: number,
  outgoing: boolean,
): UdpPacket | WireError | undefined {
  const ip = Ipv6View.check(frame, ipOffset);
  if (isWireError(ip)) return ip;
  const upper = ip.upperLayer();
  if (isWireError(upper)) return upper;
  if (upper.protocol !== IpProtocol.UDP) return undefined;
  const udp = UdpView.check(frame.subarray(0, upper.offset + upper.length), upper.offset);
  if (isWireError(udp)) return udp;
  if (udp.length > upper.length) {
    return wireError("malformed", `UDP length ${udp.length} beyond the IPv6 payload's ${upper.length}`);
  }
  return { ip, udp, outgoing };
}

/** Where a frame's IP header starts, its version, and whether the capturing host sent it. */
interface IpLocation {
  offset: number;
  version: 4 | 6;
  outgoing: boolean;
}

/** Reused by every `locateIp`: one frame is decoded at a time, and no allocation per packet. */
const location: IpLocation = { offset: 0, version: 4, outgoing: false };

function located(offset: number, version: 4 | 6, outgoing: boolean): IpLocation {
  location.offset = offset;
  location.version = version;
  location.outgoing = outgoing;
  return location;
}

function locateIp(views: LinkViews, linkType: number, frame: Uint8Array): IpLocation | WireError | undefined {
  switch (linkType) {
    case LinkType.ETHERNET: {
      const ethernet = views.ethernet.checkAt(frame);
      if (isWireError(ethernet)) return ethernet;
      return locateEtherType(ethernet.etherType, ethernet.payloadOffset, false);
    }
    case LinkType.LINUX_SLL: {
      const sll = views.sll.checkAt(frame);
      if (isWireError(sll)) return sll;
      return locateEtherType(sll.protocol, sll.payloadOffset, sll.outgoing);
    }
    case LinkType.LINUX_SLL2: {
      const sll2 = views.sll2.checkAt(frame);
      if (isWireError(sll2)) return sll2;
      return locateEtherType(sll2.protocol, sll2.payloadOffset, sll2.outgoing);
    }
    case LinkType.NULL:
    case LinkType.LOOP: {
      if (frame.length < LOOPBACK_HEADER_LENGTH) {
        return wireError("truncated", "loopback header needs 4 bytes");
      }
      // The family is a 32-bit word in the capturing host's byte order (NULL) or big-endian (LOOP); every
      // family value fits in one byte, so whichever end byte is set holds it.
      const family = frame[0] !== 0 ? frame[0] : frame[3];
      if (family === AF_INET) return located(LOOPBACK_HEADER_LENGTH, 4, false);
      if (AF_INET6_VALUES.includes(family)) return located(LOOPBACK_HEADER_LENGTH, 6, false);
      return undefined;
    }
    case LinkType.RAW:
    case DLT_RAW_12:
    case DLT_RAW_14: {
      if (frame.length === 0) return wireError("truncated", "empty raw IP frame");
      const version = frame[0] >> 4;
      if (version === 4 || version === 6) return located(0, version, false);
      return wireError("malformed", `raw IP frame with version ${version}`);
    }
    case LinkType.IPV4:
      return located(0, 4, false);
    case LinkType.IPV6:
      return located(0, 6, false);
    default:
      return wireError("unsupported", `link type ${linkType}`);
  }
}

function locateEtherType(etherType: number, ipOffset: number, outgoing: boolean): IpLocation | undefined {
  if (etherType === EtherType.IPV4) return located(ipOffset, 4, outgoing);
  if (etherType === EtherType.IPV6) return located(ipOffset, 6, outgoing);
  return undefined;
}
