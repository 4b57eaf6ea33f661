/**
 * What every `copy` run has, whatever feeds it packets (a live capture or a file): the session table,
 * the transport toward the target (the raw socket and the links to intercept, or ordinary connections
 * with `--connect`), and the counters they keep.
 */
import { type CounterValues, linesDropped, type Logger } from "../ops/mod.ts";
import { type CopiedSession, SessionTable, type TargetMapping } from "../session/mod.ts";
import { parseReplyRecord, parseReplyRecord6, REPLY_RECORD_LENGTH, ReplyHeaders } from "../protocol/mod.ts";
import {
  destinationAddress,
  formatEndpoint,
  Ipv4View,
  Ipv6View,
  isWireError,
  sourceAddress,
  TcpPacketDecoder,
} from "../wire/mod.ts";
import { announceRunning } from "../cli/mod.ts";
import { gradualPlan } from "./gradual.ts";
import { type CopyOptions, ipv6Targets } from "./options.ts";
import { ConnectionTransport, PacketTransport, type Transport } from "./transport.ts";
import { LinkOutlet, type LinkPath, resolveLinkPath } from "./link_sender.ts";
import { PacketSender } from "./sender.ts";
import { UdpCopier } from "./udp.ts";
import { sleep } from "../sleep.ts";
import type { RUNTIME_COUNTERS } from "./counters.ts";

const SETTLE_POLL_MS = 10;
/**
 * The traffic class and flow label a copy keeps of its client's, with the ECN bits cleared: the copy's
 * own SYN does not negotiate ECN with the target, so its packets must not claim to be ECN-capable.
 */
const FLOW_INFO_KEPT = 0x0fcfffff;

/** The mappings whose copies leave as packets: the TCP ones unless `--connect`, and the `udp:` ones. */
function packetMappings(options: CopyOptions): TargetMapping[] {
  return [...(options.connect === undefined ? options.mappings : []), ...options.udpMappings];
}

/** The engine of a `copy` run and the I/O around it. */
export class CopyRuntime {
  /** Frames that were not a TCP packet we can read (counted, skipped). */
  packetsMalformed = 0;
  /** Reply records from intercept that were not IPv4+TCP (or IPv6+TCP) headers. */
  repliesMalformed = 0;
  /** Packets the kernel dropped before the capture read them, as the live capture last reported. */
  packetsKernelDropped = 0;

