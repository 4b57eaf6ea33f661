/**
 * Copies whose client has not completed its handshake online (a SYN and nothing more yet), oldest
 * first. A flood of spoofed SYNs makes nothing but these; at the session cap the oldest goes to make
 * room, since a real client completes its handshake within a round trip and leaves this list.
 */
export class HalfOpenCopies<T> {
  /** By the table's number for the copy, in the order they came (a `Map` keeps insertion order). */
  readonly #copies = new Map<number, T>();

  /** Copies held. */
  get size(): number {
    return this.#copies.size;
  }

  /** Adds a copy that just opened from a SYN. */
  add(id: number, copy: T): void {
    this.#copies.set(id, copy);
  }

  /** Forgets a copy: its client completed the handshake, or it is over. */
  delete(id: number): void {
    this.#copies.delete(id);
  }

  /** Takes out the oldest copy, if any. */
  takeOldest(): T | undefined {
    for (const [id, copy] of this.#copies) {
      this.#copies.delete(id);
      return copy;
    }
    return undefined;
  }
}
