/** Slots an empty queue keeps for its next items; a larger array is let go. */
const KEPT_WHEN_EMPTY = 1024;

/**
 * A first-in first-out list whose taken items are dropped in chunks, so taking costs O(1) on average. Its
 * array is kept when it empties, so a queue that fills and empties by turns (a session's requests) does
 * not allocate a new one each time.
 */
export class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #tail = 0;

  /** Items held. */
  get length(): number {
    return this.#tail - this.#head;
  }

  push(item: T): void {
    if (this.#tail === this.#items.length) this.#items.push(item);
    else this.#items[this.#tail] = item;
    this.#tail++;
  }

  /** The item `index` places from the front (0 is the oldest); `undefined` past the end. */
  at(index: number): T | undefined {
    return index < 0 || this.#head + index >= this.#tail ? undefined : this.#items[this.#head + index];
  }

  /** Takes the oldest item. */
  shift(): T | undefined {
    if (this.#head >= this.#tail) return undefined;
    const items = this.#items;
    const item = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === this.#tail) {
      this.#head = 0;
      this.#tail = 0;
      // A burst's array goes, the usual few slots stay.
      if (items.length > KEPT_WHEN_EMPTY) this.#items = [];
    } else if (this.#head > 64 && this.#head * 2 > this.#tail) {
      items.copyWithin(0, this.#head, this.#tail);
      items.fill(undefined, this.#tail - this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#head = 0;
    }
    return item;
  }
}
