/**
 * All copied sessions of one `copy` process: which captured sessions are copied (rate), how many
 * times (multiply), under which client address and port the target sees each copy, and their timers.
 * Pure like the sessions it holds: packets and the clock come in; segments, and events saying which
 * client addresses and ports the copies hold, go out. It knows no command's wire protocol: `copy`
 * turns those events into registrations for intercept.
 */
import {
  type Address,
  addressFamily,
  addressHash,
  ipv6AddressOfWords,
  mix32,
  TcpFlag,
  type TcpRepr,
} from "../wire/mod.ts";
import { EndpointMap } from "./endpoint_map.ts";
import { HalfOpenCopies } from "./half_open.ts";
import { DeadlineHeap } from "./heap.ts";
import { LingeringCopies } from "./lingering.ts";
import {
  type SegmentIn,
  Session,
  SESSION_OUTCOMES,
  type SessionConfig,
  type SessionEndpoints,
  sessionIsn,
  type SessionOutcome,
  startsSession,
} from "./session.ts";

/** One `-x` mapping: what the online server listens on, and where its copies go. */
export interface TargetMapping {
  /** The online server's address, or `undefined` for any (of either family). */
  readonly onlineAddress?: Address;
  readonly onlinePort: number;
  readonly targetAddress: Address;
  readonly targetPort: number;
}

/**
 * A range copies may take their client address from: `count` addresses from `first`. IPv4: `first` is
 * the first usable address (an `Ipv4Address`: signed). IPv6: `first` is an `Address` (group string) and the range runs
 * through its low 32 bits only (`count` < 2**32, no carry past them).
 */
export interface AddressRange {
  readonly first: Address;
  readonly count: number;
}

/** What to copy and how. */
export interface CopyPlan {
  readonly mappings: readonly TargetMapping[];
  /** Client addresses the target sees; empty keeps each real client's address. */
  readonly clients: readonly AddressRange[];
  /** Percent of sessions copied, 1..100. */
  readonly rate: number;
  /** Copies of each session, 1..1023. */
  readonly multiply: number;
  /** Keeps several `copy` processes' client ports apart (`-f`). */
  readonly portShift: number;
  /** Sessions held at once, lingering ones included; more are refused and counted. */
  readonly maxSessions: number;
  /** Copy only sessions seen from their SYN, none taken over midway (TCPCopy's `-O`). */
  readonly onlyFromSyn?: boolean;
  readonly session: SessionConfig;
}

/**
 * What the table needs of a copied session, whichever transport carries it: the packet engine's
 * `Session` (and what lingers of it), or an ordinary connection's (`copy --connect`).
 */
export interface CopiedSession {
  readonly endpoints: SessionEndpoints;
  readonly outcome: SessionOutcome | undefined;
  /** Whether the table may forget it. */
  readonly finished: boolean;
  readonly nextDeadline: number;
  readonly buffered: number;
  readonly retransmissions: number;
  /**
   * Once `finished`: until when its client address and port stay taken toward the target, as TCP's
   * TIME-WAIT; `undefined` for a session that lets them go at once. Every session of a table that lingers
   * lingers as long (the plan's `lingerMs`): the table ends them in the order they began.
   */
  readonly lingersUntil?: number;
  /** Once `finished` with both FINs through: its last ACK, sent again while it lingers (the caller's during the call). */
  finalAck?(): TcpRepr | undefined;
  /** Whether its client has sent no more than its SYN yet: cheap to end under a SYN flood. */
  readonly halfOpen?: boolean;
  onClient(segment: SegmentIn, now: number): void;
  onTarget(segment: SegmentIn, now: number): void;
  /** A packet the online server sent the client, for a session that compares answers (`--compare`). */
  onServer?(segment: SegmentIn, now: number): void;
  onTick(now: number): void;
  /** Ends it on the target now: copy stops (`abandoned`), or its place goes to a new session (`half-open`). */
  abandon(now: number, outcome?: "abandoned" | "half-open"): void;
  /**
   * The table forgot it: it is over, and what lingers of it the table keeps apart, so its parts may serve a
   * new session (the packet engine's `Session`: see `Session.recycle`).
   */
  recycle?(): void;
}

