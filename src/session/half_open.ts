/** The link of an id with no neighbour that way (and of one not in the list). */
const NONE = -1;

/**
 * Copies whose client has not completed its handshake online (a SYN and nothing more yet), oldest
 * first. A flood of spoofed SYNs makes nothing but these; at the session cap the oldest goes to make
 * room, since a real client completes its handshake within a round trip and leaves this list.
 *
 * A list linked through typed arrays indexed by the table's number for each copy (small, reused), not a
 * `Map`: every session passes through here, and a `Map` that one entry after another enters and leaves
 * rebuilds its table now and then, garbage with every new session.
 */
export class HalfOpenCopies<T> {
  #next = new Int32Array(16).fill(NONE);
  #previous = new Int32Array(16).fill(NONE);
  /** By id; `undefined` for an id not in the list. */
  #copies: (T | undefined)[] = [];
  #oldest = NONE;
  #newest = NONE;
  #size = 0;

  /** Copies held. */
  get size(): number {
    return this.#size;
  }

  /** Adds a copy that just opened from a SYN, as the newest (an id already held keeps its place). */
  add(id: number, copy: T): void {
    if (this.#copies[id] !== undefined) {
      this.#copies[id] = copy;
      return;
    }
    if (id >= this.#next.length) this.#grow(id);
    while (this.#copies.length < id) this.#copies.push(undefined);
    this.#copies[id] = copy;
    this.#previous[id] = this.#newest;
    this.#next[id] = NONE;
    if (this.#newest === NONE) this.#oldest = id;
    else this.#next[this.#newest] = id;
    this.#newest = id;
    this.#size++;
  }

  /** Forgets a copy: its client completed the handshake, or it is over. */
  delete(id: number): void {
    if (this.#copies[id] === undefined) return;
    const previous = this.#previous[id];
    const next = this.#next[id];
    if (previous === NONE) this.#oldest = next;
    else this.#next[previous] = next;
    if (next === NONE) this.#newest = previous;
    else this.#previous[next] = previous;
    this.#copies[id] = undefined;
    this.#size--;
  }

  /** Takes out the oldest copy, if any. */
  takeOldest(): T | undefined {
    const id = this.#oldest;
    if (id === NONE) return undefined;
    const copy = this.#copies[id];
    this.delete(id);
    return copy;
  }

  /** Room for ids up to `id`, at least twice as many as before. */
  #grow(id: number): void {
    const length = Math.max(2 * this.#next.length, id + 1);
    const next = new Int32Array(length).fill(NONE);
    const previous = new Int32Array(length).fill(NONE);
    next.set(this.#next);
    previous.set(this.#previous);
    this.#next = next;
    this.#previous = previous;
  }
}
