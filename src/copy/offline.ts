/**
 * Offline replay (`copy --input`): the sessions recorded in a pcap or pcapng file, fed to the same
 * runtime as a live capture, on the recorded timing (scaled by `--speed`) or as fast as the target
 * answers, `--loop` times over.
 *
 * The file is read twice: once up front (`scanCaptureFile`), which rejects what is not a capture before
 * anything is opened and counts what the replay will show progress against; then once per pass.
 */
import { setImmediate } from "node:timers";
import { Capture, type CapturedPacket } from "../../ffi/mod.ts";
import type { Logger } from "../cli/log.ts";
import { FatalError, UsageError } from "../errors.ts";
import { sessionIsn, startsSession } from "../session/mod.ts";
import {
  type Address,
  decodeTcpPacket,
  type EndpointKey,
  endpointKey,
  isWireError,
  sourceAddress,
} from "../wire/mod.ts";
import { filterForLink } from "./filter.ts";
import type { ReplayOptions } from "./options.ts";
import type { CopyRuntime, CopyStats } from "./runtime.ts";
import { sleep } from "../sleep.ts";

/** How often the end of a replay checks whether its sessions are done. */
const END_POLL_MS = 10;
/** The longest stretch the replay feeds packets without letting replies and timers in. */
const BUSY_MS = 5;
/** `--speed max` stops opening sessions while this many are open... */
const MAX_OPEN_SESSIONS = 1000;
/** ...unless none has ended or left for this long past the linger time: they wait for later packets. */
const STALL_MS = 1000;
const ROOM_POLL_MS = 2;
const PROGRESS_MS = 500;
/**
 * After the file, sessions still open once nothing has been sent or answered for this long wait for
 * packets the file does not have (it was recorded while they were open): they are left to shutdown.
 * Longer than `responseWaitMs`, so a session waiting on a slow answer is not cut.
 */
const END_QUIET_MS = 5000;
const PCAPNG_MAGIC = 0x0a0d0d0a;
/** Classic pcap (magic a1b2c3d4 or a1b23c4d, either byte order): a 24-byte file header, 16 per record. */
const CLASSIC_MAGICS = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1];
const CLASSIC_FILE_HEADER = 24;
const CLASSIC_RECORD_HEADER = 16;

/** When a packet was recorded, as libpcap gives it. */
export type RecordTime = Pick<CapturedPacket, "timeSeconds" | "timeNanos">;

/** Where a capture file stops being readable (cut off while written, or corrupt). */
export interface FileDamage {
  /** The record, counting every packet in the file from 1, that could not be read. */
  readonly packetNumber: number;
  /** Where that record starts (classic pcap only). */
  readonly byteOffset: number | undefined;
  /** libpcap's explanation. */
  readonly reason: string;
}

/** A capture file checked and counted, ready to replay. */
export interface CaptureFile {
  readonly replay: ReplayOptions;
  /** The BPF filter that selects the clients' packets. */
  readonly filter: string;
  readonly linkType: number;
  /** Packets the filter selects, per pass. */
  readonly packets: number;
  /** Sessions in those packets: SYNs, and sessions already open when the recording began. */
  readonly sessions: number;
  /** Recorded time from the first selected packet to the last, ms. */
  readonly durationMs: number;
  /** Packets whose TCP payload the capture kept only part of (its snapshot length). */
  readonly cutPackets: number;
  /** Packets the capturing host sent itself (Linux cooked captures say so): skipped, as live. */
  readonly outgoing: number;
  readonly damage: FileDamage | undefined;
}

/**
 * Opens and reads `replay.input` once. Not a capture file (or one without TCP/IP): `UsageError`, exit
 * 2, as the file given is the mistake. Cannot be read at all (missing, no permission): `FatalError`,
 * exit 1. A file that breaks off after its start is not an error: `damage` says where.
 */
