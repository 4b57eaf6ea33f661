/**
 * A command's counters as one typed list: each has one name, kebab-case (`sessions-refused-at-cap`), used
 * as it is by the stats lines, the stats JSON and the summary, and in Prometheus's snake_case with the
 * command's prefix and `_total` for a counter (`tcpshadow_sessions_refused_at_cap_total`).
 *
 * @example
 * ```ts
 * const COUNTERS = [
 *   counter("packets-sent", "Packets sent to the target."),
 *   gauge("sessions-active", "Copied sessions open now."),
 * ] as const;
 * type Name = CounterName<typeof COUNTERS>; // "packets-sent" | "sessions-active"
 * formatCounters(COUNTERS, { "sessions-active": 2, "packets-sent": 9 }); // "packets-sent=9 sessions-active=2"
 * ```
 */
import type { MetricSample, MetricSpec } from "./metrics.ts";

/** One counter (only grows) or gauge (goes up and down) of a command. */
export interface CounterSpec<N extends string = string> {
  /** The one name: lowercase words joined by `-`. */
  readonly name: N;
  readonly kind: "counter" | "gauge";
  /** One sentence for Prometheus's HELP line. */
  readonly help: string;
}

/** The names in a list of counters. */
export type CounterName<L extends readonly CounterSpec[]> = L[number]["name"];

/** A value for every counter of `list`, by name. */
export type CounterValues<L extends readonly CounterSpec[]> = Record<CounterName<L>, number>;

/** A counter named `name`: a number that only grows over a run. */
export function counter<N extends string>(name: N, help: string): CounterSpec<N> {
  return { name, kind: "counter", help };
}

/** A gauge named `name`: a number of now, up or down. */
export function gauge<N extends string>(name: N, help: string): CounterSpec<N> {
  return { name, kind: "gauge", help };
}

/** The Prometheus name of `spec`: `prefix`, its name in snake_case, and `_total` for a counter. */
export function metricName(prefix: string, spec: CounterSpec): string {
  return `${prefix}${spec.name.replaceAll("-", "_")}${spec.kind === "counter" ? "_total" : ""}`;
}

/**
 * The metric samples of `values` for the counters of `list` it has, named with `prefix`, each with
 * `labels` if given.
 */
export function counterSamples(
  prefix: string,
  list: readonly CounterSpec[],
  values: Readonly<Record<string, number>>,
  labels?: Readonly<Record<string, string>>,
): MetricSample[] {
  return list.filter((spec) => spec.name in values).map((spec) => ({
    metric: metricSpec(prefix, spec),
    value: values[spec.name],
    labels,
  }));
}

/** `name=value ...` for the counters of `list` that `values` has, in the list's order. */
export function formatCounters(
  list: readonly CounterSpec[],
  values: Readonly<Record<string, number>>,
): string {
  return list.filter((spec) => spec.name in values).map((spec) => `${spec.name}=${values[spec.name]}`).join(
    " ",
  );
}

function metricSpec(prefix: string, spec: CounterSpec): MetricSpec {
  return { name: metricName(prefix, spec), help: spec.help, type: spec.kind };
}
