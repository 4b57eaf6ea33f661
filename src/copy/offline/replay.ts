/**
 * The replay from start to end: the passes over the file, the wait for the sessions they opened, and
 * the file's own counters for the summary.
 */
import { sleep } from "../../sleep.ts";
import type { CounterValues } from "../../ops/mod.ts";
import type { REPLAY_COUNTERS } from "../counters.ts";
import type { CopyRuntime } from "../runtime.ts";
import type { CaptureFile } from "./capture_file.ts";
import { explainLosses, explainSkipped, explainUnfinished } from "./explain.ts";
import { replayPass } from "./pacing.ts";
import { formatDuration, type ReplayProgress, showProgress } from "./progress.ts";

/** How often the end of a replay checks whether its sessions are done. */
const END_POLL_MS = 10;
/**
 * After the file, sessions still open once nothing has been sent or answered for this long wait for
 * packets the file does not have (it was recorded while they were open): they are left to shutdown.
 * Longer than `responseWaitMs`, so a session waiting on a slow answer is not cut.
 */
const END_QUIET_MS = 5000;

/**
 * Replays `file` through `runtime` until every pass is fed and every session it opened has ended, or
 * until `signal` aborts. Returns the file's own counters for the summary.
 */
export async function copyOffline(
  runtime: CopyRuntime,
  file: CaptureFile,
  signal: AbortSignal,
): Promise<CounterValues<typeof REPLAY_COUNTERS>> {
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
  runtime.announceRunning();
  explainSkipped(file, log);
  const progress: ReplayProgress = { passes: 0, replayed: 0, startedAt: performance.now() };
  const hideProgress = showProgress(file, runtime, progress);
  try {
    for (let pass = 0; pass < replay.loop && !signal.aborted; pass++) {
      if (pass > 0) runtime.table.startPass();
      await replayPass(runtime, file, signal, () => progress.replayed++);
      if (!signal.aborted) progress.passes++;
    }
    await waitForSessions(runtime, signal);
  } finally {
    hideProgress();
  }
  const replayMs = Math.round(performance.now() - progress.startedAt);
  if (signal.aborted) {
    log.warn(`interrupted: ${progress.replayed} of ${file.sessions * replay.loop} session(s) replayed`);
  } else {
    log.info(`replayed ${progress.replayed} session(s) in ${formatDuration(replayMs)}`);
    explainUnfinished(file, runtime.table.active, log);
  }
  explainLosses(file, runtime, log);
  return {
    "file-sessions": file.sessions,
    "file-packets": file.packets,
    "file-duration-ms": Math.round(file.durationMs),
    "file-cut-packets": file.cutPackets,
    "file-outgoing": file.outgoing,
    "file-damaged": file.damage === undefined ? 0 : 1,
    "replay-passes": progress.passes,
    "sessions-replayed": progress.replayed,
    "replay-ms": replayMs,
  };
}

/** Waits until every session has ended, or the ones left have nothing more to do (`END_QUIET_MS`). */
async function waitForSessions(runtime: CopyRuntime, signal: AbortSignal): Promise<void> {
  const quietMs = Math.min(END_QUIET_MS, runtime.options.session.idleTimeoutMs);
  const activity = () => {
    const stats = runtime.stats();
    return stats["packets-sent"] + stats["replies-received"];
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
