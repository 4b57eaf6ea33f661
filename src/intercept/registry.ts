/**
 * intercept's registry of clients: which copy connection registered which client address and port, and
 * so gets the target's replies to it. No I/O: the server feeds it
 * registrations, reply records and the time, and it hands records to the peers' sinks.
 *
 * A reply can beat its registration (copy sends the SYN, the target answers, and only then does the
 * registration arrive), so replies to an unregistered client are held for a short while and released on registration.
 */
import { type EndpointKey, endpointKey, type Ipv4Address } from "../wire/mod.ts";

/** Where a peer's records go: false when the peer refused one (it is too far behind). */
export interface ReplySink {
  add(record: Uint8Array): boolean;
}

/** A client address and port as one key: a number for IPv4, a string for IPv6 (`endpointKey`). */
export type ClientKey = EndpointKey;

/** The key of an IPv4 client address and port (as the target sees the client: the reply's destination). */
export function clientKey(clientAddress: Ipv4Address, clientPort: number): ClientKey {
  return endpointKey(clientAddress, clientPort); // the same key as a registration's
}

/** Tuning of a `ClientRegistry`. */
export interface ClientRegistryOptions {
  /** How long a reply to an unregistered client waits for its registration, in milliseconds (default 2000). */
  holdMs?: number;
  /** Most replies waiting at once (default 65536); more are dropped. */
  maxHeld?: number;
  /** Most registrations held at once over all peers (default `DEFAULT_MAX_REGISTRATIONS`). */
  maxRegistrations?: number;
  /** Most registrations one peer may hold (default `DEFAULT_MAX_REGISTRATIONS_PER_PEER`). */
  maxRegistrationsPerPeer?: number;
  /**
   * A registration neither registered again nor used by a reply for this long is forgotten, in ms
   * (default `DEFAULT_REGISTRATION_IDLE_MS`): it goes after one to two times this. C tcpcopy never deletes.
   */
  idleMs?: number;
}

/**
 * Registrations held at once by default: a copy holds one per open copied session (tens of thousands at 12,000
 * new connections/s, each lingering 2 s), C tcpcopy one per session of the last `idleMs` or two.
 */
export const DEFAULT_MAX_REGISTRATIONS = 2_000_000;
/** Registrations one copy connection may hold by default. */
export const DEFAULT_MAX_REGISTRATIONS_PER_PEER = 1_000_000;
/** How long an unused registration lives by default: above copy's and TCPCopy's 120 s session timeout. */
export const DEFAULT_REGISTRATION_IDLE_MS = 300_000;

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
  /** Registrations of a client another peer holds: the first registrant keeps it. */
  takeoversRefused: number;
  /** Registrations forgotten because nothing used them for `idleMs`. */
  agedOut: number;
}

/** What `ClientRegistry.register` did. */
export type RegisterOutcome =
  /** A new registration. */
  | "added"
  /** The peer held it already: kept alive. */
  | "renewed"
  /** Another peer holds it: refused. */
  | "taken"
  /** The peer holds `maxRegistrationsPerPeer` registrations: refused. */
  | "peer-full"
  /** The table holds `maxRegistrations` registrations: refused. */
  | "full";

interface HeldReply {
  readonly key: ClientKey;
  readonly heldAt: number;
  readonly record: Uint8Array;
  waiting: boolean;
}

/** A peer's registrations in each generation. */
interface PeerRegistrations {
  current: number;
  previous: number;
}

/**
 * Hands reply records to the peers that registered their clients. The first peer to register a client
 * keeps it until it deletes it, disconnects, or the registration ages out.
 *
 * Registrations live in two generations of maps: one used (registered again, or a reply delivered) moves
 * to the current one, and every `idleMs` the previous generation is forgotten whole and the current one
 * becomes the previous. Aging costs nothing per registration, and a registration is an entry in one map:
 * no object or per-peer set of its own (5,000,000 registrations: 300 MiB of heap, 460 MiB with a set of
 * keys per peer). The price is a scan of the table when a peer that held registrations disconnects.
 */
export class ClientRegistry<P extends ReplySink> {
  readonly counters: RegistryCounters = {
    forwarded: 0,
    held: 0,
    released: 0,
    expired: 0,
    holdOverflow: 0,
    peerOverflow: 0,
    takeoversRefused: 0,
    agedOut: 0,
  };
  readonly #holdMs: number;
  readonly #maxHeld: number;
  readonly #maxRegistrations: number;
  readonly #maxRegistrationsPerPeer: number;
  readonly #idleMs: number;
  #current = new Map<ClientKey, P>();
  #previous = new Map<ClientKey, P>();
  #rotatedAt: number | undefined;
  readonly #peerRegistrations = new Map<P, PeerRegistrations>();
  /** Replies in arrival order, including ones since released (skipped on expiry). */
  #held: HeldReply[] = [];
  #heldHead = 0;
  readonly #heldByKey = new Map<ClientKey, HeldReply[]>();
  #waiting = 0;

