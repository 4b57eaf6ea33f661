/**
 * TCP (RFC 9293) at two levels, as smoltcp has them: `TcpView`, a zero-copy view of a header in place
 * (hot paths), and `TcpRepr`, a segment's meaning as a plain object, with `parseTcpRepr` and `emitTcpRepr`
 * (the session engine's segments, builders and tests). Also the options and the checksum over IPv4 and IPv6.
 */
import { read16, read32, write16, write32 } from "./bytes.ts";
import { finishChecksum, onesComplementSum } from "./checksum.ts";
import { isWireError, type WireError, wireError } from "./errors.ts";
import { IpProtocol, Ipv4View } from "./ipv4.ts";
import type { Ipv6View } from "./ipv6.ts";

const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;
/** Length of a header without options. */
export const TCP_MIN_HEADER_LENGTH = 20;
/** Most option bytes a header can carry (data offset 15). */
export const TCP_MAX_OPTIONS_LENGTH = 40;

const OPTION_EOL = 0;
const OPTION_NOP = 1;
const OPTION_MSS = 2;
const OPTION_WINDOW_SCALE = 3;
const OPTION_SACK_PERMITTED = 4;
const OPTION_SACK = 5;
const OPTION_TIMESTAMP = 8;
const MSS_LENGTH = 4;
const WINDOW_SCALE_LENGTH = 3;
const SACK_PERMITTED_LENGTH = 2;
const TIMESTAMP_LENGTH = 10;
const SACK_BLOCK_LENGTH = 8;

/** TCP control flag bits as they sit in header byte 13. */
export const TcpFlag = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 } as const;

/** The TCP options tcpshadow reads and writes; absent means not present. */
export interface TcpOptions {
  mss?: number;
  /** Shift count as sent (RFC 7323 says to treat values above 14 as 14; that is the reader's job). */
  windowScale?: number;
  sackPermitted?: boolean;
  /** SACK blocks as [left edge, right edge) sequence numbers. */
  sack?: Array<[number, number]>;
  /** Its value and echo: 32 bits, unsigned or signed as `TcpRepr.seq`. */
  timestamp?: { value: number; echo: number };
}

/**
 * A TCP header in place at `bytes[offset..]`, of a segment `segmentLength` bytes long (the IP payload
 * length). `TcpView.check` guarantees the whole header, options included, is in `bytes`; the payload may be
 * cut short by the capture (`capturedPayloadLength`).
 */
export class TcpView {
  /** `bytes`, `offset` and `segmentLength` move with `checkAt` (and `pointAt`): one view, many segments. */
  constructor(public bytes: Uint8Array, public offset: number, public segmentLength: number) {}

  /** Checks that a segment of `segmentLength` bytes at `bytes[offset..]` has a whole, consistent header. */
  static check(bytes: Uint8Array, offset: number, segmentLength: number): TcpView | WireError {
    return new TcpView(bytes, offset, segmentLength).checkAt(bytes, offset, segmentLength);
  }

  /** Points this view at the segment and checks it as `check` does: no new view per segment. */
  checkAt(bytes: Uint8Array, offset: number, segmentLength: number): TcpView | WireError {
    if (segmentLength < TCP_MIN_HEADER_LENGTH) {
      return wireError("malformed", `TCP segment length ${segmentLength} below 20`);
    }
    const available = bytes.length - offset;
    if (available < TCP_MIN_HEADER_LENGTH) {
      return wireError("truncated", `TCP header needs 20 bytes, have ${available}`);
    }
    const view = this.pointAt(bytes, offset, segmentLength);
    const headerLength = view.headerLength;
    if (headerLength < TCP_MIN_HEADER_LENGTH) {
      return wireError("malformed", `TCP header length ${headerLength} below 20`);
    }
    if (headerLength > segmentLength) {
      return wireError("malformed", `TCP header length ${headerLength} past segment length ${segmentLength}`);
    }
    if (headerLength > available) {
      return wireError("truncated", `TCP header length ${headerLength}, have ${available} bytes`);
    }
    return view;
  }

