/**
 * One pass over the file, paced: each packet fed to the runtime when it is due (on the recorded timing
 * scaled by `--speed`, or at once under `--speed max`), with room left for replies and timers.
 */
import { setImmediate } from "node:timers";
import { sleep } from "../../sleep.ts";
import { isWireError, sourceAddress, TcpPacketDecoder } from "../../wire/mod.ts";
import type { CopyRuntime } from "../runtime.ts";
import { type CaptureFile, nextWhole, openCapture, recordedMs, type RecordTime } from "./capture_file.ts";
import { RoomGate } from "./room.ts";
import { SessionStarts } from "./session_starts.ts";
import { skipLongGaps } from "./max_gap.ts";

/** The longest stretch the replay feeds packets without letting replies and timers in. */
const BUSY_MS = 5;

/** One pass over the file: each packet fed at its time (or at once), with room left for replies. */
export async function replayPass(
  runtime: CopyRuntime,
  file: CaptureFile,
  signal: AbortSignal,
  onSessionStart: () => void,
): Promise<void> {
  const { speed } = file.replay;
  const capture = openCapture(file.replay.input, file.filter);
  const starts = new SessionStarts();
  const decoder = new TcpPacketDecoder(); // what it decoded is done with before the next frame
  const room = new RoomGate(runtime);
  const startedAt = performance.now();
  const shift = skipLongGaps(file.replay.maxGapMs ?? Infinity);
  let first: RecordTime | undefined;
  let busySince = performance.now();
  try {
    while (!signal.aborted) {
      const packet = nextWhole(capture, () => {}); // the scan has reported the damage
      if (packet === undefined) return;
      first ??= { timeSeconds: packet.timeSeconds, timeNanos: packet.timeNanos };
      const decoded = decoder.decode(capture.linkType, packet.data);
      const startsSession = decoded !== undefined && !isWireError(decoded) && !decoded.outgoing &&
        starts.observe(sourceAddress(decoded.ip), decoded.tcp);
      if (startsSession && speed === Infinity) await room.wait(signal);
      const due = startedAt + replayOffset(shift(recordedMs(first, packet)), speed);
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

/** When a packet recorded `recordedMs` after the pass's first is due, in ms after the pass began. */
export function replayOffset(recordedMs: number, speed: number): number {
  return speed === Infinity ? 0 : Math.max(0, recordedMs / speed);
}
