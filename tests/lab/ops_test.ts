/**
 * Running copy and intercept in production: stats JSON lines, Prometheus metrics scraped from inside
 * the lab, the config file and its precedence, the log file, the memory guard, SIGTERM, and SIGHUP.
 */
import assert from "node:assert/strict";
import { agentCommand, type Host, type LabProcess, readJsonLines, waitForLine, waitUntil } from "./lab.ts";
import { type CopyLab, httpClient, tcpshadow, waitForStderr, withCopyLab } from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";
import { COPY_METRICS_PREFIX, MEMORY_COUNTERS, RUNTIME_COUNTERS } from "../../src/copy/counters.ts";
import { INTERCEPT_COUNTERS, INTERCEPT_METRICS_PREFIX } from "../../src/intercept/counters.ts";
import { metricName } from "../../src/ops/mod.ts";

const COPY_METRICS = "127.0.0.1:9464";
const INTERCEPT_METRICS = "127.0.0.1:9465";
/** A second intercept beside the lab's own, forwarding only SYN-ACKs so copy gets no duplicate data acks. */
const SECOND_INTERCEPT_PORT = 36525;

type JsonLine = Record<string, unknown>;

/** Polls `path` until its last JSON line satisfies `done`; returns all lines. */
async function waitForJson(path: string, done: (last: JsonLine) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = await readJsonLines(path);
    if (lines.length > 0 && done(lines.at(-1)!)) return lines;
    if (Date.now() > deadline) throw new Error(`${path} never got there: ${JSON.stringify(lines.at(-1))}`);
    await sleep(200);
  }
}

