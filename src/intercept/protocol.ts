/**
 * The copy ↔ intercept wire protocol, compatible with TCPCopy 1.3's combined mode (TCP port 36524).
 *
 * copy → intercept: 14-byte registrations, one per client address and port the target will answer.
 * intercept → copy: frames of a 2-byte big-endian count n (1..16) and n 64-byte reply records, each the
 * 20-byte IPv4 header, the 20-byte TCP header and up to 24 bytes of TCP options, zero-padded.
 *
 * Both sides import this module; decoders are streaming (a record may arrive split over reads) and
 * report garbage as a `ProtocolError` value.
 */
import {
  IPV4_MIN_HEADER_LENGTH,
  type Ipv4Address,
  ipv4FromBytes,
  Ipv4View,
  isWireError,
  TCP_MIN_HEADER_LENGTH,
  TcpView,
} from "../wire/mod.ts";

/** The TCP port intercept listens on unless told otherwise (TCPCopy's). */
export const DEFAULT_INTERCEPT_PORT = 36524;

/** Bytes of one registration record. */
export const REGISTRATION_LENGTH = 14;
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
  writeUint32(into, offset + REG_CLIENT_ADDRESS, registration.clientAddress);
  writeUint16(into, offset + REG_CLIENT_PORT, registration.clientPort);
  writeUint16(into, offset + REG_TYPE, registration.type);
  writeUint32(into, offset + REG_TARGET_ADDRESS, registration.targetAddress);
  writeUint16(into, offset + REG_TARGET_PORT, registration.targetPort);
}

/** Splits a byte stream from copy into registrations, however the reads cut it. */
export class RegistrationDecoder {
  readonly #partial = new Uint8Array(REGISTRATION_LENGTH);
  #partialLength = 0;

