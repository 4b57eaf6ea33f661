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

/** A request not yet taken: where it starts, when it was captured, the client's ack on its first packet. */
interface RequestRecord {
  start: number;
  capturedAt: number;
  ack: number | undefined;
}

/** Buffers below this many bytes come from the smallest size class. */
const SMALLEST_POOLED = 64;
/** Size classes (powers of two from `SMALLEST_POOLED`): up to 64 KiB, a GRO-merged capture's largest. */
const SIZE_CLASSES = 11;
/** Piece objects and request records kept for reuse, at most, each. */
const KEPT_RECORDS = 4096;

/**
 * What streams hold, recycled from one stream to the next: piece objects, the buffers their bytes are
 * copied into (by power-of-two size, up to `maxIdleBytes` of them kept idle) and request records. One
 * pool serves every session of a `copy` process, so in steady state a request captured costs no new
 * object. Only for streams whose reader is done with what `read` returned before the bytes are released
 * (the packet engine's sink builds its packet at once): a recycled buffer is written again.
 */
export class StreamPool {
  readonly #buffers: Uint8Array[][] = Array.from({ length: SIZE_CLASSES }, () => []);
  readonly #pieces: Piece[] = [];
  readonly #requests: RequestRecord[] = [];
  #idleBytes = 0;

  /** @param maxIdleBytes bytes of buffers kept for reuse; 0 keeps nothing (buffers are then exact sizes) */
  constructor(readonly maxIdleBytes: number) {}

  /** Bytes of buffers kept idle for reuse now. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** A buffer of at least `size` bytes, whose contents are garbage. */
  buffer(size: number): Uint8Array {
    if (this.maxIdleBytes === 0) return new Uint8Array(size);
    const sizeClass = sizeClassOf(size);
    if (sizeClass >= SIZE_CLASSES) return new Uint8Array(size);
    const kept = this.#buffers[sizeClass].pop();
    if (kept === undefined) return new Uint8Array(SMALLEST_POOLED << sizeClass);
    this.#idleBytes -= kept.length;
    return kept;
  }

  /** Takes back a buffer `buffer` made, if there is room for it. */
  recycleBuffer(buffer: Uint8Array): void {
    const length = buffer.length;
    const sizeClass = sizeClassOf(length);
    // Only a whole buffer of a class's size: not a view into another, nor an exact-size one.
    if (
      sizeClass >= SIZE_CLASSES || SMALLEST_POOLED << sizeClass !== length || buffer.byteOffset !== 0 ||
      buffer.buffer.byteLength !== length || this.#idleBytes + length > this.maxIdleBytes
    ) return;
    this.#buffers[sizeClass].push(buffer);
    this.#idleBytes += length;
  }

  piece(start: number, buffer: Uint8Array, length: number, ack: number | undefined, cost: number): Piece {
    const piece = this.#pieces.pop();
    if (piece === undefined) return { start, buffer, length, ack, cost };
    piece.start = start;
    piece.buffer = buffer;
    piece.length = length;
    piece.ack = ack;
    piece.cost = cost;
    return piece;
  }

