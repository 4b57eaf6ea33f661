/** A binary min-heap of deadlines; equal deadlines come out in the order they went in. */
export class DeadlineHeap<T> {
  #at: number[] = [];
  #order: number[] = [];
  #items: T[] = [];
  #pushed = 0;

  /** How many entries are waiting. */
  get size(): number {
    return this.#items.length;
  }

  /** The earliest deadline, `Infinity` when empty. */
  get nextAt(): number {
    return this.#items.length > 0 ? this.#at[0] : Infinity;
  }

  /** Adds `item` due at `at`. */
  push(at: number, item: T): void {
    this.#at.push(at);
    this.#order.push(this.#pushed++);
    this.#items.push(item);
    this.#up(this.#items.length - 1);
  }

  /** Removes every entry. */
  clear(): void {
    this.#at.length = 0;
    this.#order.length = 0;
    this.#items.length = 0;
  }

  /** Removes and returns the earliest entry's item (its deadline is `nextAt` before); the heap must not be empty. */
  pop(): T {
    const item = this.#items[0];
    const last = this.#items.length - 1;
    this.#move(last, 0);
    this.#at.pop();
    this.#order.pop();
    this.#items.pop();
    if (this.#items.length > 0) this.#down(0);
    return item;
  }

  #before(a: number, b: number): boolean {
    return this.#at[a] < this.#at[b] || (this.#at[a] === this.#at[b] && this.#order[a] < this.#order[b]);
  }

  #move(from: number, to: number): void {
    this.#at[to] = this.#at[from];
    this.#order[to] = this.#order[from];
    this.#items[to] = this.#items[from];
  }

  #swap(a: number, b: number): void {
    const at = this.#at[a];
    this.#at[a] = this.#at[b];
    this.#at[b] = at;
    const order = this.#order[a];
    this.#order[a] = this.#order[b];
    this.#order[b] = order;
    const item = this.#items[a];
    this.#items[a] = this.#items[b];
    this.#items[b] = item;
  }

  #up(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(index: number): void {
    let i = index;
    const size = this.#items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && this.#before(right, left) ? right : left;
      if (!this.#before(child, i)) break;
      this.#swap(i, child);
      i = child;
    }
  }
}
