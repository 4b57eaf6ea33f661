/**
 * intercept's I/O: the captures of the target's replies, the listener for copy connections, and the
 * writes to them. Which copy gets which reply is `ClientRegistry`'s, bytes on the wire are
 * `src/protocol/`'s.
 */
import { Capture } from "../../ffi/mod.ts";
import type { Logger } from "../ops/mod.ts";
import { errorMessage, FatalError } from "../errors.ts";
import { decodeTcpPacket, endpointKey, Ipv4View, ipv6Address, isWireError } from "../wire/mod.ts";
import {
  Capability,
  decodeRegistration6,
  encodeExtensionFrame,
  encodeReplyRecord,
  encodeReplyRecord6,
  ExtensionFrameType,
  PROTOCOL_VERSION,
  ProtocolError,
  RegistrationDecoder,
  RegistrationType,
  REPLY6_RECORD_LENGTH,
  REPLY_RECORD_LENGTH,
  ReplyFrameEncoder,
} from "../protocol/mod.ts";
import { clientKey, ClientRegistry, type RegistryCounters, type ReplySink } from "./registry.ts";
import { sleep } from "../sleep.ts";

/** What `runIntercept` needs, already checked. */
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

/**
 * Link header + largest IPv4 header + largest TCP header fit with room to spare, and an IPv6 header with a
 * few extension headers before TCP's: payload is never sent.
 */
const SNAPLEN = 256;
/** The capabilities this intercept grants when a tcpshadow copy asks. */
const GRANTED = Capability.IPV6;
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

/** Totals over a run, for the summary line, stats and metrics. */
export interface InterceptTotals {
  captured: number;
  /** Captured packets that were not TCP over IPv4 or IPv6. */
  notTcp: number;
  malformed: number;
  connections: number;
  garbageConnections: number;
}

/** What one connected copy got so far. */
export interface PeerCounters {
  /** `host:port` of the copy connection. */
  readonly name: string;
  /** Reply records queued for it. */
  readonly forwarded: number;
  /** Reply records it was too far behind to take. */
  readonly dropped: number;
}

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

/** One copy connection: a sink for its replies and the loop that writes them. */
class CopyPeer implements ReplySink {
  readonly encoder = new ReplyFrameEncoder();
  readonly decoder = new RegistrationDecoder();
  /** Whether its hello has been answered. */
  greeted = false;
  /** Whether it was granted IPv6 registrations and replies. */
  ipv6 = false;
  #writing = false;
  closed = false;
  forwarded = 0;
  dropped = 0;

  constructor(readonly connection: Deno.TcpConn, readonly name: string) {}

  /** Takes a 64-byte IPv4 reply record, or an 84-byte IPv6 one (routed here only if granted). */
  add(record: Uint8Array): boolean {
    const taken = !this.closed &&
      (record.length === REPLY6_RECORD_LENGTH ? this.encoder.add6(record) : this.encoder.add(record));
    if (taken) this.forwarded++;
    else this.dropped++;
    return taken;
  }

  /** Starts writing what is pending, unless a write loop already runs. */
  flush(onFailure: (peer: CopyPeer, error: unknown) => void): void {
    if (this.#writing || this.closed || !this.encoder.hasPending) return;
    this.#writing = true;
    this.#writeAll().catch((error) => onFailure(this, error)).finally(() => this.#writing = false);
  }

  async #writeAll(): Promise<void> {
    for (let chunk; !this.closed && (chunk = this.encoder.take()) !== undefined;) {
      for (let written = 0; written < chunk.length;) {
        written += await this.connection.write(chunk.subarray(written));
      }
      this.encoder.release(chunk);
    }
  }
}

/**
 * Runs intercept until `signal` aborts, then closes everything and resolves to the summary line. A
 * capture that fails rejects with `FatalError`. `onRunning` gets a view of the counters once it listens.
 */
