/**
 * The client's byte stream of one copied session, as captured: reassembled in order whatever the
 * capture did (loss and retransmission, duplicates, reordering), cut into *requests*.
 *
 * A request boundary is where the client's ack moved forward between two pieces of data: the client
 * had received something from the online server before it sent more, so the target should answer
 * the earlier request before it sees the next one.
 */
import { type Entry, OrderedMap } from "./ordered_map.ts";
import { Queue } from "./queue.ts";
import { seqAfter } from "./seq.ts";

/**
 * Captured bytes from `start`: the first `length` bytes of `buffer`. Small pieces grow in place (the
 * buffer has room to spare), so a client sending one byte per segment holds a few pieces, not one
 * per byte; bytes once written never change, so views handed out stay true.
 */
interface Piece {
  start: number;
  buffer: Uint8Array;
  length: number;
  /** The client's ack number on the packet that carried these bytes; `undefined` when it had none. */
  ack: number | undefined;
  /** What it counts against the stream's limit: its buffer's size and `PIECE_OVERHEAD`. */
  cost: number;
}

/** Why the stream refused bytes: too many bytes held, or too many pieces out of order. */
export type StreamError = "buffer-full" | "too-fragmented";

/**
 * What one piece costs beyond its bytes, as counted against the stream's limit: the piece object, its
 * buffer's header and its place in a queue or tree (V8 spends about this much).
 */
export const PIECE_OVERHEAD = 128;
/** Pieces held out of order before the session is given up: real reordering leaves a handful. */
export const MAX_OUT_OF_ORDER_PIECES = 4096;
/** Segments shorter than this are copied onto the piece before them when they follow it. */
const SMALL_SEGMENT = 512;
/** How large a piece grows by such appending, at most (two small segments). */
const COALESCED_PIECE = 2 * SMALL_SEGMENT;

/** In-order client bytes in offsets (the first data byte is offset 1), with request boundaries. */
export class ClientStream {
  /** Offset just past the last byte received in order. */
  end = 1;
  /** Offset of the client's FIN once it is in order, else `undefined`. */
  finOffset: number | undefined;
  /** Whether the first request waits for the target to speak first (the online server did). */
  firstRequestWaits = false;

  readonly #pieces = new Queue<Piece>();
  /** Pieces past a hole, by start: they never overlap. */
  readonly #outOfOrder = new OrderedMap<Piece>();
  #pendingFin: number | undefined;
  #finAck: number | undefined;
  #lastAck: number | undefined;
  /** Bytes of buffers held plus `PIECE_OVERHEAD` per piece. */
  #held = 0;
  /** In-order pieces visited by `read` (a measure of its work, for tests). */
  #readVisits = 0;
  /** Requests not yet taken by the session: where each starts, and when it was captured. */
  readonly #requests = new Queue<{ start: number; capturedAt: number; ack: number | undefined }>();

  /**
   * @param maxBuffered bytes this stream may hold (in order and out of order, with `PIECE_OVERHEAD` per
   *   piece) before it refuses more
   * @param maxOutOfOrderPieces pieces it may hold past a hole before it refuses more
   */
  constructor(readonly maxBuffered: number, readonly maxOutOfOrderPieces = MAX_OUT_OF_ORDER_PIECES) {}

  /** Memory held for (re)transmission: bytes, and `PIECE_OVERHEAD` per piece. */
  get buffered(): number {
    return this.#held;
  }

  /** Pieces held, in order and out of order. */
  get pieces(): number {
    return this.#pieces.length + this.#outOfOrder.size;
  }

  /** Work done so far, in pieces and tree nodes visited: grows with O(log n) per segment at most. */
  get visits(): number {
    return this.#outOfOrder.visits + this.#readVisits;
  }

  /** Where the oldest request not yet taken starts (the first one at 1), if any. */
  get nextRequestStart(): number | undefined {
    return this.#requests.at(0)?.start;
  }

  /** When the first bytes (or the FIN) of `nextRequestStart`'s request were captured. */
  get nextRequestCapturedAt(): number {
    return this.#requests.at(0)?.capturedAt ?? Infinity;
  }

  /**
   * The client's ack on the packet that began `nextRequestStart`'s request: how much of the online
   * server's answer the client had when it sent it (`undefined` when that packet had no ack).
   */
  get nextRequestAck(): number | undefined {
    return this.#requests.at(0)?.ack;
  }

  /** Hands the next request to the session: its bytes may go to the target now. */
  takeRequest(): void {
    this.#requests.shift();
  }

