/**
 * The `copy` subcommand: captures the sessions clients open with this (online) host and replays each,
 * as a real TCP session of its own, against the target; the target's replies come back from intercept.
 * A live capture (`live.ts`) or a file (`offline/`) feeds one `CopyRuntime` (the session table, the
 * raw socket, the links to intercept); `CopyMonitor` reports on it.
 *
 * @example
 * ```ts
 * import { copyCommand } from "./mod.ts";
 *
 * const code = await copyCommand.run(["-x", "80-198.18.0.2:8080", "-s", "198.18.0.3"]);
 * ```
 *
 * @module
 */
import { compileFilter } from "../../ffi/mod.ts";
import type { Command } from "../cli/mod.ts";
import { formatCounters, type Logger, reopenOnHangup, withLogger } from "../ops/mod.ts";
import { detach, shouldDetach } from "../cli/mod.ts";
import { UsageError } from "../errors.ts";
import { LinkType } from "../wire/mod.ts";
import { captureFilter, filterForLink } from "./filter.ts";
import { copyLive } from "./live.ts";
import { MemoryGuard, processMemory } from "./memory_guard.ts";
import { CopyMonitor } from "./monitor.ts";
import { copyOffline, scanCaptureFile } from "./offline/mod.ts";
import { copyHelp, type CopyOptions, parseCopyOptions } from "./options.ts";
import { CopyRuntime } from "./runtime.ts";
import { COPY_COUNTERS } from "./counters.ts";

/**
 * How long a stop gives open sessions beyond the response wait: a session may be waiting up to the
 * response wait for its turn (a client's FIN after pipelined requests waits for a pause in the answers),
 * and then it still has to send and be answered.
 */
const SHUTDOWN_ANSWER_MS = 1000;

/** `tcpshadow copy`. */
export const copyCommand: Command = {
  name: "copy",
  summary: "copy live TCP sessions from this (online) host to a target server",
  help: copyHelp,
  run: (argv) => runCopy(parseCopyOptions(argv)),
};

function runCopy(options: CopyOptions): Promise<number> {
  if (shouldDetach(options.daemon)) {
    // The log of the background process may be nowhere: the terminal hears these now.
    for (const notice of options.notices) console.error(`tcpshadow copy: warning: ${notice}`);
    return detach();
  }
  return withLogger("copy", options.operation.log, (log) => copyWithLog(options, log));
}

async function copyWithLog(options: CopyOptions, log: Logger): Promise<number> {
  for (const notice of options.notices) log.warn(notice);
  const filter = captureFilter(options);
  const filterError = compileFilter(LinkType.ETHERNET, filterForLink(filter, LinkType.ETHERNET));
  if (filterError !== undefined) throw new UsageError(`--filter: ${filterError}`);
  // A file that is no capture is refused before anything is opened.
  const file = options.replay === undefined ? undefined : scanCaptureFile(
    options.replay,
    filter,
    (port) => options.mappings.some((mapping) => mapping.onlinePort === port),
  );

  const runtime = await CopyRuntime.start(options, log);
  let monitor: CopyMonitor;
  try {
    const limit = options.maxMemory;
    const guard = limit === undefined ? undefined : new MemoryGuard(limit, await processMemory(), log);
    monitor = new CopyMonitor(runtime, log, guard);
  } catch (error) {
    await runtime.shutdown(0);
    throw error;
  }
  const stopping = new AbortController();
  const stop = () => stopping.abort();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  const stopReopening = reopenOnHangup(log);
  try {
    let fileStats = {};
    if (file === undefined) await copyLive(runtime, options.interfaces, filter, stopping.signal);
    else fileStats = await copyOffline(runtime, file, stopping.signal);
    const graceMs = options.session.responseWaitMs + SHUTDOWN_ANSWER_MS;
    log.info(`stopping: waiting up to ${graceMs} ms for ${runtime.table.active} open session(s)`);
    await runtime.shutdown(graceMs);
    await monitor.stop();
    log.always(`summary ${formatCounters(COPY_COUNTERS, { ...runtime.stats(), ...fileStats })}`);
    return 0;
  } finally {
    await monitor.stop();
    stopReopening();
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  }
}
