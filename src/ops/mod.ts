/**
 * Running a command in production: its counters (one typed list per command, one name each), its log (`--log-level`, `--log-file`), periodic stats lines and JSON
 * (`--stats`, `--stats-json`), the Prometheus endpoint (`--metrics`), files reopened on SIGHUP for
 * logrotate, and alarms for counters of trouble. The commands' flags for these live in `src/cli/`.
 *
 * @example
 * ```ts
 * import { withLogger } from "./mod.ts";
 *
 * await withLogger("copy", { level: "info" }, async (log) => {
 *   log.info("starting");
 * });
 * ```
 *
 * @module
 */
export {
  counter,
  type CounterName,
  counterSamples,
  type CounterSpec,
  type CounterValues,
  formatCounters,
  gauge,
  metricName,
} from "./counters.ts";
export { LineFile, linesDropped, reopenOnHangup } from "./line_file.ts";
export { LOG_LEVELS, type Logger, type LogLevel, type LogOptions, withLogger } from "./log.ts";
export { type ListenAddress, type MetricSample, type MetricSpec } from "./metrics.ts";
export { Reporting, type ReportingOptions, type ReportingSources } from "./reporting.ts";
export { type Counters, GrowthAlarm, type StatsSample } from "./stats.ts";