/** GETs `/metrics` from inside `host` and returns the samples by name with labels (`name{a="b"}`). */
async function scrape(host: Host, address: string): Promise<{ text: string; values: Map<string, number> }> {
  const { stdout } = await host.run(["curl", "-sSf", "--max-time", "5", `http://${address}/metrics`]);
  const values = new Map<string, number>();
  for (const line of stdout.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { text: stdout, values };
}

function assertNonDecreasing(lines: JsonLine[], keys: string[]): void {
  for (let i = 1; i < lines.length; i++) {
    for (const key of keys) {
      assert.ok(
        (lines[i][key] as number) >= (lines[i - 1][key] as number),
        `${key} went down at line ${i}: ${JSON.stringify(lines[i - 1])} then ${JSON.stringify(lines[i])}`,
      );
    }
    // The last line, written at exit, may come within the same tenth of a second as the one before.
    assert.ok((lines[i].elapsed as number) >= (lines[i - 1].elapsed as number));
  }
}

Deno.test("copy and intercept write stats JSON lines and serve Prometheus metrics; config values apply unless a flag overrides them", async () => {
  await withCopyLab({}, async (lab) => {
    const copyStats = `${lab.dir}/copy-stats.jsonl`;
    const interceptStats = `${lab.dir}/intercept-stats.jsonl`;
    const config = `${lab.dir}/tcpshadow.yaml`;
    await Deno.writeTextFile(
      config,
      [
        "copy:",
        "  stats: 1",
        `  stats-json: ${copyStats}`,
        `  metrics: "${COPY_METRICS}"`,
        "  rate: 10 # overridden on the command line",
        "intercept:",
        `  port: ${SECOND_INTERCEPT_PORT}`,
        "  filter: tcp and src port 8080 and tcp[tcpflags] & tcp-syn != 0",
        "  stats: 1",
        `  stats-json: ${interceptStats}`,
        `  metrics: "${INTERCEPT_METRICS}"`,
      ].join("\n"),
    );
    const intercept = lab.assistant.spawn(tcpshadow(["intercept", "--config", config, "-i", "eth0"]));
    await waitForStderr(intercept, "listening on");
    const copy = await lab.startCopy([
      "--interface",
      "eth0",
      "-s",
      `${lab.assistant.address}:${SECOND_INTERCEPT_PORT}`,
      "--config",
      config,
      "--rate",
      "100",
    ]);

    await httpClient(lab, ["--requests", "60", "--connections", "4", "--close"]);
    await lab.waitForTarget(60, 15_000);
    const copyLines = await waitForJson(copyStats, (last) => last["sessions-completed"] === 60);
    const last = copyLines.at(-1)!;
    assert.equal(last["sessions-copied"], 60);
    assert.equal(
      last["sessions-skipped-by-rate"],
      0,
      "--rate 100 on the command line beats rate: 10 in the file",
    );
    // Each session sends at least its SYN, the request (which carries the handshake's ACK when it was
    // captured before the target's SYN-ACK came) and its FIN (which acknowledges the target's FIN).
    assert.ok(
      (last["packets-captured"] as number) >= 60 * 5 && (last["packets-sent"] as number) >= 60 * 3,
      JSON.stringify(last),
    );
    assert.ok((last["replies-received"] as number) > 0);
    assert.equal(typeof (last["per-second"] as JsonLine)["packets-captured"], "number");

    const copyMetrics = await scrape(lab.online, COPY_METRICS);
    assert.match(copyMetrics.text, /^# TYPE tcpshadow_sessions_copied_total counter$/m);
    assert.match(copyMetrics.text, /^# HELP tcpshadow_sessions_active /m);
    assert.equal(copyMetrics.values.get("tcpshadow_sessions_copied_total"), 60);
    assert.equal(copyMetrics.values.get("tcpshadow_sessions_completed_total"), 60);
    assert.equal(copyMetrics.values.get("tcpshadow_sessions_active"), 0, "all 60 completed");
    const lingering = copyMetrics.values.get("tcpshadow_sessions_lingering")!;
    assert.ok(lingering >= 0 && lingering <= 60, "finished sessions linger a little, then go");
    assert.ok(copyMetrics.values.get("tcpshadow_resident_memory_bytes")! > 1 << 20);
    for (const spec of [...RUNTIME_COUNTERS, ...MEMORY_COUNTERS]) {
      const name = metricName(COPY_METRICS_PREFIX, spec);
      assert.match(
        copyMetrics.text,
        new RegExp(`^# TYPE ${name} ${spec.kind}$`, "m"),
        `${spec.name} is ${name}`,
      );
      assert.equal(typeof last[spec.name], "number", `${spec.name} is in the stats JSON`);
    }

    const interceptLines = await waitForJson(
      interceptStats,
      (line) => (line["replies-forwarded"] as number) >= 60,
    );
    const interceptMetrics = await scrape(lab.assistant, INTERCEPT_METRICS);
    assert.match(interceptMetrics.text, /^# TYPE tcpshadow_intercept_replies_forwarded_total counter$/m);
    assert.equal(interceptMetrics.values.get("tcpshadow_intercept_copy_connections"), 2);
    for (const spec of INTERCEPT_COUNTERS) {
      const name = metricName(INTERCEPT_METRICS_PREFIX, spec);
      assert.match(
        interceptMetrics.text,
        new RegExp(`^# TYPE ${name} ${spec.kind}$`, "m"),
        `${spec.name} is ${name}`,
      );
      assert.equal(typeof interceptLines.at(-1)![spec.name], "number", `${spec.name} is in the stats JSON`);
    }
    const perCopy = [...interceptMetrics.values].filter(([name]) =>
      name.startsWith('tcpshadow_intercept_copy_replies_forwarded_total{copy="198.18.0.1:')
    );
    assert.equal(perCopy.length, 2, interceptMetrics.text);
    assert.equal(
      perCopy.reduce((sum, [, value]) => sum + value, 0),
      interceptMetrics.values.get("tcpshadow_intercept_replies_forwarded_total"),
    );
    assert.ok(Object.keys(interceptLines.at(-1)!.peers as JsonLine).length === 2);

    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-copied"], 60);
    assert.equal(summary["sessions-completed"], 60);
    const finalLines = await readJsonLines(copyStats);
    assert.ok(finalLines.length >= 2, `only ${finalLines.length} stats lines`);
    assertNonDecreasing(finalLines, [
      "packets-captured",
      "packets-sent",
      "sessions-copied",
      "sessions-completed",
      "replies-received",
      "retransmissions",
    ]);
    assert.equal(
      finalLines.at(-1)!["sessions-completed"],
      60,
      "the last line, written at exit, has the totals",
    );

    const status = await intercept.stop("SIGTERM", 5000);
    assert.equal(status.code, 0, intercept.stderrText());
    assert.match(intercept.stderrText(), /^intercept: stopped; \d+ replies captured/m);
    assertNonDecreasing(await readJsonLines(interceptStats), [
      "replies-captured",
      "replies-forwarded",
      "replies-held",
    ]);
  });
});

async function establishedToTarget(lab: CopyLab): Promise<number> {
  const { stdout } = await lab.target.run(["ss", "-Htn", "state", "established", "( sport = :8080 )"]);
  return stdout.split("\n").filter((line) => line.trim() !== "").length;
}

/**
 * Starts copy with `--log-file` by hand (the "copying" line `startCopy` waits for goes to the file) and
 * waits until it captures.
 */
async function startCopyLogging(lab: CopyLab, logFile: string, extra: string[] = []): Promise<LabProcess> {
  const copy = lab.online.spawn(lab.copyCommand(["--interface", "eth0", "--log-file", logFile, ...extra]));
  await waitUntil(
    "copy captures",
    async () => (await Deno.readTextFile(logFile).catch(() => "")).includes("copying on"),
  );
  return copy;
}

Deno.test("on SIGTERM copy resets the sessions still open on the target, prints its summary and exits 0", async () => {
  await withCopyLab({ server: "echo" }, async (lab) => {
    const logFile = `${lab.dir}/copy.log`;
    const copy = await startCopyLogging(lab, logFile, ["--log-level", "debug"]);
    const client: LabProcess = lab.client.spawn(
      agentCommand("tcp_client", ["--to", `${lab.online.address}:80`, "--lines", "3", "--hold-ms", "30000"]),
    );
    await waitForLine(client, "connected");
    await waitUntil(
      "the copy is established on the target",
      async () => (await establishedToTarget(lab)) === 1,
    );
    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-copied"], 1);
    assert.equal(summary["sessions-abandoned"], 1, JSON.stringify(summary));
    await waitUntil(
      "the target has no copied connection left",
      async () => (await establishedToTarget(lab)) === 0,
    );
    const log = await Deno.readTextFile(logFile);
    assert.match(log, /copy: copying on eth0/);
    assert.match(log, /copy: stopping: waiting up to \d+ ms for 1 open session/);
    assert.match(log, / summary sessions-copied=1 /, "the summary goes to the log file too");
    const sessionLine = new RegExp(
      `debug: session ${lab.client.address}:\\d+ copied as [\\d.]+:\\d+ to ${lab.target.address}:8080: abandoned`,
    );
    assert.match(log, sessionLine, "at debug level, one line per session");
    assert.doesNotMatch(copy.stderrText(), /copying on/, "with --log-file, log lines stay off stderr");
    await client.stop("SIGKILL");
  });
});

Deno.test("above --max-memory copy collects garbage, then takes no new sessions and says so", async () => {
  await withCopyLab({}, async (lab) => {
    const statsFile = `${lab.dir}/copy-stats.jsonl`;
    const copy = await lab.startCopy([
      "--interface",
      "eth0",
      "--max-memory",
      "16",
      "--stats-json",
      statsFile,
    ]);
    await httpClient(lab, ["--requests", "5", "--connections", "4", "--close"]);
    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-copied"], 0, JSON.stringify(summary));
    assert.ok(summary["sessions-refused-while-paused"] >= 5, JSON.stringify(summary));
    assert.match(
      copy.stderrText(),
      /above --max-memory 16 MB after a garbage collection: taking no new sessions/,
    );
    const last = (await readJsonLines(statsFile)).at(-1)!;
    assert.equal(last["memory-paused"], 1);
    assert.equal(last["memory-pauses"], 1);
    assert.ok(Number(last["memory-collections"]) >= 1, JSON.stringify(last));
  });
});

Deno.test("on SIGHUP copy reopens its log and stats files, so logrotate can move them", async () => {
  await withCopyLab({}, async (lab) => {
    const logFile = `${lab.dir}/copy.log`;
    const statsFile = `${lab.dir}/copy-stats.jsonl`;
    const copy = await startCopyLogging(lab, logFile, ["--stats-json", statsFile, "--stats", "1"]);
    await waitForJson(statsFile, () => true);
    await Deno.rename(logFile, `${logFile}.1`);
    await Deno.rename(statsFile, `${statsFile}.1`);
    Deno.kill(copy.pid, "SIGHUP");
    await waitUntil(
      "a new log file",
      async () => (await Deno.readTextFile(logFile).catch(() => "")).includes(`SIGHUP: reopened ${logFile}`),
    );
    await httpClient(lab, ["--requests", "20", "--connections", "4", "--close"]);
    await waitForJson(statsFile, (last) => (last["sessions-completed"] as number) === 20);
    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-completed"], 20);
    assert.match(await Deno.readTextFile(logFile), / summary sessions-copied=20 /);
    const rotated = await Deno.readTextFile(`${logFile}.1`);
    assert.match(rotated, /copying on eth0/);
    assert.doesNotMatch(rotated, /summary/, "nothing more went to the moved file");
    assert.ok((await readJsonLines(`${statsFile}.1`)).length >= 1);
  });
});
