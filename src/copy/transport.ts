/**
 * How `copy`'s copies reach the target: packets through a raw socket with the target's reply headers
 * from intercept, or ordinary connections (`--connect`).
 */
import type { CounterValues, Logger } from "../ops/mod.ts";
import type { CopiedSession, SessionEndpoints, SessionTable, TableSink } from "../session/mod.ts";
import { formatEndpoint } from "../wire/mod.ts";
import { errnoMessage } from "../../ffi/mod.ts";
import { beginsWithHttp2Preface, ConnectSession, ConnectTransport, Http2Sink } from "../connect/mod.ts";
import { ComparedSession, CompareRun } from "./comparing.ts";
import { InterceptLinks } from "./intercept_link.ts";
import { type CopyOptions, hasIpv6Target } from "./options.ts";
import type { TRANSPORT_COUNTERS } from "./counters.ts";
import type { PacketSender } from "./sender.ts";

/** How copies reach the target: what the table's sink does, and what is opened, closed and counted. */
/** The transport's counters: every transport gives each, 0 where it has none. */
export type TransportStats = CounterValues<typeof TRANSPORT_COUNTERS>;

export interface Transport {
  readonly sink: TableSink;
  start(): Promise<void>;
  /** Sends what is queued and closes everything. */
  close(): Promise<void>;
  stats(): TransportStats;
  /** Intercepts with at least one connection up now; `undefined` for a transport that needs none. */
  readonly interceptsConnected: number | undefined;
  /** How a copy reached the target, for the per-session debug line. */
  describe(endpoints: SessionEndpoints, session: CopiedSession): string;
  /**
   * The live capture's descriptors (none once it is closed), for a transport whose loop may sit in
   * poll(2) on the JS thread: it stops as soon as packets are ready.
   */
  capturing?(fds: readonly number[]): void;
}

/** Every transport counter at 0, for a transport to fill in its own. */
const NO_TRANSPORT_COUNTS: TransportStats = {
  "packets-sent": 0,
  "packets-send-dropped": 0,
  "replies-received": 0,
  "replies-unmatched": 0,
  "registrations-lost": 0,
  "connections-open": 0,
  "answer-bytes": 0,
  "turns-answered": 0,
  "turns-short": 0,
  "turns-lagged": 0,
  "bind-failures": 0,
  "h2-sessions": 0,
  "h2-streams-opened": 0,
  "h2-streams-held": 0,
  "h2-streams-refused": 0,
  "h2-streams-reset": 0,
  "h2-streams-unsent": 0,
  "turns-compared": 0,
  "turns-same": 0,
  "turns-different": 0,
  "turns-noise": 0,
  "turns-no-answer": 0,
  "turns-extra-answer": 0,
  "turns-uncompared": 0,
};

/**
 * What a transport needs of the copy that runs it (`CopyRuntime`): its table and log, and where the
 * news it receives goes. An interface, so the runtime's module and the transports' do not import each other.
 */
export interface TransportHost {
  readonly table: SessionTable;
  readonly log: Logger;
  /** A reply record from intercept (64 bytes IPv4, 84 IPv6), a view valid during the call only. */
  onReplyRecord(record: Uint8Array): void;
  /** `session` changed outside the table's own calls (its connection had news). */
  onSessionChanged(session: CopiedSession): void;
}

/** The packet transport: segments through a raw socket, the target's reply headers from intercept. */
export class PacketTransport implements Transport {
  readonly sink: TableSink;
  readonly #sender: PacketSender;
  readonly #links: InterceptLinks;
  readonly #runtime: TransportHost;
  /**
   * Sessions whose client began with the HTTP/2 preface (by their endpoints, which a session keeps for
   * its life): a retransmitted preface counts once. The target's frames never come this way.
   */
  readonly #http2Sessions = new WeakSet<SessionEndpoints>();
  #http2SessionCount = 0;

