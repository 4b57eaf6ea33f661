/**
 * The flags every long-running command shares to be run in production: how much it logs and where,
 * periodic stats lines, and a Prometheus endpoint.
 */
import { UsageError } from "../errors.ts";
import { intValue, portValue } from "./flags.ts";
import {
  type ListenAddress,
  LOG_LEVELS,
  type LogLevel,
  type LogOptions,
  type ReportingOptions,
} from "../ops/mod.ts";

/** What the operation flags asked for: the log, and the reporting (stats, metrics). */
export interface OperationOptions extends ReportingOptions {
  readonly log: LogOptions;
}

/** The parseArgs specs of the operation flags, to spread into a command's own. */
export const OPERATION_FLAGS = {
  "log-level": { type: "string" },
  "log-file": { type: "string", short: "l" },
  stats: { type: "string" },
  "stats-json": { type: "string" },
  metrics: { type: "string" },
} as const;

/** Help lines of the operation flags, aligned like the commands' own. */
export const OPERATION_HELP = `  --log-level LEVEL        ${
  LOG_LEVELS.join("|")
} (default info; warn with --quiet)
  -l, --log-file PATH      append log lines to PATH instead of stderr (the final summary goes to both)
  --stats SECONDS          a stats line every SECONDS, 0 for none (default 5 when stderr is a terminal)
  --stats-json FILE        the same stats as one JSON object per line to FILE, or - for stdout
  --metrics HOST:PORT      serve Prometheus metrics at http://HOST:PORT/metrics
  --config FILE            take flags from the YAML FILE's section for this command; flags given here win`;

const DEFAULT_STATS_SECONDS = 5;

/** Checks the operation flags' values; `quiet` is the command's `--quiet`. */
export function operationOptions(
  values: {
    "log-level"?: string;
    "log-file"?: string;
    stats?: string;
    "stats-json"?: string;
    metrics?: string;
  },
  quiet: boolean,
): OperationOptions {
  const level = values["log-level"] ?? (quiet ? "warn" : "info");
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, not "${level}"`);
  }
  const seconds = values.stats === undefined ? undefined : intValue("--stats", values.stats, 0, 86400);
  const statsJson = values["stats-json"];
  if (seconds === 0 && statsJson !== undefined) {
    throw new UsageError("--stats-json needs --stats above 0: it is written every --stats seconds");
  }
  return {
    log: { level: level as LogLevel, file: values["log-file"] },
    statsSeconds: seconds || DEFAULT_STATS_SECONDS,
    statsLines: seconds === undefined ? Deno.stderr.isTerminal() && !quiet : seconds > 0,
    statsJson,
    metrics: values.metrics === undefined ? undefined : listenAddressValue("--metrics", values.metrics),
  };
}

/** `HOST:PORT` or `:PORT` (all addresses), or a `UsageError` naming `flag`. */
export function listenAddressValue(flag: string, text: string): ListenAddress {
  const colon = text.lastIndexOf(":");
  if (colon < 0) throw new UsageError(`${flag}: "${text}" is not HOST:PORT (like 127.0.0.1:9100)`);
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port: portValue(flag, text.slice(colon + 1)) };
}
