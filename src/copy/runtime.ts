/**
 * What every `copy` run has, whatever feeds it packets (a live capture or a file): the session table,
 * the raw socket toward the target, the links to intercept, and the counters they keep.
 */
import type { CounterValues, Logger } from "../ops/mod.ts";
import { SessionTable } from "../session/mod.ts";
import { parseReplyRecord, parseReplyRecord6, REPLY_RECORD_LENGTH } from "../protocol/mod.ts";
import {
  addressFamily,
  decodeTcpPacket,
  destinationAddress,
  formatEndpoint,
  Ipv4View,
  isWireError,
  sourceAddress,
} from "../wire/mod.ts";
import { announceRunning } from "../cli/mod.ts";
import { gradualPlan } from "./gradual.ts";
import { InterceptLinks } from "./intercept_link.ts";
import type { CopyOptions } from "./options.ts";
import { PacketSender } from "./sender.ts";
import { sleep } from "../sleep.ts";
import type { RUNTIME_COUNTERS } from "./counters.ts";

const SETTLE_POLL_MS = 10;
/**
 * The traffic class and flow label a copy keeps of its client's, with the ECN bits cleared: the copy's
 * own SYN does not negotiate ECN with the target, so its packets must not claim to be ECN-capable.
 */
const FLOW_INFO_KEPT = 0x0fcfffff;

/** The engine of a `copy` run and the I/O around it. */
export class CopyRuntime {
  /** Frames that were not a TCP packet we can read (counted, skipped). */
  packetsMalformed = 0;
  /** Reply records from intercept that were not IPv4+TCP (or IPv6+TCP) headers. */
  repliesMalformed = 0;
  /** Packets the kernel dropped before the capture read them, as the live capture last reported. */
  packetsKernelDropped = 0;

  readonly table: SessionTable;
  readonly #sender: PacketSender;
  readonly #links: InterceptLinks;
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

  private constructor(readonly options: CopyOptions, readonly log: Logger) {
    const ipv6Targets = options.mappings.some((mapping) => addressFamily(mapping.targetAddress) === 6);
    this.#sender = new PacketSender(ipv6Targets);
    this.#links = new InterceptLinks(
      options.intercepts,
      options.connections,
      (record) => this.#onReplyRecord(record),
      () => this.table.openClients(),
      log,
      options.lonely,
      options.secret,
      ipv6Targets,
    );
    this.table = new SessionTable(options.gradual ? gradualPlan(options, performance.now()) : options, {
      segment: (endpoints, tcp) =>
        this.#sender.send(endpoints.clientAddress, endpoints.targetAddress, tcp, endpoints.flowInfo),
      clientOpened: (endpoints) => this.#links.clientOpened(endpoints),
      clientClosed: (endpoints) => this.#links.clientClosed(endpoints),
      ipv6Replies: () => this.#links.ipv6Granted,
      ended: log.debugEnabled
        ? (address, port, endpoints, outcome) =>
          log.debug(
            `session ${formatEndpoint(address, port)} copied as ` +
              `${formatEndpoint(endpoints.clientAddress, endpoints.clientPort)} to ` +
              `${formatEndpoint(endpoints.targetAddress, endpoints.targetPort)}: ${outcome}`,
          )
        : undefined,
    });
  }

  /** Opens the raw socket and connects to every intercept. */
  static async start(options: CopyOptions, log: Logger): Promise<CopyRuntime> {
    const runtime = new CopyRuntime(options, log);
    try {
      await runtime.#links.connect();
    } catch (error) {
      runtime.#links.close();
      runtime.#sender.close();
      throw error;
    }
    return runtime;
  }

  /** The capture runs: writes `--pid-file`, and tells a waiting `-d` parent to exit 0. */
  announceRunning(): void {
    this.#removePidFile = announceRunning(this.options.daemon);
  }

  /** One captured frame of link type `linkType`, seen at `now` (ms). */
  onFrame(linkType: number, frame: Uint8Array, now: number): void {
    const decoded = decodeTcpPacket(linkType, frame);
    if (decoded === undefined) return;
    if (isWireError(decoded)) {
      this.packetsMalformed++;
      return;
    }
    if (decoded.outgoing) return;
    const ip = decoded.ip;
    if (ip instanceof Ipv4View) {
      const source = ip.src;
      // -H: a client on this host itself, as the target should see it.
      const localhost = this.options.localhostAddress;
      const client = localhost !== undefined && source >>> 24 === 127 ? localhost : source;
      this.table.onCapture(client, ip.dst, decoded.tcp, now);
    } else {
      this.table.onCapture(
        sourceAddress(ip),
        destinationAddress(ip),
        decoded.tcp,
        now,
        ip.flowInfo & FLOW_INFO_KEPT,
      );
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
    await this.#links.drain();
    this.#links.close();
    this.#sender.close();
    this.#removePidFile();
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
      "sessions-failed": o["refused"] + o["no-answer"] + o["reset-by-target"] + o["buffer-full"] +
        o["capture-cut"],
      "sessions-refused": o["refused"],
      "sessions-no-answer": o["no-answer"],
      "sessions-reset-by-target": o["reset-by-target"],
      "sessions-buffer-full": o["buffer-full"],
      "sessions-capture-cut": o["capture-cut"],
      "sessions-timed-out": o["timed-out"],
      "sessions-abandoned": o["abandoned"],
      "sessions-skipped-by-rate": c.sessionsSkippedByRate,
      "sessions-refused-at-cap": c.sessionsRefusedAtCap,
      "sessions-refused-while-paused": c.sessionsRefusedWhilePaused,
      "sessions-without-address": c.sessionsWithoutAddress,
      "sessions-family-unreachable": c.sessionsFamilyUnreachable,
      "sessions-without-ipv6-intercept": c.sessionsWithoutIpv6Intercept,
      "packets-captured": c.packetsCaptured,
      "packets-malformed": this.packetsMalformed,
      "replies-malformed": this.repliesMalformed,
      "packets-kernel-dropped": this.packetsKernelDropped,
      "packets-sent": this.#sender.sent,
      "packets-send-dropped": this.#sender.dropped,
      retransmissions: c.retransmissions,
      "replies-received": c.repliesReceived,
      "replies-unmatched": c.repliesUnmatched,
      "registrations-lost": this.#links.registrationsLost,
    };
  }

  /** A 64-byte IPv4 reply record, or an 84-byte IPv6 one (from a REPLY6 frame). */
  #onReplyRecord(record: Uint8Array): void {
    const now = performance.now();
    if (record.length === REPLY_RECORD_LENGTH) {
      const reply = parseReplyRecord(record);
      if (reply === undefined) {
        this.repliesMalformed++;
        return;
      }
      this.table.onReply(reply.ip.dst, reply.tcp, now);
    } else {
      const reply = parseReplyRecord6(record);
      if (reply === undefined) {
        this.repliesMalformed++;
        return;
      }
      this.table.onReply(destinationAddress(reply.ip), reply.tcp, now);
    }
    this.#armTimer(now);
  }
}
