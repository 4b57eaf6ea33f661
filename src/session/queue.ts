/** A first-in first-out list whose taken items are dropped in chunks, so taking costs O(1) on average. */
export class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Items held. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The item `index` places from the front (0 is the oldest); `undefined` past the end. */
  at(index: number): T | undefined {
    return this.#items[this.#head + index];
  }

  /** Takes the oldest item. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}