  /**
   * Sets the ack of the client's handshake ACK: data that acks more than this was sent after the
   * online server spoke, so the first request waits for the target to speak too.
   */
  noteHandshakeAck(ack: number): void {
    if (this.end === 1 && this.#lastAck === undefined) this.#lastAck = ack;
  }

  /**
   * Adds bytes captured at `now` starting at `start` (copied: the capture buffer is reused). Bytes
   * already held are dropped (the first capture of a byte wins); bytes that close a hole go on in order
   * with whatever waited behind it.
   */
  add(start: number, payload: Uint8Array, ack: number | undefined, now: number): StreamError | undefined {
    let from = start;
    let to = start + payload.length;
    if (from < this.end) from = this.end;
    if (this.finOffset !== undefined) to = Math.min(to, this.finOffset);
    if (from >= to) return undefined;
    const bytes = payload.subarray(from - start, to - start);
    if (from > this.end) return this.#addOutOfOrder(from, bytes, ack);
    // What waits out of order and this covers is dropped as the drain reaches it.
    return this.#append(from, bytes, ack, undefined, now) ?? this.#drainOutOfOrder(now);
  }

  /** Marks the client's FIN, captured at `now`, at `offset` (the offset just past its data). */
  addFin(offset: number, ack: number | undefined, now: number): void {
    if (this.finOffset !== undefined) return;
    this.#pendingFin = offset;
    this.#finAck = ack;
    this.#settleFin(now);
  }

  /**
   * Up to `length` bytes from `offset` (which must be held): a view into the captured bytes when one
   * piece holds them all (most segments are one captured packet), else a copy. Never to be written to.
   */
  read(offset: number, length: number): Uint8Array {
    const size = Math.min(length, this.end - offset);
    let i = this.#pieceAt(offset);
    let piece = this.#pieces.at(i);
    if (piece === undefined || size <= 0) return new Uint8Array(0);
    const from = offset - piece.start;
    if (from + size <= piece.length) return piece.buffer.subarray(from, from + size);
    const out = new Uint8Array(size);
    let written = 0;
    for (; piece !== undefined && written < size; piece = this.#pieces.at(++i)) {
      this.#readVisits++;
      const at = offset + written - piece.start;
      const take = Math.min(piece.length - at, size - written);
      out.set(piece.buffer.subarray(at, at + take), written);
      written += take;
    }
    return out;
  }

  /** Frees the bytes before `offset`: the target has them. */
  release(offset: number): void {
    for (let piece = this.#pieces.at(0); piece !== undefined; piece = this.#pieces.at(0)) {
      if (piece.start + piece.length > offset) break;
      this.#held -= piece.cost;
      this.#pieces.shift();
    }
  }

  /** The index in `#pieces` of the piece holding `offset` (binary search: pieces are in order). */
  #pieceAt(offset: number): number {
    let low = 0;
    let high = this.#pieces.length - 1;
    while (low < high) {
      this.#readVisits++;
      const middle = (low + high + 1) >> 1;
      if (this.#pieces.at(middle)!.start <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /** Counts `cost` more against the limit, or says that it does not fit. */
  #charge(cost: number): StreamError | undefined {
    if (this.#held + cost > this.maxBuffered) return "buffer-full";
    this.#held += cost;
    return undefined;
  }

  #addOutOfOrder(from: number, bytes: Uint8Array, ack: number | undefined): StreamError | undefined {
    let start = from;
    let end = from + bytes.length;
    const before = this.#outOfOrder.floor(start)?.value;
    if (before !== undefined) {
      const beforeEnd = before.start + before.length;
      if (beforeEnd >= end) return undefined; // held already
      start = Math.max(start, beforeEnd);
    }
    // Pieces this one covers whole go (a retransmission that took several segments' bytes at once);
    // one it reaches into keeps its bytes, and this one stops where it starts.
    for (let next = this.#outOfOrder.ceiling(start); next !== undefined && next.key < end;) {
      const piece = next.value;
      if (piece.start + piece.length > end) {
        end = piece.start;
        break;
      }
      this.#outOfOrder.delete(piece.start);
      this.#held -= piece.cost;
      next = this.#outOfOrder.ceiling(start);
    }
    if (start >= end) return undefined;
    const part = bytes.subarray(start - from, end - from);
    // Appended to the piece before only with the same ack: the ack decides where requests start.
    if (before !== undefined && before.ack === ack && this.#appendsTo(before, start, part)) {
      return this.#grow(before, part);
    }
    if (this.#outOfOrder.size >= this.maxOutOfOrderPieces) return "too-fragmented";
    const cost = part.length + PIECE_OVERHEAD;
    const error = this.#charge(cost);
    if (error !== undefined) return error;
    this.#outOfOrder.set(start, { start, buffer: part.slice(), length: part.length, ack, cost });
    return undefined;
  }

  /**
   * Whether `bytes` from `start` may be copied onto the end of `piece`: adjacent, and both small (a
   * full-size piece is never copied into a larger buffer for a few bytes more).
   */
  #appendsTo(piece: Piece, start: number, bytes: Uint8Array): boolean {
    return piece.start + piece.length === start && bytes.length < SMALL_SEGMENT &&
      piece.length < SMALL_SEGMENT;
  }

  /** Copies `bytes` onto the end of `piece`, doubling its buffer when it has no room left. */
  #grow(piece: Piece, bytes: Uint8Array): StreamError | undefined {
    const needed = piece.length + bytes.length;
    if (needed > piece.buffer.length) {
      const capacity = Math.min(COALESCED_PIECE, Math.max(needed, 2 * piece.buffer.length, 64));
      const error = this.#charge(capacity - piece.buffer.length);
      if (error !== undefined) return error;
      piece.cost += capacity - piece.buffer.length;
      const buffer = new Uint8Array(capacity);
      buffer.set(piece.buffer.subarray(0, piece.length));
      piece.buffer = buffer;
    }
    piece.buffer.set(bytes, piece.length);
    piece.length = needed;
    return undefined;
  }

  /**
   * Puts bytes starting at `end` in order: copied onto the last piece when both are small, else as a
   * piece of their own (`owned`, when they come from the out-of-order tree, else a copy).
   */
  #append(
    start: number,
    bytes: Uint8Array,
    ack: number | undefined,
    owned: Piece | undefined,
    now: number,
  ): StreamError | undefined {
    const last = this.#pieces.at(this.#pieces.length - 1);
    if (last !== undefined && this.#appendsTo(last, start, bytes)) {
      const error = this.#grow(last, bytes);
      if (error !== undefined) return error;
      if (owned !== undefined) this.#held -= owned.cost;
    } else if (owned !== undefined) {
      this.#pieces.push({ start, buffer: bytes, length: bytes.length, ack, cost: owned.cost });
    } else {
      const cost = bytes.length + PIECE_OVERHEAD;
      const error = this.#charge(cost);
      if (error !== undefined) return error;
      this.#pieces.push({ start, buffer: bytes.slice(), length: bytes.length, ack, cost });
    }
    let startsRequest = start === 1;
    if (ack !== undefined) {
      if (this.#lastAck !== undefined && seqAfter(ack, this.#lastAck)) {
        if (start === 1) this.firstRequestWaits = true;
        else startsRequest = true;
      }
      this.#lastAck = ack;
    }
    if (startsRequest) this.#queueRequest(start, now, ack);
    this.end = start + bytes.length;
    return undefined;
  }

