/**
 * One side's answer to a turn, kept within a bound: the first `limit` bytes for parsing and samples, and a
 * running hash and length of all of it, so a large answer costs no more memory than a small one.
 */
import { createHash, type Hash } from "node:crypto";

/** Bytes of an answer kept by default: enough for headers and typical bodies. */
export const DEFAULT_ANSWER_LIMIT = 256 * 1024;

/** The bytes one side sent in one turn, as they arrive. */
export class Answer {
  /** Bytes received in all. */
  length = 0;
  #kept: Uint8Array;
  #keptLength = 0;
  #hash: Hash | undefined = createHash("sha256");
  #digest = "";

  constructor(readonly limit: number = DEFAULT_ANSWER_LIMIT) {
    this.#kept = new Uint8Array(Math.min(limit, 4096));
  }

  /** Adds bytes as they arrive (copied: `chunk` may be reused by the caller). */
  push(chunk: Uint8Array): void {
    if (this.#hash === undefined) throw new Error("answer already finished");
    this.length += chunk.length;
    this.#hash.update(chunk);
    const room = this.limit - this.#keptLength;
    if (room <= 0) return;
    const taken = chunk.subarray(0, room);
    if (this.#keptLength + taken.length > this.#kept.length) {
      const grown = new Uint8Array(
        Math.min(this.limit, Math.max(this.#kept.length * 2, this.#keptLength + taken.length)),
      );
      grown.set(this.#kept.subarray(0, this.#keptLength));
      this.#kept = grown;
    }
    this.#kept.set(taken, this.#keptLength);
    this.#keptLength += taken.length;
  }

  /** Whether every byte is kept (the answer fit the limit). */
  get whole(): boolean {
    return this.length === this.#keptLength;
  }

  /** The kept bytes: all of the answer when `whole`, else its first `limit` bytes. */
  get bytes(): Uint8Array {
    return this.#kept.subarray(0, this.#keptLength);
  }

  /** SHA-256 of every byte, hex; the answer takes no more bytes after this. */
  get digest(): string {
    if (this.#hash !== undefined) {
      this.#digest = this.#hash.digest("hex");
      this.#hash = undefined;
    }
    return this.#digest;
  }

  /** An answer of `bytes`, whole. */
  static of(bytes: Uint8Array, limit?: number): Answer {
    const answer = new Answer(limit);
    answer.push(bytes);
    return answer;
  }
}