  /** Points this view at a segment without a check, to write one there. */
  pointAt(bytes: Uint8Array, offset: number, segmentLength: number): this {
    this.bytes = bytes;
    this.offset = offset;
    this.segmentLength = segmentLength;
    return this;
  }

  /** Source port. */
  get srcPort(): number {
    return read16(this.bytes, this.offset + SRC_PORT);
  }
  set srcPort(port: number) {
    write16(this.bytes, this.offset + SRC_PORT, port);
  }

  /** Destination port. */
  get dstPort(): number {
    return read16(this.bytes, this.offset + DST_PORT);
  }
  set dstPort(port: number) {
    write16(this.bytes, this.offset + DST_PORT, port);
  }

  /** Sequence number, 0..2^32-1. */
  get seq(): number {
    return read32(this.bytes, this.offset + SEQ);
  }
  set seq(value: number) {
    write32(this.bytes, this.offset + SEQ, value);
  }

  /** Acknowledgment number, 0..2^32-1 (meaningful only with the ACK flag). */
  get ack(): number {
    return read32(this.bytes, this.offset + ACK);
  }
  set ack(value: number) {
    write32(this.bytes, this.offset + ACK, value);
  }

  /** Header length in bytes (data offset * 4). Setting it keeps the reserved bits. */
  get headerLength(): number {
    return (this.bytes[this.offset + DATA_OFFSET] >> 4) * 4;
  }
  set headerLength(length: number) {
    const at = this.offset + DATA_OFFSET;
    this.bytes[at] = ((length >> 2) << 4) | (this.bytes[at] & 0x0f);
  }

  /** Control flags, a sum of `TcpFlag` bits. */
  get flags(): number {
    return this.bytes[this.offset + FLAGS];
  }
  set flags(value: number) {
    this.bytes[this.offset + FLAGS] = value;
  }

  /** Window field, unscaled. */
  get window(): number {
    return read16(this.bytes, this.offset + WINDOW);
  }
  set window(value: number) {
    write16(this.bytes, this.offset + WINDOW, value);
  }

  /** Checksum field. */
  get checksum(): number {
    return read16(this.bytes, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    write16(this.bytes, this.offset + CHECKSUM, value);
  }

  /** Urgent pointer. */
  get urgent(): number {
    return read16(this.bytes, this.offset + URGENT);
  }
  set urgent(value: number) {
    write16(this.bytes, this.offset + URGENT, value);
  }

  /** Absolute index in `bytes` where the payload starts. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }

  /** Payload length the IP header declares (segment length minus header length). */
  get payloadLength(): number {
    return this.segmentLength - this.headerLength;
  }

  /** Payload bytes present in `bytes`: `payloadLength`, or less if the capture was cut. */
  get capturedPayloadLength(): number {
    return Math.max(0, Math.min(this.payloadLength, this.bytes.length - this.payloadOffset));
  }

  /** The captured payload, as a subarray of `bytes` (no copy). */
  payload(): Uint8Array {
    const start = this.payloadOffset;
    return this.bytes.subarray(start, start + this.capturedPayloadLength);
  }

  /** The raw option bytes, as a subarray of `bytes` (no copy). */
  optionBytes(): Uint8Array {
    return this.bytes.subarray(this.offset + TCP_MIN_HEADER_LENGTH, this.offset + this.headerLength);
  }

  /** The parsed options. */
  options(): TcpOptions | WireError {
    return parseTcpOptions(this.optionBytes());
  }

  /**
   * The parsed options, as `options()`, written into `into` (every field set again), a timestamp option into
   * `timestamp`: no view and no object made, for a reader done with them before the next parse (the session,
   * at a handshake).
   */
  optionsInto(into: TcpOptions, timestamp: { value: number; echo: number }): TcpOptions | WireError {
    into.mss = undefined;
    into.windowScale = undefined;
    into.sackPermitted = undefined;
    into.sack = undefined;
    into.timestamp = undefined;
    const start = this.offset + TCP_MIN_HEADER_LENGTH;
    return parseTcpOptionsIn(this.bytes, start, this.offset + this.headerLength, into, timestamp);
  }

  /**
   * The timestamp option's TSval, or -1 without one (or with options `options()` finds malformed): what
   * the session reads of every reply, without a parse that allocates.
   */
  timestampValue(): number {
    return this.#timestampField(0);
  }

  /** The timestamp option's TSecr, or -1 as `timestampValue`: read of every ack, without a parse. */
  timestampEcho(): number {
    return this.#timestampField(4);
  }

  #timestampField(at: number): number {
    const start = this.offset + TCP_MIN_HEADER_LENGTH;
    return timestampFieldIn(this.bytes, start, this.offset + this.headerLength, at);
  }
}

