/** Logs, stats, metrics and alarms of a running command. */
import assert from "node:assert/strict";
import { createLogger, withLogger } from "../../src/ops/log.ts";
import { formatMetrics, type MetricSpec } from "../../src/ops/metrics.ts";
import { GrowthAlarm, StatsReporter } from "../../src/ops/stats.ts";
import { FatalError, UsageError } from "../../src/errors.ts";

Deno.test("metrics come out in the Prometheus text format, HELP and TYPE once per family", () => {
  const ended: MetricSpec = { name: "tcpshadow_sessions_ended_total", help: "Ended.", type: "counter" };
  const active: MetricSpec = { name: "tcpshadow_sessions_active", help: "Open now.", type: "gauge" };
  assert.equal(
    formatMetrics([
      { metric: ended, labels: { outcome: "completed" }, value: 7 },
      { metric: active, value: 2 },
      { metric: ended, labels: { outcome: 'odd"one' }, value: 1 },
    ]),
    [
      "# HELP tcpshadow_sessions_ended_total Ended.",
      "# TYPE tcpshadow_sessions_ended_total counter",
      'tcpshadow_sessions_ended_total{outcome="completed"} 7',
      'tcpshadow_sessions_ended_total{outcome="odd\\"one"} 1',
      "# HELP tcpshadow_sessions_active Open now.",
      "# TYPE tcpshadow_sessions_active gauge",
      "tcpshadow_sessions_active 2",
      "",
    ].join("\n"),
  );
});

async function withLogFile(fn: (path: string) => Promise<void> | void): Promise<string[]> {
  const path = await Deno.makeTempFile();
  try {
    await fn(path);
    return (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "");
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("a log at warn writes warnings and errors to its file, and drops info and debug", async () => {
  const lines = await withLogFile((path) => {
    const log = createLogger("copy", { level: "warn", file: path });
    log.error("e");
    log.warn("w");
    log.info("i");
    log.debug("d");
    assert.equal(log.debugEnabled, false);
    log.close();
  });
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT\S+ copy: error: e$/);
  assert.match(lines[1], /^\S+ copy: warning: w$/);
});

Deno.test("a stats reporter writes JSON lines with counters and per-second rates", async () => {
  let captured = 0;
  const lines = await withLogFile((path) => {
    const log = createLogger("copy", { level: "error" });
    const reporter = new StatsReporter(() => ({ counters: { captured, active: 3 } }), {
      intervalSeconds: 1,
      lines: false,
      jsonPath: path,
      lineKeys: ["captured"],
      rateKeys: ["captured"],
    }, log);
    captured = 100;
    reporter.report();
    captured = 250;
    reporter.report();
    reporter.stop();
  });
  const records = lines.map((line) => JSON.parse(line));
  assert.equal(records.length, 2);
  assert.equal(records[0].captured, 100);
  assert.equal(records[1].captured, 250);
  assert.equal(records[1].active, 3);
  assert.ok(records[1]["per-second"].captured > 0);
  assert.ok(records[0].elapsed <= records[1].elapsed);
});

Deno.test("a stats reporter's log line shows the chosen counters with rates and each peer", async () => {
  const lines = await withLogFile((path) => {
    const log = createLogger("intercept", { level: "info", file: path });
    const reporter = new StatsReporter(() => ({
      counters: { captured: 5, forwarded: 4, hidden: 1 },
      peers: new Map([["198.18.0.1:40000", { forwarded: 4 }]]),
    }), {
      intervalSeconds: 1,
      lines: true,
      jsonPath: undefined,
      lineKeys: ["captured", "forwarded"],
      rateKeys: ["captured"],
    }, log);
    reporter.report();
    log.close();
  });
  assert.match(
    lines[0],
    /intercept: stats captured=5 \(\d+(\.\d)?\/s\) forwarded=4 \[198\.18\.0\.1:40000 forwarded=4\]$/,
  );
});

Deno.test("a growth alarm warns when its counter grows, then at most once per 10 s", async () => {
  const lines = await withLogFile((path) => {
    const log = createLogger("copy", { level: "info", file: path });
    const alarm = new GrowthAlarm((growth, total) => `dropped ${growth} (${total})`);
    alarm.check(0, 0, log);
    alarm.check(5, 1000, log);
    alarm.check(9, 2000, log);
    alarm.check(12, 11_500, log);
    alarm.check(12, 30_000, log);
    log.close();
  });
  assert.deepEqual(lines.map((line) => line.replace(/^\S+ copy: warning: /, "")), [
    "dropped 5 (5)",
    "dropped 7 (12)",
  ]);
});

Deno.test("an error that ends a run goes into the log file too; a usage error does not", async () => {
  const lines = await withLogFile(async (path) => {
    await assert.rejects(
      withLogger("copy", { level: "warn", file: path }, (log) => {
        log.warn("before");
        return Promise.reject(new FatalError("capture on eth0 failed: the device went down"));
      }),
      FatalError,
    );
    await assert.rejects(
      withLogger("copy", { level: "warn", file: path }, () => Promise.reject(new UsageError("bad flag"))),
      UsageError,
    );
  });
  assert.equal(lines.length, 2);
  assert.match(lines[0], / copy: warning: before$/);
  assert.match(lines[1], / copy: error: capture on eth0 failed: the device went down$/);
});
