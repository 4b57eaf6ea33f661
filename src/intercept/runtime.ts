/**
 * intercept's I/O, owned by one object: the captures of the target's replies, the listener for copy
 * connections, the connected copies and the counters. Routing decisions are `RouteTable`'s, bytes on the
 * wire are `src/protocol/`'s.
 */
import { Capture } from "../../ffi/mod.ts";
import type { Logger } from "../cli/log.ts";
import { errorMessage, FatalError } from "../errors.ts";
import { decodeTcpPacket, Ipv4View, isWireError } from "../wire/mod.ts";
import {
  encodeExtensionFrame,
  encodeReplyRecord,
  ExtensionFrameType,
  type Hello,
  type PeerRecord,
  PROTOCOL_VERSION,
  ProtocolError,
  RegistrationType,
  REPLY_RECORD_LENGTH,
} from "../protocol/mod.ts";
import { CopyPeer, type PeerCounters } from "./peer.ts";
import { type RouteCounters, routeKey, RouteTable } from "./routes.ts";
import { sleep } from "../sleep.ts";

/** What an `InterceptRuntime` needs, already checked. */
export interface InterceptOptions {
  /** Interfaces to capture replies on, one capture each. */
  devices: string[];
  /** BPF expression selecting the target's replies. */
  filter: string;
  /** Kernel buffer of each capture, in bytes. */
  captureBuffer: number;
  /** Address and port to accept copy connections on. */
  bind: string;
  port: number;
}

/** Link header + largest IPv4 header + largest TCP header fit with room to spare: payload is never sent. */
const SNAPLEN = 256;
/** Packets handled before the writes are started and the event loop gets a turn (registrations, accepts). */
const BATCH = 1024;
/** How long a capture loop sleeps without packets before it looks at the clock and the stop flag. */
const IDLE_WAIT_MS = 100;
/**
 * After a round of at least this many replies, the next ones gather for a millisecond before the wait on
 * the poller thread: each wait costs two thread hand-offs, and under load a round would otherwise be a
 * reply or two: the poller thread had a fifth of intercept's samples in perf at 8,000 new connections/s,
 * and gathering halved intercept's CPU there. Replies reach copy up to a millisecond later, only while
 * busy; a quiet intercept waits for each reply as before.
 */
const BUSY_PACKETS = 4;
const GATHER_MS = 1;
const READ_BUFFER_LENGTH = 16 * 1024;

/** Totals over a run, for the summary line, stats and metrics. */
export interface InterceptTotals {
  captured: number;
  notIpv4Tcp: number;
  malformed: number;
  connections: number;
  garbageConnections: number;
}

export type { PeerCounters };

/** A live look into a running intercept, for stats and metrics. */
export interface InterceptView {
  readonly totals: Readonly<InterceptTotals>;
  readonly routes: Readonly<RouteCounters>;
  /** Client routes registered now. */
  routeCount(): number;
  /** Replies waiting for their registration now. */
  waiting(): number;
  /** Packets the kernel dropped before the captures read them. */
  kernelDropped(): number;
  /** The copy connections now. */
  peers(): Iterable<PeerCounters>;
}

/** A running intercept: its captures, its listener, the copies connected to it, and its counters. */
export class InterceptRuntime implements InterceptView {
  readonly totals: InterceptTotals = {
    captured: 0,
    notIpv4Tcp: 0,
    malformed: 0,
    connections: 0,
    garbageConnections: 0,
  };
  readonly registry = new RouteTable<CopyPeer>();
  readonly #peers = new Set<CopyPeer>();
  readonly #record = new Uint8Array(REPLY_RECORD_LENGTH);
  /** False once stopping: from then on nothing is logged per connection, and the loops wind down. */
  #running = true;
  #kernelDropped = 0;
  #capturesOpen = true;
  readonly #onWriteFailure = (peer: CopyPeer, error: unknown) =>
    this.#closePeer(peer, `copy ${peer.name} lost: ${errorMessage(error)}`);

