/**
 * Periodic stats of a running command: every few seconds one `stats key=value ...` log line, and/or
 * the same as one JSON object per line (`--stats-json`), with per-second rates of the busy counters.
 */
import { LineFile } from "./line_file.ts";
import type { Logger } from "./log.ts";

/** Flat counters and gauges of a run, by name (`captured`, `active`, ...). */
export type Counters = Record<string, number>;

/** What one sample holds: the run's counters, and optionally counters per peer (`name` → counters). */
export interface StatsSample {
  readonly counters: Counters;
  readonly peers?: ReadonlyMap<string, Counters>;
}

/** What a `StatsReporter` reports and how. */
export interface StatsReporterOptions {
  readonly intervalSeconds: number;
  /** Write each sample as a log line. */
  readonly lines: boolean;
  /** Write each sample as a JSON line here (`-` for stdout). */
  readonly jsonPath: string | undefined;
  /** Counters shown in the log line, in order; all of them go to JSON. */
  readonly lineKeys: readonly string[];
  /** Counters that also get a per-second rate. */
  readonly rateKeys: readonly string[];
}

/** Samples a run's counters on a timer and writes them out. */
export class StatsReporter {
  readonly #sample: () => StatsSample;
  readonly #options: StatsReporterOptions;
  readonly #log: Logger;
  readonly #json: Pick<LineFile, "writeLine" | "close"> | undefined;
  readonly #started = performance.now();
  #previous: { at: number; counters: Counters };
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  /** Opens the JSON file (a `FatalError` if it cannot be) and takes the first sample as the baseline. */
  constructor(sample: () => StatsSample, options: StatsReporterOptions, log: Logger) {
    this.#sample = sample;
    this.#options = options;
    this.#log = log;
    const path = options.jsonPath;
    this.#json = path === undefined
      ? undefined
      : path === "-"
      ? { writeLine: (text) => console.log(text), close: () => {} }
      : new LineFile(path, "--stats-json file", (line) => log.always(`warning: ${line}`));
    this.#previous = { at: this.#started, counters: { ...sample().counters } };
  }

  /** Starts the timer, if there is anything to write. */
  start(): void {
    if (!this.#options.lines && this.#json === undefined) return;
    this.#timer = setInterval(() => this.report(), this.#options.intervalSeconds * 1000);
  }

  /** Writes one sample now. */
  report(): void {
    const now = performance.now();
    const { counters, peers } = this.#sample();
    const seconds = Math.max((now - this.#previous.at) / 1000, 1e-3);
    const rates: Counters = {};
    for (const key of this.#options.rateKeys) {
      rates[key] = round(((counters[key] ?? 0) - (this.#previous.counters[key] ?? 0)) / seconds);
    }
    this.#previous = { at: now, counters: { ...counters } };
    if (this.#options.lines) this.#log.info(formatLine(counters, rates, peers, this.#options.lineKeys));
    if (this.#json !== undefined) {
      const record = {
        time: new Date().toISOString(),
        elapsed: round((now - this.#started) / 1000),
        ...counters,
        "per-second": rates,
        ...(peers === undefined ? {} : { peers: Object.fromEntries(peers) }),
      };
      this.#json.writeLine(JSON.stringify(record));
    }
  }

  /** Writes a last sample if the timer ran, stops it and closes the JSON file; idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.report();
    }
    this.#json?.close();
  }
}

function formatLine(
  counters: Counters,
  rates: Counters,
  peers: ReadonlyMap<string, Counters> | undefined,
  keys: readonly string[],
): string {
  const parts = keys.map((key) => `${key}=${counters[key] ?? 0}${key in rates ? ` (${rates[key]}/s)` : ""}`);
  for (const [name, values] of peers ?? []) {
    parts.push(`[${name} ${Object.entries(values).map(([key, value]) => `${key}=${value}`).join(" ")}]`);
  }
  return `stats ${parts.join(" ")}`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** A trouble that persists is logged again at most this often. */
const REPEAT_MS = 10_000;

/**
 * A counter of trouble (kernel drops, refused sessions) that earns a warning when it grows, at most
 * one every 10 s however fast it grows.
 */
export class GrowthAlarm {
  #reported = 0;
  #at = -Infinity;

  /** `describe` words the warning from the growth since the last one and the total. */
  constructor(readonly describe: (growth: number, total: number) => string) {}

  /** Warns on `log` if `total` grew and the last warning is old enough; `now` in ms. */
  check(total: number, now: number, log: Logger): void {
    if (total <= this.#reported || now - this.#at < REPEAT_MS) return;
    log.warn(this.describe(total - this.#reported, total));
    this.#reported = total;
    this.#at = now;
  }
}