/** Where the table's output goes. */
export interface TableSink {
  /**
   * A segment for the target from `endpoints.clientAddress`; both are the sink's only during the call
   * (`SegmentSink`).
   */
  segment(endpoints: SessionEndpoints, tcp: TcpRepr): void;
  /**
   * A copy took the client address and port `endpoints` names toward the target: from now on the
   * target's replies to them are this copy's (`copy` registers them with intercept).
   */
  clientOpened(endpoints: SessionEndpoints): void;
  /**
   * A copy let go of its client address and port, once its lingering was over: replies to them are
   * nobody's now (`copy` unregisters them). `endpoints` is the listener's only during the call.
   */
  clientClosed(endpoints: SessionEndpoints): void;
  /**
   * Whether a copy toward an IPv6 target can get the target's replies now (for `copy`: an intercept
   * granted IPv6); without this method, it can. New sessions toward IPv6 targets are refused and counted
   * while it cannot.
   */
  ipv6Replies?(): boolean;
  /**
   * Whether the target sees each copy's client address, so that it must be of the target's family (or come
   * from a `-c` range of it). Without it, it does; a transport whose copies are connections of this host's
   * own (`copy --connect`) says `false`: a client of either family then reaches a target of either.
   */
  readonly targetSeesClients?: boolean;
  /**
   * A copy's session ended: the real client's address and port, what the target saw, and how it
   * ended. Optional: only a listener that logs each session (`--log-level debug`) needs it. The session
   * is the listener's only during the call: the packet engine's serves a new copy afterwards.
   */
  ended?(
    clientAddress: Address,
    clientPort: number,
    endpoints: SessionEndpoints,
    outcome: SessionOutcome,
    session: CopiedSession,
  ): void;
  /**
   * Makes the session of a new copy; without it, the packet engine's `Session`, whose segments go to
   * `segment`. Another transport passes its own.
   */
  open?(endpoints: SessionEndpoints, first: SegmentIn, takeOver: boolean, now: number): CopiedSession;
}

/** Counters for stats lines and metrics. */
export interface TableCounters {
  packetsCaptured: number;
  sessionsCopied: number;
  sessionsSkippedByRate: number;
  /** New sessions (SYNs) refused at `maxSessions`. */
  sessionsRefusedAtCap: number;
  /** New sessions refused while `paused` (the memory guard), counted like `sessionsRefusedAtCap`. */
  sessionsRefusedWhilePaused: number;
  /** Copies whose client had not completed its handshake, ended at the cap to make room for a new one. */
  sessionsHalfOpenEvicted: number;
  sessionsWithoutAddress: number;
  /** New sessions whose client family cannot reach the target's, with no `-c` range of the target's family. */
  sessionsFamilyUnreachable: number;
  /** New sessions toward an IPv6 target while no intercept granted IPv6 (a TCPCopy intercept). */
  sessionsWithoutIpv6Intercept: number;
  repliesReceived: number;
  repliesUnmatched: number;
  retransmissions: number;
  outcomes: Record<SessionOutcome, number>;
}

/**
 * A captured session and its copies. Recycled once nothing holds it (`#release`): it lives as long as its
 * copies linger, seconds, so one made per session would die old.
 */
interface Original {
  mappingIndex: number;
  /** The real client's address and port. */
  address: Address;
  port: number;
  clientIsn: number;
  copies: Copy[];
  /** When a packet of it was last captured, whole milliseconds (a small integer, not a heap number). */
  lastSeen: number;
  /** Whether it waits in the table's free list: released twice, it would serve two sessions. */
  free: boolean;
}

/**
 * One copy of a session while it is open: its `id` is its place in `#copies`, which is what the timers
 * hold, so that a stale timer entry keeps no session reachable and makes no key. Once over it lingers as a
 * slot of `LingeringCopies`, and its id serves the next copy.
 */
interface Copy {
  readonly id: number;
  session: CopiedSession;
  original: Original;
  /** The client address and port the target sees. */
  address: Address;
  port: number;
  /**
   * When its timer entry is due (whole milliseconds); `UNSCHEDULED`: none, or it is not in `#byReply` any
   * more. A small integer either way: a field that ever held `Infinity` held a heap number in every copy.
   */
  scheduledAt: number;
  counted: boolean;
}

/**
 * Client addresses and ports a new copy tries. Each copy of one client port still open or lingering holds
 * one: a client that reconnects from the same port (a narrow ephemeral range) faster than a slow target
 * takes the copies holds many at once, and 16 ran out in the lab under load.
 */
const PROBES = 64;
const DEAD_SWEEP_MS = 1000;
/** Originals kept for reuse, at most: a burst's worth of ends, as sessions are kept. */
const KEPT_ORIGINALS = 1024;
/** Stale timer entries tolerated beyond twice the live sessions before the timers are rebuilt. */
const STALE_TIMERS = 1024;
const FIRST_EPHEMERAL = 1024;
/** A copy's `scheduledAt` while no timer entry is its own. */
const UNSCHEDULED = -1;
const PORT_STRIDE = 4099; // odd and prime: copies' ports spread over the whole range
/** About 0.618 of the port range and coprime with it: the ports of successive passes land far apart. */
const PASS_STRIDE = 39871;