  /** Takes back a piece and its buffer: the stream is done with both. */
  recycle(piece: Piece): void {
    this.recycleBuffer(piece.buffer);
    piece.buffer = EMPTY;
    if (this.maxIdleBytes > 0 && this.#pieces.length < KEPT_RECORDS) this.#pieces.push(piece);
  }

  request(start: number, capturedAt: number, ack: number | undefined): RequestRecord {
    const request = this.#requests.pop();
    if (request === undefined) return { start, capturedAt, ack };
    request.start = start;
    request.capturedAt = capturedAt;
    request.ack = ack;
    return request;
  }

  recycleRequest(request: RequestRecord): void {
    if (this.maxIdleBytes > 0 && this.#requests.length < KEPT_RECORDS) this.#requests.push(request);
  }
}

const EMPTY = new Uint8Array(0);

/** The most `ClientStream.readShared` returns in `readBuffer`: a whole segment. */
const SHARED_READ_BYTES = 65535;
/**
 * Where `ClientStream.readShared` copies what it returns: room for a whole segment plus the whole buffer of the
 * last piece copied into it, which `set` takes in full (a piece holds at most a captured segment's bytes).
 */
const readBuffer = new Uint8Array(2 * 65536);
/** Read lengths up to this have their view of `readBuffer` made once (segments up to a large MSS). */
const KEPT_READ_VIEWS = 9000;
const readViews: (Uint8Array | undefined)[] = new Array(KEPT_READ_VIEWS + 1).fill(undefined);

/** The first `size` bytes of `readBuffer`. */
function readView(size: number): Uint8Array {
  if (size > KEPT_READ_VIEWS) return readBuffer.subarray(0, size);
  return readViews[size] ??= readBuffer.subarray(0, size);
}

/**
 * Copies `buffer[from..from + size]` to `readBuffer[to..]` and returns the first `to + size` bytes of
 * `readBuffer`. `set` copies the whole buffer (no view of the part made), and `copyWithin` then moves the
 * part into place: both are copies within existing memory.
 */
function readCopy(buffer: Uint8Array, from: number, size: number, to: number): Uint8Array {
  if (to + buffer.length <= readBuffer.length) {
    readBuffer.set(buffer, to);
    if (from > 0) readBuffer.copyWithin(to, to + from, to + from + size);
  } else {
    readBuffer.set(buffer.subarray(from, from + size), to); // a piece larger than any captured segment
  }
  return readView(to + size);
}

/** The size class holding `size` bytes: 0 for up to `SMALLEST_POOLED`, one more per doubling. */
function sizeClassOf(size: number): number {
  return size <= SMALLEST_POOLED ? 0 : 32 - Math.clz32(size - 1) - 6;
}

/** What a stream without a pool of its own uses: it keeps nothing, so every piece is new, as it was. */
const UNPOOLED = new StreamPool(0);

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
  // Set again by `restart`; numbers from the start, so that V8 keeps them in place (see Session).
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
  #maxBuffered = 0;
  /** Requests not yet taken by the session: where each starts, and when it was captured. */
  readonly #requests = new Queue<RequestRecord>();

  /**
   * @param maxBuffered bytes this stream may hold (in order and out of order, with `PIECE_OVERHEAD` per
   *   piece) before it refuses more
   * @param maxOutOfOrderPieces pieces it may hold past a hole before it refuses more
   * @param pool where its pieces come from and go back to; by default none is kept (see `StreamPool`
   *   for what sharing one asks of the reader)
   */
  constructor(
    maxBuffered: number,
    readonly maxOutOfOrderPieces = MAX_OUT_OF_ORDER_PIECES,
    readonly pool: StreamPool = UNPOOLED,
  ) {
    this.restart(maxBuffered);
  }

  /** Bytes this stream may hold before it refuses more. */
  get maxBuffered(): number {
    return this.#maxBuffered;
  }

  /**
   * Makes it a new, empty stream of another session's, which may hold `maxBuffered` bytes: what it held
   * goes back to the pool, its queues and tree stay for the new one.
   */
  restart(maxBuffered: number): void {
    this.dispose();
    this.#maxBuffered = maxBuffered;
    this.end = 1;
    this.finOffset = undefined;
    this.firstRequestWaits = false;
    this.#pendingFin = undefined;
    this.#finAck = undefined;
    this.#lastAck = undefined;
  }

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

  /** When the first bytes (or the FIN) of `nextRequestStart`'s request were captured, in whole ms rounded up. */
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
    const request = this.#requests.shift();
    if (request !== undefined) this.pool.recycleRequest(request);
  }

