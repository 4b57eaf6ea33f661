/**
 * intercept against strangers and abuse, in a lab: `--allow`, `--secret-file`, a stranger registering a
 * copy's clients, the registration and connection caps, the hello deadline, running out of file
 * descriptors, and a fuzzed listener; in the intercept lab (`intercept_lab.ts`), or in the copy lab
 * where a whole copy is the point.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { agentCommand, waitForLine, waitUntil } from "./lab.ts";
import { compareLogs, httpClient, tcpshadow, waitForStderr, withCopyLab } from "./copy_lab.ts";
import { assertSynAck, peer, records, sendSyn, summaryOf, withIntercept } from "./intercept_lab.ts";
import { sleep } from "../../src/sleep.ts";

/** The real C tcpcopy 1.3 and intercept 1.0 (see ../shared/peers/README.md). */
const C_TCPCOPY = fileURLToPath(new URL("../../../shared/peers/bin/tcpcopy", import.meta.url));
const C_INTERCEPT = fileURLToPath(new URL("../../../shared/peers/bin/intercept", import.meta.url));

async function requirePeer(path: string): Promise<void> {
  const found = await Deno.stat(path).catch(() => undefined);
  if (found === undefined) throw new Error(`${path} is missing: see ../shared/peers/README.md`);
}