/** The copied sessions and the logic that creates, feeds and retires them. */
export class SessionTable {
  readonly counters: TableCounters = {
    packetsCaptured: 0,
    sessionsCopied: 0,
    sessionsSkippedByRate: 0,
    sessionsRefusedAtCap: 0,
    sessionsRefusedWhilePaused: 0,
    sessionsHalfOpenEvicted: 0,
    sessionsWithoutAddress: 0,
    sessionsFamilyUnreachable: 0,
    sessionsWithoutIpv6Intercept: 0,
    repliesReceived: 0,
    repliesUnmatched: 0,
    retransmissions: 0,
    outcomes: Object.fromEntries(SESSION_OUTCOMES.map((outcome) => [outcome, 0])) as Record<
      SessionOutcome,
      number
    >,
  };

  /** Originals by mapping index, then by client address and port. */
  readonly #originals: EndpointMap<Original>[];
  /**
   * Originals with a copy over and lingering, by mapping index, then by client address and port: the slot of
   * the latest such copy in `#lingeringCopies`, which holds the client's ISN. Looked up after `#originals`,
   * which has an original as long as a copy of it is open.
   */
  readonly #lingeringOriginals: EndpointMap<number>[];
  /** Copies by the client address and port the target sees. */
  readonly #byReply = new EndpointMap<Copy>();
  /** Copies over and lingering, by the client address and port the target sees: their slots. */
  readonly #lingeringByReply = new EndpointMap<number>();
  readonly #lingeringCopies: LingeringCopies;
  /** Originals whose copies failed: their later packets are not taken over again. */
  readonly #dead: EndpointMap<Original>[];
  /**
   * The open copies by `id`, `undefined` at the ids in `#freeIds`, which serve the next copies. Not kept for
   * reuse: a kept copy kept its last session reachable (up to 2 KB, while that session's own pool holds
   * it no more), and what a copy costs is made once per session and dies young (about 80 bytes).
   */
  readonly #copies: (Copy | undefined)[] = [];
  readonly #freeIds: number[] = [];
  /** Originals nothing holds any more, to serve new sessions (up to `KEPT_ORIGINALS`). */
  readonly #freeOriginals: Original[] = [];
  /**
   * Deadlines by the copy's `id`, not the copy: a stale entry (rescheduled or removed) must not keep a
   * finished session reachable, or young sessions outlive two collections by the thousand and V8
   * promotes them to the old generation, where they pile up as garbage.
   */
  readonly #timers = new DeadlineHeap<number>();
  /** Copies whose client has sent its SYN and nothing else yet: the first to go at the cap. */
  readonly #halfOpen = new HalfOpenCopies<Copy>();
  /** The `-c` ranges by family, and how many addresses each family's hold. */
  readonly #clients4: readonly AddressRange[];
  readonly #clients6: readonly AddressRange[];
  readonly #clientsTotal4: number;
  readonly #clientsTotal6: number;
  /** Copies in `#byReply` that are over but not yet `finished` (a `--compare` session judging its turns). */
  #endedOpen = 0;
  #nextSweep = 0;
  #pass = 0;
  /** The address `#pickEndpoint` picked last, read at once by `#open`. */
  #pickedAddress: Address = 0;
  /** While set, no new session is opened; open ones go on (`copy --max-memory`). */
  paused = false;
  readonly #sink: (endpoints: SessionEndpoints, tcp: TcpRepr) => void;

  constructor(readonly plan: CopyPlan, readonly out: TableSink) {
    this.#originals = plan.mappings.map(() => new EndpointMap());
    this.#lingeringOriginals = plan.mappings.map(() => new EndpointMap());
    this.#lingeringCopies = new LingeringCopies(plan.mappings);
    this.#dead = plan.mappings.map(() => new EndpointMap());
    this.#clients4 = plan.clients.filter((range) => addressFamily(range.first) === 4);
    this.#clients6 = plan.clients.filter((range) => addressFamily(range.first) === 6);
    this.#clientsTotal4 = this.#clients4.reduce((sum, range) => sum + range.count, 0);
    this.#clientsTotal6 = this.#clients6.reduce((sum, range) => sum + range.count, 0);
    this.#sink = (endpoints, tcp) => out.segment(endpoints, tcp);
  }

