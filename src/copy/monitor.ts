/**
 * Watches a `copy` run from the side: stats lines and JSON, the metrics endpoint, the memory guard
 * (`--max-memory`), and one log line when something goes wrong (kernel drops, the session cap).
 */
import type { Logger } from "../cli/log.ts";
import { Reporting } from "../cli/reporting.ts";
import { type Counters, GrowthAlarm } from "../cli/stats.ts";
import { COPY_RATE_KEYS, COPY_STATS_LINE_KEYS, copyMetrics } from "./metrics.ts";
import type { CopyRuntime } from "./runtime.ts";
import { type MemoryGuard, residentBytes } from "./memory_guard.ts";

/** The side jobs of one `copy` run; `stop` ends them all. */
export class CopyMonitor {
  readonly #runtime: CopyRuntime;
  readonly #log: Logger;
  readonly #guard: MemoryGuard | undefined;
  readonly #reporting: Reporting;
  readonly #kernelDrops = new GrowthAlarm((growth, total) =>
    `the kernel dropped ${growth} captured packets (${total} in all): copy is not keeping up`
  );
  readonly #sendDrops = new GrowthAlarm((growth, total) =>
    `${growth} copies were not sent (${total} in all): the kernel had no room for them, or a firewall ` +
    `rule on this host dropped them (--send-interface sends around it)`
  );
  readonly #capHits: GrowthAlarm;
  #rss = 0;

  /**
   * Starts watching `runtime`, with `guard` for `--max-memory`. A metrics address that cannot be bound or
   * a stats file that cannot be opened is a `FatalError`.
   */
  constructor(runtime: CopyRuntime, log: Logger, guard: MemoryGuard | undefined) {
    this.#runtime = runtime;
    this.#log = log;
    this.#guard = guard;
    const { operation, maxSessions, udpMappings } = runtime.options;
    // The datagram counters only where there are udp: targets to count for.
    const udp = udpMappings.length > 0;
    this.#capHits = new GrowthAlarm((growth, total) =>
      `--max-sessions ${maxSessions} reached: ${growth} new sessions refused (${total} in all)`
    );
    this.check();
    this.#reporting = Reporting.start(operation, {
      sample: () => ({ counters: this.stats() }),
      metrics: () => copyMetrics(this.stats()),
      lineKeys: udp ? [...COPY_STATS_LINE_KEYS, "udp-captured", "udp-copied"] : COPY_STATS_LINE_KEYS,
      rateKeys: udp ? [...COPY_RATE_KEYS, "udp-copied"] : COPY_RATE_KEYS,
      check: () => this.check(),
    }, log);
  }

  /** The runtime's counters and the monitor's own. */
  stats(): Counters {
    return {
      ...this.#runtime.stats(),
      rss: this.#rss,
      "memory-paused": this.#runtime.table.paused ? 1 : 0,
      "memory-pauses": this.#guard?.pauses ?? 0,
      "memory-collections": this.#guard?.collections ?? 0,
    };
  }

  /** One round of checks (the timer's; exposed for tests). */
  check(now = performance.now()): void {
    const runtime = this.#runtime;
    this.#rss = residentBytes();
    this.#kernelDrops.check(runtime.kernelDropped, now, this.#log);
    this.#sendDrops.check(runtime.stats()["send-dropped"], now, this.#log);
    this.#capHits.check(runtime.table.counters.sessionsRefusedAtCap, now, this.#log);
    if (this.#guard !== undefined) this.#rss = this.#guard.check(runtime.table, this.#rss, now);
  }

  /** Writes a last stats sample, stops the timers and the metrics endpoint; idempotent. */
  stop(): Promise<void> {
    return this.#reporting.stop();
  }
}
