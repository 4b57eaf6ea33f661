import { type Address, TcpFlag, type TcpRepr } from "../wire/mod.ts";
import { fillSegment, type SessionEndpoints } from "./session.ts";

/** What a lingering copy holds toward the target: the target's address and port, by the table's mapping. */
export interface LingeringTarget {
  readonly targetAddress: Address;
  readonly targetPort: number;
}

/** A slot's state bits. */
const HAS_FINAL_ACK = 1;
const TIMESTAMPS = 2;
/** The slot holds its original's client address and port too: the last of the original's copies to end. */
const HOLDS_ORIGINAL = 4;
const FIRST_CAPACITY = 64;

/**
 * Copies that are over and linger for `lingerMs`, as TCP's TIME-WAIT: each keeps its client address and
 * port toward the target taken, so that no late packet of it meets a new copy there, and, when it closed
 * with FINs, its last ACK, to send again when the target repeats its FIN because ours was lost. A copy can
 * hold the real client's address, port and ISN too (`holdOriginal`), so that a late packet of its session
 * is not taken for a new one.
 *
 * Each is a slot in typed arrays (about 65 bytes), not an object: with a new connection per request the
 * copies over in the last `lingerMs` outnumber the open ones many times over, and a lingering object with
 * its endpoints and records behind it held about 800 bytes each, 15-23 MB at 10,000 sessions a second.
 * The slots are a ring in the order the copies began to linger: every copy lingers the same `lingerMs`, so
 * they end in that order too (one whose end came earlier than an older one's waits for it).
 */