  constructor(options: ClientRegistryOptions = {}) {
    this.#holdMs = options.holdMs ?? 2000;
    this.#maxHeld = options.maxHeld ?? 65536;
    this.#maxRegistrations = options.maxRegistrations ?? DEFAULT_MAX_REGISTRATIONS;
    this.#maxRegistrationsPerPeer = options.maxRegistrationsPerPeer ?? DEFAULT_MAX_REGISTRATIONS_PER_PEER;
    this.#idleMs = options.idleMs ?? DEFAULT_REGISTRATION_IDLE_MS;
  }

  /** Client addresses and ports registered now. */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** Replies waiting for their registration. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Registrations `peer` holds. */
  registrationsOf(peer: P): number {
    const registrations = this.#peerRegistrations.get(peer);
    return registrations === undefined ? 0 : registrations.current + registrations.previous;
  }

  /** The peer `key`'s replies go to, if any. */
  ownerOf(key: ClientKey): P | undefined {
    return this.#current.get(key) ?? this.#previous.get(key);
  }

  /**
   * Sends `key`'s replies to `peer` from now on, unless another peer holds `key` or a cap is reached, and
   * releases the replies waiting for it.
   */
  register(peer: P, key: ClientKey): RegisterOutcome {
    const owner = this.#use(key);
    if (owner === peer) return "renewed";
    if (owner !== undefined) {
      this.counters.takeoversRefused++;
      return "taken";
    }
    let registrations = this.#peerRegistrations.get(peer);
    if (
      registrations !== undefined &&
      registrations.current + registrations.previous >= this.#maxRegistrationsPerPeer
    ) {
      return "peer-full";
    }
    if (this.size >= this.#maxRegistrations) return "full";
    if (registrations === undefined) {
      this.#peerRegistrations.set(peer, registrations = { current: 0, previous: 0 });
    }
    this.#current.set(key, peer);
    registrations.current++;
    const waiting = this.#heldByKey.get(key);
    if (waiting === undefined) return "added";
    this.#heldByKey.delete(key);
    this.#waiting -= waiting.length;
    for (const held of waiting) {
      held.waiting = false;
      this.counters.released++;
      this.#send(peer, held.record);
    }
    return "added";
  }

  /** Stops routing `key` to `peer`; a registration another peer holds is left alone. */
  unregister(peer: P, key: ClientKey): void {
    const registrations = this.#peerRegistrations.get(peer);
    if (registrations === undefined) return;
    if (this.#current.get(key) === peer) {
      this.#current.delete(key);
      registrations.current--;
    } else if (this.#previous.get(key) === peer) {
      this.#previous.delete(key);
      registrations.previous--;
    }
  }

  /** Forgets every registration of `peer` (it disconnected); returns how many there were. */
  dropPeer(peer: P): number {
    const registrations = this.#peerRegistrations.get(peer);
    if (registrations === undefined) return 0;
    this.#peerRegistrations.delete(peer);
    // A scan of the table, once per connection that held registrations: cheaper than a set of keys per peer.
    for (
      const [generation, count] of [[this.#current, registrations.current], [
        this.#previous,
        registrations.previous,
      ]] as const
    ) {
      if (count === 0) continue;
      for (const [key, owner] of generation) if (owner === peer) generation.delete(key);
    }
    return registrations.current + registrations.previous;
  }

  /**
   * Hands `record` (a 64-byte reply record, only read during the call) to the peer that registered `key`, or
   * keeps a copy until that peer registers or `expire` passes `now + holdMs`.
   */
  deliver(key: ClientKey, record: Uint8Array, now: number): void {
    const peer = this.#use(key);
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

  /** Drops the replies that have waited `holdMs` or longer by `now`, and ages the registrations. */
  expire(now: number): void {
    this.#rotatedAt ??= now;
    if (now - this.#rotatedAt >= this.#idleMs) this.#rotate(now);
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

  /** The owner of `key`, its registration moved to the current generation. */
  #use(key: ClientKey): P | undefined {
    const owner = this.#current.get(key);
    if (owner !== undefined) return owner;
    const aging = this.#previous.get(key);
    if (aging === undefined) return undefined;
    this.#previous.delete(key);
    this.#current.set(key, aging);
    const registrations = this.#peerRegistrations.get(aging)!;
    registrations.previous--;
    registrations.current++;
    return aging;
  }

  /** Forgets the previous generation (unused for `idleMs` or more); the current one becomes it. */
  #rotate(now: number): void {
    this.counters.agedOut += this.#previous.size;
    for (const [peer, registrations] of this.#peerRegistrations) {
      registrations.previous = registrations.current;
      registrations.current = 0;
      if (registrations.previous === 0) this.#peerRegistrations.delete(peer);
    }
    this.#previous = this.#current;
    this.#current = new Map();
    this.#rotatedAt = now;
  }

  #send(peer: P, record: Uint8Array): void {
    if (peer.add(record)) this.counters.forwarded++;
    else this.counters.peerOverflow++;
  }
}
