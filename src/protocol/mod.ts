/**
 * The copy ↔ intercept wire protocol, compatible with TCPCopy 1.3 and intercept 1.0 (TCP port 36524), with
 * tcpshadow's own extensions that only tcpshadow peers ever see. `docs/protocol.md` describes it whole.
 *
 * copy → intercept: a 14-byte version hello first, then 14-byte registrations, one per client address and
 * port the target will answer. intercept → copy: frames of a 2-byte big-endian count n (1..16) and n 64-byte
 * reply records, each the 20-byte IPv4 header, the 20-byte TCP header and up to 24 bytes of TCP options,
 * zero-padded.
 *
 * Extensions: a tcpshadow copy marks its hello with `EXTENSION_MAGIC` in the target fields, which C intercept
 * ignores; a tcpshadow intercept then answers with an extension frame, whose count field holds
 * `EXTENSION_MAGIC_16` (never a valid count), and accepts extension records (types from 0x7400, which C never
 * sends). A C peer never sees either. IPv6 (`Capability.IPV6`) is one: ADD6/DELETE6 records
 * (`encodeRegistration6`) and REPLY6 frames of 84-byte records (`encodeReplyRecord6`, `ReplyFrameEncoder.add6`).
 *
 * Both sides import this module; decoders are streaming (a record may arrive split over reads) and
 * report garbage as a `ProtocolError` value.
 *
 * @module
 */
export * from "./auth.ts";
import {
  copyIpv6Address,
  IPV4_MIN_HEADER_LENGTH,
  type Ipv4Address,
  ipv4FromBytes,
  Ipv4View,
  Ipv6View,
  isWireError,
  read16,
  read32,
  TCP_MIN_HEADER_LENGTH,
  TcpView,
  write16,
  write32,
} from "../wire/mod.ts";

/** The TCP port intercept listens on unless told otherwise (TCPCopy's). */
export const DEFAULT_INTERCEPT_PORT = 36524;

/** Bytes of one registration record (and of the hello, which has a registration's shape). */
export const REGISTRATION_LENGTH = 14;
/**
 * The protocol version TCPCopy 1.3 and intercept 1.0 send in their hello (their `INTERNAL_VERSION`): C
 * intercept logs a mismatch and carries on, and so does ours.
 */
export const PROTOCOL_VERSION = 6;
/** "tshd": in the hello's target address, marks a copy that speaks tcpshadow's extensions. */
export const EXTENSION_MAGIC = 0x74736864;
/** "ts": in a reply frame's count field, opens an extension frame (a real count is 1..16). */
export const EXTENSION_MAGIC_16 = 0x7473;
/** Extension record types copy → intercept start here; C tcpcopy only ever sends 1 and 2. */
export const FIRST_EXTENSION_TYPE = 0x7400;
/** Most body bytes of one extension record or frame: bounds what a peer can make the other buffer. */
export const MAX_EXTENSION_BODY = 1024;
/** Bytes before an extension frame's body: magic (2), type (1), body length (2). */
export const EXTENSION_FRAME_HEADER_LENGTH = 5;
/** Bytes of one reply record. */
export const REPLY_RECORD_LENGTH = 64;
/** Most reply records one frame may carry. */
export const MAX_REPLIES_PER_FRAME = 16;
/** Bytes of the count that opens a reply frame. */
export const REPLY_FRAME_HEADER_LENGTH = 2;
/** Bytes of the largest reply frame. */
export const MAX_REPLY_FRAME_LENGTH = REPLY_FRAME_HEADER_LENGTH + MAX_REPLIES_PER_FRAME * REPLY_RECORD_LENGTH;
/** TCP option bytes a reply record keeps; the rest are cut. */
export const MAX_RECORD_TCP_OPTIONS = 24;

// Registration field offsets.
const REG_CLIENT_ADDRESS = 0;
const REG_CLIENT_PORT = 4;
const REG_TYPE = 6;
const REG_TARGET_ADDRESS = 8;
const REG_TARGET_PORT = 12;

// Reply record layout, and the header fields it reads or rewrites.
const RECORD_TCP = 20;
const RECORD_TCP_OPTIONS = 40;
const IPV4_TOTAL_LENGTH = 2;
const TCP_DATA_OFFSET = 12;

/**
 * Extension frame types, intercept → copy. A capability's own types sit in a range of their own
 * (auth: 0x20-0x2f), so capabilities added side by side never take each other's numbers.
 */
