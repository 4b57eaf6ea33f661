/** Zero-copy view of an IPv4 header (RFC 791). */
import { type Ipv4Address, ipv4FromBytes } from "./address.ts";
import { read16, write16, write32 } from "./bytes.ts";
import { adjustChecksum32, internetChecksum, onesComplementSum } from "./checksum.ts";
import { type WireError, wireError } from "./errors.ts";

const VER_IHL = 0;
const DSCP_ECN = 1;
const TOTAL_LENGTH = 2;
const IDENT = 4;
const FLAGS_FRAGMENT = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;
/** Length of a header without options. */
export const IPV4_MIN_HEADER_LENGTH = 20;
const FLAG_MF = 0x2000;
const FRAGMENT_OFFSET_MASK = 0x1fff;

/** IP protocol numbers this package reads. */
export const IpProtocol = { TCP: 6, UDP: 17 } as const;

/**
 * An IPv4 header in place at `bytes[offset..]`. Getters read the bytes, setters write them; nothing is
 * copied. Make one with `Ipv4View.check`, which guarantees the whole header is in `bytes`; the payload may
 * be cut short by the capture (`truncated`), and may be followed by link padding, which `totalLength` excludes.
 */
export class Ipv4View {
  /** `bytes` and `offset` move with `checkAt` (and `pointAt`): one view serves packet after packet. */
  constructor(public bytes: Uint8Array, public offset: number) {}

  /**
   * Checks that `bytes[offset..]` starts with a whole IPv4 header whose lengths agree: version 4, IHL >= 5,
   * header length <= total length. A total length past the end of `bytes` is accepted as a capture cut by
   * snaplen (`truncated` is then true); the upper-layer parser decides whether enough was captured.
   */
  static check(bytes: Uint8Array, offset = 0): Ipv4View | WireError {
    return new Ipv4View(bytes, offset).checkAt(bytes, offset);
  }

  /** Points this view at `bytes[offset..]` and checks it as `check` does: no new view per packet. */
  checkAt(bytes: Uint8Array, offset = 0): Ipv4View | WireError {
    const available = bytes.length - offset;
    if (available < IPV4_MIN_HEADER_LENGTH) {
      return wireError("truncated", `IPv4 header needs 20 bytes, have ${available}`);
    }
    const view = this.pointAt(bytes, offset);
    if (view.version !== 4) return wireError("malformed", `IP version ${view.version}, expected 4`);
    const headerLength = view.headerLength;
    if (headerLength < IPV4_MIN_HEADER_LENGTH) {
      return wireError("malformed", `IPv4 header length ${headerLength} below 20`);
    }
    if (headerLength > available) {
      return wireError("truncated", `IPv4 header length ${headerLength}, have ${available} bytes`);
    }
    if (view.totalLength < headerLength) {
      return wireError(
        "malformed",
        `IPv4 total length ${view.totalLength} below header length ${headerLength}`,
      );
    }
    return view;
  }

  /** Points this view at `bytes[offset..]` without a check, to write a header there. */
  pointAt(bytes: Uint8Array, offset: number): this {
    this.bytes = bytes;
    this.offset = offset;
    return this;
  }

  /** IP version nibble (4 for a checked view). */
  get version(): number {
    return this.bytes[this.offset + VER_IHL] >> 4;
  }
  set version(value: number) {
    const at = this.offset + VER_IHL;
    this.bytes[at] = (value << 4) | (this.bytes[at] & 0x0f);
  }

  /** Header length in bytes (IHL * 4); set it to a multiple of 4. */
  get headerLength(): number {
    return (this.bytes[this.offset + VER_IHL] & 0x0f) * 4;
  }
  set headerLength(length: number) {
    const at = this.offset + VER_IHL;
    this.bytes[at] = (this.bytes[at] & 0xf0) | ((length >> 2) & 0x0f);
  }

  /** DSCP and ECN bits (the old type-of-service byte). */
  get dscpEcn(): number {
    return this.bytes[this.offset + DSCP_ECN];
  }
  set dscpEcn(value: number) {
    this.bytes[this.offset + DSCP_ECN] = value;
  }

  /** Length of header plus payload as the sender wrote it. */
  get totalLength(): number {
    return read16(this.bytes, this.offset + TOTAL_LENGTH);
  }
  set totalLength(value: number) {
    write16(this.bytes, this.offset + TOTAL_LENGTH, value);
  }

