/**
 * Watches an `intercept` run from the side: stats lines and JSON, the metrics endpoint, and a log line
 * when the kernel starts dropping replies.
 */
import {
  counterSamples,
  type CounterValues,
  GrowthAlarm,
  linesDropped,
  type Logger,
  type MetricSample,
  Reporting,
  type ReportingOptions,
  type StatsSample,
} from "../ops/mod.ts";
import {
  INTERCEPT_COUNTERS,
  INTERCEPT_METRICS_PREFIX,
  INTERCEPT_RATES,
  INTERCEPT_STATS_LINE,
  PEER_COUNTERS,
} from "./counters.ts";
import type { InterceptView } from "./runtime.ts";

/** The side jobs of one `intercept` run; `stop` ends them all. */
export class InterceptMonitor {
  readonly #view: InterceptView;
  readonly #log: Logger;
  readonly #reporting: Reporting;
  readonly #kernelDrops = new GrowthAlarm((growth, total) =>
    `the kernel dropped ${growth} replies (${total} in all): intercept is not keeping up`
  );

  /** Starts watching; a metrics address that cannot be bound or a stats file that cannot be opened is a `FatalError`. */
  constructor(view: InterceptView, options: ReportingOptions, log: Logger) {
    this.#view = view;
    this.#log = log;
    this.#reporting = Reporting.start(options, {
      sample: () => this.sample(),
      metrics: () => this.metrics(),
      lineKeys: INTERCEPT_STATS_LINE,
      rateKeys: INTERCEPT_RATES,
      check: () => this.#checkDrops(),
    }, log);
  }

  /** The run's counters, and each copy connection's. */
  sample(): StatsSample {
    const { totals, routes } = this.#view;
    const peers = new Map<string, CounterValues<typeof PEER_COUNTERS>>();
    for (const peer of this.#view.peers()) {
      peers.set(peer.name, { "replies-forwarded": peer.forwarded, "replies-dropped": peer.dropped });
    }
    const counters: CounterValues<typeof INTERCEPT_COUNTERS> = {
      "replies-captured": totals.captured,
      "replies-forwarded": routes.forwarded,
      "replies-held": routes.held,
      "replies-released": routes.released,
      "replies-dropped": routes.expired + routes.holdOverflow + routes.peerOverflow,
      "replies-expired": routes.expired,
      "replies-hold-full": routes.holdOverflow,
      "replies-copy-too-slow": routes.peerOverflow,
      "replies-kernel-dropped": this.#view.kernelDropped(),
      "packets-not-tcp": totals.notTcp,
      "packets-malformed": totals.malformed,
      "copy-connections": peers.size,
      "copy-connections-accepted": totals.connections,
      "copy-connections-garbage": totals.garbageConnections,
      "copy-connections-not-allowed": totals.refusedHosts,
      "copy-connections-auth-failed": totals.authFailures,
      "copy-connections-no-hello": totals.helloTimeouts,
      "copy-connections-over-cap": totals.refusedOverCap,
      "copy-connections-registration-cap": totals.closedAtRegistrationCap,
      "copy-connections-accept-errors": totals.acceptErrors,
      "clients-registered": this.#view.routeCount(),
      "clients-takeovers-refused": routes.takeoversRefused,
      "clients-aged-out": routes.agedOut,
      "replies-waiting": this.#view.waiting(),
      "lines-dropped": linesDropped(),
    };
    return { counters, peers };
  }

  /** The counters as metric samples, per copy connection included. */
  metrics(): MetricSample[] {
    const { counters, peers } = this.sample();
    const samples = counterSamples(INTERCEPT_METRICS_PREFIX, INTERCEPT_COUNTERS, counters);
    for (const [copy, values] of peers ?? []) {
      samples.push(...counterSamples(`${INTERCEPT_METRICS_PREFIX}copy_`, PEER_COUNTERS, values, { copy }));
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