  /**
   * Sets the ack of the client's handshake ACK: data that acks more than this was sent after the
   * online server spoke, so the first request waits for the target to speak too.
   */
  noteHandshakeAck(ack: number): void {
    if (this.end === 1 && this.#lastAck === undefined) this.#lastAck = ack;
  }

  /**
   * Adds bytes captured at `now` starting at `start`: `payload`, or `payloadLength` bytes of it from
   * `payloadStart` (a captured frame's, with no view made of them). They are copied: the capture buffer is
   * reused. Bytes already held are dropped (the first capture of a byte wins); bytes that close a hole go
   * on in order with whatever waited behind it.
   */
  add(
    start: number,
    payload: Uint8Array,
    ack: number | undefined,
    now: number,
    payloadStart = 0,
    payloadLength = payload.length - payloadStart,
  ): StreamError | undefined {
    let from = start;
    let to = start + payloadLength;
    if (from < this.end) from = this.end;
    if (this.finOffset !== undefined) to = Math.min(to, this.finOffset);
    if (from >= to) return undefined;
    const at = payloadStart + from - start;
    if (from > this.end) return this.#addOutOfOrder(from, payload.subarray(at, at + to - from), ack);
    // What waits out of order and this covers is dropped as the drain reaches it.
    return this.#append(from, payload, at, to - from, ack, undefined, now) ?? this.#drainOutOfOrder(now);
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
   * piece holds them all (most segments are one captured packet), else a copy. Never to be written to;
   * the caller may keep them (`copy --connect` queues them for its socket) while the stream holds them,
   * or for good from a stream without a pool. See `readShared` for bytes used at once.
   */
  read(offset: number, length: number): Uint8Array {
    const size = Math.min(length, this.end - offset);
    const i = this.#pieceAt(offset);
    const piece = this.#pieces.at(i);
    if (piece === undefined || size <= 0) return new Uint8Array(0);
    const from = offset - piece.start;
    if (from + size <= piece.length) return piece.buffer.subarray(from, from + size);
    const out = new Uint8Array(size);
    this.#gather(i, offset, size, out);
    return out;
  }

  /**
   * `read`'s bytes, copied into one buffer all streams share: the caller's only until the next
   * `readShared` of any stream, for a reader done with them at once (the packet engine's sink builds its
   * packet in the call). `read` makes a view per call, a new object per segment sent; a view of the
   * shared buffer of each length up to `KEPT_READ_VIEWS` is made once. More than `SHARED_READ_BYTES`:
   * `read`'s own copy.
   */
  readShared(offset: number, length: number): Uint8Array {
    const size = Math.min(length, this.end - offset);
    if (size > SHARED_READ_BYTES) return this.read(offset, length);
    const i = this.#pieceAt(offset);
    const piece = this.#pieces.at(i);
    if (piece === undefined || size <= 0) return EMPTY;
    const from = offset - piece.start;
    if (from + size <= piece.length) return readCopy(piece.buffer, from, size, 0);
    this.#gather(i, offset, size, readBuffer);
    return readView(size);
  }

  /**
   * Copies the `size` bytes from `offset`, which span pieces from the `i`th on, into `into`: `readBuffer`
   * (through `readCopy`, which makes no view) or an array of `read`'s own.
   */
  #gather(i: number, offset: number, size: number, into: Uint8Array): void {
    let written = 0;
    for (
      let piece = this.#pieces.at(i);
      piece !== undefined && written < size;
      piece = this.#pieces.at(++i)
    ) {
      this.#readVisits++;
      const at = offset + written - piece.start;
      const take = Math.min(piece.length - at, size - written);
      if (into === readBuffer) readCopy(piece.buffer, at, take, written);
      else into.set(piece.buffer.subarray(at, at + take), written);
      written += take;
    }
  }

  /** Frees the bytes before `offset`: the target has them. */
  release(offset: number): void {
    for (let piece = this.#pieces.at(0); piece !== undefined; piece = this.#pieces.at(0)) {
      if (piece.start + piece.length > offset) break;
      this.#held -= piece.cost;
      this.#pieces.shift();
      this.pool.recycle(piece);
    }
  }

  /** Gives everything held back to the pool: the stream is over and is read no more. */
  dispose(): void {
    for (let piece = this.#pieces.shift(); piece !== undefined; piece = this.#pieces.shift()) {
      this.pool.recycle(piece);
    }
    for (let first = this.#outOfOrder.first(); first !== undefined; first = this.#outOfOrder.first()) {
      this.#outOfOrder.delete(first.key);
      this.pool.recycle(first.value);
    }
    for (let request = this.#requests.shift(); request !== undefined; request = this.#requests.shift()) {
      this.pool.recycleRequest(request);
    }
    this.#held = 0;
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
    if (this.#held + cost > this.#maxBuffered) return "buffer-full";
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
      this.pool.recycle(piece);
      next = this.#outOfOrder.ceiling(start);
    }
    if (start >= end) return undefined;
    const part = bytes.subarray(start - from, end - from);
    // Appended to the piece before only with the same ack: the ack decides where requests start.
    if (before !== undefined && before.ack === ack && this.#appendsTo(before, start, part.length)) {
      return this.#grow(before, part, 0, part.length);
    }
    if (this.#outOfOrder.size >= this.maxOutOfOrderPieces) return "too-fragmented";
    const cost = part.length + PIECE_OVERHEAD;
    const error = this.#charge(cost);
    if (error !== undefined) return error;
    this.#outOfOrder.set(start, this.#newPiece(start, part, 0, part.length, ack, cost));
    return undefined;
  }

  /** A piece holding a copy of `length` bytes of `source` from `from`. */
  #newPiece(
    start: number,
    source: Uint8Array,
    from: number,
    length: number,
    ack: number | undefined,
    cost: number,
  ): Piece {
    const buffer = this.pool.buffer(length);
    copyBytes(source, from, length, buffer, 0);
    return this.pool.piece(start, buffer, length, ack, cost);
  }

  /**
   * Whether `length` bytes from `start` may be copied onto the end of `piece`: adjacent, and both small (a
   * full-size piece is never copied into a larger buffer for a few bytes more).
   */
  #appendsTo(piece: Piece, start: number, length: number): boolean {
    return piece.start + piece.length === start && length < SMALL_SEGMENT && piece.length < SMALL_SEGMENT;
  }

