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

/** One metric family: its Prometheus name, help text and type (`counters.ts` makes them). */
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
