/**
 * Watches an `intercept` run from the side: stats lines and JSON, the metrics endpoint, and a log line
 * when the kernel starts dropping replies.
 */
import type { Logger } from "../cli/log.ts";
import { metricFamilies, type MetricSample, type MetricTable, tableSamples } from "../cli/metrics.ts";
import { Reporting } from "../cli/reporting.ts";
import type { OperationOptions } from "../cli/operation.ts";
import { type Counters, GrowthAlarm, type StatsSample } from "../cli/stats.ts";
import type { InterceptView } from "./server.ts";

const { counter, gauge } = metricFamilies("tcpshadow_intercept_");

const DROPPED = counter("replies_dropped_total", "Replies not forwarded, by why.");
const IGNORED = counter("packets_ignored_total", "Captured packets that are no IPv4 TCP reply, by why.");
const PEER_FORWARDED = counter("copy_replies_forwarded_total", "Replies queued for one copy connection.");
const PEER_DROPPED = counter("copy_replies_dropped_total", "Replies one copy connection was too slow for.");

/** Which counter of `InterceptMonitor.stats()` feeds which metric. */
const METRICS: MetricTable = [
  ["captured", counter("replies_captured_total", "Packets captured by the reply filter.")],
  ["forwarded", counter("replies_forwarded_total", "Replies queued for the copy that registered them.")],
  ["held", counter("replies_held_total", "Replies that had to wait for their registration.")],
  ["released", counter("replies_released_total", "Held replies forwarded once registered.")],
  ["expired", DROPPED, { reason: "never-registered" }],
  ["hold-full", DROPPED, { reason: "too-many-waiting" }],
  ["copy-too-slow", DROPPED, { reason: "copy-too-slow" }],
  ["kernel-dropped", DROPPED, { reason: "kernel" }],
  ["not-tcp", IGNORED, { reason: "not-tcp" }],
  ["malformed", IGNORED, { reason: "malformed" }],
  ["copies", gauge("copy_connections", "Copy connections now.")],
  ["connections", counter("copy_connections_total", "Copy connections accepted.")],
  ["garbage-connections", counter("copy_connections_garbage_total", "Copy connections closed for garbage.")],
  ["routes", gauge("routes", "Client addresses and ports registered now.")],
  ["waiting", gauge("replies_waiting", "Replies waiting for their registration now.")],
];

/** Counters an `intercept` stats line shows, in order. */
const LINE_KEYS = ["captured", "forwarded", "held", "dropped", "kernel-dropped", "copies", "routes"];
const RATE_KEYS = ["captured", "forwarded"];

/** The side jobs of one `intercept` run; `stop` ends them all. */
export class InterceptMonitor {
  readonly #view: InterceptView;
  readonly #log: Logger;
  readonly #reporting: Reporting;
  readonly #kernelDrops = new GrowthAlarm((growth, total) =>
    `the kernel dropped ${growth} replies (${total} in all): intercept is not keeping up`
  );

  /** Starts watching; a metrics address that cannot be bound or a stats file that cannot be opened is a `FatalError`. */
  constructor(view: InterceptView, options: OperationOptions, log: Logger) {
    this.#view = view;
    this.#log = log;
    this.#reporting = Reporting.start(options, {
      sample: () => this.sample(),
      metrics: () => this.metrics(),
      lineKeys: LINE_KEYS,
      rateKeys: RATE_KEYS,
      check: () => this.#checkDrops(),
    }, log);
  }

  /** The run's counters, and each copy connection's. */
  sample(): StatsSample {
    const { totals, routes } = this.#view;
    const peers = new Map<string, Counters>();
    for (const peer of this.#view.peers()) {
      peers.set(peer.name, { forwarded: peer.forwarded, dropped: peer.dropped });
    }
    const counters: Counters = {
      captured: totals.captured,
      forwarded: routes.forwarded,
      held: routes.held,
      released: routes.released,
      dropped: routes.expired + routes.holdOverflow + routes.peerOverflow,
      expired: routes.expired,
      "hold-full": routes.holdOverflow,
      "copy-too-slow": routes.peerOverflow,
      "kernel-dropped": this.#view.kernelDropped(),
      "not-tcp": totals.notTcp,
      malformed: totals.malformed,
      copies: peers.size,
      connections: totals.connections,
      "garbage-connections": totals.garbageConnections,
      routes: this.#view.routeCount(),
      waiting: this.#view.waiting(),
    };
    return { counters, peers };
  }

  /** The counters as metric samples, per copy connection included. */
  metrics(): MetricSample[] {
    const { counters, peers } = this.sample();
    const samples = tableSamples(METRICS, counters);
    for (const [copy, values] of peers ?? []) {
      samples.push({ metric: PEER_FORWARDED, labels: { copy }, value: values.forwarded });
      samples.push({ metric: PEER_DROPPED, labels: { copy }, value: values.dropped });
    }
    return samples;
  }

  /** Writes a last stats sample, stops the timers and the metrics endpoint; idempotent. */
  stop(): Promise<void> {
    return this.#reporting.stop();
  }

  #checkDrops(): void {
    this.#kernelDrops.check(this.#view.kernelDropped(), performance.now(), this.#log);
  }
}