export class LingeringCopies {
  #capacity = 0;
  #oldest = 0;
  #size = 0;
  /** When each slot's lingering ends (whole milliseconds). */
  #until = new Float64Array(0);
  /** The client address and port the target sees: an IPv4 address in `#address4`, IPv6 in `#address6`. */
  #address4 = new Int32Array(0);
  #address6: (string | undefined)[] = [];
  #port = new Uint16Array(0);
  /** The index of its target in `targets`. */
  #target = new Uint16Array(0);
  #flowInfo = new Int32Array(0);
  #state = new Uint8Array(0);
  /** The last ACK's fields, the 32-bit ones signed as the engine keeps them (`seq.ts`). */
  #finalSeq = new Int32Array(0);
  #finalAck = new Int32Array(0);
  #finalWindow = new Uint16Array(0);
  #finalTsValue = new Int32Array(0);
  #finalTsEcho = new Int32Array(0);
  /** With `HOLDS_ORIGINAL`: the real client's address, port and ISN. */
  #originalAddress4 = new Int32Array(0);
  #originalAddress6: (string | undefined)[] = [];
  #originalPort = new Uint16Array(0);
  #clientIsn = new Int32Array(0);
  /** What `endpoints` fills: the caller's only during the call, as the sink's segments are. */
  readonly #endpoints = {
    clientAddress: 0 as Address,
    clientPort: 0,
    targetAddress: 0 as Address,
    targetPort: 0,
    flowInfo: 0,
  };

  constructor(readonly targets: readonly LingeringTarget[]) {}

  /** Copies lingering. */
  get size(): number {
    return this.#size;
  }

  /** When the oldest slot's lingering ends; `Infinity` when none lingers. */
  get nextEnd(): number {
    return this.#size > 0 ? this.#until[this.#oldest] : Infinity;
  }

  /** The oldest slot, which `nextEnd` is of (the ring must not be empty). */
  get oldest(): number {
    return this.#oldest;
  }

  /**
   * A copy toward `targets[target]` from `address`:`port` lingers until `until`, answering a repeated FIN
   * with `finalAck` if it has one (read at once); returns its slot.
   */
  add(
    until: number,
    address: Address,
    port: number,
    target: number,
    flowInfo: number,
    finalAck: TcpRepr | undefined,
  ): number {
    if (this.#size === this.#capacity) this.#grow();
    const slot = (this.#oldest + this.#size) % this.#capacity;
    this.#size++;
    this.#until[slot] = until;
    if (typeof address === "number") {
      this.#address4[slot] = address;
      this.#address6[slot] = undefined;
    } else {
      this.#address6[slot] = address;
    }
    this.#port[slot] = port;
    this.#target[slot] = target;
    this.#flowInfo[slot] = flowInfo;
    this.#originalAddress6[slot] = undefined;
    if (finalAck === undefined) {
      this.#state[slot] = 0;
      return slot;
    }
    const timestamp = finalAck.options?.timestamp;
    this.#state[slot] = HAS_FINAL_ACK | (timestamp !== undefined ? TIMESTAMPS : 0);
    this.#finalSeq[slot] = finalAck.seq;
    this.#finalAck[slot] = finalAck.ack;
    this.#finalWindow[slot] = finalAck.window;
    this.#finalTsValue[slot] = timestamp?.value ?? 0;
    this.#finalTsEcho[slot] = timestamp?.echo ?? 0;
    return slot;
  }

  /** Slot `slot` holds the real client's `address`:`port` and ISN too, until its lingering ends. */
  holdOriginal(slot: number, address: Address, port: number, clientIsn: number): void {
    this.#state[slot] |= HOLDS_ORIGINAL;
    if (typeof address === "number") this.#originalAddress4[slot] = address;
    else this.#originalAddress6[slot] = address;
    this.#originalPort[slot] = port;
    this.#clientIsn[slot] = clientIsn;
  }

  /** Forgets the oldest slot (its lingering is over). */
  dropOldest(): void {
    this.#address6[this.#oldest] = undefined;
    this.#originalAddress6[this.#oldest] = undefined;
    this.#oldest = (this.#oldest + 1) % this.#capacity;
    this.#size--;
  }

  /** When slot `slot`'s lingering ends. */
  until(slot: number): number {
    return this.#until[slot];
  }

  /** The client address the target sees of slot `slot`. */
  address(slot: number): Address {
    return this.#address6[slot] ?? this.#address4[slot];
  }

  /** The client port the target sees of slot `slot`. */
  port(slot: number): number {
    return this.#port[slot];
  }

  /** The index in `targets` of slot `slot`'s target. */
  target(slot: number): number {
    return this.#target[slot];
  }

  /** Whether slot `slot` holds its original's client (`holdOriginal`). */
  holdsOriginal(slot: number): boolean {
    return (this.#state[slot] & HOLDS_ORIGINAL) !== 0;
  }

  /** The real client's address of a slot that `holdsOriginal`. */
  originalAddress(slot: number): Address {
    return this.#originalAddress6[slot] ?? this.#originalAddress4[slot];
  }

  /** The real client's port of a slot that `holdsOriginal`. */
  originalPort(slot: number): number {
    return this.#originalPort[slot];
  }

  /** The real client's ISN of a slot that `holdsOriginal`. */
  clientIsn(slot: number): number {
    return this.#clientIsn[slot];
  }

  /** The addresses and ports of slot `slot` toward its target: the caller's only during the call. */
  endpoints(slot: number): SessionEndpoints {
    const endpoints = this.#endpoints;
    const target = this.targets[this.#target[slot]];
    endpoints.clientAddress = this.address(slot);
    endpoints.clientPort = this.#port[slot];
    endpoints.targetAddress = target.targetAddress;
    endpoints.targetPort = target.targetPort;
    endpoints.flowInfo = this.#flowInfo[slot];
    return endpoints;
  }

  /**
   * The segment to answer the target's `flags` with at `now`: the last ACK again for a repeated FIN while
   * the slot lingers (the caller's only during the call), else `undefined`.
   */
  answer(slot: number, flags: number, now: number): TcpRepr | undefined {
    const state = this.#state[slot];
    if (!(state & HAS_FINAL_ACK) || !(flags & TcpFlag.FIN) || now >= this.#until[slot]) return undefined;
    return fillSegment(
      this.endpoints(slot),
      this.#finalSeq[slot],
      this.#finalAck[slot],
      TcpFlag.ACK,
      this.#finalWindow[slot],
      (state & TIMESTAMPS) !== 0,
      this.#finalTsValue[slot],
      this.#finalTsEcho[slot],
      undefined,
    );
  }

  /** Twice the slots, the ring unwrapped from its oldest. */
  #grow(): void {
    const capacity = Math.max(FIRST_CAPACITY, 2 * this.#capacity);
    const order = Array.from({ length: this.#size }, (_, i) => (this.#oldest + i) % this.#capacity);
    const typed = <T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(
      from: T,
      make: new (length: number) => T,
    ): T => {
      const to = new make(capacity);
      for (let i = 0; i < order.length; i++) to[i] = from[order[i]];
      return to;
    };
    const plain = (from: (string | undefined)[]) => {
      const to: (string | undefined)[] = new Array(capacity).fill(undefined);
      for (let i = 0; i < order.length; i++) to[i] = from[order[i]];
      return to;
    };
    this.#until = typed(this.#until, Float64Array);
    this.#address4 = typed(this.#address4, Int32Array);
    this.#address6 = plain(this.#address6);
    this.#port = typed(this.#port, Uint16Array);
    this.#target = typed(this.#target, Uint16Array);
    this.#flowInfo = typed(this.#flowInfo, Int32Array);
    this.#state = typed(this.#state, Uint8Array);
    this.#finalSeq = typed(this.#finalSeq, Int32Array);
    this.#finalAck = typed(this.#finalAck, Int32Array);
    this.#finalWindow = typed(this.#finalWindow, Uint16Array);
    this.#finalTsValue = typed(this.#finalTsValue, Int32Array);
    this.#finalTsEcho = typed(this.#finalTsEcho, Int32Array);
    this.#originalAddress4 = typed(this.#originalAddress4, Int32Array);
    this.#originalAddress6 = plain(this.#originalAddress6);
    this.#originalPort = typed(this.#originalPort, Uint16Array);
    this.#clientIsn = typed(this.#clientIsn, Int32Array);
    this.#capacity = capacity;
    this.#oldest = 0;
  }
}