  /** Identification field. */
  get id(): number {
    return read16(this.bytes, this.offset + IDENT);
  }
  set id(value: number) {
    write16(this.bytes, this.offset + IDENT, value);
  }

  /** The three flag bits (0x4 = DF, 0x2 = MF), shifted down. */
  get flags(): number {
    return this.bytes[this.offset + FLAGS_FRAGMENT] >> 5;
  }
  set flags(value: number) {
    const at = this.offset + FLAGS_FRAGMENT;
    this.bytes[at] = ((value & 0x7) << 5) | (this.bytes[at] & 0x1f);
  }

  /** Fragment offset in 8-byte units. */
  get fragmentOffset(): number {
    return read16(this.bytes, this.offset + FLAGS_FRAGMENT) & FRAGMENT_OFFSET_MASK;
  }
  set fragmentOffset(value: number) {
    const at = this.offset + FLAGS_FRAGMENT;
    write16(
      this.bytes,
      at,
      (read16(this.bytes, at) & ~FRAGMENT_OFFSET_MASK) | (value & FRAGMENT_OFFSET_MASK),
    );
  }

  /** True when this is part of a fragmented datagram (MF set or offset non-zero). */
  get isFragment(): boolean {
    return (read16(this.bytes, this.offset + FLAGS_FRAGMENT) & (FLAG_MF | FRAGMENT_OFFSET_MASK)) !== 0;
  }

  /** Time to live. */
  get ttl(): number {
    return this.bytes[this.offset + TTL];
  }
  set ttl(value: number) {
    this.bytes[this.offset + TTL] = value;
  }

  /** Upper-layer protocol number (6 = TCP). */
  get protocol(): number {
    return this.bytes[this.offset + PROTOCOL];
  }
  set protocol(value: number) {
    this.bytes[this.offset + PROTOCOL] = value;
  }

  /** Header checksum field. */
  get checksum(): number {
    return read16(this.bytes, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    write16(this.bytes, this.offset + CHECKSUM, value);
  }

  /**
   * Source address as a signed 32-bit number (`Ipv4Address`). Setting it leaves the checksum alone; see
   * `setSrc`.
   */
  get src(): Ipv4Address {
    return ipv4FromBytes(this.bytes, this.offset + SRC);
  }
  set src(address: Ipv4Address) {
    write32(this.bytes, this.offset + SRC, address);
  }

  /**
   * Destination address as a signed 32-bit number (`Ipv4Address`). Setting it leaves the checksum alone; see
   * `setDst`.
   */
  get dst(): Ipv4Address {
    return ipv4FromBytes(this.bytes, this.offset + DST);
  }
  set dst(address: Ipv4Address) {
    write32(this.bytes, this.offset + DST, address);
  }

  /** Rewrites the source address and adjusts the header checksum incrementally (not the TCP checksum). */
  setSrc(address: Ipv4Address): void {
    this.checksum = adjustChecksum32(this.checksum, this.src, address);
    this.src = address;
  }

  /** Rewrites the destination address and adjusts the header checksum incrementally (not the TCP checksum). */
  setDst(address: Ipv4Address): void {
    this.checksum = adjustChecksum32(this.checksum, this.dst, address);
    this.dst = address;
  }

  /** Absolute index in `bytes` where the payload starts. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }

  /** Payload length the header declares (total length minus header length). */
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }

  /** Bytes of the datagram present in `bytes`: the total length, or less if the capture was cut. */
  get capturedLength(): number {
    return Math.min(this.totalLength, this.bytes.length - this.offset);
  }

  /** True when the capture holds less than `totalLength` bytes of the datagram. */
  get truncated(): boolean {
    return this.totalLength > this.bytes.length - this.offset;
  }

  /**
   * One's complement sum of the pseudo-header (addresses, protocol, upper-layer length) that TCP and UDP
   * checksums cover, ready to chain into `onesComplementSum`.
   */
  pseudoHeaderSum(protocol: number, upperLength: number): number {
    return onesComplementSum(this.bytes, this.offset + SRC, this.offset + DST + 4, protocol + upperLength);
  }

  /** Computes and stores the header checksum. */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.bytes, this.offset, this.offset + this.headerLength);
  }

  /** True when the header checksum is right. */
  verifyChecksum(): boolean {
    return internetChecksum(this.bytes, this.offset, this.offset + this.headerLength) === 0;
  }
}