export function scanCaptureFile(replay: ReplayOptions, filter: string): CaptureFile {
  const path = replay.input;
  const pcapng = readMagic(path) === PCAPNG_MAGIC;
  const capture = openCapture(path, filter);
  const starts = new SessionStarts();
  let packets = 0, sessions = 0, cutPackets = 0, outgoing = 0, lastMs = 0;
  let first: RecordTime | undefined;
  let damage: FileDamage | undefined;
  try {
    for (;;) {
      const packet = nextWhole(capture, (reason) => damage = locateDamage(path, pcapng, reason));
      if (packet === undefined) break;
      first ??= { timeSeconds: packet.timeSeconds, timeNanos: packet.timeNanos };
      packets++;
      lastMs = Math.max(lastMs, recordedMs(first, packet));
      const decoded = decodeTcpPacket(capture.linkType, packet.data);
      if (decoded === undefined || isWireError(decoded)) continue;
      if (decoded.outgoing) {
        outgoing++;
        continue;
      }
      if (decoded.tcp.capturedPayloadLength < decoded.tcp.payloadLength) cutPackets++;
      if (starts.observe(sourceAddress(decoded.ip), decoded.tcp)) sessions++;
    }
  } finally {
    capture.close();
  }
  return {
    replay,
    filter,
    linkType: capture.linkType,
    packets,
    sessions,
    durationMs: lastMs,
    cutPackets,
    outgoing,
    damage,
  };
}

/**
 * Replays `file` through `runtime` until every pass is fed and every session it opened has ended, or
 * until `signal` aborts. Returns the file's own counters for the summary.
 */
export async function copyOffline(
  runtime: CopyRuntime,
  file: CaptureFile,
  signal: AbortSignal,
): Promise<CopyStats> {
  const { replay } = file;
  const log = runtime.log;
  const pace = replay.speed === Infinity
    ? "as fast as the target answers"
    : `at ${replay.speed}x the recorded pace`;
  const times = replay.loop > 1 ? `, ${replay.loop} times` : "";
  const recorded = `${file.packets} packets, ${formatDuration(file.durationMs)} recorded`;
  log.info(
    `copying ${file.sessions} session(s) (${recorded}) from ${replay.input} ${pace}${times} ` +
      `(filter: ${file.filter})`,
  );
  explainSkipped(file, log);
  const progress = { passes: 0, replayed: 0, startedAt: performance.now() };
  const showProgress = !runtime.options.quiet && Deno.stderr.isTerminal();
  const progressTimer = showProgress
    ? setInterval(() => writeProgress(progressLine(file, runtime, progress)), PROGRESS_MS)
    : undefined;
  try {
    for (let pass = 0; pass < replay.loop && !signal.aborted; pass++) {
      if (pass > 0) runtime.table.startPass();
      await replayPass(runtime, file, signal, () => progress.replayed++);
      if (!signal.aborted) progress.passes++;
    }
    await waitForSessions(runtime, signal);
  } finally {
    clearInterval(progressTimer);
    if (showProgress) writeProgress("");
  }
  const replayMs = Math.round(performance.now() - progress.startedAt);
  if (signal.aborted) {
    log.warn(`interrupted: ${progress.replayed} of ${file.sessions * replay.loop} session(s) replayed`);
  } else {
    log.info(`replayed ${progress.replayed} session(s) in ${formatDuration(replayMs)}`);
  }
  const open = runtime.table.active;
  if (open > 0 && !signal.aborted) {
    log.warn(
      `${open} session(s) wait for packets ${file.replay.input} does not have (recorded while open, ` +
        `or lost by the capture): ending them`,
    );
  }
  explainLosses(file, runtime, log);
  return {
    "file-sessions": file.sessions,
    "file-packets": file.packets,
    "file-duration-ms": Math.round(file.durationMs),
    "file-cut-packets": file.cutPackets,
    "file-outgoing": file.outgoing,
    "file-damaged": file.damage === undefined ? 0 : 1,
    passes: progress.passes,
    "sessions-replayed": progress.replayed,
    "replay-ms": replayMs,
  };
}