  /** Sessions being copied now. */
  get active(): number {
    return this.#byReply.size - this.#endedOpen;
  }

  /**
   * Sessions over but still holding their client address and port (`lingerMs`, as TCP's TIME-WAIT);
   * they count against `maxSessions` with the active ones.
   */
  get lingering(): number {
    return this.#endedOpen + this.#lingeringCopies.size;
  }

  /**
   * Whether `count` more sessions fit under `maxSessions` now, lingering ones included, as a new
   * session's copies must. Being `paused` is apart from it.
   */
  hasRoomFor(count: number): boolean {
    return this.#byReply.size + this.#lingeringCopies.size + count <= this.plan.maxSessions;
  }

  /** Client bytes held by all sessions, for the memory guard and stats. */
  get buffered(): number {
    let total = 0;
    for (const copy of this.#byReply.values()) total += copy.session.buffered;
    return total;
  }

  /**
   * A packet a client sent to the online server, with the addresses from its IP header (and, for IPv6,
   * its traffic class and flow label, which the copies keep). `tcp` needs ports too, to find the session.
   */
  onCapture(
    source: Address,
    destination: Address,
    tcp: SegmentIn & { readonly srcPort: number; readonly dstPort: number },
    now: number,
    flowInfo = 0,
  ): void {
    this.counters.packetsCaptured++;
    const mappingIndex = this.#mappingFor(destination, tcp.dstPort);
    if (mappingIndex < 0) return;
    const port = tcp.srcPort;
    if (!this.#sampled(source, port)) {
      if (tcp.flags & TcpFlag.SYN && !(tcp.flags & TcpFlag.ACK)) this.counters.sessionsSkippedByRate++;
      return;
    }
    const originals = this.#originals[mappingIndex];
    const original = originals.get(source, port);
    if (original !== undefined) {
      if (!startsSession(original.clientIsn, tcp)) {
        original.lastSeen = Math.ceil(now);
        for (const copy of original.copies) {
          copy.session.onClient(tcp, now);
          this.#settle(copy);
        }
        return;
      }
      this.#detach(original);
    } else {
      const lingeringOriginals = this.#lingeringOriginals[mappingIndex];
      const slot = lingeringOriginals.get(source, port);
      if (slot !== undefined) {
        // A late packet of a session whose copies are all over: nothing of it goes to the target any more.
        if (!startsSession(this.#lingeringCopies.clientIsn(slot), tcp)) return;
        lingeringOriginals.delete(source, port); // a new connection from the port: its copies take others
      }
    }
    const flags = tcp.flags;
    const isSyn = (flags & TcpFlag.SYN) !== 0 && !(flags & TcpFlag.ACK);
    const dead = this.#dead[mappingIndex];
    const tombstone = dead.get(source, port);
    if (tombstone !== undefined && !isSyn) {
      tombstone.lastSeen = Math.ceil(now);
      if (flags & (TcpFlag.RST | TcpFlag.FIN)) this.#forgetDead(tombstone);
      return;
    }
    if (tombstone !== undefined) this.#forgetDead(tombstone);
    // No session holds the client's address and port here any more (a new SYN detached the last one).
    if (!startsSession(undefined, tcp) || (!isSyn && this.plan.onlyFromSyn)) return;
    const opened = this.#open(mappingIndex, source, tcp, !isSyn, now, flowInfo);
    if (opened !== undefined) originals.set(source, port, opened);
  }

  /**
   * A packet the online server sent a client, with the addresses from its IP header: the online answer,
   * for the copies that compare answers. Only sessions seen from the client's side have copies.
   */
  onServerCapture(
    source: Address,
    destination: Address,
    tcp: SegmentIn & { readonly srcPort: number; readonly dstPort: number },
    now: number,
  ): void {
    const mappingIndex = this.#mappingFor(source, tcp.srcPort);
    if (mappingIndex < 0) return;
    const original = this.#originals[mappingIndex].get(destination, tcp.dstPort);
    if (original === undefined) return;
    for (const copy of original.copies) copy.session.onServer?.(tcp, now);
  }

  /** A reply header from intercept: the target talking to one of our client addresses. */
  onReply(destination: Address, tcp: SegmentIn & { readonly dstPort: number }, now: number): void {
    this.counters.repliesReceived++;
    const copy = this.#byReply.get(destination, tcp.dstPort);
    if (copy !== undefined) {
      copy.session.onTarget(tcp, now);
      this.#settle(copy);
      return;
    }
    const slot = this.#lingeringByReply.get(destination, tcp.dstPort);
    if (slot === undefined) {
      this.counters.repliesUnmatched++;
      return;
    }
    const lingering = this.#lingeringCopies;
    const answer = lingering.answer(slot, tcp.flags, now);
    if (answer !== undefined) this.out.segment(lingering.endpoints(slot), answer);
  }

  /**
   * The session toward `endpoints` changed outside the table's own calls (its connection had news):
   * counts its outcome and reschedules it, as after a captured packet.
   */
  changed(session: CopiedSession): void {
    const { clientAddress, clientPort } = session.endpoints;
    const copy = this.#byReply.get(clientAddress, clientPort);
    if (copy?.session === session) this.#settle(copy);
  }

  /**
   * The endpoints of every copy not yet over (lingering ones left out), to be told again to a listener
   * that lost them (an intercept that reconnected).
   */
  *openClients(): Iterable<SessionEndpoints> {
    for (const copy of this.#byReply.values()) {
      if (copy.session.outcome === undefined) yield copy.session.endpoints;
    }
  }

  /** Runs the timers due at `now`. */
  tick(now: number): void {
    while (this.#timers.nextAt <= now) {
      const at = this.#timers.nextAt;
      const copy = this.#copies[this.#timers.pop()];
      if (copy === undefined || copy.scheduledAt !== at) continue;
      copy.scheduledAt = UNSCHEDULED;
      copy.session.onTick(now);
      this.#settle(copy);
    }
    while (this.#lingeringCopies.nextEnd <= now) this.#endOldestLingering();
    if (now >= this.#nextSweep) {
      // Whole milliseconds, as the sessions' deadlines: `nextDeadline` then returns no heap number.
      this.#nextSweep = Math.ceil(now) + DEAD_SWEEP_MS;
      const idle = this.plan.session.idleTimeoutMs;
      for (const dead of this.#dead) {
        const expired = [...dead.values()].filter((original) => now - original.lastSeen > idle);
        for (const original of expired) this.#forgetDead(original);
      }
    }
  }

  /**
   * Starts another pass over the same recorded traffic (`copy --input --loop`): from now on packets open
   * new sessions even where an earlier pass saw the same client address, port and ISN, and the copies
   * take other client ports, so the target never mistakes them for an earlier pass's connections (still
   * open, or in TIME_WAIT). Sessions of earlier passes run on to their end.
   */
  startPass(): void {
    this.#pass++;
    for (const originals of this.#originals) originals.clear();
    for (const originals of this.#lingeringOriginals) originals.clear();
    for (const dead of this.#dead) dead.clear();
  }

  /** Entries in the timer heap, stale ones included: bounded by about twice the live sessions. */
  get timerEntries(): number {
    return this.#timers.size;
  }

  /** When `tick` next has something to do. */
  get nextDeadline(): number {
    return Math.min(this.#timers.nextAt, this.#lingeringCopies.nextEnd, this.#nextSweep);
  }

  /** Resets every session on the target and forgets them (shutdown). */
  abandonAll(now: number): void {
    for (const copy of [...this.#byReply.values()]) {
      copy.session.abandon(now);
      this.#settle(copy);
      this.#remove(copy); // unless settling removed it already: `#remove` looks
    }
    while (this.#lingeringCopies.size > 0) this.#endOldestLingering();
  }

  #mappingFor(destination: Address, port: number): number {
    const mappings = this.plan.mappings;
    for (let i = 0; i < mappings.length; i++) {
      const mapping = mappings[i];
      if (
        mapping.onlinePort === port &&
        (mapping.onlineAddress === undefined || mapping.onlineAddress === destination)
      ) {
        return i;
      }
    }
    return -1;
  }

  #sampled(address: Address, port: number): boolean {
    return sampled(this.plan.rate, address, port);
  }

  #open(
    mappingIndex: number,
    source: Address,
    tcp: SegmentIn & { readonly srcPort: number },
    takeOver: boolean,
    now: number,
    flowInfo: number,
  ): Original | undefined {
    // A refused session's later packets come here again as take-overs: only its SYN counts.
    if (this.paused) {
      if (!takeOver) this.counters.sessionsRefusedWhilePaused++;
      return undefined;
    }
    while (!this.hasRoomFor(this.plan.multiply) && this.#evictHalfOpen(now));
    if (!this.hasRoomFor(this.plan.multiply)) {
      if (!takeOver) this.counters.sessionsRefusedAtCap++;
      return undefined;
    }
    const mapping = this.plan.mappings[mappingIndex];
    const family = addressFamily(mapping.targetAddress);
    const clientsTotal = family === 4 ? this.#clientsTotal4 : this.#clientsTotal6;
    if (clientsTotal === 0 && addressFamily(source) !== family && this.out.targetSeesClients !== false) {
      if (!takeOver) this.counters.sessionsFamilyUnreachable++;
      return undefined;
    }
    if (family === 6 && this.out.ipv6Replies?.() === false) {
      if (!takeOver) this.counters.sessionsWithoutIpv6Intercept++;
      return undefined;
    }
    const original = this.#newOriginal(mappingIndex, source, tcp.srcPort, sessionIsn(tcp), now);
    for (let index = 0; index < this.plan.multiply; index++) {
      const clientPort = this.#pickEndpoint(source, tcp.srcPort, index, family, clientsTotal);
      if (clientPort < 0) {
        // Its later packets come here again as take-overs, as a refused session's do: only its SYN counts.
        if (!takeOver) this.counters.sessionsWithoutAddress++;
        continue;
      }
      const clientAddress = this.#pickedAddress;
      const endpoints = {
        clientAddress,
        clientPort,
        targetAddress: mapping.targetAddress,
        targetPort: mapping.targetPort,
        flowInfo,
      };
      this.out.clientOpened(endpoints);
      const session = this.out.open?.(endpoints, tcp, takeOver, now) ??
        Session.open(endpoints, this.plan.session, this.#sink, tcp, takeOver, now);
      const copy = this.#newCopy(session, original, clientAddress, clientPort);
      this.#byReply.set(copy.address, copy.port, copy);
      original.copies.push(copy);
      if (session.halfOpen) this.#halfOpen.add(copy.id, copy);
      this.counters.sessionsCopied++;
      this.#settle(copy);
    }
    if (original.copies.length > 0) return original;
    this.#release(original);
    return undefined;
  }

  #newOriginal(
    mappingIndex: number,
    address: Address,
    port: number,
    clientIsn: number,
    now: number,
  ): Original {
    const original = this.#freeOriginals.pop();
    if (original === undefined) {
      return { mappingIndex, address, port, clientIsn, copies: [], lastSeen: Math.ceil(now), free: false };
    }
    original.mappingIndex = mappingIndex;
    original.address = address;
    original.port = port;
    original.clientIsn = clientIsn;
    original.lastSeen = Math.ceil(now);
    original.free = false;
    return original;
  }

  /** Keeps `original` for a new session once no map and no copy holds it. */
  #release(original: Original): void {
    const { mappingIndex, address, port } = original;
    if (
      original.free || original.copies.length > 0 ||
      this.#originals[mappingIndex].get(address, port) === original ||
      this.#dead[mappingIndex].get(address, port) === original || this.#freeOriginals.length >= KEPT_ORIGINALS
    ) return;
    original.free = true;
    this.#freeOriginals.push(original);
  }

  /** Forgets a failed session's tombstone. */
  #forgetDead(original: Original): void {
    this.#dead[original.mappingIndex].delete(original.address, original.port);
    this.#release(original);
  }

  /**
   * The client port copy `index` of a session uses, its address (of the target's `family`) left in
   * `#pickedAddress` (no object per copy), or -1 when every probe is taken: stable for a given client, and
   * probed onward when another copy already holds it.
   */
  #pickEndpoint(
    address: Address,
    port: number,
    index: number,
    family: 4 | 6,
    clientsTotal: number,
  ): number {
    const shift = this.plan.portShift * this.plan.multiply + index + (this.#pass * PASS_STRIDE) % 64512;
    for (let probe = 0; probe < PROBES; probe++) {
      const candidatePort = copyPort(port, shift + probe);
      const candidateAddress = clientsTotal === 0
        ? address
        : rangeAddress(family === 4 ? this.#clients4 : this.#clients6, clientsTotal, address, probe);
      if (
        !this.#byReply.has(candidateAddress, candidatePort) &&
        !this.#lingeringByReply.has(candidateAddress, candidatePort)
      ) {
        this.#pickedAddress = candidateAddress;
        return candidatePort;
      }
    }
    return -1;
  }

  /** After an event: counts a new outcome, forgets finished copies, reschedules the rest. */
  #settle(copy: Copy): void {
    const session = copy.session;
    if (session.outcome !== undefined && !copy.counted) {
      copy.counted = true;
      this.#endedOpen++;
      this.counters.outcomes[session.outcome]++;
      this.counters.retransmissions += session.retransmissions;
      const original = copy.original;
      this.out.ended?.(
        original.address,
        original.port,
        session.endpoints,
        session.outcome,
        session,
      );
      // A half-open session's client may yet complete its handshake: its data is taken over then.
      const failed = session.outcome !== "completed" && session.outcome !== "reset-by-client" &&
        session.outcome !== "half-open";
      let allOver = true;
      for (const other of original.copies) allOver &&= other.session.outcome !== undefined;
      const originals = this.#originals[original.mappingIndex];
      if (failed && allOver && originals.get(original.address, original.port) === original) {
        originals.delete(original.address, original.port);
        this.#lingeringOriginals[original.mappingIndex].delete(original.address, original.port);
        this.#dead[original.mappingIndex].set(original.address, original.port, original);
      }
    }
    if (!session.halfOpen) this.#halfOpen.delete(copy.id);
    // A half-open copy does not linger: under a SYN flood its place is wanted at once.
    if (session.finished || session.outcome === "half-open") {
      const until = session.lingersUntil;
      if (until === undefined || session.outcome === "half-open") this.#remove(copy);
      else this.#linger(copy, until, session.finalAck?.());
      return;
    }
    // A deadline already past (a client's reset due at once: -Infinity) is due now, at 0 as at any time.
    const at = Math.max(session.nextDeadline, 0);
    if (at !== Infinity && (copy.scheduledAt === UNSCHEDULED || at < copy.scheduledAt)) {
      copy.scheduledAt = at;
      this.#timers.push(at, copy.id);
      this.#dropStaleTimers();
    }
  }

  /**
   * A rescheduled or removed session leaves its old entry in the timer heap until that deadline
   * (often the idle timeout, minutes away). Once such entries outnumber the live sessions, the heap
   * is rebuilt from the live ones.
   */
  #dropStaleTimers(): void {
    if (this.#timers.size <= 2 * this.#byReply.size + STALE_TIMERS) return;
    this.#timers.clear();
    for (const copy of this.#byReply.values()) {
      if (copy.scheduledAt !== UNSCHEDULED) this.#timers.push(copy.scheduledAt, copy.id);
    }
  }

  /** Ends the oldest half-open copy to make room; `false` when there is none. */
  #evictHalfOpen(now: number): boolean {
    const copy = this.#halfOpen.takeOldest();
    if (copy === undefined) return false;
    this.counters.sessionsHalfOpenEvicted++;
    copy.session.abandon(now, "half-open");
    this.#settle(copy);
    return true;
  }

  /** A copy for `session`, at a free id if there is one. */
  #newCopy(session: CopiedSession, original: Original, address: Address, port: number): Copy {
    const id = this.#freeIds.pop() ?? this.#copies.length;
    const copy: Copy = { id, session, original, address, port, scheduledAt: UNSCHEDULED, counted: false };
    if (id === this.#copies.length) this.#copies.push(copy);
    else this.#copies[id] = copy;
    return copy;
  }

  /** Forgets `copy` and lets its client address and port go. */
  #remove(copy: Copy): void {
    if (this.#byReply.get(copy.address, copy.port) !== copy) return;
    this.#leave(copy);
    this.out.clientClosed(copy.session.endpoints);
    const original = copy.original;
    const originals = this.#originals[original.mappingIndex];
    if (original.copies.length === 0 && originals.get(original.address, original.port) === original) {
      originals.delete(original.address, original.port);
    }
    this.#free(copy);
  }

  /**
   * `copy` is over and lingers until `until`, its client address and port still taken: a slot of
   * `#lingeringCopies` takes its place, answering the target with `finalAck` (read at once) when it repeats
   * its FIN. It holds its original's client address and port too (the latest of its copies to linger does),
   * so that a late packet of the session is not taken over as a new one once the original is gone.
   */
  #linger(copy: Copy, until: number, finalAck: TcpRepr | undefined): void {
    this.#leave(copy);
    const original = copy.original;
    const lingering = this.#lingeringCopies;
    const slot = lingering.add(
      until,
      copy.address,
      copy.port,
      original.mappingIndex,
      copy.session.endpoints.flowInfo ?? 0,
      finalAck,
    );
    this.#lingeringByReply.set(copy.address, copy.port, slot);
    const originals = this.#originals[original.mappingIndex];
    if (originals.get(original.address, original.port) === original) {
      lingering.holdOriginal(slot, original.address, original.port, original.clientIsn);
      this.#lingeringOriginals[original.mappingIndex].set(original.address, original.port, slot);
      if (original.copies.length === 0) originals.delete(original.address, original.port);
    }
    this.#free(copy);
  }

  /** The oldest lingering copy's time is up: its client address and port go, and its original's. */
  #endOldestLingering(): void {
    const lingering = this.#lingeringCopies;
    const slot = lingering.oldest;
    const address = lingering.address(slot);
    const port = lingering.port(slot);
    this.#lingeringByReply.delete(address, port);
    if (lingering.holdsOriginal(slot)) {
      const originals = this.#lingeringOriginals[lingering.target(slot)];
      const originalAddress = lingering.originalAddress(slot);
      const originalPort = lingering.originalPort(slot);
      // Unless a later copy of it lingers on, or a new connection from the client's port came (or a new pass).
      if (originals.get(originalAddress, originalPort) === slot) {
        originals.delete(originalAddress, originalPort);
      }
    }
    this.out.clientClosed(lingering.endpoints(slot));
    lingering.dropOldest();
  }

  /** Takes `copy` out of `#byReply` and of its original's copies. */
  #leave(copy: Copy): void {
    this.#byReply.delete(copy.address, copy.port);
    this.#halfOpen.delete(copy.id);
    if (copy.counted) this.#endedOpen--;
    const original = copy.original;
    // A new array, not a splice: `onCapture` may be looping over the old one. Except for the last copy
    // (the only one without -n): emptied in place, which ends such a loop as it should, and spares a new
    // array per session ended, garbage by the thousand with a new connection per request. Popped, not
    // `length = 0`, which drops the array's backing store: the next session's push made a new one (152 B).
    const copies = original.copies;
    if (copies.length === 1 && copies[0] === copy) copies.pop();
    else original.copies = copies.filter((other) => other !== copy);
  }

  /** After `#leave` and what follows it: the copy's id, its session and its original serve new sessions. */
  #free(copy: Copy): void {
    this.#release(copy.original);
    // Nothing holds the copy now but a loop in `onCapture` over the original's copies, which ends before
    // any new session takes its session (timer entries hold its id, stale once it is no more this copy's).
    copy.scheduledAt = UNSCHEDULED;
    copy.session.recycle?.();
    this.#copies[copy.id] = undefined;
    this.#freeIds.push(copy.id);
  }

  /**
   * The client reused its port for a new connection, so the old one is over online. Its copies may
   * still wait for the target with requests to send, or linger to answer a repeated FIN: they go on
   * by themselves, and the new connection's copies take other client ports, so the target never
   * meets a new connection on an address and port its last one has not let go of.
   */
  #detach(original: Original): void {
    this.#originals[original.mappingIndex].delete(original.address, original.port);
    this.#lingeringOriginals[original.mappingIndex].delete(original.address, original.port);
    this.#release(original);
  }
}

