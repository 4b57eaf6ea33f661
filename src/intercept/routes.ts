/**
 * Which copy connection gets the replies to which client, with no I/O: the server feeds it
 * registrations, reply records and the time, and it hands records to the peers' sinks.
 *
 * A reply can beat its registration (copy sends the SYN, the target answers, and only then does the
 * registration arrive), so unrouted replies are held for a short while and released on registration.
 */
import type { Ipv4Address } from "../wire/address.ts";

/** Where a peer's records go: false when the peer refused one (it is too far behind). */
export interface ReplySink {
  add(record: Uint8Array): boolean;
}

/** A client address and port as one number, the routing key. */
export type RouteKey = number;

/** The key of a client address and port (as the target sees the client: the reply's destination). */
export function routeKey(clientAddress: Ipv4Address, clientPort: number): RouteKey {
  return clientAddress * 0x10000 + clientPort;
}

/** Tuning of a `RouteTable`. */
export interface RouteTableOptions {
  /** How long an unrouted reply waits for its registration, in milliseconds (default 2000). */
  holdMs?: number;
  /** Most replies waiting at once (default 65536); more are dropped. */
  maxHeld?: number;
  /** Most routes held at once over all peers (default `DEFAULT_MAX_ROUTES`). */
  maxRoutes?: number;
  /** Most routes one peer may hold (default `DEFAULT_MAX_ROUTES_PER_PEER`). */
  maxRoutesPerPeer?: number;
  /**
   * A route neither registered again nor used by a reply for this long is forgotten, in milliseconds
   * (default `DEFAULT_ROUTE_IDLE_MS`): it goes after one to two times this. C tcpcopy never deletes.
   */
  idleMs?: number;
}

/**
 * Routes held at once by default: a copy holds one per open copied session (tens of thousands at 12,000
 * new connections/s, each lingering 2 s), C tcpcopy one per session of the last `idleMs` or two.
 */
export const DEFAULT_MAX_ROUTES = 2_000_000;
/** Routes one copy connection may hold by default. */
export const DEFAULT_MAX_ROUTES_PER_PEER = 1_000_000;
/** How long an unused route lives by default: above copy's and TCPCopy's 120 s session timeout. */
export const DEFAULT_ROUTE_IDLE_MS = 300_000;

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
  /** Registrations of a client another peer holds: the first registrant keeps it. */
  takeoversRefused: number;
  /** Routes forgotten because nothing used them for `idleMs`. */
  agedOut: number;
}

/** What `RouteTable.register` did. */
export type RegisterOutcome =
  /** A new route. */
  | "added"
  /** The peer held it already: kept alive. */
  | "renewed"
  /** Another peer holds it: refused. */
  | "taken"
  /** The peer holds `maxRoutesPerPeer` routes: refused. */
  | "peer-full"
  /** The table holds `maxRoutes` routes: refused. */
  | "full";

interface HeldReply {
  readonly key: RouteKey;
  readonly heldAt: number;
  readonly record: Uint8Array;
  waiting: boolean;
}

/** A peer's routes in each generation. */
interface PeerRoutes {
  current: number;
  previous: number;
}

/**
 * Routes reply records to the peers that registered their clients. The first peer to register a client
 * keeps it until it deletes it, disconnects, or the route ages out.
 *
 * Routes live in two generations of maps: a route used (registered again, or a reply delivered) moves to
 * the current one, and every `idleMs` the previous generation is forgotten whole and the current one
 * becomes the previous. Aging costs nothing per route, and a route is an entry in one map: no object or
 * per-peer set of its own (5,000,000 routes: 300 MiB of heap, 460 MiB with a set of keys per peer). The
 * price is a scan of the table when a peer that held routes disconnects.
 */
