/**
 * The capture file itself: checked and counted once before the replay (`scanCaptureFile`), opened and
 * read packet by packet for each pass (`openCapture`, `nextWhole`).
 */
import { Capture, type CapturedPacket } from "../../../ffi/mod.ts";
import { FatalError } from "../../errors.ts";
import {
  captureFormat,
  decodeTcpPacket,
  isWireError,
  sourceAddress,
  TcpPacketDecoder,
} from "../../wire/mod.ts";
import { filterForLink } from "../filter.ts";
import type { ReplayOptions } from "../options.ts";
import { type FileDamage, locateDamage } from "./damage.ts";
import { cannotFilter, cannotRead, notACapture, unsupportedLinkType } from "./file_errors.ts";
import { SessionStarts } from "./session_starts.ts";

/** When a packet was recorded, as libpcap gives it. */
export type RecordTime = Pick<CapturedPacket, "timeSeconds" | "timeNanos">;

/** Milliseconds from `first`'s timestamp to `packet`'s (negative for a packet stamped earlier). */
export function recordedMs(first: RecordTime, packet: RecordTime): number {
  return (packet.timeSeconds - first.timeSeconds) * 1000 + (packet.timeNanos - first.timeNanos) / 1e6;
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
export function scanCaptureFile(
  replay: ReplayOptions,
  filter: string,
  fromClient: (destinationPort: number) => boolean = () => true,
): CaptureFile {
  const path = replay.input;
  const format = captureFormat(readMagic(path));
  const capture = openCapture(path, filter);
  const starts = new SessionStarts();
  const decoder = new TcpPacketDecoder(); // what it decoded is done with before the next frame
  let packets = 0, sessions = 0, cutPackets = 0, outgoing = 0, lastMs = 0;
  let first: RecordTime | undefined;
  let damage: FileDamage | undefined;
  try {
    for (;;) {
      const packet = nextWhole(capture, (reason) => damage = locateDamage(path, format, reason));
      if (packet === undefined) break;
      first ??= { timeSeconds: packet.timeSeconds, timeNanos: packet.timeNanos };
      packets++;
      lastMs = Math.max(lastMs, recordedMs(first, packet));
      const decoded = decoder.decode(capture.linkType, packet.data);
      if (decoded === undefined || isWireError(decoded)) continue;
      if (decoded.outgoing) {
        outgoing++;
        continue;
      }
      if (decoded.tcp.capturedPayloadLength < decoded.tcp.payloadLength) cutPackets++;
      // With --compare the file's server packets are read too; only the clients' start sessions.
      if (fromClient(decoded.tcp.dstPort) && starts.observe(sourceAddress(decoded.ip), decoded.tcp)) {
        sessions++;
      }
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

/** Opens `path` filtered by `filter`; a file libpcap cannot read as a capture of TCP/IP is a `UsageError`. */
export function openCapture(path: string, filter: string): Capture {
  let capture: Capture;
  try {
    capture = Capture.openOffline(path);
  } catch (error) {
    if (!(error instanceof FatalError)) throw error;
    throw notACapture(path, error);
  }
  try {
    // An empty frame is "truncated" for every link type we read, "unsupported" for the others.
    const probe = decodeTcpPacket(capture.linkType, new Uint8Array(0));
    if (isWireError(probe) && probe.kind === "unsupported") throw unsupportedLinkType(path, capture.linkType);
    try {
      capture.setFilter(filterForLink(filter, capture.linkType));
    } catch (error) {
      if (!(error instanceof FatalError)) throw error;
      throw cannotFilter(path, error);
    }
    return capture;
  } catch (error) {
    capture.close();
    throw error;
  }
}

/** The next whole packet, or `undefined` at the end of the file or where it breaks off (`onDamage`). */
export function nextWhole(capture: Capture, onDamage: (reason: string) => void): CapturedPacket | undefined {
  try {
    return capture.next() ?? undefined;
  } catch (error) {
    if (!(error instanceof FatalError)) throw error;
    onDamage(error.message);
    return undefined;
  }
}

/** The file's first four bytes, big-endian, to tell its format; I/O failures are `FatalError`s (exit 1). */
function readMagic(path: string): number {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch (error) {
    throw cannotRead(path, error);
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
    throw cannotRead(path, error);
  } finally {
    file.close();
  }
}