/** One pass over the file: each packet fed at its time (or at once), with room left for replies. */
async function replayPass(
  runtime: CopyRuntime,
  file: CaptureFile,
  signal: AbortSignal,
  onSessionStart: () => void,
): Promise<void> {
  const { speed } = file.replay;
  const capture = openCapture(file.replay.input, file.filter);
  const starts = new SessionStarts();
  const room = new RoomGate(runtime);
  const startedAt = performance.now();
  let first: RecordTime | undefined;
  let busySince = performance.now();
  try {
    while (!signal.aborted) {
      const packet = nextWhole(capture, () => {}); // the scan has reported the damage
      if (packet === undefined) return;
      first ??= { timeSeconds: packet.timeSeconds, timeNanos: packet.timeNanos };
      const decoded = decodeTcpPacket(capture.linkType, packet.data);
      const startsSession = decoded !== undefined && !isWireError(decoded) && !decoded.outgoing &&
        starts.observe(sourceAddress(decoded.ip), decoded.tcp);
      if (startsSession && speed === Infinity) await room.wait(signal);
      const due = startedAt + replayOffset(recordedMs(first, packet), speed);
      for (let now = performance.now(); now < due && !signal.aborted; now = performance.now()) {
        await sleep(Math.min(due - now, 100));
        busySince = performance.now();
      }
      runtime.onFrame(capture.linkType, packet.data, performance.now());
      if (startsSession) onSessionStart();
      if (performance.now() - busySince > BUSY_MS) {
        runtime.runTimers(performance.now());
        await new Promise((resolve) => setImmediate(resolve));
        busySince = performance.now();
      }
    }
  } finally {
    capture.close();
  }
}

/**
 * Holds back new sessions under `--speed max` while `MAX_OPEN_SESSIONS` are open (lingering ones left
 * out), while the table is at `--max-sessions`, or while the memory guard has paused it: the replay goes
 * as fast as the target finishes sessions, and none is refused. When no session has ended or left for
 * `STALL_MS` past the linger time (ended sessions leave only after it), the open ones wait for packets
 * further on in the file: it lets sessions in.
 */
class RoomGate {
  readonly #runtime: CopyRuntime;
  /** Sessions ended plus sessions gone, as last seen: it changes whenever a session makes way. */
  #moves = 0;
  #movedAt = performance.now();

  constructor(runtime: CopyRuntime) {
    this.#runtime = runtime;
  }

  async wait(signal: AbortSignal): Promise<void> {
    const { table, options } = this.#runtime;
    const full = () =>
      table.active + options.multiply > MAX_OPEN_SESSIONS ||
      table.active + table.lingering + options.multiply > options.maxSessions || table.paused;
    while (!signal.aborted && full()) {
      const ended = table.counters.sessionsCopied - table.active;
      const gone = ended - table.lingering;
      const moves = ended + gone;
      if (moves !== this.#moves) {
        this.#moves = moves;
        this.#movedAt = performance.now();
      } else if (performance.now() - this.#movedAt > STALL_MS + options.session.lingerMs) {
        return;
      }
      await sleep(ROOM_POLL_MS);
    }
  }
}

/** Tells which packets start a session, by the session table's rule, for a file read on its own. */
export class SessionStarts {
  /** ISNs by server port, then by client address and port (`endpointKey`). */
  readonly #isns = new Map<number, Map<EndpointKey, number>>();

  /** Whether this packet from `source` starts a session. */
  observe(
    source: Address,
    tcp: {
      readonly srcPort: number;
      readonly dstPort: number;
      readonly seq: number;
      readonly flags: number;
      readonly payloadLength: number;
    },
  ): boolean {
    let isns = this.#isns.get(tcp.dstPort);
    if (isns === undefined) {
      isns = new Map();
      this.#isns.set(tcp.dstPort, isns);
    }
    const key = endpointKey(source, tcp.srcPort);
    if (!startsSession(isns.get(key), tcp)) return false;
    isns.set(key, sessionIsn(tcp));
    return true;
  }
}