export async function runIntercept(
  options: InterceptOptions,
  signal: AbortSignal,
  log: Logger,
  onRunning: (view: InterceptView) => void = () => {},
): Promise<string> {
  const info = log.info;
  const warn = log.warn;
  const table = new ClientRegistry<CopyPeer>();
  const peers = new Set<CopyPeer>();
  const totals: InterceptTotals = {
    captured: 0,
    notTcp: 0,
    malformed: 0,
    connections: 0,
    garbageConnections: 0,
  };

  const captures: Capture[] = [];
  let listener: Deno.TcpListener;
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
    listener = listen(options.bind, options.port);
  } catch (error) {
    for (const capture of captures) capture.close();
    throw error;
  }

  /** False once stopping: from then on nothing is logged per connection, and the loops wind down. */
  let running = true;
  const closePeer = (peer: CopyPeer, line: string | undefined) => {
    if (peer.closed) return;
    peer.closed = true;
    peers.delete(peer);
    const routes = table.dropPeer(peer);
    try {
      peer.connection.close();
    } catch {
      // Already closed by the other side of a failed read or write.
    }
    if (line !== undefined && running) info(`${line} (${routes} routes dropped)`);
  };
  const onWriteFailure = (peer: CopyPeer, error: unknown) =>
    closePeer(peer, `copy ${peer.name} lost: ${errorMessage(error)}`);

  const serve = async (peer: CopyPeer) => {
    const buffer = new Uint8Array(READ_BUFFER_LENGTH);
    try {
      for (;;) {
        const length = await peer.connection.read(buffer);
        if (length === null) return closePeer(peer, `copy ${peer.name} disconnected`);
        const registrations = peer.decoder.push(buffer.subarray(0, length));
        if (registrations instanceof ProtocolError) {
          totals.garbageConnections++;
          warn(`garbage from ${peer.name} (${registrations.message}), connection closed`);
          return closePeer(peer, undefined);
        }
        const hello = peer.decoder.hello;
        if (!peer.greeted && hello !== undefined) {
          peer.greeted = true;
          if (hello.version !== PROTOCOL_VERSION) {
            warn(
              `copy ${peer.name} speaks protocol version ${hello.version}, this intercept ${PROTOCOL_VERSION}; carrying on`,
            );
          }
          // A tcpshadow copy learns which extensions this intercept grants of those it asked for.
          if (hello.extended) {
            const granted = hello.capabilities & GRANTED;
            peer.ipv6 = (granted & Capability.IPV6) !== 0;
            peer.encoder.addExtension(
              encodeExtensionFrame(
                ExtensionFrameType.ACCEPTED,
                new Uint8Array([granted >> 8, granted & 0xff]),
              ),
            );
          }
        }
        for (const registration of registrations) {
          let key, type;
          if ("clientAddress" in registration) {
            key = clientKey(registration.clientAddress, registration.clientPort);
            type = registration.type;
          } else {
            const registration6 = peer.ipv6 ? decodeRegistration6(registration) : undefined;
            if (registration6 === undefined || registration6 instanceof ProtocolError) {
              totals.garbageConnections++;
              const problem = registration6?.message ?? `extension record ${registration.type} not granted`;
              warn(`garbage from ${peer.name} (${problem}), connection closed`);
              return closePeer(peer, undefined);
            }
            key = endpointKey(ipv6Address(registration6.clientAddress), registration6.clientPort);
            type = registration6.type;
          }
          if (type === RegistrationType.ADD) table.register(peer, key);
          else table.unregister(peer, key);
        }
        peer.flush(onWriteFailure);
      }
    } catch (error) {
      closePeer(peer, `copy ${peer.name} lost: ${errorMessage(error)}`);
    }
  };

  const accept = async () => {
    try {
      for await (const connection of listener) {
        const address = connection.remoteAddr;
        const peer = new CopyPeer(connection, `${address.hostname}:${address.port}`);
        connection.setNoDelay(true);
        peers.add(peer);
        totals.connections++;
        info(`copy connected from ${peer.name}`);
        serve(peer);
      }
    } catch (error) {
      if (running) throw new FatalError(`cannot accept copy connections: ${errorMessage(error)}`);
    }
  };

  const record = new Uint8Array(REPLY_RECORD_LENGTH);
  const record6 = new Uint8Array(REPLY6_RECORD_LENGTH);
  const captureLoop = async (capture: Capture) => {
    for (;;) {
      const now = performance.now();
      let packet;
      let handled = 0;
      for (; handled < BATCH && (packet = capture.next()); handled++) {
        totals.captured++;
        const decoded = decodeTcpPacket(capture.linkType, packet.data);
        if (decoded === undefined) totals.notTcp++;
        else if (isWireError(decoded)) totals.malformed++;
        else if (decoded.ip instanceof Ipv4View) {
          encodeReplyRecord(packet.data, decoded.ip.offset, record, 0);
          table.deliver(clientKey(decoded.ip.dst, decoded.tcp.dstPort), record, now);
        } else {
          const ipOffset = decoded.ip.offset;
          encodeReplyRecord6(packet.data, ipOffset, decoded.tcp.offset, record6, 0);
          const client = ipv6Address(packet.data, ipOffset + IPV6_DESTINATION);
          table.deliver(endpointKey(client, decoded.tcp.dstPort), record6, now);
        }
      }
      table.expire(now);
      for (const peer of peers) peer.flush(onWriteFailure);
      if (packet === undefined || !running) return;
      if (packet === null) {
        if (handled >= BUSY_PACKETS) await sleep(GATHER_MS);
        await capture.waitReadable(IDLE_WAIT_MS);
      }
    }
  };

  let kernelDropped = 0;
  let capturesOpen = true;
  const readKernelDropped = () => {
    try {
      if (capturesOpen) kernelDropped = Capture.dropped(captures);
    } catch {
      // A capture that failed: its loop reports that; the count stays as last read.
    }
    return kernelDropped;
  };
  try {
    onRunning({
      totals,
      routes: table.counters,
      routeCount: () => table.size,
      waiting: () => table.waiting,
      kernelDropped: readKernelDropped,
      peers: () => peers,
    });
  } catch (error) {
    listener.close();
    for (const capture of captures) capture.close();
    throw error;
  }

  const devices = options.devices.join(",");
  info(
    `listening on ${options.bind}:${options.port} for copy, capturing replies on ${devices} (${options.filter})`,
  );
  const stopped = new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
  const accepting = accept();
  const capturing = Promise.all(captures.map(captureLoop));
  let failure: unknown;
  try {
    // Accepting and capturing only end early on failure; a live capture has no end of file.
    await Promise.race([
      stopped,
      accepting,
      capturing.then(() => {
        if (running) throw new FatalError(`capture on ${devices} ended`);
      }),
    ]);
  } catch (error) {
    failure = error;
  }
  running = false;
  listener.close();
  for (const peer of [...peers]) closePeer(peer, undefined);
  await Promise.allSettled([accepting, capturing]);
  if (failure === undefined) readKernelDropped();
  capturesOpen = false;
  for (const capture of captures) capture.close();
  if (failure !== undefined) throw failure;
  const c = table.counters;
  return [
    `${totals.captured} replies captured`,
    `${c.forwarded} forwarded (${c.released} after waiting for registration)`,
    `${c.expired} expired unrouted`,
    `${c.holdOverflow} dropped (too many waiting)`,
    `${c.peerOverflow} dropped (copy too slow)`,
    `${totals.notTcp} not TCP`,
    `${totals.malformed} malformed`,
    `${kernelDropped} dropped by the kernel`,
    `${totals.connections} copy connections`,
    `${totals.garbageConnections} closed for garbage`,
  ].join(", ");
}

function listen(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    throw new FatalError(`cannot listen on ${hostname}:${port}: ${errorMessage(error)}`);
  }
}
