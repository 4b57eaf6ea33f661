/**
 * intercept's I/O, owned by one object: the captures of the target's replies, the listener for copy
 * connections, the connected copies and the counters. Which copy gets which reply is `ClientRegistry`'s,
 * who may connect `access.ts`'s, bytes on the wire are `src/protocol/`'s.
 */
import { Capture } from "../../ffi/mod.ts";
import type { Logger } from "../ops/mod.ts";
import { errorMessage, FatalError } from "../errors.ts";
import {
  type EndpointKey,
  endpointKey,
  formatEndpoint,
  Ipv4View,
  ipv6Address,
  isWireError,
  TcpPacketDecoder,
} from "../wire/mod.ts";
import {
  authMac,
  authNonce,
  authProofValid,
  Capability,
  decodeAuthResponse,
  decodeRegistration6,
  encodeExtensionFrame,
  encodeReplyRecord,
  encodeReplyRecord6,
  ExtensionFrameType,
  ExtensionRecordType,
  type Hello,
  type PeerRecord,
  PROTOCOL_VERSION,
  ProtocolError,
  RegistrationType,
  REPLY6_RECORD_LENGTH,
  REPLY_RECORD_LENGTH,
} from "../protocol/mod.ts";
import { AllowList, RefusalLog } from "./access.ts";
import { CopyPeer, type PeerCounters } from "./peer.ts";
import { clientKey, ClientRegistry, type RegistryCounters } from "./registry.ts";
import { sleep } from "../sleep.ts";
import { type DestinationRewrite, rewriteDestination } from "./docker.ts";

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
  /** Only these hosts may connect (`--allow`); any host when undefined. */
  allow: AllowList | undefined;
  /** The shared secret copies must prove (`--secret-file`), if any. */
  secret: Uint8Array | undefined;
  /** Most copy connections at once. */
  maxConnections: number;
  /** Most registrations held over all connections, and by one connection. */
  maxRegistrations: number;
  maxRegistrationsPerConnection: number;
  /** A registration nothing used for this long is forgotten (ms). */
  registrationIdleMs: number;
  /** A connection whose hello (and auth) is not over after this long is closed (ms). */
  helloTimeoutMs: number;
  /** `-D`: replies to `from` are routed, and passed on, as replies to `to`. */
  rewriteDestination?: DestinationRewrite;
}

/**
 * Link header + largest IPv4 header + largest TCP header fit with room to spare, and an IPv6 header with a
 * few extension headers before TCP's: payload is never sent.
 */
const SNAPLEN = 256;
/** Where an IPv6 header holds its destination address. */
const IPV6_DESTINATION = 24;
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
/** How long a failed accept (out of file descriptors, say) waits before the next, doubling up to the most. */
const ACCEPT_BACKOFF_MS = 50;
const ACCEPT_BACKOFF_MAX_MS = 1000;
/**
 * What a failed accept may say and the listener still be good: out of descriptors or memory, or a client
 * gone before it was accepted. Anything else ends intercept.
 */
const TRANSIENT_ACCEPT_ERRORS = new Set([
  "EMFILE",
  "ENFILE",
  "ECONNABORTED",
  "ECONNRESET",
  "ENOBUFS",
  "ENOMEM",
  "EPROTO",
  "EPERM",
  "ETIMEDOUT",
]);
/** How long a refused copy is given to read why before its connection is closed. */
const REFUSAL_WRITE_MS = 1000;

/** Totals over a run, for the summary line, stats and metrics. */
export interface InterceptTotals {
  captured: number;
  /** Captured packets that were not TCP over IPv4 or IPv6. */
  notTcp: number;
  malformed: number;
  connections: number;
  garbageConnections: number;
  /** Connections from hosts outside `--allow`, closed at accept. */
  refusedHosts: number;
  /** Connections over `--max-connections`, closed at accept. */
  refusedOverCap: number;
  /** Connections whose hello (and auth) did not come within `--hello-timeout`. */
  helloTimeouts: number;
  /** Connections that did not prove the shared secret. */
  authFailures: number;
  /** Connections closed for passing a registration cap. */
  closedAtRegistrationCap: number;
  /** Accepts that failed (out of file descriptors, ...) and were retried. */
  acceptErrors: number;
}

export type { PeerCounters };

