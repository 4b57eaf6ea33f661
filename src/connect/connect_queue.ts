/**
 * The connects of `copy --connect`, made on a thread of their own. connect(2) sends the SYN, and where the
 * target's receive runs inside the sender's system call (a veth, as in the lab), the whole handshake with
 * it: 57-70% of the time copy's JS thread spent draining the capture at 12,000 new connections/s offered
 * (bench/RESULTS.md, thirteenth round), while the capture's ring filled. Queued here, the JS thread only
 * makes the socket; a worker thread (`connect_worker.ts`) makes the connect(2) calls, in order, and
 * signals the poller's eventfd once a batch is made, so that the connection loop starts watching them.
 */
import { connectDescriptor, signalEventFd } from "../../ffi/mod.ts";

/**
 * Connects queued and not yet taken back at most, unless the queue is made with another capacity; past it
 * `push` refuses (the caller connects itself).
 */
const DEFAULT_CAPACITY = 8192;
/** Int32 words before the entries: how many were queued, how many made, whether to stop. */
const QUEUED = 0;
const MADE = 1;
const STOP = 2;
const HEADER_WORDS = 3;
/** An entry's words: the descriptor, the socket address's length, its bytes (28 at most), the result. */
const ENTRY_WORDS = 10;
const ENTRY_FD = 0;
const ENTRY_ADDRESS_LENGTH = 1;
const ENTRY_ADDRESS = 2;
const ENTRY_RESULT = 9;
const ADDRESS_BYTES = 28;

/** How many entries the queue in `words` holds: its memory's size says, on either thread. */
function capacityOf(words: Int32Array): number {
  return (words.length - HEADER_WORDS) / ENTRY_WORDS;
}

/**
 * The slot of entry `count` (a running count, which wraps at 2**32: a power-of-two capacity keeps the slots
 * in turn across the wrap), for its words and its item.
 */
function slotOf(count: number, capacity: number): number {
  return (count >>> 0) % capacity;
}

/** Where entry `count` lives in the queue's words. */
function entryAt(count: number, capacity: number): number {
  return HEADER_WORDS + slotOf(count, capacity) * ENTRY_WORDS;
}

/** Makes the connect of entry `count` and writes its outcome (0 or the errno) into the entry. */
function connectEntry(words: Int32Array, bytes: Uint8Array, capacity: number, count: number): void {
  const at = entryAt(count, capacity);
  const from = (at + ENTRY_ADDRESS) * 4;
  const address = bytes.subarray(from, from + words[at + ENTRY_ADDRESS_LENGTH]);
  words[at + ENTRY_RESULT] = connectDescriptor(words[at + ENTRY_FD], address);
}

/** What the worker thread is given once: the queue's memory and the eventfd to signal. */
export interface ConnectQueueStart {
  readonly memory: SharedArrayBuffer;
  readonly wakeFd: number;
}

/**
 * The worker thread's side: makes the connects queued, in order, until told to stop. Each batch (what was
 * queued when it woke) ends with one signal of `wakeFd`.
 */
export function makeQueuedConnects({ memory, wakeFd }: ConnectQueueStart): void {
  const words = new Int32Array(memory);
  const bytes = new Uint8Array(memory);
  const capacity = capacityOf(words);
  for (let made = 0;;) {
    Atomics.wait(words, QUEUED, made);
    if (Atomics.load(words, STOP) !== 0) return;
    const queued = Atomics.load(words, QUEUED);
    for (; made !== queued; made = (made + 1) | 0) connectEntry(words, bytes, capacity, made);
    Atomics.store(words, MADE, made);
    signalEventFd(wakeFd);
  }
}

/**
 * The JS thread's side: connects queued for the worker, each with the `item` it is for, handed back by
 * `takeMade` with connect(2)'s outcome.
 */
export class ConnectQueue<Item> {
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #capacity: number;
  readonly #items: (Item | undefined)[];
  readonly #start: ConnectQueueStart;
  #worker: Worker | undefined;
  /** Entries handed back so far (a running count, as the queue's own). */
  #taken = 0;
  /** Entries written since the last `submit`, after the queued ones. */
  #unsubmitted = 0;
  /** The worker could not run: what it had not made is made here, and so is every later connect. */
  #broken = false;