  /** Registrations completed by `chunk`, or the garbage that ends the stream (feed no more after it). */
  push(chunk: Uint8Array): Registration[] | ProtocolError {
    const registrations: Registration[] = [];
    let at = 0;
    if (this.#partialLength > 0) {
      const taken = Math.min(REGISTRATION_LENGTH - this.#partialLength, chunk.length);
      this.#partial.set(chunk.subarray(0, taken), this.#partialLength);
      this.#partialLength += taken;
      at = taken;
      if (this.#partialLength < REGISTRATION_LENGTH) return registrations;
      this.#partialLength = 0;
      const registration = decodeRegistration(this.#partial, 0);
      if (registration instanceof ProtocolError) return registration;
      registrations.push(registration);
    }
    for (; at + REGISTRATION_LENGTH <= chunk.length; at += REGISTRATION_LENGTH) {
      const registration = decodeRegistration(chunk, at);
      if (registration instanceof ProtocolError) return registration;
      registrations.push(registration);
    }
    this.#partial.set(chunk.subarray(at));
    this.#partialLength = chunk.length - at;
    return registrations;
  }
}

function decodeRegistration(bytes: Uint8Array, offset: number): Registration | ProtocolError {
  const type = readUint16(bytes, offset + REG_TYPE);
  if (type !== RegistrationType.ADD && type !== RegistrationType.DELETE) {
    return new ProtocolError(`unknown registration type ${type}`);
  }
  return {
    type,
    clientAddress: ipv4FromBytes(bytes, offset + REG_CLIENT_ADDRESS),
    clientPort: readUint16(bytes, offset + REG_CLIENT_PORT),
    targetAddress: ipv4FromBytes(bytes, offset + REG_TARGET_ADDRESS),
    targetPort: readUint16(bytes, offset + REG_TARGET_PORT),
  };
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
  const tcpOptionLength = Math.min(
    Math.max((frame[tcpOffset + TCP_DATA_OFFSET] >> 4) * 4 - TCP_MIN_HEADER_LENGTH, 0),
    MAX_RECORD_TCP_OPTIONS,
    Math.max(frame.length - tcpOffset - TCP_MIN_HEADER_LENGTH, 0),
  );
  into.set(frame.subarray(ipOffset, ipOffset + IPV4_MIN_HEADER_LENGTH), offset);
  into.set(
    frame.subarray(tcpOffset, tcpOffset + TCP_MIN_HEADER_LENGTH + tcpOptionLength),
    offset + RECORD_TCP,
  );
  into.fill(0, offset + RECORD_TCP_OPTIONS + tcpOptionLength, offset + REPLY_RECORD_LENGTH);
  if (ipHeaderLength !== IPV4_MIN_HEADER_LENGTH) {
    into[offset] = (into[offset] & 0xf0) | (IPV4_MIN_HEADER_LENGTH / 4);
    const totalLength = readUint16(into, offset + IPV4_TOTAL_LENGTH) -
      (ipHeaderLength - IPV4_MIN_HEADER_LENGTH);
    writeUint16(into, offset + IPV4_TOTAL_LENGTH, totalLength);
  }
}

/**
 * Reads a reply record (in place) as the IPv4 and TCP headers the target sent. A TCP header longer than
 * the record holds (timestamps plus SACK blocks pass 24 option bytes) is shortened to what is there: its
 * data offset is lowered and the segment length with it, so the payload length stays right and the
 * fixed fields (seq, ack, flags, window) are never lost. `undefined` for a record that is not IPv4+TCP.
 */
export function parseReplyRecord(record: Uint8Array): { ip: Ipv4View; tcp: TcpView } | undefined {
  const ip = Ipv4View.check(record, 0);
  if (isWireError(ip) || ip.headerLength !== IPV4_MIN_HEADER_LENGTH) return undefined;
  const sentHeaderLength = (record[RECORD_TCP + TCP_DATA_OFFSET] >> 4) * 4;
  const keptHeaderLength = Math.min(sentHeaderLength, TCP_MIN_HEADER_LENGTH + MAX_RECORD_TCP_OPTIONS);
  if (keptHeaderLength !== sentHeaderLength) {
    record[RECORD_TCP + TCP_DATA_OFFSET] = (keptHeaderLength / 4) << 4 |
      (record[RECORD_TCP + TCP_DATA_OFFSET] & 0x0f);
  }
  const segmentLength = ip.payloadLength - (sentHeaderLength - keptHeaderLength);
  const tcp = TcpView.check(record, RECORD_TCP, segmentLength);
  return isWireError(tcp) ? undefined : { ip, tcp };
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
    let last = this.#filling.at(-1);
    if (this.#frameStart >= 0) return last;
    if (last === undefined || last.length + MAX_REPLY_FRAME_LENGTH > this.#chunkLength) {
      if (this.#chunksInUse >= this.#maxChunks) return undefined;
      this.#chunksInUse++;
      last = { buffer: this.#free.pop() ?? new Uint8Array(this.#chunkLength), length: 0 };
      this.#filling.push(last);
    }
    this.#frameStart = last.length;
    this.#frameRecords = 0;
    last.length += REPLY_FRAME_HEADER_LENGTH;
    return last;
  }

  #closeFrame(): void {
    if (this.#frameStart < 0) return;
    writeUint16(this.#filling.at(-1)!.buffer, this.#frameStart, this.#frameRecords);
    this.#frameStart = -1;
  }
}

/** Splits a byte stream from intercept into 64-byte reply records, however the reads cut it. */
export class ReplyFrameDecoder {
  readonly #record = new Uint8Array(REPLY_RECORD_LENGTH);
  /** Bytes of the record (or, when `#recordsLeft` is 0, of the count) gathered so far. */
  #partialLength = 0;
  #recordsLeft = 0;

  /**
   * Feeds `chunk`, calling `onRecord` for each whole record (a 64-byte view, valid only during the call);
   * returns the garbage that ends the stream, if any (feed no more after it).
   */
  push(chunk: Uint8Array, onRecord: (record: Uint8Array) => void): ProtocolError | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#recordsLeft === 0) {
        const taken = Math.min(REPLY_FRAME_HEADER_LENGTH - this.#partialLength, chunk.length - at);
        this.#record.set(chunk.subarray(at, at + taken), this.#partialLength);
        this.#partialLength += taken;
        at += taken;
        if (this.#partialLength < REPLY_FRAME_HEADER_LENGTH) break;
        this.#partialLength = 0;
        const count = readUint16(this.#record, 0);
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
        onRecord(this.#record);
      }
    }
    return undefined;
  }
}

function readUint16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function writeUint16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 8;
  bytes[offset + 1] = value & 0xff;
}

function writeUint32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}
