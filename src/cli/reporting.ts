/** A run's outward reporting, shared by `copy` and `intercept`: periodic stats and the metrics endpoint. */
import type { Logger } from "./log.ts";
import { type MetricSample, type MetricsServer, serveMetrics } from "./metrics.ts";
import type { OperationOptions } from "./operation.ts";
import { StatsReporter, type StatsSample } from "./stats.ts";

/** What a command reports and how its stats line reads. */
export interface ReportingSources {
  readonly sample: () => StatsSample;
  readonly metrics: () => MetricSample[];
  /** Counters shown in the stats line, in order. */
  readonly lineKeys: readonly string[];
  /** Counters that also get a per-second rate. */
  readonly rateKeys: readonly string[];
}

/** Stats and metrics, started and stopped together. */
export class Reporting {
  private constructor(readonly stats: StatsReporter, readonly metricsServer: MetricsServer | undefined) {}

  /**
   * Starts both as `options` asks; a metrics address that cannot be bound or a stats file that cannot be
   * opened is a `FatalError`, and then nothing is left running.
   */
  static start(options: OperationOptions, sources: ReportingSources, log: Logger): Reporting {
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
    return new Reporting(stats, metricsServer);
  }

  /** Writes a last stats sample and stops serving metrics. */
  async stop(): Promise<void> {
    this.stats.stop();
    await this.metricsServer?.close();
  }
}