  /**
   * @param wakeFd the eventfd the worker signals after each batch (`SocketPoller.wakeFd`)
   * @param capacity connects queued and not handed back at most, a power of two (see `slotOf`)
   */
  constructor(wakeFd: number, capacity = DEFAULT_CAPACITY) {
    if (!(capacity > 0 && (capacity & (capacity - 1)) === 0)) {
      throw new RangeError(`a connect queue's capacity is a power of two, not ${capacity}`);
    }
    const memory = new SharedArrayBuffer((HEADER_WORDS + capacity * ENTRY_WORDS) * 4);
    this.#words = new Int32Array(memory);
    this.#bytes = new Uint8Array(memory);
    this.#capacity = capacity;
    this.#items = new Array(capacity);
    this.#start = { memory, wakeFd };
    // At once, not at the first connect: the thread and its module take tens of milliseconds to start.
    this.#worker = this.#startWorker();
  }

  /** Connects queued and not handed back yet. */
  get pending(): number {
    return (this.#words[QUEUED] + this.#unsubmitted - this.#taken) | 0;
  }

  /**
   * Queues the connect of socket `fd` to `to` (a socket address) for `item`, made after the next `submit`;
   * `false` if it cannot be queued (the queue is full, or the worker failed): the caller then connects on
   * this thread.
   */
  push(item: Item, fd: number, to: Uint8Array): boolean {
    if (this.#broken || this.pending === this.#capacity || to.length > ADDRESS_BYTES) return false;
    const words = this.#words;
    const count = words[QUEUED] + this.#unsubmitted;
    const at = entryAt(count, this.#capacity);
    words[at + ENTRY_FD] = fd;
    words[at + ENTRY_ADDRESS_LENGTH] = to.length;
    this.#bytes.set(to, (at + ENTRY_ADDRESS) * 4);
    this.#items[slotOf(count, this.#capacity)] = item;
    this.#unsubmitted++;
    return true;
  }

  /**
   * Has the worker make what was queued since the last call: one wake of its thread for all of them (each
   * a context switch, which costs this VM more than the connect's system call).
   */
  submit(): void {
    if (this.#unsubmitted === 0) return;
    Atomics.store(this.#words, QUEUED, (this.#words[QUEUED] + this.#unsubmitted) | 0);
    this.#unsubmitted = 0;
    Atomics.notify(this.#words, QUEUED);
  }

  /** Hands back each connect the worker made since the last call, in order: its item and 0 or the errno. */
  takeMade(each: (item: Item, errno: number) => void): void {
    const words = this.#words;
    const capacity = this.#capacity;
    const made = this.#broken ? words[QUEUED] : Atomics.load(words, MADE);
    for (; this.#taken !== made; this.#taken = (this.#taken + 1) | 0) {
      // Never made by the worker: made here.
      if (this.#broken && (this.#taken - Atomics.load(words, MADE) | 0) >= 0) {
        connectEntry(words, this.#bytes, capacity, this.#taken);
      }
      const slot = slotOf(this.#taken, capacity);
      const item = this.#items[slot]!;
      this.#items[slot] = undefined;
      each(item, words[entryAt(this.#taken, capacity) + ENTRY_RESULT]);
    }
  }

  /** Waits until every queued connect was made (a few milliseconds at most), then stops the worker. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.submit();
    while (!this.#broken && Atomics.load(this.#words, MADE) !== this.#words[QUEUED]) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (!this.#broken) {
      // The queued count moved, so that a worker about to wait does not (it checks STOP after waking).
      Atomics.store(this.#words, STOP, 1);
      Atomics.store(this.#words, QUEUED, (this.#words[QUEUED] + 1) | 0);
      Atomics.notify(this.#words, QUEUED);
    }
    worker.terminate();
    this.#worker = undefined;
  }

  #startWorker(): Worker {
    const worker = new Worker(new URL("./connect_worker.ts", import.meta.url), { type: "module" });
    worker.onerror = (event) => {
      // Not fatal: the connects go on on this thread, as they would without a worker.
      event.preventDefault();
      this.#broken = true;
      signalEventFd(this.#start.wakeFd);
    };
    worker.postMessage(this.#start);
    return worker;
  }
}
