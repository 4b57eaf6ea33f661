/** One name per counter, and what each output makes of it. */
import assert from "node:assert/strict";
import { counter, counterSamples, formatCounters, gauge, metricName } from "../../src/ops/counters.ts";
import { formatMetrics } from "../../src/ops/metrics.ts";

const LIST = [
  counter("packets-sent", "Packets sent."),
  gauge("sessions-active", "Sessions open now."),
  counter("sessions-refused-at-cap", "Sessions refused at the cap."),
] as const;

Deno.test("a Prometheus name is the prefix, the name in snake_case and _total for a counter", () => {
  assert.equal(metricName("tcpshadow_", LIST[2]), "tcpshadow_sessions_refused_at_cap_total");
  assert.equal(metricName("tcpshadow_", LIST[1]), "tcpshadow_sessions_active");
});

Deno.test("a summary lists the counters present, in the list's order, by their names", () => {
  assert.equal(
    formatCounters(LIST, { "sessions-refused-at-cap": 3, "packets-sent": 9 }),
    "packets-sent=9 sessions-refused-at-cap=3",
  );
});

Deno.test("metric samples carry the derived name, the help text, the kind and any labels", () => {
  const samples = counterSamples("x_", LIST, { "sessions-active": 2, "packets-sent": 9 }, { copy: "a:1" });
  assert.equal(
    formatMetrics(samples),
    [
      "# HELP x_packets_sent_total Packets sent.",
      "# TYPE x_packets_sent_total counter",
      'x_packets_sent_total{copy="a:1"} 9',
      "# HELP x_sessions_active Sessions open now.",
      "# TYPE x_sessions_active gauge",
      'x_sessions_active{copy="a:1"} 2',
      "",
    ].join("\n"),
  );
});