  /**
   * Copies `length` bytes of `source` from `from` onto the end of `piece`, doubling what it is charged
   * for when that is full, and moving it to a larger buffer when its own has no room left.
   */
  #grow(piece: Piece, source: Uint8Array, from: number, length: number): StreamError | undefined {
    const needed = piece.length + length;
    const charged = piece.cost - PIECE_OVERHEAD;
    if (needed > charged) {
      const capacity = Math.min(COALESCED_PIECE, Math.max(needed, 2 * charged, 64));
      const error = this.#charge(capacity - charged);
      if (error !== undefined) return error;
      piece.cost += capacity - charged;
    }
    if (needed > piece.buffer.length) {
      const buffer = this.pool.buffer(Math.max(needed, piece.cost - PIECE_OVERHEAD));
      copyBytes(piece.buffer, 0, piece.length, buffer, 0);
      this.pool.recycleBuffer(piece.buffer);
      piece.buffer = buffer;
    }
    copyBytes(source, from, length, piece.buffer, piece.length);
    piece.length = needed;
    return undefined;
  }

  /**
   * Puts `length` bytes of `source` from `from`, starting at `end`, in order: copied onto the last piece
   * when both are small, else as a piece of their own (`owned`, when they come from the out-of-order
   * tree, where `source` is its buffer, else a copy).
   */
  #append(
    start: number,
    source: Uint8Array,
    from: number,
    length: number,
    ack: number | undefined,
    owned: Piece | undefined,
    now: number,
  ): StreamError | undefined {
    const last = this.#pieces.at(this.#pieces.length - 1);
    if (last !== undefined && this.#appendsTo(last, start, length)) {
      const error = this.#grow(last, source, from, length);
      if (error !== undefined) return error;
      if (owned !== undefined) {
        this.#held -= owned.cost;
        this.pool.recycle(owned);
      }
    } else if (owned !== undefined) {
      // Its bytes move to the front of its own buffer (no one has read them yet): a piece starts at 0.
      if (from > 0) owned.buffer.copyWithin(0, from, from + length);
      owned.start = start;
      owned.length = length;
      this.#pieces.push(owned);
    } else {
      const cost = length + PIECE_OVERHEAD;
      const error = this.#charge(cost);
      if (error !== undefined) return error;
      this.#pieces.push(this.#newPiece(start, source, from, length, ack, cost));
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
    this.end = start + length;
    return undefined;
  }

  #queueRequest(start: number, now: number, ack: number | undefined): void {
    // In whole milliseconds, rounded up, as the turns' times: a small integer, not a heap number each
    // time `nextRequestCapturedAt` returns it.
    this.#requests.push(this.pool.request(start, Math.ceil(now), ack));
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
        this.pool.recycle(piece);
        continue;
      }
      const error = this.#append(this.end, piece.buffer, skip, piece.length - skip, piece.ack, piece, now);
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

/** Copies `length` bytes of `source` from `from` to `into` at `at`; short runs by hand, so no view is made. */
function copyBytes(source: Uint8Array, from: number, length: number, into: Uint8Array, at: number): void {
  if (length < SMALL_SEGMENT) {
    for (let i = 0; i < length; i++) into[at + i] = source[from + i];
  } else {
    into.set(source.subarray(from, from + length), at);
  }
}