/**
 * The client port a copy takes: `port` itself for `shift` 0, else spread over the ephemeral ports by
 * `shift` (which says which copy, of which `-f` process, at which probe).
 */
export function copyPort(port: number, shift: number): number {
  return shift === 0
    ? port
    : FIRST_EPHEMERAL + (((port - FIRST_EPHEMERAL + shift * PORT_STRIDE) % 64512) + 64512) % 64512;
}

/**
 * The address a client at `address` takes from `ranges` (`total` addresses in all), stable for a given
 * client; `probe` moves on to the next one.
 */
export function rangeAddress<A extends Address>(
  ranges: readonly { readonly first: A; readonly count: number }[],
  total: number,
  address: Address,
  probe: number,
): A {
  let index = (mix32(addressHash(address)) + probe) % total;
  for (const range of ranges) {
    if (index < range.count) {
      const first: Address = range.first;
      if (typeof first === "number") return ((first + index) | 0) as A;
      // An IPv6 range runs through its low 32 bits (the last two 16-bit groups). The cached string, not
      // a new one per session: a joined string is flattened again when a map hashes it.
      return ipv6AddressOfWords(
        first.charCodeAt(0) << 16 | first.charCodeAt(1),
        first.charCodeAt(2) << 16 | first.charCodeAt(3),
        first.charCodeAt(4) << 16 | first.charCodeAt(5),
        (first.charCodeAt(6) << 16 | first.charCodeAt(7)) + index,
      ) as A;
    }
    index -= range.count;
  }
  throw new Error("unreachable: index within the ranges' total");
}

/** Whether the client at `address`:`port` is among the `rate` percent copied: a stable choice. */
export function sampled(rate: number, address: Address, port: number): boolean {
  return rate >= 100 || mix32(addressHash(address) ^ mix32(port + 0x9e3779b9)) % 100 < rate;
}
