/**
 * intercept's registry of clients: which copy connection registered which client address and port, and
 * so gets the target's replies to it. No I/O: the server feeds it
 * registrations, reply records and the time, and it hands records to the peers' sinks.
 *
 * A reply can beat its registration (copy sends the SYN, the target answers, and only then does the
 * registration arrive), so replies to an unregistered client are held for a short while and released on registration.
 */
import type { EndpointKey, Ipv4Address } from "../wire/mod.ts";

/** Where a peer's records go: false when the peer refused one (it is too far behind). */
export interface ReplySink {
  add(record: Uint8Array): boolean;
}

/** A client address and port as one key: a number for IPv4, a string for IPv6 (`endpointKey`). */
export type ClientKey = EndpointKey;

/** The key of an IPv4 client address and port (as the target sees the client: the reply's destination). */
export function clientKey(clientAddress: Ipv4Address, clientPort: number): ClientKey {
  return clientAddress * 0x10000 + clientPort;
}

/** Tuning of a `ClientRegistry`. */
export interface ClientRegistryOptions {
  /** How long a reply to an unregistered client waits for its registration, in milliseconds (default 2000). */
  holdMs?: number;
  /** Most replies waiting at once (default 65536); more are dropped. */
  maxHeld?: number;
}

/** What happened to replies and registrations so far. */
export interface RegistryCounters {
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
  readonly key: ClientKey;
  readonly heldAt: number;
  readonly record: Uint8Array;
  waiting: boolean;
}

/** Hands reply records to the peers that registered their clients. */
export class ClientRegistry<P extends ReplySink> {
  readonly counters: RegistryCounters = {
    forwarded: 0,
    held: 0,
    released: 0,
    expired: 0,
    holdOverflow: 0,
    peerOverflow: 0,
  };
  readonly #holdMs: number;
  readonly #maxHeld: number;
  readonly #owners = new Map<ClientKey, P>();
  readonly #keysByPeer = new Map<P, Set<ClientKey>>();
  /** Replies in arrival order, including ones since released (skipped on expiry). */
  #held: HeldReply[] = [];
  #heldHead = 0;
  readonly #heldByKey = new Map<ClientKey, HeldReply[]>();
  #waiting = 0;

  constructor(options: ClientRegistryOptions = {}) {
    this.#holdMs = options.holdMs ?? 2000;
    this.#maxHeld = options.maxHeld ?? 65536;
  }

  /** Client addresses and ports registered now. */
  get size(): number {
    return this.#owners.size;
  }

  /** Replies waiting for their registration. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Sends `key`'s replies to `peer` from now on (taking it from any other peer) and releases waiting ones. */
  register(peer: P, key: ClientKey): void {
    const previous = this.#owners.get(key);
    if (previous !== undefined && previous !== peer) this.#keysByPeer.get(previous)?.delete(key);
    this.#owners.set(key, peer);
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

  /** Stops sending `key`'s replies to `peer`; a key another peer has registered since is left alone. */
  unregister(peer: P, key: ClientKey): void {
    if (this.#owners.get(key) !== peer) return;
    this.#owners.delete(key);
    this.#keysByPeer.get(peer)?.delete(key);
  }

  /** Forgets every registration of `peer` (it disconnected); returns how many there were. */
  dropPeer(peer: P): number {
    const keys = this.#keysByPeer.get(peer);
    if (keys === undefined) return 0;
    this.#keysByPeer.delete(peer);
    for (const key of keys) this.#owners.delete(key);
    return keys.size;
  }

  /**
   * Hands `record` (a 64-byte reply record, only read during the call) to the peer that registered `key`, or
   * keeps a copy until that peer registers or `expire` passes `now + holdMs`.
   */
  deliver(key: ClientKey, record: Uint8Array, now: number): void {
    const peer = this.#owners.get(key);
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
