/**
 * Interoperation with the real C programs: tcpcopy 1.3.0 (live and offline builds) and intercept 1.0.0
 * from `../shared/peers/bin/`, each paired with ours, and the requests the target received compared
 * with the online server's, byte for byte (body hashes).
 *
 * One lab holds both intercepts: ours on `assistant`, C's on `cassist`. The target routes each range of
 * fake clients to one of them (or, for `-s a,b`, half of a range to each), so one copy command picks its
 * intercept by the client range it gives with `-c`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { LabProcess } from "./lab.ts";
import {
  compareLogs,
  type CopyLab,
  httpClient,
  stopRecording,
  tcpshadow,
  waitForStderr,
  withCopyLab,
} from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

/** The reference peers, beside the repository as CI checks it out (`shared/` next to the clone). */
const PEERS = fileURLToPath(new URL("../../../shared/peers/bin/", import.meta.url));
const C_TCPCOPY = `${PEERS}tcpcopy`;
const C_TCPCOPY_OFFLINE = `${PEERS}tcpcopy-offline`;
const C_INTERCEPT = `${PEERS}intercept`;

/** Client ranges, each routed by the target to the intercept(s) named. */
/** withCopyLab's route, to `assistant`, in TCPCopy's /24 notation. */
const TO_OURS = "198.19.0.x";
const TO_C = "198.19.1.0/24";
const TO_BOTH = "198.19.2.0/24"; // to ours, then to C's

/** Fails, never skips, when the peers are not where CI puts them. */
function requirePeers(): void {
  const missing = [C_TCPCOPY, C_TCPCOPY_OFFLINE, C_INTERCEPT].filter((path) => {
    try {
      return !Deno.statSync(path).isFile;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `the interop tests need the reference peers (C tcpcopy 1.3.0 and intercept 1.0.0) in ../shared/peers/bin ` +
        `beside the repository; missing: ${missing.join(", ")}`,
    );
  }
}

/** The interop lab: the copy lab plus C intercept on `cassist` and the target's routes to it. */
function withInteropLab(fn: (lab: CopyLab, cLogPath: string) => Promise<void>): Promise<void> {
  requirePeers();
  return withCopyLab({ extraHosts: ["cassist"] }, async (lab) => {
    const cassist = lab.lab.host("cassist");
    await cassist.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    await lab.lab.addRoute(lab.target, TO_C, cassist.address);
    await lab.lab.addRoute(lab.target, TO_BOTH, lab.assistant.address);
    const cLogPath = `${lab.dir}/c-intercept.log`;
    const intercept = cassist.spawn([
      C_INTERCEPT,
      "-i",
      cassist.device,
      "-F",
      "tcp and src port 8080",
      "-l",
      cLogPath,
    ]);
    await waitForListening(intercept, 36524, cassist.run.bind(cassist));
    await fn(lab, cLogPath);
  });
}

/** Waits until something listens on TCP `port` in the host (`ss`), or fails if `process` exits. */
async function waitForListening(
  process: LabProcess,
  port: number,
  run: CopyLab["target"]["run"],
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { stdout } = await run(["ss", "-Htln", `sport = :${port}`]);
    if (stdout.trim() !== "") return;
    const exited = await Promise.race([process.exited, sleep(100).then(() => undefined)]);
    if (exited !== undefined) {
      throw new Error(`${process.command.join(" ")} exited with ${exited.code}:\n${process.stderrText()}`);
    }
    if (Date.now() > deadline) throw new Error(`nothing listens on :${port} after 15 s`);
  }
}

/** The two kinds of traffic: a connection per request, or a few connections kept alive. */
type Traffic = "close" | "keep-alive";

/**
 * 1,000 requests, each on a connection of its own (`close`) or on 10 kept alive, with bodies from
 * none to many segments; ids start with `prefix`.
 */
async function requests(lab: CopyLab, prefix: string, traffic: Traffic): Promise<void> {
  await httpClient(lab, [
    "--requests",
    "1000",
    ...(traffic === "close"
      ? ["--connections", "16", "--close", "--body-sizes", "0,1,100,1460,1461,5000,20000"]
      : ["--connections", "10", "--keep-alive", "--body-sizes", "0,10,1000,2920,0,65536,7"]),
    "--id-prefix",
    `${prefix}-${traffic}`,
  ]);
}

/** 1,000 requests with a connection each, then 1,000 on 10 keep-alive connections. */
async function sendRequests(lab: CopyLab, prefix: string): Promise<void> {
  await requests(lab, prefix, "close");
  await requests(lab, prefix, "keep-alive");
}

/** Empties both servers' logs before the next direction. */
async function clearLogs(lab: CopyLab): Promise<void> {
  await Deno.writeTextFile(lab.onlineLogPath, "");
  await Deno.writeTextFile(lab.targetLogPath, "");
}

/** Checks that the target got every request the online server got, each once, identical. */
async function expectIdentical(lab: CopyLab, count: number): Promise<void> {
  const online = await lab.readLog(lab.onlineLogPath);
  assert.equal(online.length, count);
  const target = await lab.waitForTarget(count, 30_000);
  await sleep(500); // a duplicate would show up now
  const settled = await lab.readLog(lab.targetLogPath);
  assert.ok(settled.length >= target.length);
  assert.deepEqual(compareLogs(online, settled).slice(0, 10), []);
}

/** C intercept logged no complaint about our hello or records. */
async function expectNoComplaint(cLogPath: string): Promise<void> {
  const log = await Deno.readTextFile(cLogPath);
  assert.doesNotMatch(log, /too old|not compatible|unknown msg type/, log);
}

