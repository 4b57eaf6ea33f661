/**
 * Watches a `copy` run from the side: stats lines and JSON, the metrics endpoint, the memory guard
 * (`--max-memory`), and one log line when something goes wrong (kernel drops, the session cap).
 */
import { counterSamples, type CounterValues, GrowthAlarm, type Logger, Reporting } from "../ops/mod.ts";
import {
  COPY_COUNTERS,
  COPY_METRICS_PREFIX,
  COPY_RATES,
  COPY_STATS_LINE,
  COPY_UDP_RATES,
  COPY_UDP_STATS_LINE,
  type MEMORY_COUNTERS,
  type RUNTIME_COUNTERS,
} from "./counters.ts";
import type { CopyRuntime } from "./runtime.ts";
import type { MemoryGuard } from "./memory_guard.ts";
import { BlindAlarm } from "./blind.ts";

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
  readonly #blind: BlindAlarm;
  #rss = 0;
  /** V8's heap and what lies outside it, read with the resident size: they tell garbage from the rest. */
  #heap: Deno.MemoryUsage = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0 };

  /**
   * Starts watching `runtime`, with `guard` for `--max-memory`. A metrics address that cannot be bound or
   * a stats file that cannot be opened is a `FatalError`.
   */
  constructor(runtime: CopyRuntime, log: Logger, guard: MemoryGuard | undefined) {
    this.#runtime = runtime;
    this.#log = log;
    this.#guard = guard;
    const { operation, maxSessions, lonely, udpMappings } = runtime.options;
    this.#blind = new BlindAlarm(lonely);
    // The datagram counters only where there are udp: targets to count for.
    const udp = udpMappings.length > 0;
    this.#capHits = new GrowthAlarm((growth, total) =>
      `--max-sessions ${maxSessions} reached: ${growth} new sessions refused (${total} in all)`
    );
    this.check();
    this.#reporting = Reporting.start(operation, {
      sample: () => ({ counters: this.stats() }),
      metrics: () => counterSamples(COPY_METRICS_PREFIX, COPY_COUNTERS, this.stats()),
      lineKeys: udp ? [...COPY_STATS_LINE, ...COPY_UDP_STATS_LINE] : COPY_STATS_LINE,
      rateKeys: udp ? [...COPY_RATES, ...COPY_UDP_RATES] : COPY_RATES,
      check: () => this.check(),
    }, log);
  }

  /** The runtime's counters and the monitor's own. */
  stats(): CounterValues<typeof RUNTIME_COUNTERS> & CounterValues<typeof MEMORY_COUNTERS> {
    return {
      ...this.#runtime.stats(),
      "resident-memory-bytes": this.#rss,
      "heap-bytes": this.#heap.heapTotal,
      "heap-used-bytes": this.#heap.heapUsed,
      "external-bytes": this.#heap.external,
      "memory-paused": this.#runtime.table.paused ? 1 : 0,
      "memory-pauses": this.#guard?.pauses ?? 0,
      "memory-collections": this.#guard?.collections ?? 0,
    };
  }

  /** One round of checks (the timer's; exposed for tests). */
  check(now = performance.now()): void {
    const runtime = this.#runtime;
    this.#heap = Deno.memoryUsage();
    this.#rss = this.#heap.rss;
    this.#kernelDrops.check(runtime.packetsKernelDropped, now, this.#log);
    this.#sendDrops.check(runtime.stats()["packets-send-dropped"], now, this.#log);
    this.#capHits.check(runtime.table.counters.sessionsRefusedAtCap, now, this.#log);
    const connected = runtime.interceptsConnected;
    if (connected !== undefined) this.#blind.check(connected, runtime.table.active, now, this.#log);
    if (this.#guard !== undefined) this.#rss = this.#guard.check(runtime.table, this.#rss, now);
  }

  /** Writes a last stats sample, stops the timers and the metrics endpoint; idempotent. */
  stop(): Promise<void> {
    return this.#reporting.stop();
  }
}
