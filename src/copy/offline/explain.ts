/**
 * The warnings a replay gives about its file, each saying why and what to do: packets skipped (damage,
 * the capturing host's own packets, nothing matched), sessions left waiting for packets the file does
 * not have, and packets the capture cut short.
 */
import type { Logger } from "../../ops/mod.ts";
import type { CopyRuntime } from "../runtime.ts";
import type { CaptureFile } from "./capture_file.ts";

/** Before the replay: what in the file will not be replayed, and why. */
export function explainSkipped(file: CaptureFile, log: Logger): void {
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

/** After the file: `open` sessions still wait for packets it does not have; shutdown ends them. */
export function explainUnfinished(file: CaptureFile, open: number, log: Logger): void {
  if (open === 0) return;
  log.warn(
    `${open} session(s) wait for packets ${file.replay.input} does not have (recorded while open, ` +
      `or lost by the capture): ending them`,
  );
}

/** After the replay: packets the capture's snapshot length cut, and the sessions that ended there. */
export function explainLosses(file: CaptureFile, runtime: CopyRuntime, log: Logger): void {
  const cut = runtime.table.counters.outcomes["capture-cut"];
  if (file.cutPackets > 0 || cut > 0) {
    log.warn(
      `${file.cutPackets} packet(s) in ${file.replay.input} were cut short by the capture's snapshot ` +
        `length; ${cut} session(s) ended there (capture-cut). Record with tcpdump -s 0 to keep whole packets`,
    );
  }
}