  /** @param sender the raw socket (or `--send-interface`), the runtime's: it closes it */
  constructor(options: CopyOptions, log: Logger, runtime: TransportHost, sender: PacketSender) {
    this.#runtime = runtime;
    this.#sender = sender;
    this.#links = new InterceptLinks(
      options.intercepts,
      options.connections,
      (record) => runtime.onReplyRecord(record),
      () => runtime.table.openClients(),
      log,
      options.lonely,
      options.secret,
      hasIpv6Target(options.mappings),
    );
    this.sink = {
      segment: (endpoints, tcp) => {
        if (tcp.payload !== undefined && beginsWithHttp2Preface(tcp.payload)) this.#sawHttp2(endpoints);
        this.#sender.send(endpoints.clientAddress, endpoints.targetAddress, tcp, endpoints.flowInfo);
      },
      clientOpened: (endpoints) => this.#links.clientOpened(endpoints),
      clientClosed: (endpoints) => this.#links.clientClosed(endpoints),
      ipv6Replies: () => this.#links.ipv6Granted,
    };
  }

  #sawHttp2(endpoints: SessionEndpoints): void {
    if (this.#http2Sessions.has(endpoints)) return;
    this.#http2Sessions.add(endpoints);
    this.#http2SessionCount++;
  }

  async start(): Promise<void> {
    try {
      await this.#links.connect();
    } catch (error) {
      this.#links.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#links.drain();
    this.#links.close();
  }

  get interceptsConnected(): number {
    return this.#links.connectedIntercepts;
  }

  stats(): TransportStats {
    const counters = this.#runtime.table.counters;
    return {
      ...NO_TRANSPORT_COUNTS,
      "packets-sent": this.#sender.sent,
      "packets-send-dropped": this.#sender.dropped,
      "replies-received": counters.repliesReceived,
      "replies-unmatched": counters.repliesUnmatched,
      "registrations-lost": this.#links.registrationsLost,
      "h2-sessions": this.#http2SessionCount,
    };
  }

  describe(endpoints: SessionEndpoints): string {
    return `as ${formatEndpoint(endpoints.clientAddress, endpoints.clientPort)} to ` +
      `${formatEndpoint(endpoints.targetAddress, endpoints.targetPort)}`;
  }
}

/**
 * The connection transport (`--connect`): each copy is a connection of this host's own, carrying the
 * client's bytes in the conversation's turns; the target's answers are read and counted.
 */
export class ConnectionTransport implements Transport {
  readonly sink: TableSink;
  readonly #connections: ConnectTransport;
  /** The connections seen through HTTP/2 gates: h2c sessions keep within the target's stream limit. */
  readonly #http2: Http2Sink;
  /**
   * The baseline's connections (`--compare` with `--baseline`) keep within its own limits; its streams are
   * not counted, so that the h2 counters tell of the target alone.
   */
  readonly #baselineHttp2: Http2Sink;
  /** The target's bytes, and turns over by how (`turnOver`'s `end`). */
  #answerBytes = 0;
  #turnsAnswered = 0;
  #turnsShort = 0;
  #turnsLagged = 0;
  /** With `--compare`: the comparison, and the compared session each connection's session belongs to. */
  readonly #compare: CompareRun | undefined;
  readonly #compared = new Map<ConnectSession, ComparedSession>();
  readonly #target: string;

