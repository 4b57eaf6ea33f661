/**
 * Offline replay (`copy --input`): the sessions recorded in a pcap or pcapng file, fed to the same
 * runtime as a live capture, on the recorded timing (scaled by `--speed`) or as fast as the target
 * answers, `--loop` times over.
 *
 * The file is read twice: once up front (`scanCaptureFile`), which rejects what is not a capture before
 * anything is opened and counts what the replay will show progress against; then once per pass
 * (`copyOffline`). The parts, each in its own file:
 * - `capture_file.ts`: opening, scanning and reading the file; `session_starts.ts`: which packet
 *   starts a session, by the session table's rule;
 * - `damage.ts`: where a file that breaks off stops being readable;
 * - `file_errors.ts`: what copy says about a file it cannot use;
 * - `replay.ts`: the passes and the end of the replay; `pacing.ts`: when each packet is due;
 *   `max_gap.ts`: the long silences `--max-gap` (TCPCopy's `-I`) skips;
 * - `room.ts`: holding new sessions back under `--speed max` until the table has room;
 * - `progress.ts`: the progress line on a terminal; `explain.ts`: the warnings about skipped and cut
 *   packets.
 *
 * @example
 * ```ts
 * import { copyOffline, scanCaptureFile } from "./mod.ts";
 *
 * const file = scanCaptureFile(options.replay, filter); // a UsageError if it is no capture
 * const fileStats = await copyOffline(runtime, file, signal); // for the summary line
 * ```
 *
 * @module
 */
export { type CaptureFile, scanCaptureFile } from "./capture_file.ts";
export { copyOffline } from "./replay.ts";
