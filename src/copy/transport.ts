/**
 * How `copy`'s copies reach the target: packets through a raw socket with the target's reply headers
 * from intercept, or ordinary connections (`--connect`).
 */
import type { Logger } from "../cli/log.ts";
import type { CopiedSession, SessionEndpoints, TableSink } from "../session/mod.ts";
import { formatIpv4 } from "../wire/mod.ts";
import { ConnectSession, ConnectTransport } from "../connect/mod.ts";
import { InterceptLinks } from "./intercept_link.ts";
import type { CopyOptions } from "./options.ts";
import type { CopyRuntime, CopyStats } from "./runtime.ts";
import { PacketSender } from "./sender.ts";

/** How copies reach the target: what the table's sink does, and what is opened, closed and counted. */
export interface Transport {
  readonly sink: TableSink;
  start(): Promise<void>;
  /** Sends what is queued and closes everything. */
  close(): Promise<void>;
  stats(): CopyStats;
  /** How a copy reached the target, for the per-session debug line. */
  describe(endpoints: SessionEndpoints, session: CopiedSession): string;
}

/** The packet transport: segments through a raw socket, the target's reply headers from intercept. */
export class PacketTransport implements Transport {
  readonly sink: TableSink;
  readonly #sender = new PacketSender();
  readonly #links: InterceptLinks;
  readonly #runtime: CopyRuntime;

  constructor(options: CopyOptions, log: Logger, runtime: CopyRuntime) {
    this.#runtime = runtime;
    this.#links = new InterceptLinks(
      options.intercepts,
      options.connections,
      (record) => runtime.onReplyRecord(record),
      () => runtime.table.registrations(),
      log,
    );
    this.sink = {
      segment: (endpoints, tcp) => this.#sender.send(endpoints.clientAddress, endpoints.targetAddress, tcp),
      registration: (registration) => this.#links.register(registration),
    };
  }

  async start(): Promise<void> {
    try {
      await this.#links.connect();
    } catch (error) {
      this.#links.close();
      this.#sender.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#links.drain();
    this.#links.close();
    this.#sender.close();
  }

  stats(): CopyStats {
    return {
      sent: this.#sender.sent,
      "send-dropped": this.#sender.dropped,
      replies: this.#runtime.table.counters.repliesReceived,
      "replies-unmatched": this.#runtime.table.counters.repliesUnmatched,
      "registrations-lost": this.#links.registrationsLost,
    };
  }

  describe(endpoints: SessionEndpoints): string {
    return `as ${formatIpv4(endpoints.clientAddress)}:${endpoints.clientPort} to ` +
      `${formatIpv4(endpoints.targetAddress)}:${endpoints.targetPort}`;
  }
}

/**
 * The connection transport (`--connect`): each copy is a connection of this host's own, carrying the
 * client's bytes in the conversation's turns; the target's answers are read and counted.
 */
export class ConnectionTransport implements Transport {
  readonly sink: TableSink;
  readonly #connections: ConnectTransport;
  /** The target's bytes, and turns over by how (`turnOver`'s `end`). */
  #answerBytes = 0;
  #turnsAnswered = 0;
  #turnsShort = 0;
  #turnsLagged = 0;

  constructor(options: CopyOptions, runtime: CopyRuntime) {
    const connect = options.connect!;
    this.#connections = new ConnectTransport(
      connect.bind,
      (session) => runtime.onSessionChanged(session),
      {
        answer: (_session, _turn, bytes) => {
          this.#answerBytes += bytes.length;
        },
        turnOver: (_session, _turn, end) => {
          if (end === "answered") this.#turnsAnswered++;
          else if (end === "quiet" || end === "no-answer") this.#turnsShort++;
          else if (end === "lag") this.#turnsLagged++;
        },
      },
    );
    const config = { ...options.session, answerGapMs: connect.answerGapMs };
    this.sink = {
      segment: () => {},
      registration: () => {},
      open: (endpoints, first, takeOver, now) =>
        new ConnectSession(endpoints, config, this.#connections, first, takeOver, now),
    };
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.#connections.closeAll();
  }

  stats(): CopyStats {
    return {
      sent: this.#connections.writes,
      replies: this.#connections.reads,
      connections: this.#connections.open,
      "answer-bytes": this.#answerBytes,
      "turns-answered": this.#turnsAnswered,
      "turns-short": this.#turnsShort,
      "turns-lagged": this.#turnsLagged,
      "bind-failed": this.#connections.bindFailures,
    };
  }

  describe(endpoints: SessionEndpoints, session: CopiedSession): string {
    const target = `${formatIpv4(endpoints.targetAddress)}:${endpoints.targetPort}`;
    if (!(session instanceof ConnectSession)) return `to ${target}`;
    const firstByte = session.firstByteAt === undefined || session.connectedAt === undefined
      ? "no answer"
      : `first byte after ${(session.firstByteAt - session.connectedAt).toFixed(1)} ms`;
    return `over a connection to ${target}: ${session.answerBytes} bytes answered, ` +
      `${session.turnsAnswered}/${session.turnsExpected} turns answered in full, ${firstByte}`;
  }
}
