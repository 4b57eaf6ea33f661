/**
 * The client's byte stream of one copied session, as captured: reassembled in order whatever the
 * capture did (loss and retransmission, duplicates, reordering), cut into *requests*.
 *
 * A request boundary is where the client's ack moved forward between two pieces of data: the client
 * had received something from the online server before it sent more, so the target should answer
 * the earlier request before it sees the next one.
 */
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
  /** Offsets where requests start, ascending; the first is always 1. */
  readonly requestStarts: number[] = [1];
  /** Whether the first request waits for the target to speak first (the online server did). */
  firstRequestWaits = false;

  #pieces: Piece[] = [];
  #head = 0; // index of the first piece still held
  #outOfOrder: Piece[] = [];
  #pendingFin: number | undefined;
  #finAck: number | undefined;
  #lastAck: number | undefined;
  #buffered = 0;

  /**
   * @param maxBuffered bytes this stream may hold (in order and out of order) before it refuses more
   */
  constructor(readonly maxBuffered: number) {}

  /** Bytes held for (re)transmission. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Sets the ack of the client's handshake ACK: data that acks more than this was sent after the
   * online server spoke, so the first request waits for the target to speak too.
   */
  noteHandshakeAck(ack: number): void {
    if (this.end === 1 && this.#lastAck === undefined) this.#lastAck = ack;
  }

  /** Adds captured bytes starting at `start` (copied: the capture buffer is reused). */
  add(start: number, payload: Uint8Array, ack: number | undefined): StreamError | undefined {
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
      this.#append(piece);
      this.#drainOutOfOrder();
    } else {
      this.#outOfOrder.push(piece);
    }
    return undefined;
  }

  /** Marks the client's FIN at `offset` (the offset just past its data). */
  addFin(offset: number, ack: number | undefined): void {
    if (this.finOffset !== undefined) return;
    this.#pendingFin = offset;
    this.#finAck = ack;
    this.#settleFin();
  }

  /** Copies up to `length` bytes from `offset` (which must be held) into a new array. */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(Math.min(length, this.end - offset));
    let written = 0;
    for (let i = this.#head; i < this.#pieces.length && written < out.length; i++) {
      const piece = this.#pieces[i];
      const pieceEnd = piece.start + piece.bytes.length;
      if (pieceEnd <= offset + written) continue;
      const from = offset + written - piece.start;
      const take = Math.min(piece.bytes.length - from, out.length - written);
      out.set(piece.bytes.subarray(from, from + take), written);
      written += take;
    }
    return out;
  }

  /** Frees the bytes before `offset`: the target has them. */
  release(offset: number): void {
    while (this.#head < this.#pieces.length) {
      const piece = this.#pieces[this.#head];
      if (piece.start + piece.bytes.length > offset) break;
      this.#buffered -= piece.bytes.length;
      this.#pieces[this.#head++] = undefined as unknown as Piece;
    }
    if (this.#head > 64 && this.#head * 2 > this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#head = 0;
    }
  }

  #append(piece: Piece): void {
    if (piece.ack !== undefined) {
      if (this.#lastAck !== undefined && seqAfter(piece.ack, this.#lastAck)) {
        if (piece.start === 1) this.firstRequestWaits = true;
        else this.requestStarts.push(piece.start);
      }
      this.#lastAck = piece.ack;
    }
    this.#pieces.push(piece);
    this.end = piece.start + piece.bytes.length;
  }

  #drainOutOfOrder(): void {
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
        this.#append({ start: this.end, bytes: trimmed, ack: piece.ack });
        progressed = true;
      }
    }
    this.#settleFin();
  }

  #settleFin(): void {
    if (this.#pendingFin === undefined || this.#pendingFin !== this.end) return;
    if (this.#finAck !== undefined && this.#lastAck !== undefined && seqAfter(this.#finAck, this.#lastAck)) {
      if (this.end === 1) this.firstRequestWaits = true;
      else this.requestStarts.push(this.end);
    }
    this.finOffset = this.end;
    this.#pendingFin = undefined;
  }
}