export const ExtensionFrameType = {
  /** The answer to an extended hello: a 2-byte bit set of the capabilities granted. */
  ACCEPTED: 1,
  /** IPv6 replies (`Capability.IPV6`): 1..12 records of `REPLY6_RECORD_LENGTH` bytes back to back. */
  REPLY6: 2,
  /** Auth: intercept's 16-byte nonce (`auth.ts`). */
  AUTH_CHALLENGE: 0x20,
  /** Auth: intercept's 32-byte proof, once copy's checked out (`auth.ts`). */
  AUTH_PROOF: 0x21,
  /** intercept refuses this copy and closes the connection; the body says why (UTF-8 text). */
  REFUSED: 0xff,
} as const;

/** Extension record types, copy → intercept; auth's are 0x7420-0x742f. */
export const ExtensionRecordType = {
  /** Auth: copy's 16-byte nonce and 32-byte proof (`auth.ts`). */
  AUTH_RESPONSE: 0x7420,
} as const;

/** Capability bits an extended hello asks for (in its target port) and `ACCEPTED` grants. */
export const Capability = {
  /** IPv6 registrations and reply records. */
  IPV6: 0x0001,
  /** The shared-secret challenge-response before any registration. */
  AUTH: 0x0002,
} as const;

/** The first 14 bytes a copy sends on every connection. */
export interface Hello {
  /** The peer's protocol version (6 for TCPCopy 1.3 and tcpshadow). */
  readonly version: number;
  /** Whether the peer is a tcpshadow copy that speaks the extensions. */
  readonly extended: boolean;
  /** Capability bits it asks for (0 unless extended). */
  readonly capabilities: number;
}

/** An extension record from a copy: its type (from `FIRST_EXTENSION_TYPE`) and body. */
export interface ExtensionRecord {
  readonly type: number;
  /** A view valid only until the decoder is fed again. */
  readonly body: Uint8Array;
}

/** What a copy's stream carries after its hello. */
export type PeerRecord = Registration | ExtensionRecord;

/** What a registration asks: route a client's replies to this connection, or stop. */
export const RegistrationType = { ADD: 1, DELETE: 2 } as const;

/** One registration: replies to `clientAddress:clientPort` (as the target sees the client) go to its sender. */
export interface Registration {
  type: 1 | 2;
  clientAddress: Ipv4Address;
  clientPort: number;
  targetAddress: Ipv4Address;
  targetPort: number;
}

/** Bytes on the protocol port that cannot be this protocol: the connection must be closed. */
export class ProtocolError {
  constructor(readonly message: string) {}
}

/** Writes `registration` as 14 bytes at `into[offset]`. */
export function encodeRegistration(registration: Registration, into: Uint8Array, offset: number): void {
  write32(into, offset + REG_CLIENT_ADDRESS, registration.clientAddress);
  write16(into, offset + REG_CLIENT_PORT, registration.clientPort);
  write16(into, offset + REG_TYPE, registration.type);
  write32(into, offset + REG_TARGET_ADDRESS, registration.targetAddress);
  write16(into, offset + REG_TARGET_PORT, registration.targetPort);
}

/**
 * Writes the 14-byte hello at `into[offset]`: TCPCopy's (all zero but the version) when `capabilities` is
 * undefined, tcpshadow's extended one otherwise.
 */
export function encodeHello(into: Uint8Array, offset: number, capabilities?: number): void {
  into.fill(0, offset, offset + REGISTRATION_LENGTH);
  write16(into, offset + REG_TYPE, PROTOCOL_VERSION);
  if (capabilities === undefined) return;
  write32(into, offset + REG_TARGET_ADDRESS, EXTENSION_MAGIC);
  write16(into, offset + REG_TARGET_PORT, capabilities);
}

/** Writes an extension record (copy → intercept) with `body`; returns the bytes written. */
export function encodeExtensionRecord(
  type: number,
  body: Uint8Array,
  into: Uint8Array,
  offset: number,
): number {
  into.fill(0, offset, offset + REGISTRATION_LENGTH);
  write16(into, offset + REG_CLIENT_PORT, body.length);
  write16(into, offset + REG_TYPE, type);
  into.set(body, offset + REGISTRATION_LENGTH);
  return REGISTRATION_LENGTH + body.length;
}

/** An extension frame (intercept → copy) with `body`, as bytes. */
export function encodeExtensionFrame(type: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(EXTENSION_FRAME_HEADER_LENGTH + body.length);
  write16(frame, 0, EXTENSION_MAGIC_16);
  frame[2] = type;
  write16(frame, 3, body.length);
  frame.set(body, EXTENSION_FRAME_HEADER_LENGTH);
  return frame;
}