/** A live look into a running intercept, for stats and metrics. */
export interface InterceptView {
  readonly totals: Readonly<InterceptTotals>;
  readonly routes: Readonly<RegistryCounters>;
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
    notTcp: 0,
    malformed: 0,
    connections: 0,
    garbageConnections: 0,
    refusedHosts: 0,
    refusedOverCap: 0,
    helloTimeouts: 0,
    authFailures: 0,
    closedAtRegistrationCap: 0,
    acceptErrors: 0,
  };
  readonly registry: ClientRegistry<CopyPeer>;
  readonly #peers = new Set<CopyPeer>();
  readonly #refusals = new RefusalLog();
  readonly #record = new Uint8Array(REPLY_RECORD_LENGTH);
  readonly #record6 = new Uint8Array(REPLY6_RECORD_LENGTH);
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
  ) {
    this.registry = new ClientRegistry({
      maxRegistrations: options.maxRegistrations,
      maxRegistrationsPerPeer: options.maxRegistrationsPerConnection,
      idleMs: options.registrationIdleMs,
    });
  }

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

  get routes(): Readonly<RegistryCounters> {
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
    if (this.options.allow === undefined) {
      this.log.warn(
        `no --allow: any host that reaches port ${this.options.port} can register clients and read the target's replies; ` +
          "give --allow with the copy hosts' addresses (and --secret-file)",
      );
    }
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
      `${t.notTcp} not TCP`,
      `${t.malformed} malformed`,
      `${this.#kernelDropped} dropped by the kernel`,
      `${t.connections} copy connections`,
      `${t.garbageConnections} closed for garbage`,
      `${t.refusedHosts} refused (not in --allow)`,
      `${t.authFailures} failed auth`,
      `${t.helloTimeouts} sent no hello in time`,
      `${t.refusedOverCap} over --max-connections`,
      `${t.closedAtRegistrationCap} closed at a registration cap`,
      `${c.takeoversRefused} registrations of another copy's client refused`,
      `${c.agedOut} registrations aged out`,
      `${t.acceptErrors} accept errors`,
    ].join(", ");
  }

  /** Accepts copy connections until stopped; a failed accept that may pass is retried after a pause. */
  async #accept(): Promise<void> {
    let backoff = ACCEPT_BACKOFF_MS;
    while (this.#running) {
      let connection: Deno.TcpConn;
      try {
        connection = await this.listener.accept();
      } catch (error) {
        if (!this.#running) return;
        const code = (error as { code?: string }).code;
        if (code === undefined || !TRANSIENT_ACCEPT_ERRORS.has(code)) {
          throw new FatalError(`cannot accept copy connections: ${errorMessage(error)}`);
        }
        this.totals.acceptErrors++;
        if (this.#refusals.shouldLog(`accept ${code}`, performance.now())) {
          this.log.warn(`cannot accept a copy connection: ${errorMessage(error)}; retrying`);
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MAX_MS);
        continue;
      }
      backoff = ACCEPT_BACKOFF_MS;
      this.#admit(connection);
    }
  }

  /** Lets a new connection in, or closes it: a stranger, or one too many. */
  #admit(connection: Deno.TcpConn): void {
    const address = connection.remoteAddr;
    const host = address.hostname;
    const refuse = (reason: string) => {
      if (this.#refusals.shouldLog(`${reason} ${host}`, performance.now())) {
        this.log.warn(`connection from ${host} refused: ${reason} (logged once a minute per address)`);
      }
      connection.close();
    };
    if (this.options.allow !== undefined && !this.options.allow.allows(host)) {
      this.totals.refusedHosts++;
      return refuse("not in --allow");
    }
    if (this.#peers.size >= this.options.maxConnections) {
      this.totals.refusedOverCap++;
      return refuse(`--max-connections ${this.options.maxConnections} reached`);
    }
    const peer = new CopyPeer(connection, `${host}:${address.port}`, host);
    connection.setNoDelay(true);
    this.#peers.add(peer);
    this.totals.connections++;
    this.log.info(`copy connected from ${peer.name}`);
    peer.greetingTimer = setTimeout(() => this.#onGreetingTimeout(peer), this.options.helloTimeoutMs);
    this.#serve(peer);
  }

  #onGreetingTimeout(peer: CopyPeer): void {
    peer.greetingTimer = undefined;
    if (peer.closed || peer.phase === "ready") return;
    this.totals.helloTimeouts++;
    const what = peer.phase === "hello" ? "no hello" : "no auth response";
    if (this.#refusals.shouldLog(`hello ${peer.address}`, performance.now())) {
      this.log.warn(
        `copy ${peer.name} sent ${what} within ${this.options.helloTimeoutMs / 1000} s: connection closed`,
      );
    }
    this.#closePeer(peer, undefined);
  }

  async #serve(peer: CopyPeer): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_LENGTH);
    try {
      for (;;) {
        const length = await peer.connection.read(buffer);
        if (length === null) return this.#closePeer(peer, `copy ${peer.name} disconnected`);
        if (peer.closed || peer.refused) return;
        const records = peer.decoder.push(buffer.subarray(0, length));
        if (records instanceof ProtocolError) return this.#refuseGarbage(peer, records.message);
        const hello = peer.decoder.hello;
        if (peer.phase === "hello" && hello !== undefined) this.#greet(peer, hello);
        if (peer.closed || peer.refused) return;
        for (const record of records) {
          if (peer.closed || peer.refused) return;
          const problem = this.#onRecord(peer, record);
          if (problem !== undefined) return this.#refuseGarbage(peer, problem);
        }
        peer.flush(this.#onWriteFailure);
      }
    } catch (error) {
      this.#closePeer(peer, `copy ${peer.name} lost: ${errorMessage(error)}`);
    }
  }

  /** Answers a peer's hello: with the capabilities granted, and the auth challenge if a secret is set. */
  #greet(peer: CopyPeer, hello: Hello): void {
    if (hello.version !== PROTOCOL_VERSION) {
      this.log.warn(
        `copy ${peer.name} speaks protocol version ${hello.version}, this intercept ${PROTOCOL_VERSION}; carrying on`,
      );
    }
    // IPv6 to a tcpshadow copy that asks; auth below when a secret is set.
    peer.ipv6 = hello.extended && (hello.capabilities & Capability.IPV6) !== 0;
    const ipv6 = peer.ipv6 ? Capability.IPV6 : 0;
    if (this.options.secret === undefined) {
      this.#ready(peer);
      // A tcpshadow copy learns which extensions this intercept grants of those it asked for.
      if (hello.extended) {
        peer.encoder.addExtension(
          encodeExtensionFrame(ExtensionFrameType.ACCEPTED, new Uint8Array([0, ipv6])),
        );
      }
      return;
    }
    if (!hello.extended || (hello.capabilities & Capability.AUTH) === 0) {
      return this.#refuseAuth(
        peer,
        hello.extended
          ? "asked for no auth: give copy the same --secret-file"
          : "sent TCPCopy's plain hello: C tcpcopy cannot prove a secret, only tcpshadow copy with --secret-file can",
        hello.extended ? "this intercept needs a shared secret: give copy --secret-file" : undefined,
      );
    }
    peer.phase = "auth";
    peer.challenge = authNonce();
    peer.encoder.addExtension(
      encodeExtensionFrame(ExtensionFrameType.ACCEPTED, new Uint8Array([0, Capability.AUTH | ipv6])),
    );
    peer.encoder.addExtension(encodeExtensionFrame(ExtensionFrameType.AUTH_CHALLENGE, peer.challenge));
  }

  /** Checks copy's auth response, and proves the secret in turn. */
  #authenticate(peer: CopyPeer, record: PeerRecord): string | undefined {
    if ("clientAddress" in record || record.type !== ExtensionRecordType.AUTH_RESPONSE) {
      return "clientAddress" in record
        ? "registration before auth"
        : `extension record ${record.type} before auth`;
    }
    const response = decodeAuthResponse(record.body);
    const secret = this.options.secret!;
    const challenge = peer.challenge!;
    if (
      response === undefined || !authProofValid(secret, challenge, response.copyNonce, "copy", response.mac)
    ) {
      this.#refuseAuth(peer, "proved a different secret", "wrong shared secret: the --secret-file differs");
      return undefined;
    }
    this.#ready(peer);
    const proof = authMac(secret, challenge, response.copyNonce, "intercept");
    peer.encoder.addExtension(encodeExtensionFrame(ExtensionFrameType.AUTH_PROOF, proof));
    this.log.info(`copy ${peer.name} proved the shared secret`);
    return undefined;
  }

  #ready(peer: CopyPeer): void {
    peer.phase = "ready";
    clearTimeout(peer.greetingTimer);
    peer.greetingTimer = undefined;
  }

  /** Takes one record from a greeted peer; returns what makes it garbage, if anything. */
  #onRecord(peer: CopyPeer, record: PeerRecord): string | undefined {
    if (peer.phase === "auth") return this.#authenticate(peer, record);
    let registration: {
      readonly type: 1 | 2;
      readonly clientAddress: number | string;
      readonly clientPort: number;
    };
    if ("clientAddress" in record) registration = record;
    else {
      // An IPv6 registration (ADD6/DELETE6), only from a copy granted IPv6.
      const registration6 = peer.ipv6 ? decodeRegistration6(record) : undefined;
      if (registration6 instanceof ProtocolError) return registration6.message;
      if (registration6 === undefined) return `extension record ${record.type} not granted`;
      registration = {
        type: registration6.type,
        clientAddress: ipv6Address(registration6.clientAddress),
        clientPort: registration6.clientPort,
      };
    }
    const key = endpointKey(registration.clientAddress, registration.clientPort);
    if (registration.type === RegistrationType.DELETE) {
      this.registry.unregister(peer, key);
      return undefined;
    }
    const outcome = this.registry.register(peer, key);
    if (outcome === "taken") this.#onTakeover(peer, registration, key);
    else if (outcome === "peer-full" || outcome === "full") {
      this.totals.closedAtRegistrationCap++;
      const cap = outcome === "full"
        ? `--max-registrations ${this.options.maxRegistrations} (all connections)`
        : `--max-registrations-per-connection ${this.options.maxRegistrationsPerConnection}`;
      this.log.warn(`copy ${peer.name} passed ${cap}: connection closed, its registrations dropped`);
      this.#closePeer(peer, undefined);
    }
    return undefined;
  }

  /** Logs the first registration of another connection's client a connection makes; counts them all. */
  #onTakeover(
    peer: CopyPeer,
    registration: { readonly clientAddress: number | string; readonly clientPort: number },
    key: EndpointKey,
  ): void {
    if (peer.takeoversRefused++ > 0) return;
    const owner = this.registry.ownerOf(key);
    this.log.warn(
      `copy ${peer.name} registered ${
        formatEndpoint(registration.clientAddress, registration.clientPort)
      }, ` +
        `which copy ${owner?.name} holds: refused, the first keeps it (two copies with overlapping ` +
        "client addresses? give each its own -c range); further ones from this connection only counted",
    );
  }

  /** Closes a connection that did not prove the secret, telling a tcpshadow copy why (`reply`). */
  #refuseAuth(peer: CopyPeer, problem: string, reply: string | undefined): void {
    this.totals.authFailures++;
    if (this.#refusals.shouldLog(`${problem} ${peer.address}`, performance.now())) {
      this.log.warn(`copy ${peer.name} ${problem}: refused (logged once a minute per address)`);
    }
    if (reply === undefined) return this.#closePeer(peer, undefined);
    peer.encoder.addExtension(
      encodeExtensionFrame(ExtensionFrameType.REFUSED, new TextEncoder().encode(reply)),
    );
    peer.flush(this.#onWriteFailure);
    peer.refused = true;
    Promise.race([peer.drain(), sleep(REFUSAL_WRITE_MS)]).then(() => this.#closePeer(peer, undefined));
  }

  #refuseGarbage(peer: CopyPeer, problem: string): void {
    this.totals.garbageConnections++;
    this.log.warn(`garbage from ${peer.name} (${problem}), connection closed`);
    this.#closePeer(peer, undefined);
  }

  #closePeer(peer: CopyPeer, line: string | undefined): void {
    if (peer.closed) return;
    peer.closed = true;
    clearTimeout(peer.greetingTimer);
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
    const decoder = new TcpPacketDecoder(); // its views, re-pointed at each frame: none made per packet
    for (;;) {
      const now = performance.now();
      let packet;
      let handled = 0;
      for (; handled < BATCH && (packet = capture.next()); handled++) {
        totals.captured++;
        const decoded = decoder.decode(capture.linkType, packet.data);
        if (decoded === undefined) totals.notTcp++;
        else if (isWireError(decoded)) totals.malformed++;
        else if (decoded.ip instanceof Ipv4View) {
          encodeReplyRecord(packet.data, decoded.ip.offset, record, 0);
          const destination = rewriteDestination(record, decoded.ip.dst, this.options.rewriteDestination);
          this.registry.deliver(clientKey(destination, decoded.tcp.dstPort), record, now);
        } else {
          const ipOffset = decoded.ip.offset;
          encodeReplyRecord6(packet.data, ipOffset, decoded.tcp.offset, this.#record6, 0);
          const client = ipv6Address(packet.data, ipOffset + IPV6_DESTINATION);
          this.registry.deliver(endpointKey(client, decoded.tcp.dstPort), this.#record6, now);
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