/** When a packet recorded `recordedMs` after the pass's first is due, in ms after the pass began. */
export function replayOffset(recordedMs: number, speed: number): number {
  return speed === Infinity ? 0 : Math.max(0, recordedMs / speed);
}

/** Milliseconds from `first`'s timestamp to `packet`'s (negative for a packet stamped earlier). */
export function recordedMs(first: RecordTime, packet: RecordTime): number {
  return (packet.timeSeconds - first.timeSeconds) * 1000 + (packet.timeNanos - first.timeNanos) / 1e6;
}

/**
 * How long the rest of the replay should take, ms: by the recording's clock when paced, else by the
 * rate sessions went so far; `undefined` before there is anything to go by.
 */
export function remainingMs(
  progress: { readonly replayed: number; readonly total: number; readonly elapsedMs: number },
  expectedMs: number,
): number | undefined {
  if (Number.isFinite(expectedMs)) return Math.max(0, expectedMs - progress.elapsedMs);
  if (progress.replayed === 0) return undefined;
  return progress.elapsedMs * (progress.total - progress.replayed) / progress.replayed;
}

/** `m:ss` (or `h:mm:ss`) for a duration in ms. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

function progressLine(
  file: CaptureFile,
  runtime: CopyRuntime,
  progress: { passes: number; replayed: number; startedAt: number },
): string {
  const total = file.sessions * file.replay.loop;
  const elapsedMs = performance.now() - progress.startedAt;
  if (progress.passes === file.replay.loop) {
    return `replayed ${total}/${total} sessions, ${
      formatDuration(elapsedMs)
    }; waiting for ${runtime.table.active}`;
  }
  const expectedMs = file.durationMs * file.replay.loop / file.replay.speed;
  const left = remainingMs({ replayed: progress.replayed, total, elapsedMs }, expectedMs);
  return `replayed ${progress.replayed}/${total} sessions, ${formatDuration(elapsedMs)}` +
    (left === undefined ? "" : `, ~${formatDuration(left)} left`);
}

/** Rewrites the line in place; the cursor stays at its start, so a log line simply writes over it. */
function writeProgress(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`\x1b[K${line}\r`));
}

function explainSkipped(file: CaptureFile, log: Logger): void {
  const { input } = file.replay;
  if (file.damage !== undefined) {
    const at = file.damage.byteOffset === undefined ? "" : ` (byte ${file.damage.byteOffset})`;
    log.warn(
      `${input} breaks off at packet ${file.damage.packetNumber}${at}: ${file.damage.reason}; ` +
        `replaying the packets before it`,
    );
  }
  if (file.outgoing > 0) {
    log.warn(
      `${file.outgoing} packet(s) in ${input} were sent by the capturing host and are skipped: ` +
        `record on the server (the online host), where the clients' packets come in`,
    );
  }
  if (file.packets === 0) log.warn(`no packet in ${input} matches ${file.filter}`);
}

function explainLosses(file: CaptureFile, runtime: CopyRuntime, log: Logger): void {
  const cut = runtime.table.counters.outcomes["capture-cut"];
  if (file.cutPackets > 0 || cut > 0) {
    log.warn(
      `${file.cutPackets} packet(s) in ${file.replay.input} were cut short by the capture's snapshot ` +
        `length; ${cut} session(s) ended there (capture-cut). Record with tcpdump -s 0 to keep whole packets`,
    );
  }
}