  #queueRequest(start: number, now: number, ack: number | undefined): void {
    this.#requests.push({ start, capturedAt: now, ack });
  }

  /** Moves what the hole's filling made in order from the tree to the in-order pieces. */
  #drainOutOfOrder(now: number): StreamError | undefined {
    for (let first: Entry<Piece> | undefined; (first = this.#outOfOrder.first()) !== undefined;) {
      const piece = first.value;
      if (piece.start > this.end) break;
      this.#outOfOrder.delete(piece.start);
      const skip = this.end - piece.start;
      if (skip >= piece.length) {
        this.#held -= piece.cost;
        continue;
      }
      const error = this.#append(this.end, piece.buffer.subarray(skip, piece.length), piece.ack, piece, now);
      if (error !== undefined) return error;
    }
    this.#settleFin(now);
    return undefined;
  }

  /** A FIN after the client heard from the online server goes as a request of its own. */
  #settleFin(now: number): void {
    if (this.#pendingFin === undefined || this.#pendingFin !== this.end) return;
    const ackMoved = this.#finAck !== undefined && this.#lastAck !== undefined &&
      seqAfter(this.#finAck, this.#lastAck);
    if (this.end === 1) {
      if (ackMoved) this.firstRequestWaits = true;
      this.#queueRequest(1, now, this.#finAck);
    } else if (ackMoved) {
      this.#queueRequest(this.end, now, this.#finAck);
    }
    this.finOffset = this.end;
    this.#pendingFin = undefined;
  }
}