/**
 * Parses TCP option bytes. EOL ends the list, NOP is skipped, unknown kinds are skipped by their length;
 * a known kind with the wrong length, a length below 2 or an option running past the end is `malformed`.
 */
export function parseTcpOptions(bytes: Uint8Array): TcpOptions | WireError {
  return parseTcpOptionsIn(bytes, 0, bytes.length, {});
}

/**
 * `parseTcpOptions` of `bytes[at..end]`, into `options` (which comes in empty); a timestamp option into
 * `timestamp` when given, else into a new object.
 */
function parseTcpOptionsIn(
  bytes: Uint8Array,
  start: number,
  end: number,
  options: TcpOptions,
  timestamp?: { value: number; echo: number },
): TcpOptions | WireError {
  let at = start;
  while (at < end) {
    const kind = bytes[at];
    if (kind === OPTION_EOL) break;
    if (kind === OPTION_NOP) {
      at++;
      continue;
    }
    if (at + 1 >= end) return wireError("malformed", `TCP option ${kind} has no length byte`);
    const length = bytes[at + 1];
    if (length < 2) return badOptionLength(kind, length);
    if (at + length > end) {
      return wireError("malformed", `TCP option ${kind} of length ${length} runs past the header`);
    }
    if (!optionLengthFits(kind, length)) return badOptionLength(kind, length);
    switch (kind) {
      case OPTION_MSS:
        options.mss = read16(bytes, at + 2);
        break;
      case OPTION_WINDOW_SCALE:
        options.windowScale = bytes[at + 2];
        break;
      case OPTION_SACK_PERMITTED:
        options.sackPermitted = true;
        break;
      case OPTION_SACK: {
        const blocks: Array<[number, number]> = [];
        for (let block = at + 2; block < at + length; block += SACK_BLOCK_LENGTH) {
          blocks.push([read32(bytes, block), read32(bytes, block + 4)]);
        }
        options.sack = blocks;
        break;
      }
      case OPTION_TIMESTAMP:
        if (timestamp === undefined) {
          options.timestamp = { value: read32(bytes, at + 2), echo: read32(bytes, at + 6) };
        } else {
          timestamp.value = read32(bytes, at + 2);
          timestamp.echo = read32(bytes, at + 6);
          options.timestamp = timestamp;
        }
        break;
    }
    at += length;
  }
  return options;
}

/**
 * A field of the timestamp option in `bytes[start..end]` (`field` 0: TSval, 4: TSecr), or -1 when there is
 * none or the options are malformed as `parseTcpOptions` finds them: its `timestamp?.value` or `.echo`,
 * without building the options.
 */
function timestampFieldIn(bytes: Uint8Array, start: number, end: number, field: number): number {
  let value = -1;
  let at = start;
  while (at < end) {
    const kind = bytes[at];
    if (kind === OPTION_EOL) break;
    if (kind === OPTION_NOP) {
      at++;
      continue;
    }
    if (at + 1 >= end) return -1;
    const length = bytes[at + 1];
    if (length < 2 || at + length > end || !optionLengthFits(kind, length)) return -1;
    if (kind === OPTION_TIMESTAMP) value = read32(bytes, at + 2 + field);
    at += length;
  }
  return value;
}