/** Waits until every session has ended, or the ones left have nothing more to do (`END_QUIET_MS`). */
async function waitForSessions(runtime: CopyRuntime, signal: AbortSignal): Promise<void> {
  const quietMs = Math.min(END_QUIET_MS, runtime.options.session.idleTimeoutMs);
  const activity = () => {
    const stats = runtime.stats();
    return stats.sent + stats.replies;
  };
  let seen = activity();
  let movedAt = performance.now();
  while (runtime.table.active > 0 && !signal.aborted) {
    await sleep(END_POLL_MS);
    const now = activity();
    if (now !== seen) {
      seen = now;
      movedAt = performance.now();
    } else if (performance.now() - movedAt > quietMs) {
      return;
    }
  }
}

/** Opens `path` filtered by `filter`; a file libpcap cannot read as a capture of TCP/IP is a `UsageError`. */
function openCapture(path: string, filter: string): Capture {
  let capture: Capture;
  try {
    capture = Capture.openOffline(path);
  } catch (error) {
    if (!(error instanceof FatalError)) throw error;
    throw new UsageError(
      `--input: ${path} is not a pcap or pcapng capture (${withoutPath(error.message, path)})`,
    );
  }
  try {
    // An empty frame is "truncated" for every link type we read, "unsupported" for the others.
    const probe = decodeTcpPacket(capture.linkType, new Uint8Array(0));
    if (isWireError(probe) && probe.kind === "unsupported") {
      throw new UsageError(
        `--input: ${path} has link type ${capture.linkType}; copy reads Ethernet, raw IP, Linux cooked ` +
          `(tcpdump -i any) and loopback captures`,
      );
    }
    try {
      capture.setFilter(filterForLink(filter, capture.linkType));
    } catch (error) {
      if (!(error instanceof FatalError)) throw error;
      throw new UsageError(`--input: cannot filter ${path}: ${error.message}`);
    }
    return capture;
  } catch (error) {
    capture.close();
    throw error;
  }
}

/** The next whole packet, or `undefined` at the end of the file or where it breaks off (`onDamage`). */
function nextWhole(capture: Capture, onDamage: (reason: string) => void): CapturedPacket | undefined {
  try {
    return capture.next() ?? undefined;
  } catch (error) {
    if (!(error instanceof FatalError)) throw error;
    onDamage(error.message);
    return undefined;
  }
}

/** Counts every record (unfiltered) up to the one that cannot be read. */
function locateDamage(path: string, pcapng: boolean, reason: string): FileDamage {
  const capture = Capture.openOffline(path);
  let records = 0;
  let offset = CLASSIC_FILE_HEADER;
  try {
    for (let packet = capture.next(); packet; packet = capture.next()) {
      records++;
      offset += CLASSIC_RECORD_HEADER + packet.capturedLength;
    }
  } catch (error) {
    if (!(error instanceof FatalError)) throw error; // the damage being located
  } finally {
    capture.close();
  }
  const classic = !pcapng && CLASSIC_MAGICS.includes(readMagic(path));
  return {
    packetNumber: records + 1,
    byteOffset: classic ? offset : undefined,
    reason: withoutPath(reason, path),
  };
}

/** The file's first four bytes, big-endian; I/O failures are `FatalError`s (exit 1). */
function readMagic(path: string): number {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch (error) {
    throw new FatalError(`cannot read ${path}: ${ioReason(error)}`);
  }
  try {
    const bytes = new Uint8Array(4);
    for (let count = 0; count < bytes.length;) {
      const read = file.readSync(bytes.subarray(count));
      if (read === null) break; // shorter than any capture: libpcap will say so
      count += read;
    }
    return new DataView(bytes.buffer).getUint32(0);
  } catch (error) {
    throw new FatalError(`cannot read ${path}: ${ioReason(error)}`);
  } finally {
    file.close();
  }
}

/** libpcap's errors start with the file name, which our messages already give. */
function withoutPath(message: string, path: string): string {
  const prefix = `cannot read ${path}: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/** An I/O error's text without Deno's "(os error N): open '...'" tail. */
function ioReason(error: unknown): string {
  return (error as Error).message.replace(/ \(os error \d+\).*$/, "");
}
