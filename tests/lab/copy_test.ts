/**
 * Live copy end to end: real servers, real clients, the real `copy` and `intercept` processes, and
 * the target's request log compared with the online server's, byte for byte (body hashes).
 */
import assert from "node:assert/strict";
import { agentCommand, waitForLine } from "./lab.ts";
import {
  CLOSE_REQUESTS,
  compareLogs,
  type CopyLab,
  expectEveryRequestCopied,
  httpClient,
  KEEP_ALIVE_REQUESTS,
  waitForStderr,
  withCopyLab,
} from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

/** Runs the line client agent against the online server's echo service. */
function tcpClient(lab: CopyLab, args: string[]) {
  return lab.client.spawn(agentCommand("tcp_client", ["--to", `${lab.online.address}:80`, ...args]), {
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("HTTP on a new connection per request: 2,000 requests reach the target identical", async () => {
  await withCopyLab({}, async (lab) => {
    const copy = await lab.startCopy();
    const { summary } = await expectEveryRequestCopied(lab, copy, CLOSE_REQUESTS, 2000, 30_000);
    assert.equal(summary["sessions-copied"], 2000);
    // Now and then the client ends a connection with a RST instead of a FIN (Linux does when bytes are
    // unread at close: 1 of 2,000 in one run); the copy passes that on, and every request still arrived.
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      2000,
      JSON.stringify(summary),
    );
    assert.ok(summary["sessions-reset-by-client"] <= 20, JSON.stringify(summary));
    assert.equal(summary["sessions-failed"], 0);
  });
});

Deno.test("HTTP keep-alive: 2,000 requests on 10 connections, POST bodies up to 1 MiB, reach the target identical", async () => {
  await withCopyLab({}, async (lab) => {
    const copy = await lab.startCopy();
    const { summary } = await expectEveryRequestCopied(lab, copy, KEEP_ALIVE_REQUESTS, 2000, 60_000);
    assert.equal(summary["sessions-copied"], 10);
    assert.equal(summary["sessions-completed"], 10, JSON.stringify(summary));
  });
});

Deno.test("--rate 20 copies between 15% and 25% of 2,000 sessions, each whole", async () => {
  await withCopyLab({}, async (lab) => {
    const copy = await lab.startCopy(["--rate", "20"]);
    await httpClient(lab, [
      "--requests",
      "2000",
      "--connections",
      "16",
      "--close",
      "--body-sizes",
      "0,500,3000",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    const settled = await lab.waitForTarget(2000, 3000); // nothing more will come: wait only briefly
    const summary = await lab.stopCopy(copy);
    const target = await lab.readLog(lab.targetLogPath);
    assert.ok(settled.length <= target.length);
    assert.ok(target.length >= 300 && target.length <= 500, `${target.length} of 2000 copied`);
    assert.equal(summary["sessions-copied"], target.length);
    assert.equal(summary["sessions-completed"], target.length);
    assert.equal(summary["sessions-copied"] + summary["sessions-skipped-by-rate"], 2000);
    // Each copied request is one the online server got, whole (same body hash).
    const onlineKeys = new Set(online.map((line) => `${line.requestId} ${line.bodySha256}`));
    for (const line of target) assert.ok(onlineKeys.has(`${line.requestId} ${line.bodySha256}`));
  });
});

Deno.test("--multiply 3 makes each request reach the target exactly 3 times", async () => {
  await withCopyLab({}, async (lab) => {
    const copy = await lab.startCopy(["--multiply", "3"]);
    await httpClient(lab, ["--requests", "200", "--connections", "4", "--close", "--body-sizes", "0,2000"]);
    await httpClient(lab, [
      "--requests",
      "100",
      "--connections",
      "2",
      "--keep-alive",
      "--id-prefix",
      "ka",
      "--body-sizes",
      "10,70000",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(900, 30_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target, 3), []);
    assert.equal(summary["sessions-copied"], 3 * 202);
    const remotes = new Set(target.map((line) => line.remote));
    assert.equal(remotes.size, 3 * 202, "every copy is a distinct session");
  });
});

Deno.test("copies keep the real client address when -c is absent, and replies never reach the client", async () => {
  await withCopyLab({ keepClientAddress: true }, async (lab) => {
    const sniff = lab.client.spawn(
      ["tcpdump", "-n", "-i", lab.client.device, "-c", "1", `ip and src host ${lab.target.address}`],
      { stdout: "piped", stderr: "piped" },
    );
    await waitForStderr(sniff, "listening on", 10_000);
    const copy = await lab.startCopy();
    // The client checks every answer: one from the target (tagged) would fail it.
    await httpClient(lab, ["--requests", "100", "--connections", "4", "--close", "--body-sizes", "0,3000"]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(100, 20_000);
    await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), []);
    for (const line of target) assert.match(String(line.remote), new RegExp(`^${lab.client.address}:`));
    await sniff.stop("SIGTERM");
    assert.doesNotMatch(
      sniff.stdoutText(),
      new RegExp(lab.target.address),
      "the target sent to the real client",
    );
  });
});

Deno.test("a plain TCP line protocol is copied line for line, in order", async () => {
  await withCopyLab({ server: "echo" }, async (lab) => {
    const copy = await lab.startCopy();
    const clients = Array.from(
      { length: 5 },
      (_, i) => tcpClient(lab, ["--lines", "40", "--text", `client${i}`, "--pause-ms", "5"]),
    );
    for (const client of clients) assert.equal((await client.exited).code, 0, client.stderrText());
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 200);
    const target = await lab.waitForTarget(200, 20_000);
    const summary = await lab.stopCopy(copy);
    const byClient = (lines: Array<Record<string, unknown>>) => {
      const out = new Map<string, string[]>();
      for (const line of lines) {
        const text = String(line.line);
        const who = text.split(" ")[0];
        out.set(who, [...(out.get(who) ?? []), `${line.index} ${text}`]);
      }
      return out;
    };
    assert.deepEqual(byClient(target), byClient(online));
    assert.equal(summary["sessions-completed"], 5);
  });
});

Deno.test("a target slower than the online server: the copy pipelines past --max-lag, and keeps turns below it", async () => {
  const ANSWER_MS = 300;
  const LINES = 20;
  for (const [maxLag, pipelined] of [["200", true], ["60000", false]] as const) {
    await withCopyLab({ server: "echo", targetAnswerDelayMs: ANSWER_MS }, async (lab) => {
      const copy = await lab.startCopy(["--max-lag", maxLag]);
      const client = tcpClient(lab, ["--lines", String(LINES), "--text", "turn"]);
      assert.equal((await client.exited).code, 0, client.stderrText());
      const online = (await lab.readLog(lab.onlineLogPath)).map((line) => String(line.line));
      assert.equal(online.length, LINES);
      const target = await lab.waitForTarget(LINES, LINES * ANSWER_MS + 10_000);
      assert.deepEqual(
        target.map((line) => String(line.line)),
        online,
        `--max-lag ${maxLag}: every line, in order`,
      );
      const spreadMs = (target.at(-1)!.at as number) - (target[0].at as number);
      if (pipelined) {
        // Online the 20 lines took a few ms; waiting 300 ms for each answer would take 5.7 s.
        assert.ok(spreadMs < 2000, `--max-lag ${maxLag}: the lines reached the target over ${spreadMs} ms`);
      } else {
        assert.ok(
          spreadMs >= (LINES - 1) * ANSWER_MS - 100,
          `--max-lag ${maxLag}: lines over ${spreadMs} ms`,
        );
      }
      // The FIN waits for the last answer (the target answers one line per 300 ms either way).
      const lastAnswerAt = (target[0].at as number) + LINES * ANSWER_MS;
      await sleep(Math.max(0, lastAnswerAt + 1500 - Date.now()));
      const summary = await lab.stopCopy(copy);
      assert.equal(summary["sessions-completed"], 1, `--max-lag ${maxLag}: ${JSON.stringify(summary)}`);
    });
  }
});

Deno.test("a stop right after the last request lets a session waiting for its close turn end it", async () => {
  // The target takes 700 ms for each answer, so the second line goes pipelined, and the client's FIN then
  // waits for a pause of twice the longest gap between answers: about 2.7 s after the target logged the
  // last line, which is when copy is stopped. A stop that gave open sessions 2 s abandoned it.
  await withCopyLab({ server: "echo", targetAnswerDelayMs: 700 }, async (lab) => {
    const copy = await lab.startCopy();
    const client = tcpClient(lab, ["--lines", "3", "--text", "stop", "--pause-ms", "300"]);
    assert.equal((await client.exited).code, 0, client.stderrText());
    assert.equal((await lab.waitForTarget(3, 10_000)).length, 3);
    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-completed"], 1, JSON.stringify(summary));
  });
});

Deno.test("a client reconnecting from the same port while the target still gets the last copy: every request arrives whole", async () => {
  await withCopyLab({}, async (lab) => {
    // One ephemeral port pair: each connection reuses the port the one before closed a moment ago.
    await lab.client.run(["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40001"]);
    // Copies of 100 kB bodies leave the online host at 8 Mbit/s (0.1 s each); the online answers are small.
    await lab.lab.rateLimit(lab.online, "8mbit");
    const copy = await lab.startCopy();
    await httpClient(lab, ["--requests", "20", "--connections", "1", "--close", "--body-sizes", "100000"]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 20);
    const ports = new Set(online.map((line) => String(line.remote).split(":")[1]));
    assert.ok(ports.size <= 2, `the client used ports ${[...ports]}`);
    const target = await lab.waitForTarget(20, 30_000);
    await sleep(1000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), [], JSON.stringify(summary));
    assert.equal(summary["sessions-completed"], 20, JSON.stringify(summary));
  });
});

Deno.test("a session already open when copy starts is taken over from its next packet", async () => {
  await withCopyLab({ server: "echo" }, async (lab) => {
    const client = tcpClient(lab, ["--lines", "30", "--text", "early", "--pause-ms", "200"]);
    // Let about 10 lines go before copy exists.
    await sleep(2000);
    const copy = await lab.startCopy();
    assert.equal((await client.exited).code, 0, client.stderrText());
    const online = (await lab.readLog(lab.onlineLogPath)).map((line) => String(line.line));
    assert.equal(online.length, 30);
    const target = (await lab.waitForTarget(1, 10_000)).map((line) => String(line.line));
    await sleep(500);
    const summary = await lab.stopCopy(copy);
    const final = (await lab.readLog(lab.targetLogPath)).map((line) => String(line.line));
    assert.ok(target.length > 0);
    assert.ok(final.length >= 10 && final.length < 30, `${final.length} lines taken over`);
    assert.deepEqual(final, online.slice(online.length - final.length), "the target got the rest, in order");
    assert.equal(summary["sessions-copied"], 1);
    assert.equal(summary["sessions-completed"], 1);
  });
});

Deno.test("with 2% random loss on the target's link every request still reaches the target", async () => {
  await withCopyLab({}, async (lab) => {
    await lab.lab.dropRandom(lab.target, 2, { direction: "in" });
    await lab.lab.dropRandom(lab.target, 2, { direction: "out" });
    const copy = await lab.startCopy();
    await httpClient(lab, [
      "--requests",
      "300",
      "--connections",
      "8",
      "--close",
      "--body-sizes",
      "0,100,5000,30000",
    ]);
    await httpClient(lab, [
      "--requests",
      "200",
      "--connections",
      "4",
      "--keep-alive",
      "--id-prefix",
      "ka",
      "--body-sizes",
      "0,100,5000,30000",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(500, 60_000);
    // Let the last closes finish through the loss before asking for the summary.
    await sleep(3000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), [], JSON.stringify(summary));
    assert.ok(summary.retransmissions > 0, "loss was real: the engine retransmitted");
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
  });
});

Deno.test("a target that is down fails sessions fast, counts them, and copy keeps running", async () => {
  await withCopyLab({ targetDown: true }, async (lab) => {
    const copy = await lab.startCopy();
    await httpClient(lab, ["--requests", "50", "--connections", "5", "--close"]);
    assert.equal((await lab.readLog(lab.onlineLogPath)).length, 50, "the online server is unaffected");
    // The target answers every SYN with RST, so the copies fail at once; then the target comes back.
    await sleep(1000);
    const server = lab.target.spawn(
      agentCommand("http_server", ["--port", "8080", "--log", lab.targetLogPath]),
    );
    await waitForLine(server, "listening");
    await httpClient(lab, ["--requests", "20", "--connections", "2", "--close", "--id-prefix", "back"]);
    const target = await lab.waitForTarget(20, 10_000);
    const summary = await lab.stopCopy(copy);
    assert.equal(target.length, 20);
    assert.equal(summary["sessions-copied"], 70);
    assert.equal(summary["sessions-refused"], 50, JSON.stringify(summary));
    assert.equal(summary["sessions-completed"], 20);
  });
});
