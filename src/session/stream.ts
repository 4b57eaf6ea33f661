/**
 * The client's byte stream of one copied session, as captured: reassembled in order whatever the
 * capture did (loss and retransmission, duplicates, reordering), cut into *requests*.
 *
 * A request boundary is where the client's ack moved forward between two pieces of data: the client
 * had received something from the online server before it sent more, so the target should answer
 * the earlier request before it sees the next one.
 */
import { Queue } from "./queue.ts";
import { seqAfter } from "./seq.ts";

interface Piece {
  start: number;
  bytes: Uint8Array;
  /** The client's ack number on the packet that carried these bytes; `undefined` when it had none. */
  ack: number | undefined;
}

/** Why the stream refused bytes. */
export type StreamError = "buffer-full";

/** In-order client bytes in offsets (the first data byte is offset 1), with request boundaries. */
export class ClientStream {
  /** Offset just past the last byte received in order. */
  end = 1;
  /** Offset of the client's FIN once it is in order, else `undefined`. */
  finOffset: number | undefined;
  /** Whether the first request waits for the target to speak first (the online server did). */
  firstRequestWaits = false;

  readonly #pieces = new Queue<Piece>();
  #outOfOrder: Piece[] = [];
  #pendingFin: number | undefined;
  #finAck: number | undefined;
  #lastAck: number | undefined;
  #buffered = 0;
  /** Requests not yet taken by the session: where each starts, and when it was captured. */
  readonly #requests = new Queue<{ start: number; capturedAt: number; ack: number | undefined }>();

  /**
   * @param maxBuffered bytes this stream may hold (in order and out of order) before it refuses more
   */
  constructor(readonly maxBuffered: number) {}

  /** Bytes held for (re)transmission. */
  get buffered(): number {
    return this.#buffered;
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

  /** Adds bytes captured at `now` starting at `start` (copied: the capture buffer is reused). */
  add(start: number, payload: Uint8Array, ack: number | undefined, now: number): StreamError | undefined {
    let from = start;
    let bytes = payload;
    if (from < this.end) {
      const skip = this.end - from;
      if (skip >= bytes.length) return undefined;
      bytes = bytes.subarray(skip);
      from = this.end;
    }
    if (this.finOffset !== undefined && from >= this.finOffset) return undefined;
    if (this.#buffered + bytes.length > this.maxBuffered) return "buffer-full";
    const piece = { start: from, bytes: bytes.slice(), ack };
    this.#buffered += piece.bytes.length;
    if (from === this.end) {
      this.#append(piece, now);
      this.#drainOutOfOrder(now);
    } else {
      this.#outOfOrder.push(piece);
    }
    return undefined;
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
    let i = 0;
    let piece = this.#pieces.at(0);
    while (piece !== undefined && piece.start + piece.bytes.length <= offset) piece = this.#pieces.at(++i);
    if (piece === undefined) return new Uint8Array(0);
    const from = offset - piece.start;
    if (from + size <= piece.bytes.length) return piece.bytes.subarray(from, from + size);
    const out = new Uint8Array(size);
    let written = 0;
    for (; piece !== undefined && written < size; piece = this.#pieces.at(++i)) {
      const at = offset + written - piece.start;
      const take = Math.min(piece.bytes.length - at, size - written);
      out.set(piece.bytes.subarray(at, at + take), written);
      written += take;
    }
    return out;
  }

  /** Frees the bytes before `offset`: the target has them. */
  release(offset: number): void {
    for (let piece = this.#pieces.at(0); piece !== undefined; piece = this.#pieces.at(0)) {
      if (piece.start + piece.bytes.length > offset) break;
      this.#buffered -= piece.bytes.length;
      this.#pieces.shift();
    }
  }

  #append(piece: Piece, now: number): void {
    let startsRequest = piece.start === 1;
    if (piece.ack !== undefined) {
      if (this.#lastAck !== undefined && seqAfter(piece.ack, this.#lastAck)) {
        if (piece.start === 1) this.firstRequestWaits = true;
        else startsRequest = true;
      }
      this.#lastAck = piece.ack;
    }
    if (startsRequest) this.#queueRequest(piece.start, now, piece.ack);
    this.#pieces.push(piece);
    this.end = piece.start + piece.bytes.length;
  }

  #queueRequest(start: number, now: number, ack: number | undefined): void {
    this.#requests.push({ start, capturedAt: now, ack });
  }

  #drainOutOfOrder(now: number): void {
    let progressed = true;
    while (progressed && this.#outOfOrder.length > 0) {
      progressed = false;
      for (let i = 0; i < this.#outOfOrder.length; i++) {
        const piece = this.#outOfOrder[i];
        const pieceEnd = piece.start + piece.bytes.length;
        if (piece.start > this.end) continue;
        this.#outOfOrder.splice(i, 1);
        i--;
        this.#buffered -= piece.bytes.length;
        if (pieceEnd <= this.end) continue;
        const trimmed = piece.bytes.subarray(this.end - piece.start);
        this.#buffered += trimmed.length;
        this.#append({ start: this.end, bytes: trimmed, ack: piece.ack }, now);
        progressed = true;
      }
    }
    this.#settleFin(now);
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