/** Whether an option of a kind we read has the length its kind has (unknown kinds: any). */
function optionLengthFits(kind: number, length: number): boolean {
  switch (kind) {
    case OPTION_MSS:
      return length === MSS_LENGTH;
    case OPTION_WINDOW_SCALE:
      return length === WINDOW_SCALE_LENGTH;
    case OPTION_SACK_PERMITTED:
      return length === SACK_PERMITTED_LENGTH;
    case OPTION_SACK:
      return length >= 2 + SACK_BLOCK_LENGTH && (length - 2) % SACK_BLOCK_LENGTH === 0;
    case OPTION_TIMESTAMP:
      return length === TIMESTAMP_LENGTH;
    default:
      return true;
  }
}

function badOptionLength(kind: number, length: number): WireError {
  return wireError("malformed", `TCP option ${kind} has length ${length}`);
}

/**
 * Bytes `emitTcpOptions` writes for `options`: a multiple of 4, at most 40. SACK blocks that do not fit in
 * 40 bytes are left out, as Linux does.
 */
export function tcpOptionsLength(options: TcpOptions): number {
  const fixed = fixedOptionsLength(options);
  return fixed + sackLength(options, fixed);
}

/**
 * Writes `options` at `into[offset..]` in Linux's order and layout (MSS; SACK-permitted and timestamps, or
 * NOP NOP and either; NOP and window scale; NOP NOP and SACK blocks), so every option is 4-byte aligned and no
 * padding is needed. Returns the bytes written (`tcpOptionsLength(options)`). Throws `RangeError` if `into` is
 * too small.
 */
export function emitTcpOptions(options: TcpOptions, into: Uint8Array, offset: number): number {
  const fixed = fixedOptionsLength(options);
  const total = fixed + sackLength(options, fixed);
  if (into.length - offset < total) {
    throw new RangeError(`TCP options need ${total} bytes, have ${into.length - offset}`);
  }
  let at = offset;
  if (options.mss !== undefined) {
    into[at] = OPTION_MSS;
    into[at + 1] = MSS_LENGTH;
    write16(into, at + 2, options.mss);
    at += 4;
  }
  if (options.timestamp !== undefined) {
    if (options.sackPermitted) {
      into[at] = OPTION_SACK_PERMITTED;
      into[at + 1] = SACK_PERMITTED_LENGTH;
    } else {
      into[at] = OPTION_NOP;
      into[at + 1] = OPTION_NOP;
    }
    into[at + 2] = OPTION_TIMESTAMP;
    into[at + 3] = TIMESTAMP_LENGTH;
    write32(into, at + 4, options.timestamp.value | 0);
    write32(into, at + 8, options.timestamp.echo | 0);
    at += 12;
  } else if (options.sackPermitted) {
    into[at] = OPTION_NOP;
    into[at + 1] = OPTION_NOP;
    into[at + 2] = OPTION_SACK_PERMITTED;
    into[at + 3] = SACK_PERMITTED_LENGTH;
    at += 4;
  }
  if (options.windowScale !== undefined) {
    into[at] = OPTION_NOP;
    into[at + 1] = OPTION_WINDOW_SCALE;
    into[at + 2] = WINDOW_SCALE_LENGTH;
    into[at + 3] = options.windowScale;
    at += 4;
  }
  const sackBytes = total - (at - offset);
  if (sackBytes > 0) {
    into[at] = OPTION_NOP;
    into[at + 1] = OPTION_NOP;
    into[at + 2] = OPTION_SACK;
    into[at + 3] = sackBytes - 2;
    at += 4;
    const blocks = options.sack ?? [];
    for (let i = 0; i < (sackBytes - 4) / SACK_BLOCK_LENGTH; i++) {
      write32(into, at, blocks[i][0]);
      write32(into, at + 4, blocks[i][1]);
      at += SACK_BLOCK_LENGTH;
    }
  }
  return at - offset;
}