  private constructor(
    readonly options: InterceptOptions,
    readonly log: Logger,
    readonly captures: readonly Capture[],
    readonly listener: Deno.TcpListener,
  ) {}

  /** Opens the captures and the listener; a failure is a `FatalError` and leaves nothing open. */
  static open(options: InterceptOptions, log: Logger): InterceptRuntime {
    const captures: Capture[] = [];
    try {
      for (const device of options.devices) {
        captures.push(Capture.openLive({
          device,
          snaplen: SNAPLEN,
          direction: "in",
          filter: options.filter,
          bufferSize: options.captureBuffer,
        }));
      }
      return new InterceptRuntime(options, log, captures, listen(options.bind, options.port));
    } catch (error) {
      for (const capture of captures) capture.close();
      throw error;
    }
  }

  get routes(): Readonly<RouteCounters> {
    return this.registry.counters;
  }

  routeCount(): number {
    return this.registry.size;
  }

  waiting(): number {
    return this.registry.waiting;
  }

  kernelDropped(): number {
    try {
      if (this.#capturesOpen) this.#kernelDropped = Capture.dropped(this.captures);
    } catch {
      // A capture that failed: its loop reports that; the count stays as last read.
    }
    return this.#kernelDropped;
  }

  peers(): Iterable<PeerCounters> {
    return this.#peers;
  }

  /**
   * Accepts copies and forwards replies until `signal` aborts, then closes everything. A capture or the
   * listener that fails rejects with `FatalError` (everything closed too).
   */
  async run(signal: AbortSignal): Promise<void> {
    const devices = this.options.devices.join(",");
    this.log.info(
      `listening on ${this.options.bind}:${this.options.port} for copy, capturing replies on ${devices} (${this.options.filter})`,
    );
    const stopped = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    const accepting = this.#accept();
    const capturing = Promise.all(this.captures.map((capture) => this.#captureLoop(capture)));
    let failure: unknown;
    try {
      // Accepting and capturing only end early on failure; a live capture has no end of file.
      await Promise.race([
        stopped,
        accepting,
        capturing.then(() => {
          if (this.#running) throw new FatalError(`capture on ${devices} ended`);
        }),
      ]);
    } catch (error) {
      failure = error;
    }
    this.#running = false;
    this.listener.close();
    for (const peer of [...this.#peers]) this.#closePeer(peer, undefined);
    await Promise.allSettled([accepting, capturing]);
    if (failure === undefined) this.kernelDropped();
    this.close();
    if (failure !== undefined) throw failure;
  }

  /** Closes the captures and the listener without running (when what follows `open` fails). */
  close(): void {
    if (!this.#capturesOpen) return;
    this.#capturesOpen = false;
    this.#running = false;
    try {
      this.listener.close();
    } catch {
      // closed by run already
    }
    for (const capture of this.captures) capture.close();
  }

  /** The run's counters as the one line intercept prints when it stops. */
  summary(): string {
    const c = this.registry.counters;
    const t = this.totals;
    return [
      `${t.captured} replies captured`,
      `${c.forwarded} forwarded (${c.released} after waiting for registration)`,
      `${c.expired} expired unrouted`,
      `${c.holdOverflow} dropped (too many waiting)`,
      `${c.peerOverflow} dropped (copy too slow)`,
      `${t.notIpv4Tcp} not IPv4 TCP`,
      `${t.malformed} malformed`,
      `${this.#kernelDropped} dropped by the kernel`,
      `${t.connections} copy connections`,
      `${t.garbageConnections} closed for garbage`,
    ].join(", ");
  }

  async #accept(): Promise<void> {
    try {
      for await (const connection of this.listener) {
        const address = connection.remoteAddr;
        const peer = new CopyPeer(connection, `${address.hostname}:${address.port}`, address.hostname);
        connection.setNoDelay(true);
        this.#peers.add(peer);
        this.totals.connections++;
        this.log.info(`copy connected from ${peer.name}`);
        this.#serve(peer);
      }
    } catch (error) {
      if (this.#running) throw new FatalError(`cannot accept copy connections: ${errorMessage(error)}`);
    }
  }

  async #serve(peer: CopyPeer): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_LENGTH);
    try {
      for (;;) {
        const length = await peer.connection.read(buffer);
        if (length === null) return this.#closePeer(peer, `copy ${peer.name} disconnected`);
        const records = peer.decoder.push(buffer.subarray(0, length));
        if (records instanceof ProtocolError) return this.#refuseGarbage(peer, records.message);
        const hello = peer.decoder.hello;
        if (peer.phase === "hello" && hello !== undefined) this.#greet(peer, hello);
        for (const record of records) {
          const problem = this.#onRecord(peer, record);
          if (problem !== undefined) return this.#refuseGarbage(peer, problem);
        }
        peer.flush(this.#onWriteFailure);
      }
    } catch (error) {
      this.#closePeer(peer, `copy ${peer.name} lost: ${errorMessage(error)}`);
    }
  }

  /** Answers a peer's hello. */
  #greet(peer: CopyPeer, hello: Hello): void {
    peer.phase = "ready";
    if (hello.version !== PROTOCOL_VERSION) {
      this.log.warn(
        `copy ${peer.name} speaks protocol version ${hello.version}, this intercept ${PROTOCOL_VERSION}; carrying on`,
      );
    }
    // A tcpshadow copy learns which extensions this intercept grants: none yet.
    if (hello.extended) {
      peer.encoder.addExtension(encodeExtensionFrame(ExtensionFrameType.ACCEPTED, new Uint8Array(2)));
    }
  }

  /** Takes one record from a greeted peer; returns what makes it garbage, if anything. */
  #onRecord(peer: CopyPeer, record: PeerRecord): string | undefined {
    if (!("clientAddress" in record)) return `extension record ${record.type} not granted`;
    const key = routeKey(record.clientAddress, record.clientPort);
    if (record.type === RegistrationType.ADD) this.registry.register(peer, key);
    else this.registry.unregister(peer, key);
    return undefined;
  }

  #refuseGarbage(peer: CopyPeer, problem: string): void {
    this.totals.garbageConnections++;
    this.log.warn(`garbage from ${peer.name} (${problem}), connection closed`);
    this.#closePeer(peer, undefined);
  }

  #closePeer(peer: CopyPeer, line: string | undefined): void {
    if (peer.closed) return;
    peer.closed = true;
    this.#peers.delete(peer);
    const routes = this.registry.dropPeer(peer);
    try {
      peer.connection.close();
    } catch {
      // Already closed by the other side of a failed read or write.
    }
    if (line !== undefined && this.#running) this.log.info(`${line} (${routes} routes dropped)`);
  }

  async #captureLoop(capture: Capture): Promise<void> {
    const record = this.#record;
    const totals = this.totals;
    for (;;) {
      const now = performance.now();
      let packet;
      let handled = 0;
      for (; handled < BATCH && (packet = capture.next()); handled++) {
        totals.captured++;
        const decoded = decodeTcpPacket(capture.linkType, packet.data);
        if (decoded === undefined) totals.notIpv4Tcp++;
        else if (isWireError(decoded)) totals.malformed++;
        else if (!(decoded.ip instanceof Ipv4View)) totals.notIpv4Tcp++;
        else {
          encodeReplyRecord(packet.data, decoded.ip.offset, record, 0);
          this.registry.deliver(routeKey(decoded.ip.dst, decoded.tcp.dstPort), record, now);
        }
      }
      this.registry.expire(now);
      for (const peer of this.#peers) peer.flush(this.#onWriteFailure);
      if (packet === undefined || !this.#running) return;
      if (packet === null) {
        if (handled >= BUSY_PACKETS) await sleep(GATHER_MS);
        await capture.waitReadable(IDLE_WAIT_MS);
      }
    }
  }
}

function listen(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    throw new FatalError(`cannot listen on ${hostname}:${port}: ${errorMessage(error)}`);
  }
}
