/**
 * A run's outward reporting, shared by `copy` and `intercept`: periodic stats, the metrics endpoint, and
 * a check of the run's health every second.
 */
import type { Logger } from "./log.ts";
import { type ListenAddress, type MetricSample, type MetricsServer, serveMetrics } from "./metrics.ts";
import { StatsReporter, type StatsSample } from "./stats.ts";

/** How often and where a run reports (the operation flags' values). */
export interface ReportingOptions {
  /** Seconds between stats samples (lines and JSON lines). */
  readonly statsSeconds: number;
  /** Whether each sample is also a line in the log. */
  readonly statsLines: boolean;
  /** Where stats go as JSON lines: a path, `-` for stdout, or `undefined` for nowhere. */
  readonly statsJson: string | undefined;
  /** Where to serve `/metrics`, if anywhere. */
  readonly metrics: ListenAddress | undefined;
}

/** What a command reports and how its stats line reads. */
export interface ReportingSources {
  readonly sample: () => StatsSample;
  readonly metrics: () => MetricSample[];
  /** Counters shown in the stats line, in order. */
  readonly lineKeys: readonly string[];
  /** Counters that also get a per-second rate. */
  readonly rateKeys: readonly string[];
  /** Runs every `CHECK_MS` (kernel drops, the memory guard, ...). */
  readonly check: () => void;
}

const CHECK_MS = 1000;

/** Stats, metrics and checks, started and stopped together. */
export class Reporting {
  readonly #timer: ReturnType<typeof setInterval>;
  #stopping: Promise<void> | undefined;

  private constructor(
    readonly stats: StatsReporter,
    readonly metricsServer: MetricsServer | undefined,
    check: () => void,
  ) {
    this.#timer = setInterval(check, CHECK_MS);
  }

  /**
   * Starts both as `options` asks; a metrics address that cannot be bound or a stats file that cannot be
   * opened is a `FatalError`, and then nothing is left running.
   */
  static start(options: ReportingOptions, sources: ReportingSources, log: Logger): Reporting {
    const stats = new StatsReporter(sources.sample, {
      intervalSeconds: options.statsSeconds,
      lines: options.statsLines,
      jsonPath: options.statsJson,
      lineKeys: sources.lineKeys,
      rateKeys: sources.rateKeys,
    }, log);
    let metricsServer: MetricsServer | undefined;
    try {
      metricsServer = options.metrics === undefined
        ? undefined
        : serveMetrics(options.metrics, sources.metrics, log);
    } catch (error) {
      stats.stop();
      throw error;
    }
    stats.start();
    return new Reporting(stats, metricsServer, sources.check);
  }

  /** Stops the checks, writes a last stats sample and stops serving metrics; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#timer);
      this.stats.stop();
      await this.metricsServer?.close();
    })();
    return this.#stopping;
  }
}
