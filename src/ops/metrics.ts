/**
 * `--metrics HOST:PORT`: a running command's counters and gauges in the Prometheus text format
 * (version 0.0.4) at `/metrics`, collected fresh on every scrape.
 */
import { FatalError } from "../errors.ts";
import type { Logger } from "./log.ts";

/** An address to listen on. */
export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
}

/** One metric family: a `tcpshadow_` name (`_total` for counters), its help text and type. */
export interface MetricSpec {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
}

/** One value of a family, with its labels. */
export interface MetricSample {
  readonly metric: MetricSpec;
  readonly value: number;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Makers of a command's metric families, all named `prefix` + name. */
export function metricFamilies(prefix: string): {
  counter(name: string, help: string): MetricSpec;
  gauge(name: string, help: string): MetricSpec;
} {
  return {
    counter: (name, help) => ({ name: `${prefix}${name}`, help, type: "counter" }),
    gauge: (name, help) => ({ name: `${prefix}${name}`, help, type: "gauge" }),
  };
}

/** Which stats counter feeds which metric family, with the labels of its sample. */
export type MetricTable = ReadonlyArray<readonly [string, MetricSpec, Readonly<Record<string, string>>?]>;

/** The samples `table` makes of `counters`; counters the table names but `counters` lacks are left out. */
export function tableSamples(table: MetricTable, counters: Readonly<Record<string, number>>): MetricSample[] {
  return table.filter(([key]) => key in counters).map(([key, metric, labels]) => ({
    metric,
    labels,
    value: counters[key],
  }));
}

/** Content type of the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Samples as the text format: each family's HELP and TYPE once, then its samples. */
export function formatMetrics(samples: readonly MetricSample[]): string {
  const byFamily = new Map<MetricSpec["name"], MetricSample[]>();
  for (const sample of samples) {
    const family = byFamily.get(sample.metric.name);
    if (family === undefined) byFamily.set(sample.metric.name, [sample]);
    else family.push(sample);
  }
  const lines: string[] = [];
  for (const [name, family] of byFamily) {
    const { help, type } = family[0].metric;
    lines.push(
      `# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`,
      `# TYPE ${name} ${type}`,
    );
    for (const { labels, value } of family) lines.push(`${name}${formatLabels(labels)} ${value}`);
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return "";
  const pairs = Object.entries(labels).map(([key, value]) =>
    `${key}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Stops serving. */
  close(): Promise<void>;
}

/** Serves `collect()`'s samples at `http://address/metrics`; an address that cannot be bound is a `FatalError`. */
export function serveMetrics(
  address: ListenAddress,
  collect: () => MetricSample[],
  log: Logger,
): MetricsServer {
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: address.hostname,
      port: address.port,
      onListen: () => log.info(`serving metrics at http://${address.hostname}:${address.port}/metrics`),
    }, (request) => {
      if (new URL(request.url).pathname !== "/metrics") return new Response("not found\n", { status: 404 });
      return new Response(formatMetrics(collect()), { headers: { "content-type": METRICS_CONTENT_TYPE } });
    });
  } catch (error) {
    throw new FatalError(
      `cannot serve metrics on ${address.hostname}:${address.port}: ${(error as Error).message}`,
    );
  }
  return { close: () => server.shutdown() };
}
