/**
 * The progress line of a replay on a terminal (`replayed 120/400 sessions, 0:12, ~0:28 left`), rewritten
 * in place every half second, and the durations the replay's log lines show.
 */
import type { CopyRuntime } from "../runtime.ts";
import type { CaptureFile } from "./capture_file.ts";

const PROGRESS_MS = 500;

/** How far a replay has come; the replay updates it, the progress line reads it. */
export interface ReplayProgress {
  /** Passes over the file completed. */
  passes: number;
  /** Sessions fed to the runtime so far, over all passes. */
  replayed: number;
  /** When the replay began (`performance.now()`). */
  readonly startedAt: number;
}

/**
 * Shows the progress line on stderr while the replay runs, if stderr is a terminal and copy is not
 * `--quiet`; the returned function takes it away.
 */
export function showProgress(file: CaptureFile, runtime: CopyRuntime, progress: ReplayProgress): () => void {
  if (runtime.options.quiet || !Deno.stderr.isTerminal()) return () => {};
  const timer = setInterval(() => writeProgress(progressLine(file, runtime, progress)), PROGRESS_MS);
  return () => {
    clearInterval(timer);
    writeProgress("");
  };
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

function progressLine(file: CaptureFile, runtime: CopyRuntime, progress: ReplayProgress): string {
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