/** A secret file of mode 600 in a fresh folder, removed after `fn`. */
async function withSecretFiles(fn: (right: string, wrong: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tcpshadow-secret-" });
  try {
    const right = `${dir}/right`, wrong = `${dir}/wrong`;
    await Deno.writeTextFile(right, "correct horse battery staple\n", { mode: 0o600 });
    await Deno.writeTextFile(wrong, "incorrect horse battery staple\n", { mode: 0o600 });
    await fn(right, wrong);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("--allow: a stranger host is closed at once and gets nothing, an allowed copy is served", async () => {
  let strangerAddress = "";
  const stderr = await withIntercept(
    { flags: (lab) => ["--allow", `${lab.host("target").address}/32`] },
    async (lab) => {
      strangerAddress = lab.host("stranger").address;
      const stranger = peer(lab, lab.host("stranger"), ["--register", "198.19.0.7:40000"]);
      await waitForLine(stranger, "closed");
      const copy = peer(lab, lab.host("target"), ["--register", "198.19.0.7:40000"]);
      await waitForLine(copy, "sent");
      await sleep(200);
      await sendSyn(lab, "198.19.0.7:40000");
      await assertSynAck(copy, 40000);
      assert.deepEqual(records(stranger), []);
      await copy.stop();
    },
  );
  assert.ok(stderr.includes(`connection from ${strangerAddress} refused: not in --allow`), stderr);
  assert.doesNotMatch(stderr, /no --allow/);
  assert.match(summaryOf(stderr), /, 1 refused \(not in --allow\)/);
});

Deno.test("without --allow intercept warns once that anyone reaching it reads the replies", async () => {
  const stderr = await withIntercept({}, async () => {});
  assert.equal(stderr.match(/no --allow: any host that reaches port 36524/g)?.length, 1, stderr);
});

Deno.test("--secret-file: a wrong secret and a plain TCPCopy hello are refused, the right secret copies all", async () => {
  await withSecretFiles(async (right, wrong) => {
    await withCopyLab({ interceptFlags: ["--secret-file", right], extraHosts: ["stranger"] }, async (lab) => {
      const refused = await lab.runCopy(["--secret-file", wrong], 30_000);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^tcpshadow: intercept 198\.18\.0\.3:36524: refused this copy: wrong shared secret/m,
      );
      const plain = peer(lab.lab, lab.lab.host("stranger"), [
        "--hello",
        "plain",
        "--register",
        "198.19.0.1:1024-1100",
      ]);
      await waitForLine(plain, "closed");
      assert.deepEqual(records(plain), []);
      await waitForStderr(lab.intercept, "sent TCPCopy's plain hello");

      const copy = await lab.startCopy(["--secret-file", right]);
      await httpClient(lab, ["--requests", "200", "--connections", "8", "--close"]);
      const online = await lab.readLog(lab.onlineLogPath);
      const target = await lab.waitForTarget(200, 30_000);
      const summary = await lab.stopCopy(copy);
      assert.deepEqual(compareLogs(online, target), []);
      assert.equal(summary["sessions-copied"], 200, JSON.stringify(summary));
      assert.match(lab.intercept.stderrText(), /proved the shared secret/);
      assert.match(lab.intercept.stderrText(), /proved a different secret: refused/);
    });
  });
});

Deno.test("with --secret-file the real C tcpcopy is refused: it cannot prove a secret", async () => {
  await requirePeer(C_TCPCOPY);
  await withSecretFiles(async (right) => {
    await withCopyLab({ interceptFlags: ["--secret-file", right] }, async (lab) => {
      const tcpcopy = lab.online.spawn([
        C_TCPCOPY,
        "-x",
        `80-${lab.target.address}:8080`,
        "-s",
        lab.assistant.address,
        "-c",
        "198.19.0.x",
        "-l",
        `${lab.dir}/tcpcopy.log`,
      ]);
      await waitForStderr(lab.intercept, "sent TCPCopy's plain hello");
      await tcpcopy.stop("SIGINT", 5000);
      assert.doesNotMatch(lab.intercept.stderrText(), /proved the shared secret/);
    });
  });
});

Deno.test("copy with --secret-file stops at the real C intercept with one line naming it and why", async () => {
  await requirePeer(C_INTERCEPT);
  await withSecretFiles(async (right) => {
    await withCopyLab({}, async (lab) => {
      const intercept = lab.assistant.spawn([
        C_INTERCEPT,
        "-i",
        lab.assistant.device,
        "-F",
        "tcp and src port 8080",
        "-p",
        "36600",
        "-l",
        `${lab.dir}/intercept.log`,
      ]);
      await waitUntil(
        "C intercept listens on 36600",
        async () => (await lab.assistant.run(["ss", "-tlnH", "( sport = :36600 )"])).stdout.includes("36600"),
      );
      const copy = lab.online.spawn(tcpshadow([
        "copy",
        "-x",
        `80-${lab.target.address}:8080`,
        "-s",
        `${lab.assistant.address}:36600`,
        "--secret-file",
        right,
      ]));
      const status = await copy.exited;
      const lines = copy.stderrText().trimEnd().split("\n");
      assert.equal(status.code, 1, copy.stderrText());
      assert.match(
        lines.at(-1)!,
        /^tcpshadow: intercept 198\.18\.0\.3:36600: no answer to the auth hello within 3 s: a C intercept/,
      );
      await intercept.stop("SIGINT", 5000);
    });
  });
});

Deno.test("a stranger registering a copy's clients gets nothing, and the copy still gets every reply", async () => {
  await withCopyLab({ keepClientAddress: true, extraHosts: ["stranger"] }, async (lab) => {
    // debug: a line per session when it ends, with how.
    const copy = await lab.startCopy(["--log-level", "debug"]);
    // Keep-alive: the ten sessions are open (and registered) before the stranger comes, and stay open.
    const client = lab.client.spawn(agentCommand("http_client", [
      "--url",
      `http://${lab.online.address}:80`,
      "--requests",
      "300",
      "--connections",
      "10",
      "--keep-alive",
      "--think-ms",
      "150",
    ]));
    let clientDone = false;
    client.exited.then(() => clientDone = true);
    // Request i goes on connection i mod 10: once req-0..req-9 reached the target, all ten are registered.
    for (let i = 0; i < 100; i++) {
      const ids = new Set((await lab.readLog(lab.targetLogPath)).map((line) => line.requestId));
      if ([...Array(10).keys()].every((n) => ids.has(`req-${n}`))) break;
      await sleep(100);
    }
    // Every port of the client's address: the copy's ten among them.
    const stranger = peer(lab.lab, lab.lab.host("stranger"), [
      "--register",
      `${lab.client.address}:1024-65535`,
    ]);
    await waitForLine(stranger, "sent");
    await waitForStderr(lab.intercept, "holds: refused");
    assert.ok(!clientDone, "the stranger came while the sessions were open");
    const status = await client.exited;
    assert.equal(status.code, 0, client.stdoutText() + client.stderrText());
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(300, 30_000);
    // The sessions end once the target's FINs came back through intercept: a stolen one never does.
    const ended = () => copy.stderrText().match(/ copied as .*: completed$/gm)?.length ?? 0;
    for (let i = 0; i < 150 && ended() < 10; i++) await sleep(100);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary["sessions-completed"], 10, JSON.stringify(summary));
    assert.deepEqual(records(stranger), []);
    assert.match(lab.intercept.stderrText(), /which copy 198\.18\.0\.1:\d+ holds: refused/);
    await stranger.stop();
  });
});

Deno.test("registration caps close the connection that passes them; the others keep their routes", async () => {
  const stderr = await withIntercept({
    flags: () => ["--max-registrations-per-connection", "100", "--max-registrations", "250"],
  }, async (lab) => {
    const target = lab.host("target");
    const a = peer(lab, target, ["--register", "198.19.0.7:40000-40099"]);
    await waitForLine(a, "sent");
    const b = peer(lab, target, ["--register", "198.19.0.8:40000-40100"]);
    await waitForLine(b, "closed");
    const c = peer(lab, target, ["--register", "198.19.0.9:40000-40098"]);
    await waitForLine(c, "sent");
    const d = peer(lab, target, ["--register", "198.19.0.10:40000-40059"]);
    await waitForLine(d, "closed");
    await sendSyn(lab, "198.19.0.7:40099");
    await assertSynAck(a, 40099);
    await sendSyn(lab, "198.19.0.9:40098");
    await assertSynAck(c, 40098);
    assert.ok(!a.stdoutText().includes("closed") && !c.stdoutText().includes("closed"));
    await a.stop();
    await c.stop();
  });
  assert.match(stderr, /passed --max-registrations-per-connection 100: connection closed/);
  assert.match(stderr, /passed --max-registrations 250 \(all connections\): connection closed/);
  assert.match(summaryOf(stderr), /, 2 closed at a registration cap/);
});

Deno.test("--max-connections: connections past the cap are closed at once, and counted", async () => {
  const stderr = await withIntercept({ flags: () => ["--max-connections", "3"] }, async (lab) => {
    const holder = peer(lab, lab.host("target"), ["--connections", "5"]);
    await waitForLine(holder, "closed 2");
    await sleep(500);
    assert.ok(!holder.stdoutText().includes("closed 3"), holder.stdoutText());
    await holder.stop();
  });
  assert.match(summaryOf(stderr), /, 2 over --max-connections/);
  assert.match(stderr, /refused: --max-connections 3 reached/);
});

Deno.test("--hello-timeout: a connection that sends nothing is closed after it", async () => {
  const stderr = await withIntercept({ flags: () => ["--hello-timeout", "1"] }, async (lab) => {
    const silent = peer(lab, lab.host("target"), ["--connections", "1", "--hello", "none"]);
    await waitForLine(silent, "opened 1");
    const opened = performance.now();
    await waitForLine(silent, "closed 1", 5000);
    const waited = performance.now() - opened;
    assert.ok(waited > 700 && waited < 3000, `closed after ${waited} ms`);
    const greeted = peer(lab, lab.host("target"), ["--connections", "1"]);
    await waitForLine(greeted, "opened 1");
    await sleep(2000);
    assert.ok(!greeted.stdoutText().includes("closed"), "a greeted connection may stay quiet");
    await greeted.stop();
    await silent.stop();
  });
  assert.match(stderr, /sent no hello within 1 s: connection closed/);
  assert.match(summaryOf(stderr), /, 1 sent no hello in time/);
});

Deno.test("out of file descriptors, intercept keeps running and serves again once they are free", async () => {
  const stderr = await withIntercept(
    { fileLimit: 40, flags: () => ["--hello-timeout", "60"] },
    async (lab, intercept) => {
      const holder = peer(lab, lab.host("stranger"), ["--connections", "60"]);
      await waitForLine(holder, "opened 60");
      await waitForStderr(intercept, "Too many open files");
      await holder.stop("SIGKILL");
      await sleep(1500);
      const copy = peer(lab, lab.host("target"), ["--register", "198.19.0.7:40123"]);
      await waitForLine(copy, "sent");
      await sleep(200);
      await sendSyn(lab, "198.19.0.7:40123");
      await assertSynAck(copy, 40123);
      await copy.stop();
    },
  );
  assert.match(stderr, /cannot accept a copy connection: Too many open files/);
  assert.match(summaryOf(stderr), /, [1-9]\d* accept errors/);
});

Deno.test("a fuzzed listener: 300 connections of seeded garbage and mutated streams, intercept serves on", async () => {
  const stderr = await withIntercept({}, async (lab) => {
    const fuzzer = peer(lab, lab.host("stranger"), ["--fuzz", "1234", "--cases", "300"]);
    await waitForLine(fuzzer, "fuzzed 300", 60_000);
    const copy = peer(lab, lab.host("target"), ["--register", "198.19.0.7:40321"]);
    await waitForLine(copy, "sent");
    await sleep(200);
    await sendSyn(lab, "198.19.0.7:40321");
    await assertSynAck(copy, 40321);
    await copy.stop();
  });
  assert.match(summaryOf(stderr), /, [1-9]\d* closed for garbage/);
});