function fixedOptionsLength(options: TcpOptions): number {
  return (options.mss !== undefined ? 4 : 0) +
    (options.timestamp !== undefined ? 12 : options.sackPermitted ? 4 : 0) +
    (options.windowScale !== undefined ? 4 : 0);
}

function sackLength(options: TcpOptions, fixed: number): number {
  const room = Math.floor((TCP_MAX_OPTIONS_LENGTH - fixed - 4) / SACK_BLOCK_LENGTH);
  const blocks = Math.min(options.sack?.length ?? 0, Math.max(0, room));
  return blocks === 0 ? 0 : 4 + blocks * SACK_BLOCK_LENGTH;
}

/** A TCP segment's meaning, without checksum or header length: what `TcpView` reads, as a plain object. */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  /**
   * The sequence and acknowledgment numbers' 32 bits, unsigned (as `TcpView` reads them) or signed (as
   * the session engine makes them: `src/session/seq.ts`); emitters write either.
   */
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

/** Bytes the segment `repr` takes: header, options and payload. */
export function tcpReprLength(repr: TcpRepr): number {
  return TCP_MIN_HEADER_LENGTH + (repr.options ? tcpOptionsLength(repr.options) : 0) +
    (repr.payload?.length ?? 0);
}

/**
 * Writes the segment `repr` at `into[at..]`, `segmentLength` (`tcpReprLength(repr)`) bytes, and returns its
 * view: a new one, or `view` pointed there. The checksum stays zero: it covers the IP pseudo-header, which
 * the caller fills.
 */
export function emitTcpRepr(
  repr: TcpRepr,
  into: Uint8Array,
  at: number,
  segmentLength: number,
  view?: TcpView,
): TcpView {
  into.fill(0, at, at + TCP_MIN_HEADER_LENGTH);
  const tcp = view === undefined
    ? new TcpView(into, at, segmentLength)
    : view.pointAt(into, at, segmentLength);
  tcp.srcPort = repr.srcPort;
  tcp.dstPort = repr.dstPort;
  // Signed before they go on: an unsigned value above 2**31 would be a new heap number per call.
  tcp.seq = repr.seq | 0;
  tcp.ack = repr.ack | 0;
  const optionsLength = repr.options ? emitTcpOptions(repr.options, into, at + TCP_MIN_HEADER_LENGTH) : 0;
  tcp.headerLength = TCP_MIN_HEADER_LENGTH + optionsLength;
  tcp.flags = repr.flags;
  tcp.window = repr.window;
  tcp.urgent = repr.urgent ?? 0;
  if (repr.payload) into.set(repr.payload, tcp.payloadOffset);
  return tcp;
}

/** Computes and stores the TCP checksum of `tcp`, carried in `ip`; the whole segment must be captured. */
export function fillTcpChecksumIpv4(ip: Ipv4View, tcp: TcpView): void {
  tcp.checksum = segmentChecksumOf(tcp, ip.pseudoHeaderSum(IpProtocol.TCP, tcp.segmentLength));
}

/** Computes and stores the TCP checksum of `tcp`, carried in `ip`; the whole segment must be captured. */
export function fillTcpChecksumIpv6(ip: Ipv6View, tcp: TcpView): void {
  tcp.checksum = segmentChecksumOf(tcp, ip.pseudoHeaderSum(IpProtocol.TCP, tcp.segmentLength));
}

function segmentChecksumOf(tcp: TcpView, pseudoSum: number): number {
  return segmentChecksum(tcp.bytes, tcp.offset, tcp.offset + tcp.segmentLength, pseudoSum);
}

// Sums around the checksum field rather than zeroing it, so computing never writes to the packet.
function segmentChecksum(bytes: Uint8Array, start: number, end: number, pseudoSum: number): number {
  const beforeField = onesComplementSum(bytes, start, start + CHECKSUM, pseudoSum);
  return finishChecksum(onesComplementSum(bytes, start + CHECKSUM + 2, end, beforeField));
}