/**
 * Splits a byte stream from copy into its hello, then registrations and (after an extended hello) extension
 * records, however the reads cut it.
 */
export class RegistrationDecoder {
  /** A record (and its extension body) gathered across reads. */
  readonly #partial = new Uint8Array(REGISTRATION_LENGTH + MAX_EXTENSION_BODY);
  #partialLength = 0;
  /** The peer's hello, once its first 14 bytes came. */
  hello: Hello | undefined;

  /** Records completed by `chunk`, or the garbage that ends the stream (feed no more after it). */
  push(chunk: Uint8Array): PeerRecord[] | ProtocolError {
    const records: PeerRecord[] = [];
    let at = 0;
    while (at < chunk.length) {
      // Whole records straight from the chunk, the common case.
      if (this.#partialLength === 0) {
        const length = this.#recordLength(chunk, at, chunk.length - at);
        if (length instanceof ProtocolError) return length;
        if (length !== undefined && at + length <= chunk.length) {
          const record = this.#decode(chunk, at, length);
          if (record instanceof ProtocolError) return record;
          if (record !== undefined) records.push(record);
          at += length;
          continue;
        }
      }
      // A record cut by the read: gather it.
      const known = this.#recordLength(this.#partial, 0, this.#partialLength);
      if (known instanceof ProtocolError) return known;
      const wanted = known ?? REGISTRATION_LENGTH;
      const taken = Math.min(wanted - this.#partialLength, chunk.length - at);
      this.#partial.set(chunk.subarray(at, at + taken), this.#partialLength);
      this.#partialLength += taken;
      at += taken;
      const length = this.#recordLength(this.#partial, 0, this.#partialLength);
      if (length instanceof ProtocolError) return length;
      if (length === undefined || this.#partialLength < length) continue;
      this.#partialLength = 0;
      const record = this.#decode(this.#partial, 0, length);
      if (record instanceof ProtocolError) return record;
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  /** Bytes of the record starting at `bytes[offset]`, once its header is there (`available` bytes). */
  #recordLength(bytes: Uint8Array, offset: number, available: number): number | undefined | ProtocolError {
    if (available < REGISTRATION_LENGTH) return undefined;
    if (this.hello === undefined || read16(bytes, offset + REG_TYPE) < FIRST_EXTENSION_TYPE) {
      return REGISTRATION_LENGTH;
    }
    const bodyLength = read16(bytes, offset + REG_CLIENT_PORT);
    if (!this.hello.extended || bodyLength > MAX_EXTENSION_BODY) {
      return new ProtocolError(`unknown registration type ${read16(bytes, offset + REG_TYPE)}`);
    }
    return REGISTRATION_LENGTH + bodyLength;
  }

  /** The record at `bytes[offset]`; `undefined` for the hello, which is kept in `hello`. */
  #decode(bytes: Uint8Array, offset: number, length: number): PeerRecord | undefined | ProtocolError {
    if (this.hello === undefined) {
      if (
        read32(bytes, offset + REG_CLIENT_ADDRESS) !== 0 ||
        read16(bytes, offset + REG_CLIENT_PORT) !== 0
      ) {
        return new ProtocolError("no version hello: not a copy, or TCPCopy older than 1.0");
      }
      const extended = read32(bytes, offset + REG_TARGET_ADDRESS) === EXTENSION_MAGIC;
      this.hello = {
        version: read16(bytes, offset + REG_TYPE),
        extended,
        capabilities: extended ? read16(bytes, offset + REG_TARGET_PORT) : 0,
      };
      return undefined;
    }
    const type = read16(bytes, offset + REG_TYPE);
    if (type >= FIRST_EXTENSION_TYPE) {
      return { type, body: bytes.subarray(offset + REGISTRATION_LENGTH, offset + length) };
    }
    if (type !== RegistrationType.ADD && type !== RegistrationType.DELETE) {
      return new ProtocolError(`unknown registration type ${type}`);
    }
    return {
      type,
      clientAddress: ipv4FromBytes(bytes, offset + REG_CLIENT_ADDRESS),
      clientPort: read16(bytes, offset + REG_CLIENT_PORT),
      targetAddress: ipv4FromBytes(bytes, offset + REG_TARGET_ADDRESS),
      targetPort: read16(bytes, offset + REG_TARGET_PORT),
    };
  }
}

/**
 * How many bytes of the TCP options at `frame[tcpOffset..]` a reply record carries: those the header
 * announces, at most the record's room, and no more than the frame holds.
 */
function recordOptionLength(frame: Uint8Array, tcpOffset: number): number {
  return Math.min(
    Math.max((frame[tcpOffset + TCP_DATA_OFFSET] >> 4) * 4 - TCP_MIN_HEADER_LENGTH, 0),
    MAX_RECORD_TCP_OPTIONS,
    Math.max(frame.length - tcpOffset - TCP_MIN_HEADER_LENGTH, 0),
  );
}

/**
 * Writes the 64-byte reply record of the IPv4 TCP packet at `frame[ipOffset]` into `into[offset]`. The
 * packet must already be checked (whole IPv4 and TCP headers present). IP options are dropped, so the
 * record's header length becomes 20 and its total length shrinks by the options' size: the TCP payload
 * length stays derivable. The TCP data offset is kept, so a reader knows how many option bytes are valid
 * (`min(headerLength - 20, 24)`).
 */
export function encodeReplyRecord(
  frame: Uint8Array,
  ipOffset: number,
  into: Uint8Array,
  offset: number,
): void {
  const ipHeaderLength = (frame[ipOffset] & 0x0f) * 4;
  const tcpOffset = ipOffset + ipHeaderLength;
  const tcpOptionLength = recordOptionLength(frame, tcpOffset);
  into.set(frame.subarray(ipOffset, ipOffset + IPV4_MIN_HEADER_LENGTH), offset);
  into.set(
    frame.subarray(tcpOffset, tcpOffset + TCP_MIN_HEADER_LENGTH + tcpOptionLength),
    offset + RECORD_TCP,
  );
  into.fill(0, offset + RECORD_TCP_OPTIONS + tcpOptionLength, offset + REPLY_RECORD_LENGTH);
  if (ipHeaderLength !== IPV4_MIN_HEADER_LENGTH) {
    into[offset] = (into[offset] & 0xf0) | (IPV4_MIN_HEADER_LENGTH / 4);
    const totalLength = read16(into, offset + IPV4_TOTAL_LENGTH) -
      (ipHeaderLength - IPV4_MIN_HEADER_LENGTH);
    write16(into, offset + IPV4_TOTAL_LENGTH, totalLength);
  }
}

/**
 * Reads a reply record (in place) as the IPv4 and TCP headers the target sent. A TCP header longer than
 * the record holds (timestamps plus SACK blocks pass 24 option bytes) is shortened to what is there: its
 * data offset is lowered and the segment length with it, so the payload length stays right and the
 * fixed fields (seq, ack, flags, window) are never lost. `undefined` for a record that is not IPv4+TCP.
 * The views are new, or `into`'s, pointed at this record (copy reads record after record through one).
 */
export function parseReplyRecord(
  record: Uint8Array,
  into: ReplyHeaders<Ipv4View> = new ReplyHeaders(new Ipv4View(record, 0)),
): ReplyHeaders<Ipv4View> | undefined {
  const ip = into.ip.checkAt(record, 0);
  if (isWireError(ip) || ip.headerLength !== IPV4_MIN_HEADER_LENGTH) return undefined;
  const sentHeaderLength = (record[RECORD_TCP + TCP_DATA_OFFSET] >> 4) * 4;
  const keptHeaderLength = Math.min(sentHeaderLength, TCP_MIN_HEADER_LENGTH + MAX_RECORD_TCP_OPTIONS);
  if (keptHeaderLength !== sentHeaderLength) {
    record[RECORD_TCP + TCP_DATA_OFFSET] = (keptHeaderLength / 4) << 4 |
      (record[RECORD_TCP + TCP_DATA_OFFSET] & 0x0f);
  }
  const segmentLength = ip.payloadLength - (sentHeaderLength - keptHeaderLength);
  const tcp = into.tcp.checkAt(record, RECORD_TCP, segmentLength);
  return isWireError(tcp) ? undefined : into;
}

/** The IP and TCP headers of a reply record, as views `parseReplyRecord(6)` points at it. */
export class ReplyHeaders<Ip extends Ipv4View | Ipv6View> {
  readonly tcp = new TcpView(new Uint8Array(0), 0, 0);
  constructor(readonly ip: Ip) {}
}

/** Tuning of a `ReplyFrameEncoder`. */
export interface ReplyFrameEncoderOptions {
  /** Bytes of each write buffer (default 64 KiB); at least one whole frame. */
  chunkLength?: number;
  /** Most bytes held in buffers not yet written and released (default 4 MiB); records beyond are dropped. */
  maxPendingBytes?: number;
}

/** A write buffer and how much of it is filled. */
interface Chunk {
  readonly buffer: Uint8Array;
  length: number;
}

/**
 * Gathers reply records into frames, packed back to back in reusable write buffers ("chunks"), for one
 * reader that may be slower than the capture: memory is capped, and records past the cap are dropped and
 * counted.
 *
 * @example
 * ```ts
 * encoder.add(record); // per captured reply
 * for (let chunk; (chunk = encoder.take()) !== undefined;) {
 *   await writeAll(connection, chunk);
 *   encoder.release(chunk);
 * }
 * ```
 */
export class ReplyFrameEncoder {
  readonly #chunkLength: number;
  readonly #maxChunks: number;
  /** Filled chunks not yet taken, oldest first; the last one is being filled. */
  readonly #filling: Chunk[] = [];
  readonly #free: Uint8Array[] = [];
  #chunksInUse = 0;
  /** Where the open frame's count sits in the last filling chunk, or -1 when no frame is open. */
  #frameStart = -1;
  #frameRecords = 0;
  /** Where the open REPLY6 extension frame starts in the last filling chunk, or -1. */
  #frame6Start = -1;
  #frame6Records = 0;
  /** Records dropped because the reader fell too far behind. */
  dropped = 0;

  constructor(options: ReplyFrameEncoderOptions = {}) {
    this.#chunkLength = Math.max(options.chunkLength ?? 64 * 1024, MAX_REPLY_FRAME_LENGTH);
    this.#maxChunks = Math.max(
      1,
      Math.floor((options.maxPendingBytes ?? 4 * 1024 * 1024) / this.#chunkLength),
    );
  }

  /** Bytes of buffers handed out or waiting: what the cap limits. */
  get pendingBytes(): number {
    return this.#chunksInUse * this.#chunkLength;
  }

  /** Whether `take` has something to give. */
  get hasPending(): boolean {
    return this.#filling.length > 0;
  }

  /** Adds an extension frame (`encodeExtensionFrame`) after the records added so far; false at the cap. */
  addExtension(frame: Uint8Array): boolean {
    this.#closeFrame();
    const last = this.#room(frame.length);
    if (last === undefined) return false;
    last.buffer.set(frame, last.length);
    last.length += frame.length;
    return true;
  }

  /**
   * Adds an 84-byte IPv6 reply record (see `encodeReplyRecord6`) to a REPLY6 extension frame, only for
   * a copy granted `Capability.IPV6`; false when dropped for the cap.
   */
  add6(record: Uint8Array): boolean {
    let chunk = this.#filling.at(-1);
    if (this.#frame6Start < 0) {
      this.#closeFrame();
      chunk = this.#room(EXTENSION_FRAME_HEADER_LENGTH + MAX_REPLIES6_PER_FRAME * REPLY6_RECORD_LENGTH);
      if (chunk === undefined) {
        this.dropped++;
        return false;
      }
      this.#frame6Start = chunk.length;
      this.#frame6Records = 0;
      chunk.length += EXTENSION_FRAME_HEADER_LENGTH;
    }
    chunk!.buffer.set(record.subarray(0, REPLY6_RECORD_LENGTH), chunk!.length);
    chunk!.length += REPLY6_RECORD_LENGTH;
    if (++this.#frame6Records === MAX_REPLIES6_PER_FRAME) this.#closeFrame();
    return true;
  }

  /** Adds a 64-byte record (see `encodeReplyRecord`); false when dropped for the cap. */
  add(record: Uint8Array): boolean {
    const chunk = this.#openFrame();
    if (chunk === undefined) {
      this.dropped++;
      return false;
    }
    chunk.buffer.set(record.subarray(0, REPLY_RECORD_LENGTH), chunk.length);
    chunk.length += REPLY_RECORD_LENGTH;
    if (++this.#frameRecords === MAX_REPLIES_PER_FRAME) this.#closeFrame();
    return true;
  }

  /**
   * Closes the open frame and hands out the oldest chunk of whole frames, to write then `release`;
   * `undefined` when nothing waits.
   */
  take(): Uint8Array | undefined {
    this.#closeFrame();
    const oldest = this.#filling[0];
    if (oldest === undefined || oldest.length === 0) return undefined;
    this.#filling.shift();
    return oldest.buffer.subarray(0, oldest.length);
  }

  /** Gives back a chunk from `take` once written, for reuse. */
  release(chunk: Uint8Array): void {
    this.#chunksInUse--;
    if (this.#free.length < 2) {
      this.#free.push(new Uint8Array(chunk.buffer, chunk.byteOffset, this.#chunkLength));
    }
  }

  /** The chunk holding the open frame, opening one (and a chunk) if needed; undefined at the cap. */
  #openFrame(): Chunk | undefined {
    if (this.#frameStart >= 0) return this.#filling.at(-1);
    this.#closeFrame();
    const last = this.#room(MAX_REPLY_FRAME_LENGTH);
    if (last === undefined) return undefined;
    this.#frameStart = last.length;
    this.#frameRecords = 0;
    last.length += REPLY_FRAME_HEADER_LENGTH;
    return last;
  }

  /** The last filling chunk if `length` more bytes fit it, else a new one; undefined at the cap. */
  #room(length: number): Chunk | undefined {
    let last = this.#filling.at(-1);
    if (last === undefined || last.length + length > this.#chunkLength) {
      if (this.#chunksInUse >= this.#maxChunks || length > this.#chunkLength) return undefined;
      this.#chunksInUse++;
      last = { buffer: this.#free.pop() ?? new Uint8Array(this.#chunkLength), length: 0 };
      this.#filling.push(last);
    }
    return last;
  }

  /** Writes the head of whichever frame is open (a reply frame's count, or a REPLY6 frame's header). */
  #closeFrame(): void {
    if (this.#frameStart >= 0) {
      write16(this.#filling.at(-1)!.buffer, this.#frameStart, this.#frameRecords);
      this.#frameStart = -1;
    }
    if (this.#frame6Start >= 0) {
      const buffer = this.#filling.at(-1)!.buffer;
      write16(buffer, this.#frame6Start, EXTENSION_MAGIC_16);
      buffer[this.#frame6Start + 2] = ExtensionFrameType.REPLY6;
      write16(buffer, this.#frame6Start + 3, this.#frame6Records * REPLY6_RECORD_LENGTH);
      this.#frame6Start = -1;
    }
  }
}

/** Called with each extension frame's type and body (a view valid only during the call). */
export type ExtensionFrameListener = (type: number, body: Uint8Array) => void;

/**
 * Splits a byte stream from intercept into 64-byte reply records and extension frames, however the reads
 * cut it.
 */
export class ReplyFrameDecoder {
  readonly #record = new Uint8Array(Math.max(REPLY_RECORD_LENGTH, MAX_EXTENSION_BODY));
  /** Bytes of the record, count, extension header or body gathered so far. */
  #partialLength = 0;
  #recordsLeft = 0;
  /** While inside an extension frame: its type, and its body's length (-1 until the header is whole). */
  #extensionType = 0;
  #extensionBody = -1;
  #inExtension = false;

  constructor(readonly onExtension: ExtensionFrameListener = () => {}) {}

  /**
   * Feeds `chunk`, calling `onRecord` for each whole record (a 64-byte view, valid only during the call);
   * returns the garbage that ends the stream, if any (feed no more after it).
   */
  push(chunk: Uint8Array, onRecord: (record: Uint8Array) => void): ProtocolError | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#inExtension) {
        if (
          this.#extensionBody >= 0 && this.#partialLength === 0 && at + this.#extensionBody <= chunk.length
        ) {
          // A body whole in the chunk goes out as a view of it: REPLY6 frames, most of what an IPv6 copy
          // reads, are not copied once more (as whole IPv4 records are not, below).
          this.#inExtension = false;
          this.onExtension(this.#extensionType, chunk.subarray(at, at + this.#extensionBody));
          at += this.#extensionBody;
          continue;
        }
        const wanted = this.#extensionBody < 0 ? EXTENSION_FRAME_HEADER_LENGTH - 2 : this.#extensionBody;
        const taken = Math.min(wanted - this.#partialLength, chunk.length - at);
        this.#record.set(chunk.subarray(at, at + taken), this.#partialLength);
        this.#partialLength += taken;
        at += taken;
        if (this.#partialLength < wanted) break;
        this.#partialLength = 0;
        if (this.#extensionBody < 0) {
          this.#extensionType = this.#record[0];
          this.#extensionBody = read16(this.#record, 1);
          if (this.#extensionBody > MAX_EXTENSION_BODY) {
            return new ProtocolError(`extension frame of ${this.#extensionBody} bytes`);
          }
          if (this.#extensionBody > 0) continue;
        }
        this.#inExtension = false;
        this.onExtension(this.#extensionType, this.#record.subarray(0, this.#extensionBody));
      } else if (this.#recordsLeft === 0) {
        const taken = Math.min(REPLY_FRAME_HEADER_LENGTH - this.#partialLength, chunk.length - at);
        this.#record.set(chunk.subarray(at, at + taken), this.#partialLength);
        this.#partialLength += taken;
        at += taken;
        if (this.#partialLength < REPLY_FRAME_HEADER_LENGTH) break;
        this.#partialLength = 0;
        const count = read16(this.#record, 0);
        if (count === EXTENSION_MAGIC_16) {
          this.#inExtension = true;
          this.#extensionBody = -1;
          continue;
        }
        if (count === 0 || count > MAX_REPLIES_PER_FRAME) {
          return new ProtocolError(`reply frame count ${count} is not 1..${MAX_REPLIES_PER_FRAME}`);
        }
        this.#recordsLeft = count;
      } else if (this.#partialLength === 0 && at + REPLY_RECORD_LENGTH <= chunk.length) {
        onRecord(chunk.subarray(at, at + REPLY_RECORD_LENGTH));
        at += REPLY_RECORD_LENGTH;
        this.#recordsLeft--;
      } else {
        const taken = Math.min(REPLY_RECORD_LENGTH - this.#partialLength, chunk.length - at);
        this.#record.set(chunk.subarray(at, at + taken), this.#partialLength);
        this.#partialLength += taken;
        at += taken;
        if (this.#partialLength < REPLY_RECORD_LENGTH) break;
        this.#partialLength = 0;
        this.#recordsLeft--;
        onRecord(this.#record.subarray(0, REPLY_RECORD_LENGTH));
      }
    }
    return undefined;
  }
}

// ---- IPv6 (Capability.IPV6): registrations as extension records, replies as extension frames ----

/** Extension record types copy → intercept for IPv6 clients, once the intercept granted `Capability.IPV6`. */
export const Ipv6RecordType = {
  /** Route an IPv6 client's replies to this connection (`REGISTRATION6_BODY_LENGTH` bytes of body). */
  ADD6: FIRST_EXTENSION_TYPE + 1,
  /** Stop routing them. */
  DELETE6: FIRST_EXTENSION_TYPE + 2,
} as const;

/** Body bytes of an ADD6 or DELETE6 record: client address 16, client port 2, target address 16, target port 2. */
export const REGISTRATION6_BODY_LENGTH = 36;
/** Bytes of a whole ADD6 or DELETE6 record, its 14-byte head included. */
export const REGISTRATION6_LENGTH = REGISTRATION_LENGTH + REGISTRATION6_BODY_LENGTH;
/**
 * Bytes of one IPv6 reply record: the 40-byte IPv6 header (extension headers dropped, next header TCP),
 * the 20-byte TCP header and up to 24 bytes of TCP options, zero-padded.
 */
export const REPLY6_RECORD_LENGTH = 84;
/** Most IPv6 reply records in one REPLY6 frame (its body stays within `MAX_EXTENSION_BODY`). */
export const MAX_REPLIES6_PER_FRAME = Math.floor(MAX_EXTENSION_BODY / REPLY6_RECORD_LENGTH);

const REG6_CLIENT_ADDRESS = 0;
const REG6_CLIENT_PORT = 16;
const REG6_TARGET_ADDRESS = 18;
const REG6_TARGET_PORT = 34;
const IPV6_HEADER = 40;
const IPV6_PAYLOAD_LENGTH = 4;
const IPV6_NEXT_HEADER = 6;
const IP_PROTOCOL_TCP = 6;

/** An IPv6 registration: like `Registration`, with 16-byte addresses. */
export interface Registration6 {
  type: 1 | 2;
  clientAddress: Uint8Array;
  clientPort: number;
  targetAddress: Uint8Array;
  targetPort: number;
}

/**
 * Writes an ADD6 or DELETE6 extension record at `into[offset]` (`REGISTRATION6_LENGTH` bytes). Only for
 * an intercept that granted `Capability.IPV6`.
 */
export function encodeRegistration6(registration: Registration6, into: Uint8Array, offset: number): number {
  into.fill(0, offset, offset + REGISTRATION_LENGTH);
  write16(into, offset + REG_CLIENT_PORT, REGISTRATION6_BODY_LENGTH);
  write16(
    into,
    offset + REG_TYPE,
    registration.type === RegistrationType.ADD ? Ipv6RecordType.ADD6 : Ipv6RecordType.DELETE6,
  );
  const body = offset + REGISTRATION_LENGTH;
  copyIpv6Address(registration.clientAddress, into, body + REG6_CLIENT_ADDRESS);
  write16(into, body + REG6_CLIENT_PORT, registration.clientPort);
  copyIpv6Address(registration.targetAddress, into, body + REG6_TARGET_ADDRESS);
  write16(into, body + REG6_TARGET_PORT, registration.targetPort);
  return REGISTRATION6_LENGTH;
}

/**
 * The IPv6 registration an ADD6 or DELETE6 extension record carries; `undefined` for another extension
 * type, a `ProtocolError` for a body of the wrong size. Addresses are views into the record's body.
 */
export function decodeRegistration6(record: ExtensionRecord): Registration6 | ProtocolError | undefined {
  if (record.type !== Ipv6RecordType.ADD6 && record.type !== Ipv6RecordType.DELETE6) return undefined;
  const body = record.body;
  if (body.length !== REGISTRATION6_BODY_LENGTH) {
    return new ProtocolError(`IPv6 registration of ${body.length} bytes, not ${REGISTRATION6_BODY_LENGTH}`);
  }
  return {
    type: record.type === Ipv6RecordType.ADD6 ? RegistrationType.ADD : RegistrationType.DELETE,
    clientAddress: body.subarray(REG6_CLIENT_ADDRESS, REG6_CLIENT_ADDRESS + 16),
    clientPort: read16(body, REG6_CLIENT_PORT),
    targetAddress: body.subarray(REG6_TARGET_ADDRESS, REG6_TARGET_ADDRESS + 16),
    targetPort: read16(body, REG6_TARGET_PORT),
  };
}

/**
 * Writes the 84-byte IPv6 reply record of the TCP segment at `frame[tcpOffset]`, carried by the IPv6
 * packet at `frame[ipOffset]`, into `into[offset]`. Extension headers are dropped: the record's next
 * header becomes TCP and its payload length shrinks by their size, so the TCP payload length stays
 * derivable. TCP options are kept up to 24 bytes, with the data offset as sent (see `encodeReplyRecord`).
 */
export function encodeReplyRecord6(
  frame: Uint8Array,
  ipOffset: number,
  tcpOffset: number,
  into: Uint8Array,
  offset: number,
): void {
  const tcpOptionLength = recordOptionLength(frame, tcpOffset);
  into.set(frame.subarray(ipOffset, ipOffset + IPV6_HEADER), offset);
  into.set(
    frame.subarray(tcpOffset, tcpOffset + TCP_MIN_HEADER_LENGTH + tcpOptionLength),
    offset + IPV6_HEADER,
  );
  into.fill(0, offset + IPV6_HEADER + TCP_MIN_HEADER_LENGTH + tcpOptionLength, offset + REPLY6_RECORD_LENGTH);
  const extensionLength = tcpOffset - ipOffset - IPV6_HEADER;
  if (extensionLength !== 0) {
    into[offset + IPV6_NEXT_HEADER] = IP_PROTOCOL_TCP;
    write16(
      into,
      offset + IPV6_PAYLOAD_LENGTH,
      read16(into, offset + IPV6_PAYLOAD_LENGTH) - extensionLength,
    );
  }
}

/**
 * Reads an IPv6 reply record (in place) as the IPv6 and TCP headers the target sent, TCP options cut to
 * what the record holds as `parseReplyRecord` does. `undefined` for a record that is not IPv6+TCP.
 * The views are new, or `into`'s, pointed at this record.
 */
export function parseReplyRecord6(
  record: Uint8Array,
  into: ReplyHeaders<Ipv6View> = new ReplyHeaders(new Ipv6View(record, 0)),
): ReplyHeaders<Ipv6View> | undefined {
  const ip = into.ip.checkAt(record, 0);
  if (isWireError(ip) || ip.nextHeader !== IP_PROTOCOL_TCP) return undefined;
  const dataOffset = IPV6_HEADER + TCP_DATA_OFFSET;
  const sentHeaderLength = (record[dataOffset] >> 4) * 4;
  const keptHeaderLength = Math.min(sentHeaderLength, TCP_MIN_HEADER_LENGTH + MAX_RECORD_TCP_OPTIONS);
  if (keptHeaderLength !== sentHeaderLength) {
    record[dataOffset] = (keptHeaderLength / 4) << 4 | (record[dataOffset] & 0x0f);
  }
  const segmentLength = ip.payloadLength - (sentHeaderLength - keptHeaderLength);
  const held = record.length === REPLY6_RECORD_LENGTH ? record : record.subarray(0, REPLY6_RECORD_LENGTH);
  const tcp = into.tcp.checkAt(held, IPV6_HEADER, segmentLength);
  return isWireError(tcp) ? undefined : into;
}
