/**
 * Watches a `copy` run from the side: stats lines and JSON, the metrics endpoint, the memory guard
 * (`--max-memory`), and one log line when something goes wrong (kernel drops, the session cap).
 */
import type { Logger } from "../cli/log.ts";
import { Reporting } from "../cli/reporting.ts";
import { type Counters, GrowthAlarm } from "../cli/stats.ts";
import { COPY_RATE_KEYS, COPY_STATS_LINE_KEYS, copyMetrics } from "./metrics.ts";
import type { CopyRuntime } from "./runtime.ts";

/** The memory guard lets sessions in again below this share of `--max-memory`. */
const RESUME_SHARE = 0.9;
const MEBIBYTE = 1 << 20;

/** The side jobs of one `copy` run; `stop` ends them all. */
export class CopyMonitor {
  /** Times the memory guard started refusing sessions. */
  memoryPauses = 0;

  readonly #runtime: CopyRuntime;
  readonly #log: Logger;
  readonly #readRss: () => number;
  readonly #reporting: Reporting;
  readonly #kernelDrops = new GrowthAlarm((growth, total) =>
    `the kernel dropped ${growth} captured packets (${total} in all): copy is not keeping up`
  );
  readonly #capHits: GrowthAlarm;
  #rss = 0;

  /**
   * Starts watching `runtime`; `readRss` (resident bytes) is there for tests. A metrics address that
   * cannot be bound or a stats file that cannot be opened is a `FatalError`.
   */
  constructor(runtime: CopyRuntime, log: Logger, readRss = () => Deno.memoryUsage().rss) {
    this.#runtime = runtime;
    this.#log = log;
    this.#readRss = readRss;
    this.#rss = readRss();
    const { operation, maxSessions } = runtime.options;
    this.#capHits = new GrowthAlarm((growth, total) =>
      `--max-sessions ${maxSessions} reached: ${growth} new sessions refused (${total} in all)`
    );
    this.check();
    this.#reporting = Reporting.start(operation, {
      sample: () => ({ counters: this.stats() }),
      metrics: () => copyMetrics(this.stats()),
      lineKeys: COPY_STATS_LINE_KEYS,
      rateKeys: COPY_RATE_KEYS,
      check: () => this.check(),
    }, log);
  }

  /** The runtime's counters and the monitor's own. */
  stats(): Counters {
    return {
      ...this.#runtime.stats(),
      rss: this.#rss,
      "memory-paused": this.#runtime.table.paused ? 1 : 0,
      "memory-pauses": this.memoryPauses,
    };
  }

  /** One round of checks (the timer's; exposed for tests). */
  check(now = performance.now()): void {
    const runtime = this.#runtime;
    this.#rss = this.#readRss();
    this.#kernelDrops.check(runtime.kernelDropped, now, this.#log);
    this.#capHits.check(runtime.table.counters.sessionsRefusedAtCap, now, this.#log);
    const limit = runtime.options.maxMemory;
    if (limit === undefined) return;
    const table = runtime.table;
    const megabytes = (bytes: number) => `${Math.round(bytes / MEBIBYTE)} MB`;
    if (!table.paused && this.#rss > limit) {
      table.paused = true;
      this.memoryPauses++;
      this.#log.warn(
        `resident memory ${megabytes(this.#rss)} is above --max-memory ${megabytes(limit)}: ` +
          `taking no new sessions until it is below ${megabytes(limit * RESUME_SHARE)}`,
      );
    } else if (table.paused && this.#rss < limit * RESUME_SHARE) {
      table.paused = false;
      this.#log.warn(
        `resident memory ${megabytes(this.#rss)} is back below ${megabytes(limit * RESUME_SHARE)}: ` +
          `taking new sessions again (${table.counters.sessionsRefusedWhilePaused} refused meanwhile)`,
      );
    }
  }

  /** Writes a last stats sample, stops the timers and the metrics endpoint; idempotent. */
  stop(): Promise<void> {
    return this.#reporting.stop();
  }
}