  readonly table: SessionTable;
  /** Frames and reply records are read through these, reused: no allocation per packet. */
  readonly #decoder = new TcpPacketDecoder();
  readonly #reply = new ReplyHeaders(new Ipv4View(new Uint8Array(0), 0));
  readonly #reply6 = new ReplyHeaders(new Ipv6View(new Uint8Array(0), 0));
  readonly #transport: Transport;
  /** Whether answers are compared (`--compare`): the online server's packets then matter too. */
  readonly #comparing: boolean;
  /** The raw socket (or `--send-interface`): the packet transport's, and the `udp:` targets'. */
  readonly #sender: PacketSender | undefined;
  /** The `udp:` targets' datagrams, when there are any. */
  readonly #udp: UdpCopier | undefined;
  /** One timeout for the table's next deadline, so an idle copy does not wake up on a fixed tick. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Removes the `--pid-file` written once running. */
  #removePidFile = () => {};
  #timerAt = Infinity;
  readonly #onTimer = () => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.runTimers(performance.now());
  };

  private constructor(readonly options: CopyOptions, readonly log: Logger, linkPath: LinkPath | undefined) {
    this.#comparing = options.connect?.compare !== undefined;
    // --connect alone needs no raw socket (no root to replay a file); packets and udp: targets do.
    const sender = options.connect === undefined || options.udpMappings.length > 0
      ? new PacketSender(
        linkPath === undefined ? undefined : new LinkOutlet(linkPath),
        ipv6Targets(packetMappings(options)),
      )
      : undefined;
    this.#sender = sender;
    this.#udp = options.udpMappings.length === 0 ? undefined : new UdpCopier(
      { ...options, mappings: options.udpMappings },
      (source, destination, srcPort, dstPort, payload) =>
        sender!.sendUdp(source, destination, srcPort, dstPort, payload),
    );
    this.#transport = options.connect === undefined
      ? new PacketTransport(options, log, this, sender!)
      : new ConnectionTransport(options, this);
    this.table = new SessionTable(options.gradual ? gradualPlan(options, performance.now()) : options, {
      ...this.#transport.sink,
      ended: log.debugEnabled
        ? (address, port, endpoints, outcome, session) =>
          log.debug(
            `session ${formatEndpoint(address, port)} copied ${
              this.#transport.describe(endpoints, session)
            }` +
              `: ${outcome}`,
          )
        : undefined,
    });
  }

  /**
   * Opens the transport (the raw socket, or the send interface, and a connection to every intercept; or
   * nothing yet with `--connect`).
   */
  static async start(options: CopyOptions, log: Logger): Promise<CopyRuntime> {
    const targets = packetMappings(options).map((mapping) => mapping.targetAddress);
    const linkPath = options.sendInterface === undefined
      ? undefined
      : await resolveLinkPath(options.sendInterface, targets, options.targetMac, log);
    const runtime = new CopyRuntime(options, log, linkPath);
    try {
      await runtime.#transport.start();
    } catch (error) {
      runtime.#sender?.close();
      throw error;
    }
    return runtime;
  }

  /** The capture runs: writes `--pid-file`, and tells a waiting `-d` parent to exit 0. */
  announceRunning(): void {
    this.#removePidFile = announceRunning(this.options.daemon);
  }

  /**
   * One captured frame of link type `linkType`, seen at `now` (ms): from a client, or with `--compare` from
   * the online server too (told apart by the copied ports).
   */
  onFrame(linkType: number, frame: Uint8Array, now: number): void {
    const decoded = this.#decoder.decode(linkType, frame);
    if (decoded === undefined) {
      this.#udp?.onFrame(linkType, frame);
      return;
    }
    if (isWireError(decoded)) {
      this.packetsMalformed++;
      return;
    }
    const ip = decoded.ip;
    if (ip instanceof Ipv4View) {
      if (this.#comparing) this.table.onServerCapture(ip.src, ip.dst, decoded.tcp, now);
      if (decoded.outgoing) return;
      const source = ip.src;
      // -H: a client on this host itself, as the target should see it.
      const localhost = this.options.localhostAddress;
      const client = localhost !== undefined && source >>> 24 === 127 ? localhost : source;
      this.table.onCapture(client, ip.dst, decoded.tcp, now);
    } else {
      const source = sourceAddress(ip);
      const destination = destinationAddress(ip);
      if (this.#comparing) this.table.onServerCapture(source, destination, decoded.tcp, now);
      if (decoded.outgoing) return;
      this.table.onCapture(source, destination, decoded.tcp, now, ip.flowInfo & FLOW_INFO_KEPT);
    }
    this.#armTimer(now);
  }

  /** Runs the session timers due at `now` and arms the timeout for the next one. */
  runTimers(now: number): void {
    this.table.tick(now);
    this.#armTimer(now);
  }

  #armTimer(now: number): void {
    const at = this.table.nextDeadline;
    if (at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, at - now));
  }

  /**
   * Lets open sessions finish for up to `graceMs` (timers keep running), then resets what is left on
   * the target and closes everything.
   */
  async shutdown(graceMs: number): Promise<void> {
    const deadline = performance.now() + graceMs;
    while (this.table.active > 0 && performance.now() < deadline) {
      await sleep(SETTLE_POLL_MS);
      this.runTimers(performance.now());
    }
    this.table.abandonAll(performance.now());
    clearTimeout(this.#timer);
    await this.#transport.close();
    this.#sender?.close();
    this.#removePidFile();
  }

  /** The live capture's descriptors, while it runs (then none): see `Transport.capturing`. */
  capturing(fds: readonly number[]): void {
    this.#transport.capturing?.(fds);
  }

  /** Intercepts with at least one connection up now; `undefined` where the transport needs none. */
  get interceptsConnected(): number | undefined {
    return this.#transport.interceptsConnected;
  }

  /** Every counter of the run so far, by its name in `RUNTIME_COUNTERS`. */
  stats(): CounterValues<typeof RUNTIME_COUNTERS> {
    const c = this.table.counters;
    const o = c.outcomes;
    return {
      "sessions-copied": c.sessionsCopied,
      "sessions-active": this.table.active,
      "sessions-lingering": this.table.lingering,
      "sessions-completed": o["completed"],
      "sessions-reset-by-client": o["reset-by-client"],
      "sessions-failed": o["refused"] + o["no-answer"] + o["reset-by-target"] + o["closed-by-target"] +
        o["buffer-full"] + o["too-fragmented"] + o["capture-cut"],
      "sessions-refused": o["refused"],
      "sessions-no-answer": o["no-answer"],
      "sessions-reset-by-target": o["reset-by-target"],
      "sessions-closed-by-target": o["closed-by-target"],
      "sessions-buffer-full": o["buffer-full"],
      "sessions-too-fragmented": o["too-fragmented"],
      "sessions-capture-cut": o["capture-cut"],
      "sessions-timed-out": o["timed-out"],
      "sessions-half-open": o["half-open"],
      "sessions-abandoned": o["abandoned"],
      "sessions-skipped-by-rate": c.sessionsSkippedByRate,
      "sessions-refused-at-cap": c.sessionsRefusedAtCap,
      "sessions-refused-while-paused": c.sessionsRefusedWhilePaused,
      "sessions-half-open-evicted": c.sessionsHalfOpenEvicted,
      "sessions-without-address": c.sessionsWithoutAddress,
      "sessions-family-unreachable": c.sessionsFamilyUnreachable,
      "sessions-without-ipv6-intercept": c.sessionsWithoutIpv6Intercept,
      "packets-captured": c.packetsCaptured,
      "packets-malformed": this.packetsMalformed + (this.#udp?.malformed ?? 0),
      "replies-malformed": this.repliesMalformed,
      "packets-kernel-dropped": this.packetsKernelDropped,
      retransmissions: c.retransmissions,
      ...this.#transport.stats(),
      "intercept-connected": this.interceptsConnected ?? 0,
      "lines-dropped": linesDropped(),
      "datagrams-captured": this.#udp?.captured ?? 0,
      "datagrams-copied": this.#udp?.copied ?? 0,
      "datagrams-skipped-by-rate": this.#udp?.skippedByRate ?? 0,
      "datagrams-family-unreachable": this.#udp?.familyUnreachable ?? 0,
    };
  }

  /** A reply record from intercept (packet transport): 64 bytes IPv4, or 84 bytes IPv6 (a REPLY6 frame's). */
  onReplyRecord(record: Uint8Array): void {
    const now = performance.now();
    if (record.length === REPLY_RECORD_LENGTH) {
      const reply = parseReplyRecord(record, this.#reply);
      if (reply === undefined) {
        this.repliesMalformed++;
        return;
      }
      this.table.onReply(reply.ip.dst, reply.tcp, now);
    } else {
      const reply = parseReplyRecord6(record, this.#reply6);
      if (reply === undefined) {
        this.repliesMalformed++;
        return;
      }
      this.table.onReply(destinationAddress(reply.ip), reply.tcp, now);
    }
    this.#armTimer(now);
  }

  /** A session had news from its connection (`--connect`): the table settles it. */
  onSessionChanged(session: CopiedSession): void {
    this.table.changed(session);
    this.#armTimer(performance.now());
  }
}
