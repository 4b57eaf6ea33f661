/** intercept's counter list pinned: a renamed counter is a visible change here (and in CHANGELOG.md). */
import assert from "node:assert/strict";
import {
  INTERCEPT_COUNTERS,
  INTERCEPT_METRICS_PREFIX,
  INTERCEPT_RATES,
  INTERCEPT_STATS_LINE,
  PEER_COUNTERS,
} from "../../src/intercept/counters.ts";
import { metricName } from "../../src/ops/mod.ts";

Deno.test("intercept's counters, their kinds and their Prometheus names", () => {
  const describe = (prefix: string) => (spec: (typeof INTERCEPT_COUNTERS | typeof PEER_COUNTERS)[number]) =>
    `${spec.kind} ${spec.name} ${metricName(prefix, spec)}`;
  assert.deepEqual(INTERCEPT_COUNTERS.map(describe(INTERCEPT_METRICS_PREFIX)), [
    "counter replies-captured tcpshadow_intercept_replies_captured_total",
    "counter replies-forwarded tcpshadow_intercept_replies_forwarded_total",
    "counter replies-held tcpshadow_intercept_replies_held_total",
    "counter replies-released tcpshadow_intercept_replies_released_total",
    "counter replies-dropped tcpshadow_intercept_replies_dropped_total",
    "counter replies-expired tcpshadow_intercept_replies_expired_total",
    "counter replies-hold-full tcpshadow_intercept_replies_hold_full_total",
    "counter replies-copy-too-slow tcpshadow_intercept_replies_copy_too_slow_total",
    "counter replies-kernel-dropped tcpshadow_intercept_replies_kernel_dropped_total",
    "counter packets-not-tcp tcpshadow_intercept_packets_not_tcp_total",
    "counter packets-malformed tcpshadow_intercept_packets_malformed_total",
    "gauge copy-connections tcpshadow_intercept_copy_connections",
    "counter copy-connections-accepted tcpshadow_intercept_copy_connections_accepted_total",
    "counter copy-connections-garbage tcpshadow_intercept_copy_connections_garbage_total",
    "counter copy-connections-not-allowed tcpshadow_intercept_copy_connections_not_allowed_total",
    "counter copy-connections-auth-failed tcpshadow_intercept_copy_connections_auth_failed_total",
    "counter copy-connections-no-hello tcpshadow_intercept_copy_connections_no_hello_total",
    "counter copy-connections-over-cap tcpshadow_intercept_copy_connections_over_cap_total",
    "counter copy-connections-registration-cap tcpshadow_intercept_copy_connections_registration_cap_total",
    "counter copy-connections-accept-errors tcpshadow_intercept_copy_connections_accept_errors_total",
    "gauge clients-registered tcpshadow_intercept_clients_registered",
    "counter clients-takeovers-refused tcpshadow_intercept_clients_takeovers_refused_total",
    "counter clients-aged-out tcpshadow_intercept_clients_aged_out_total",
    "gauge replies-waiting tcpshadow_intercept_replies_waiting",
    "counter lines-dropped tcpshadow_intercept_lines_dropped_total",
  ]);
  assert.deepEqual(PEER_COUNTERS.map(describe(`${INTERCEPT_METRICS_PREFIX}copy_`)), [
    "counter replies-forwarded tcpshadow_intercept_copy_replies_forwarded_total",
    "counter replies-dropped tcpshadow_intercept_copy_replies_dropped_total",
  ]);
});

Deno.test("the stats line and its rates show counters of the list", () => {
  const names: string[] = INTERCEPT_COUNTERS.map((spec) => spec.name);
  assert.equal(new Set(names).size, names.length);
  for (const name of [...INTERCEPT_STATS_LINE, ...INTERCEPT_RATES]) assert.ok(names.includes(name), name);
});
