/**
 * A map from integer keys to values, kept in key order: a treap (a binary search tree balanced by
 * random priorities), so that every operation visits O(log n) nodes on average whatever order the
 * keys come in. The priorities come from a fixed-seed generator: a run replays exactly.
 */

interface Node<V> {
  readonly key: number;
  value: V;
  readonly priority: number;
  left: Node<V> | undefined;
  right: Node<V> | undefined;
}

/** One entry of an `OrderedMap`. */
export interface Entry<V> {
  readonly key: number;
  readonly value: V;
}

/** Integer keys in order, each with a value; O(log n) expected per operation. */
export class OrderedMap<V> {
  /** Nodes visited by every operation so far: what tests measure the work by. */
  visits = 0;
  #root: Node<V> | undefined;
  #size = 0;
  #seed = 0x9e3779b9;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The entry with the smallest key. */
  first(): Entry<V> | undefined {
    let node = this.#root;
    while (node?.left !== undefined) {
      this.visits++;
      node = node.left;
    }
    return node;
  }

  /** The entry with the largest key at most `key`. */
  floor(key: number): Entry<V> | undefined {
    let best: Node<V> | undefined;
    for (let node = this.#root; node !== undefined;) {
      this.visits++;
      if (node.key <= key) {
        best = node;
        node = node.right;
      } else {
        node = node.left;
      }
    }
    return best;
  }

  /** The entry with the smallest key at least `key`. */
  ceiling(key: number): Entry<V> | undefined {
    let best: Node<V> | undefined;
    for (let node = this.#root; node !== undefined;) {
      this.visits++;
      if (node.key >= key) {
        best = node;
        node = node.left;
      } else {
        node = node.right;
      }
    }
    return best;
  }

  /** Adds `key` with `value`, or replaces the value of a key already there. */
  set(key: number, value: V): void {
    const found = this.#find(key);
    if (found !== undefined) {
      found.value = value;
      return;
    }
    // Down to where the new node's priority puts it, then the subtree there splits under it.
    const node: Node<V> = { key, value, priority: this.#random(), left: undefined, right: undefined };
    let parent: Node<V> | undefined;
    let at = this.#root;
    while (at !== undefined && at.priority > node.priority) {
      this.visits++;
      parent = at;
      at = key < at.key ? at.left : at.right;
    }
    [node.left, node.right] = this.#split(at, key);
    if (parent === undefined) this.#root = node;
    else if (key < parent.key) parent.left = node;
    else parent.right = node;
    this.#size++;
  }

  /** Removes `key` if present. */
  delete(key: number): void {
    let parent: Node<V> | undefined;
    let at = this.#root;
    while (at !== undefined && at.key !== key) {
      this.visits++;
      parent = at;
      at = key < at.key ? at.left : at.right;
    }
    if (at === undefined) return;
    const next = this.#merge(at.left, at.right);
    if (parent === undefined) this.#root = next;
    else if (parent.left === at) parent.left = next;
    else parent.right = next;
    this.#size--;
  }

  #find(key: number): Node<V> | undefined {
    let at = this.#root;
    while (at !== undefined && at.key !== key) {
      this.visits++;
      at = key < at.key ? at.left : at.right;
    }
    return at;
  }

  /** Splits `node`'s tree into the keys below `key` and the rest. */
  #split(node: Node<V> | undefined, key: number): [Node<V> | undefined, Node<V> | undefined] {
    if (node === undefined) return [undefined, undefined];
    this.visits++;
    if (node.key < key) {
      const [below, rest] = this.#split(node.right, key);
      node.right = below;
      return [node, rest];
    }
    const [below, rest] = this.#split(node.left, key);
    node.left = rest;
    return [below, node];
  }

  /** Joins two trees, every key of `low` below every key of `high`. */
  #merge(low: Node<V> | undefined, high: Node<V> | undefined): Node<V> | undefined {
    if (low === undefined) return high;
    if (high === undefined) return low;
    this.visits++;
    if (low.priority > high.priority) {
      low.right = this.#merge(low.right, high);
      return low;
    }
    high.left = this.#merge(low, high.left);
    return high;
  }

  /** xorshift32: cheap, and the same sequence every run. */
  #random(): number {
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed;
  }
}