  constructor(options: CopyOptions, runtime: TransportHost) {
    const connect = options.connect!;
    this.#compare = connect.compare === undefined ? undefined : new CompareRun(connect.compare, runtime.log);
    this.#target = options.mappings.map((m) => formatEndpoint(m.targetAddress, m.targetPort)).join(",");
    const compared = this.#compared;
    this.#connections = new ConnectTransport(
      connect.bind,
      (session) => {
        const pair = compared.get(session);
        pair?.settle(performance.now());
        runtime.onSessionChanged(pair ?? session);
      },
      {
        // Only a comparison and an HTTP/2 gate look at the target's bytes; the rest are counted.
        readsAnswers: (session) => compared.has(session) || this.#http2.readsAnswers(session),
        answer: (session, turn, length, bytes) => {
          const pair = compared.get(session);
          const toBaseline = pair !== undefined && session !== pair.candidate;
          if (!toBaseline) this.#answerBytes += length;
          if (bytes === undefined) return;
          (toBaseline ? this.#baselineHttp2 : this.#http2).answer(session, bytes);
          pair?.answer(session, turn, bytes);
        },
        turnOver: (session, _turn, end) => {
          const pair = compared.get(session);
          if (pair !== undefined && session !== pair.candidate) return;
          if (end === "answered") this.#turnsAnswered++;
          else if (end === "quiet" || end === "no-answer") this.#turnsShort++;
          else if (end === "lag") this.#turnsLagged++;
        },
        wrote: (session, turn, bytes) => compared.get(session)?.wrote(session, turn, bytes),
        turnEnded: (session, turn, expected) => compared.get(session)?.turnEnded(session, turn, expected),
      },
    );
    this.#http2 = new Http2Sink(this.#connections, options.session.maxBuffered);
    this.#baselineHttp2 = new Http2Sink(this.#connections, options.session.maxBuffered);
    const config = { ...options.session, answerGapMs: connect.answerGapMs };
    const baseline = connect.compare?.baseline;
    this.sink = {
      segment: () => {},
      clientOpened: () => {},
      clientClosed: () => {},
      targetSeesClients: false,
      open: (endpoints, first, takeOver, now) => {
        const candidate = new ConnectSession(endpoints, config, this.#http2, first, takeOver, now);
        if (this.#compare === undefined) return candidate;
        const toBaseline = baseline === undefined ? undefined : new ConnectSession(
          { ...endpoints, targetAddress: baseline.address, targetPort: baseline.port },
          config,
          this.#baselineHttp2,
          first,
          takeOver,
          now,
        );
        const pair = new ComparedSession(candidate, toBaseline, this.#compare, (over) => this.#forget(over));
        compared.set(candidate, pair);
        if (toBaseline !== undefined) compared.set(toBaseline, pair);
        return pair;
      },
    };
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.#connections.closeAll();
    await this.#compare?.finish(this.#target);
  }

  /** A compared session is over: its connections' sessions are forgotten with it. */
  #forget(session: ComparedSession): void {
    this.#compared.delete(session.candidate);
    if (session.baseline !== undefined) this.#compared.delete(session.baseline);
  }

  capturing(fds: readonly number[]): void {
    this.#connections.endLooksOn(fds);
  }

  /** Copies over connections of their own hear no intercept. */
  readonly interceptsConnected = undefined;

  stats(): TransportStats {
    const h2 = this.#http2.counts;
    return {
      ...NO_TRANSPORT_COUNTS,
      "packets-sent": this.#connections.writes,
      "replies-received": this.#connections.reads,
      "connections-open": this.#connections.open,
      "answer-bytes": this.#answerBytes,
      "turns-answered": this.#turnsAnswered,
      "turns-short": this.#turnsShort,
      "turns-lagged": this.#turnsLagged,
      "bind-failures": this.#connections.bindFailures,
      "h2-sessions": h2.sessions,
      "h2-streams-opened": h2.streamsOpened,
      "h2-streams-held": h2.streamsHeld,
      "h2-streams-refused": h2.streamsRefused,
      "h2-streams-reset": h2.streamsReset,
      "h2-streams-unsent": h2.streamsUnsent,
      ...this.#compare?.stats(),
    };
  }

  describe(endpoints: SessionEndpoints, session: CopiedSession): string {
    const target = formatEndpoint(endpoints.targetAddress, endpoints.targetPort);
    if (!(session instanceof ConnectSession)) return `to ${target}`;
    // A connect that failed says why: one failing at once (no route, no port) is not a silent target.
    const firstByte = session.connectErrno !== 0
      ? `connect failed: ${errnoMessage(session.connectErrno)}`
      : session.firstByteAt === undefined || session.connectedAt === undefined
      ? "no answer"
      : `first byte after ${(session.firstByteAt - session.connectedAt).toFixed(1)} ms`;
    return `over a connection to ${target}: ${session.answerBytes} bytes answered, ` +
      `${session.turnsAnswered}/${session.turnsExpected} turns answered in full, ${firstByte}`;
  }
}
