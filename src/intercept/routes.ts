/**
 * Which copy connection gets the replies to which client, with no I/O: the server feeds it
 * registrations, reply records and the time, and it hands records to the peers' sinks.
 *
 * A reply can beat its registration (copy sends the SYN, the target answers, and only then does the
 * registration arrive), so unrouted replies are held for a short while and released on registration.
 */
import type { Ipv4Address } from "../wire/address.ts";
import type { EndpointKey } from "../wire/address_key.ts";

/** Where a peer's records go: false when the peer refused one (it is too far behind). */
export interface ReplySink {
  add(record: Uint8Array): boolean;
}

/** A client address and port as one key: a number for IPv4, a string for IPv6 (`endpointKey`). */
export type RouteKey = EndpointKey;

/** The key of an IPv4 client address and port (as the target sees the client: the reply's destination). */
export function routeKey(clientAddress: Ipv4Address, clientPort: number): RouteKey {
  return clientAddress * 0x10000 + clientPort;
}

/** Tuning of a `RouteTable`. */
export interface RouteTableOptions {
  /** How long an unrouted reply waits for its registration, in milliseconds (default 2000). */
  holdMs?: number;
  /** Most replies waiting at once (default 65536); more are dropped. */
  maxHeld?: number;
}

/** What happened to replies and registrations so far. */
export interface RouteCounters {
  /** Records handed to a peer, at once or after waiting. */
  forwarded: number;
  /** Records that had to wait for their registration. */
  held: number;
  /** Waiting records handed to a peer once it registered (also counted in `forwarded`). */
  released: number;
  /** Waiting records whose registration never came. */
  expired: number;
  /** Records dropped because too many were waiting. */
  holdOverflow: number;
  /** Records a peer refused because it was too far behind. */
  peerOverflow: number;
}

interface HeldReply {
  readonly key: RouteKey;
  readonly heldAt: number;
  readonly record: Uint8Array;
  waiting: boolean;
}

/** Routes reply records to the peers that registered their clients. */
export class RouteTable<P extends ReplySink> {
  readonly counters: RouteCounters = {
    forwarded: 0,
    held: 0,
    released: 0,
    expired: 0,
    holdOverflow: 0,
    peerOverflow: 0,
  };
  readonly #holdMs: number;
  readonly #maxHeld: number;
  readonly #routes = new Map<RouteKey, P>();
  readonly #keysByPeer = new Map<P, Set<RouteKey>>();
  /** Replies in arrival order, including ones since released (skipped on expiry). */
  #held: HeldReply[] = [];
  #heldHead = 0;
  readonly #heldByKey = new Map<RouteKey, HeldReply[]>();
  #waiting = 0;

  constructor(options: RouteTableOptions = {}) {
    this.#holdMs = options.holdMs ?? 2000;
    this.#maxHeld = options.maxHeld ?? 65536;
  }

  /** Routes in the table. */
  get size(): number {
    return this.#routes.size;
  }

  /** Replies waiting for their registration. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Sends `key`'s replies to `peer` from now on (taking it from any other peer) and releases waiting ones. */
  register(peer: P, key: RouteKey): void {
    const previous = this.#routes.get(key);
    if (previous !== undefined && previous !== peer) this.#keysByPeer.get(previous)?.delete(key);
    this.#routes.set(key, peer);
    let keys = this.#keysByPeer.get(peer);
    if (keys === undefined) this.#keysByPeer.set(peer, keys = new Set());
    keys.add(key);
    const waiting = this.#heldByKey.get(key);
    if (waiting === undefined) return;
    this.#heldByKey.delete(key);
    this.#waiting -= waiting.length;
    for (const held of waiting) {
      held.waiting = false;
      this.counters.released++;
      this.#send(peer, held.record);
    }
  }

  /** Stops routing `key` to `peer`; a route another peer has taken since is left alone. */
  unregister(peer: P, key: RouteKey): void {
    if (this.#routes.get(key) !== peer) return;
    this.#routes.delete(key);
    this.#keysByPeer.get(peer)?.delete(key);
  }

  /** Forgets every route of `peer` (it disconnected); returns how many there were. */
  dropPeer(peer: P): number {
    const keys = this.#keysByPeer.get(peer);
    if (keys === undefined) return 0;
    this.#keysByPeer.delete(peer);
    for (const key of keys) this.#routes.delete(key);
    return keys.size;
  }

  /**
   * Hands `record` (a 64-byte reply record, only read during the call) to the peer routed for `key`, or
   * keeps a copy until that peer registers or `expire` passes `now + holdMs`.
   */
  deliver(key: RouteKey, record: Uint8Array, now: number): void {
    const peer = this.#routes.get(key);
    if (peer !== undefined) {
      this.#send(peer, record);
      return;
    }
    if (this.#held.length - this.#heldHead >= this.#maxHeld) {
      this.counters.holdOverflow++;
      return;
    }
    const held: HeldReply = { key, heldAt: now, record: record.slice(), waiting: true };
    this.#held.push(held);
    const list = this.#heldByKey.get(key);
    if (list === undefined) this.#heldByKey.set(key, [held]);
    else list.push(held);
    this.#waiting++;
    this.counters.held++;
  }

  /** Drops the replies that have waited `holdMs` or longer by `now`. */
  expire(now: number): void {
    const held = this.#held;
    let head = this.#heldHead;
    while (head < held.length && now - held[head].heldAt >= this.#holdMs) {
      const oldest = held[head++];
      if (!oldest.waiting) continue;
      this.counters.expired++;
      this.#waiting--;
      const list = this.#heldByKey.get(oldest.key)!;
      list.shift();
      if (list.length === 0) this.#heldByKey.delete(oldest.key);
    }
    if (head === held.length) {
      this.#held = [];
      head = 0;
    } else if (head > 1024 && head * 2 > held.length) {
      this.#held = held.slice(head);
      head = 0;
    }
    this.#heldHead = head;
  }

  #send(peer: P, record: Uint8Array): void {
    if (peer.add(record)) this.counters.forwarded++;
    else this.counters.peerOverflow++;
  }
}