export class RouteTable<P extends ReplySink> {
  readonly counters: RouteCounters = {
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
  readonly #maxRoutes: number;
  readonly #maxRoutesPerPeer: number;
  readonly #idleMs: number;
  #current = new Map<RouteKey, P>();
  #previous = new Map<RouteKey, P>();
  #rotatedAt: number | undefined;
  readonly #peerRoutes = new Map<P, PeerRoutes>();
  /** Replies in arrival order, including ones since released (skipped on expiry). */
  #held: HeldReply[] = [];
  #heldHead = 0;
  readonly #heldByKey = new Map<RouteKey, HeldReply[]>();
  #waiting = 0;

  constructor(options: RouteTableOptions = {}) {
    this.#holdMs = options.holdMs ?? 2000;
    this.#maxHeld = options.maxHeld ?? 65536;
    this.#maxRoutes = options.maxRoutes ?? DEFAULT_MAX_ROUTES;
    this.#maxRoutesPerPeer = options.maxRoutesPerPeer ?? DEFAULT_MAX_ROUTES_PER_PEER;
    this.#idleMs = options.idleMs ?? DEFAULT_ROUTE_IDLE_MS;
  }

  /** Routes in the table. */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** Replies waiting for their registration. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Routes `peer` holds. */
  routesOf(peer: P): number {
    const routes = this.#peerRoutes.get(peer);
    return routes === undefined ? 0 : routes.current + routes.previous;
  }

  /** The peer `key`'s replies go to, if any. */
  ownerOf(key: RouteKey): P | undefined {
    return this.#current.get(key) ?? this.#previous.get(key);
  }

  /**
   * Sends `key`'s replies to `peer` from now on, unless another peer holds `key` or a cap is reached, and
   * releases the replies waiting for it.
   */
  register(peer: P, key: RouteKey): RegisterOutcome {
    const owner = this.#use(key);
    if (owner === peer) return "renewed";
    if (owner !== undefined) {
      this.counters.takeoversRefused++;
      return "taken";
    }
    let routes = this.#peerRoutes.get(peer);
    if (routes !== undefined && routes.current + routes.previous >= this.#maxRoutesPerPeer) {
      return "peer-full";
    }
    if (this.size >= this.#maxRoutes) return "full";
    if (routes === undefined) this.#peerRoutes.set(peer, routes = { current: 0, previous: 0 });
    this.#current.set(key, peer);
    routes.current++;
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

  /** Stops routing `key` to `peer`; a route another peer holds is left alone. */
  unregister(peer: P, key: RouteKey): void {
    const routes = this.#peerRoutes.get(peer);
    if (routes === undefined) return;
    if (this.#current.get(key) === peer) {
      this.#current.delete(key);
      routes.current--;
    } else if (this.#previous.get(key) === peer) {
      this.#previous.delete(key);
      routes.previous--;
    }
  }

  /** Forgets every route of `peer` (it disconnected); returns how many there were. */
  dropPeer(peer: P): number {
    const routes = this.#peerRoutes.get(peer);
    if (routes === undefined) return 0;
    this.#peerRoutes.delete(peer);
    // A scan of the table, once per connection that held routes: cheaper than a set of keys per peer.
    for (
      const [generation, count] of [[this.#current, routes.current], [
        this.#previous,
        routes.previous,
      ]] as const
    ) {
      if (count === 0) continue;
      for (const [key, owner] of generation) if (owner === peer) generation.delete(key);
    }
    return routes.current + routes.previous;
  }

  /**
   * Hands `record` (a 64-byte reply record, only read during the call) to the peer routed for `key`, or
   * keeps a copy until that peer registers or `expire` passes `now + holdMs`.
   */
  deliver(key: RouteKey, record: Uint8Array, now: number): void {
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

  /** Drops the replies that have waited `holdMs` or longer by `now`, and ages the routes. */
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

  /** The owner of `key`, its route moved to the current generation. */
  #use(key: RouteKey): P | undefined {
    const owner = this.#current.get(key);
    if (owner !== undefined) return owner;
    const aging = this.#previous.get(key);
    if (aging === undefined) return undefined;
    this.#previous.delete(key);
    this.#current.set(key, aging);
    const routes = this.#peerRoutes.get(aging)!;
    routes.previous--;
    routes.current++;
    return aging;
  }

  /** Forgets the previous generation (unused for `idleMs` or more); the current one becomes it. */
  #rotate(now: number): void {
    this.counters.agedOut += this.#previous.size;
    for (const [peer, routes] of this.#peerRoutes) {
      routes.previous = routes.current;
      routes.current = 0;
      if (routes.previous === 0) this.#peerRoutes.delete(peer);
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