/** Starts our copy from online:80 to target:8080 with only `args` besides; resolves once it captures. */
async function startOurCopy(lab: CopyLab, args: string[]): Promise<LabProcess> {
  const copy = lab.online.spawn(tcpshadow(["copy", "-x", `80-${lab.target.address}:8080`, ...args]));
  await waitForStderr(copy, "copying", 15_000);
  return copy;
}

/** Starts C tcpcopy (`binary`) on the online host with `args`; resolves once it is connected. */
async function startCTcpcopy(lab: CopyLab, binary: string, args: string[]): Promise<LabProcess> {
  const logPath = `${lab.dir}/c-tcpcopy-${Date.now()}.log`;
  const process = lab.online.spawn([binary, ...args, "-l", logPath]);
  const deadline = Date.now() + 15_000;
  // It logs its connections to intercept before it starts capturing.
  for (;;) {
    const log = await Deno.readTextFile(logPath).catch(() => "");
    if (/connect to/.test(log) || /add conn/.test(log)) break;
    const exited = await Promise.race([process.exited, sleep(100).then(() => undefined)]);
    if (exited !== undefined) throw new Error(`C tcpcopy exited with ${exited.code}:\n${log}`);
    if (Date.now() > deadline) throw new Error(`C tcpcopy did not connect within 15 s:\n${log}`);
  }
  await sleep(500);
  return process;
}

Deno.test("interop: our copy and C intercept 1.0: 2,000 requests reach the target identical", async () => {
  await withInteropLab(async (lab, cLogPath) => {
    await clearLogs(lab);
    const copy = await startOurCopy(lab, ["-s", lab.lab.host("cassist").address, "-c", TO_C]);
    await sendRequests(lab, "ours-c");
    await expectIdentical(lab, 2000);
    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
    await expectNoComplaint(cLogPath);
  });
});

Deno.test("interop: C tcpcopy 1.3 and our intercept: 2,000 requests reach the target identical", async () => {
  await withInteropLab(async (lab) => {
    await clearLogs(lab);
    const tcpcopy = await startCTcpcopy(lab, C_TCPCOPY, [
      "-x",
      `80-${lab.target.address}:8080`,
      "-s",
      lab.assistant.address,
      "-c",
      TO_OURS,
    ]);
    await sendRequests(lab, "c-ours");
    await expectIdentical(lab, 2000);
    await tcpcopy.stop("SIGINT", 5000);
  });
});

Deno.test("interop: our copy feeding C intercept and ours at once (-s a,b): 2,000 requests identical", async () => {
  await withInteropLab(async (lab, cLogPath) => {
    await clearLogs(lab);
    const cassist = lab.lab.host("cassist");
    const copy = await startOurCopy(lab, [
      "-s",
      `${lab.assistant.address},${cassist.address}`,
      "-c",
      TO_BOTH,
    ]);
    // The target's replies go through our intercept for the first 1,000 sessions, through C's for the
    // keep-alive ones: each half is copied whole only if copy heard the intercept it went through.
    await requests(lab, "both", "close");
    assert.equal((await lab.waitForTarget(1000, 30_000)).length, 1000);
    await lab.target.run(["ip", "route", "replace", TO_BOTH, "via", cassist.address]);
    await requests(lab, "both", "keep-alive");
    await expectIdentical(lab, 2000);
    const summary = await lab.stopCopy(copy);
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
    await expectNoComplaint(cLogPath);
  });
});

Deno.test("interop: C tcpcopy-offline and our copy --input deliver the same recorded requests", async () => {
  await withInteropLab(async (lab) => {
    await clearLogs(lab);
    const recording = `${lab.dir}/recording.pcap`;
    // C's offline build reads Ethernet captures (not `-i any`'s cooked SLL2).
    const dump = lab.online.spawn([
      "tcpdump",
      "-i",
      lab.online.device,
      "--immediate-mode",
      "-B",
      "16384",
      "-U",
      "-w",
      recording,
      "tcp and port 80",
    ]);
    await waitForStderr(dump, "listening on", 10_000);
    await httpClient(lab, [
      "--requests",
      "150",
      "--connections",
      "6",
      "--close",
      "--id-prefix",
      "rec-close",
      "--body-sizes",
      "0,10,1000,5000",
    ]);
    await httpClient(lab, [
      "--requests",
      "150",
      "--connections",
      "3",
      "--keep-alive",
      "--id-prefix",
      "rec-ka",
      "--body-sizes",
      "0,3000,20",
    ]);
    await stopRecording(dump, recording);
    assert.match(dump.stderrText(), /^0 packets dropped by kernel$/m, dump.stderrText());
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 300);

    const tcpcopy = await startCTcpcopy(lab, C_TCPCOPY_OFFLINE, [
      "-x",
      `80-${lab.target.address}:8080`,
      "-s",
      lab.assistant.address,
      "-c",
      TO_OURS,
      "-i",
      recording,
    ]);
    const byC = await lab.waitForTarget(300, 30_000);
    await sleep(500);
    await tcpcopy.stop("SIGINT", 5000);
    assert.equal(byC.length, 300);
    assert.deepEqual(
      compareLogs(online, await lab.readLog(lab.targetLogPath)).slice(0, 10),
      [],
      "C tcpcopy-offline",
    );

    await Deno.writeTextFile(lab.targetLogPath, "");
    const ours = lab.online.spawn(tcpshadow([
      "copy",
      "-x",
      `80-${lab.target.address}:8080`,
      "-s",
      lab.lab.host("cassist").address,
      "-c",
      TO_C,
      "-i",
      recording,
    ]));
    const status = await ours.exited;
    assert.equal(status.code, 0, ours.stderrText());
    assert.deepEqual(
      compareLogs(online, await lab.readLog(lab.targetLogPath)).slice(0, 10),
      [],
      "our copy -i",
    );
  });
});
