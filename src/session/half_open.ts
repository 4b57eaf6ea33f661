import type { EndpointKey } from "../wire/mod.ts";

/**
 * Copies whose client has not completed its handshake online (a SYN and nothing more yet), oldest
 * first. A flood of spoofed SYNs makes nothing but these; at the session cap the oldest goes to make
 * room, since a real client completes its handshake within a round trip and leaves this list.
 */
export class HalfOpenCopies<T> {
  /** By key, in the order they came (a `Map` keeps insertion order). */
  readonly #copies = new Map<EndpointKey, T>();

  /** Copies held. */
  get size(): number {
    return this.#copies.size;
  }

  /** Adds a copy that just opened from a SYN. */
  add(key: EndpointKey, copy: T): void {
    this.#copies.set(key, copy);
  }

  /** Forgets a copy: its client completed the handshake, or it is over. */
  delete(key: EndpointKey): void {
    this.#copies.delete(key);
  }

  /** Takes out the oldest copy, if any. */
  takeOldest(): T | undefined {
    for (const [key, copy] of this.#copies) {
      this.#copies.delete(key);
      return copy;
    }
    return undefined;
  }
}
