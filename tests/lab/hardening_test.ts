/**
 * copy under the troubles of issue #14 that come from outside: a full disk under its log and stats
 * files, a flood of spoofed SYNs at the online port, an intercept gone. Real clients' requests must
 * still be copied, and what cannot be copied must be said.
 */
import assert from "node:assert/strict";
import { agentCommand, waitForLine, waitUntil } from "./lab.ts";
import { compareLogs, FAKE_CLIENTS, httpClient, tcpshadow, waitForStderr, withCopyLab } from "./copy_lab.ts";

/** Runs `args` in the mount namespace of process `pid` (the root namespace's network stays untouched). */
async function inMounts(pid: number, args: string[]): Promise<{ code: number; stdout: string }> {
  const { code, stdout } = await new Deno.Command("nsenter", {
    args: ["-t", String(pid), "-m", ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout) };
}

Deno.test("a full disk under copy's log and stats files drops lines, not copies; writing resumes once there is room", async () => {
  await withCopyLab({}, async (lab) => {
    // A 1 MB tmpfs mounted in a mount namespace of copy's own: gone with copy, seen by nothing else.
    const disk = `${lab.dir}/disk`;
    await Deno.mkdir(disk);
    const logFile = `${disk}/copy.log`;
    const statsFile = `${disk}/stats.jsonl`;
    const copy = lab.online.spawn([
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount -t tmpfs -o size=1m tcpshadow-full-disk "$0" && exec "$@"',
      disk,
      ...lab.copyCommand([
        "--interface",
        "eth0",
        "--log-file",
        logFile,
        "--log-level",
        "debug",
        "--stats",
        "1",
        "--stats-json",
        statsFile,
      ]),
    ]);
    try {
      const log = async () => (await inMounts(copy.pid, ["cat", logFile])).stdout;
      await waitUntil("copy captures", async () => (await log()).includes("copying on"));
      // Fill the disk to the last byte (head fails with ENOSPC, as meant).
      await inMounts(copy.pid, ["sh", "-c", `head -c 2M /dev/zero > ${disk}/filler`]);
      await httpClient(lab, ["--requests", "30", "--connections", "4", "--close"]);
      await waitForStderr(copy, "cannot write log file");
      await waitForStderr(copy, "cannot write --stats-json file");
      const target = await lab.waitForTarget(30, 15_000);
      assert.deepEqual(compareLogs(await lab.readLog(lab.onlineLogPath), target), []);

      assert.equal((await inMounts(copy.pid, ["rm", `${disk}/filler`])).code, 0);
      await httpClient(lab, ["--requests", "10", "--connections", "4", "--close"]);
      await waitForStderr(copy, `writing log file ${logFile} again`);
      await waitForStderr(copy, `writing --stats-json file ${statsFile} again`);
      assert.equal((await lab.waitForTarget(40, 15_000)).length, 40);
      await waitUntil("session lines in the log again", async () => / completed$/m.test(await log()));
      const summary = await lab.stopCopy(copy);
      assert.equal(summary["sessions-completed"], 40, JSON.stringify(summary));
      assert.ok(summary["lines-dropped"] >= 2, JSON.stringify(summary));
      const stderr = copy.stderrText();
      assert.equal(stderr.match(/cannot write log file/g)?.length, 1, stderr);
      assert.equal(stderr.match(/cannot write --stats-json file/g)?.length, 1, stderr);
      assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
    } finally {
      await copy.stop("SIGKILL");
      // Nothing stays mounted: the namespace, and its tmpfs, went with copy. Make sure.
      const mounts = await Deno.readTextFile("/proc/self/mounts");
      assert.doesNotMatch(mounts, /tcpshadow-full-disk/);
    }
  });
});

Deno.test("a flood of spoofed SYNs at the online port cannot keep real clients from being copied", async () => {
  await withCopyLab({ extraHosts: ["attacker"] }, async (lab) => {
    // Room for the real clients' sessions, lingering ones included (40 in 2 s), and not much more.
    const maxSessions = 100;
    const statsFile = `${lab.dir}/copy-stats.jsonl`;
    const copy = await lab.startCopy([
      "--interface",
      "eth0",
      "--max-sessions",
      String(maxSessions),
      "--stats",
      "1",
      "--stats-json",
      statsFile,
    ]);
    // 2,000 SYNs a second from random sources, none of which ever completes a handshake: enough to
    // fill 100 places in 50 ms, gentle enough for a shared machine.
    const flood = lab.lab.host("attacker").spawn(
      ["hping3", "-q", "-S", "-p", "80", "--rand-source", "-i", "u500", lab.online.address],
      { stdout: "null", stderr: "null" },
    );
    let problems: string[];
    try {
      await waitUntil("copy has seen enough of the flood to fill its table ten times", async () => {
        const lines = (await Deno.readTextFile(statsFile).catch(() => "")).trim().split("\n");
        const last = lines.at(-1) ? JSON.parse(lines.at(-1)!) : {};
        return (last["packets-captured"] ?? 0) > 10 * maxSessions;
      });
      await httpClient(lab, ["--requests", "40", "--connections", "4", "--close"]);
      const target = await lab.waitForTarget(40, 20_000);
      problems = compareLogs(await lab.readLog(lab.onlineLogPath), target);
    } finally {
      await flood.stop("SIGKILL");
    }
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(problems, [], JSON.stringify(summary));
    assert.ok(summary["sessions-half-open-evicted"] > 10 * maxSessions, JSON.stringify(summary));
    assert.equal(summary["sessions-refused-at-cap"], 0, JSON.stringify(summary));
    assert.ok(summary["sessions-completed"] >= 40, JSON.stringify(summary));
  });
});

Deno.test("a copy that lost its intercept says so every few seconds while sessions wait, and in a metric", async () => {
  await withCopyLab({ server: "echo" }, async (lab) => {
    // An intercept of this test's own, beside the lab's, so that it can be stopped.
    const port = 36525;
    const intercept = lab.assistant.spawn(
      tcpshadow(["intercept", "-i", "eth0", "-p", String(port), "-F", "tcp and src port 8080"]),
    );
    await waitForStderr(intercept, "listening on");
    const statsFile = `${lab.dir}/copy-stats.jsonl`;
    // Not lab.startCopy: its copy would connect to the lab's intercept too.
    const copy = lab.online.spawn(tcpshadow([
      "copy",
      "-x",
      `80-${lab.target.address}:8080`,
      "-s",
      `${lab.assistant.address}:${port}`,
      "-c",
      FAKE_CLIENTS,
      "--interface",
      "eth0",
      "-C",
      "1",
      "--stats",
      "1",
      "--stats-json",
      statsFile,
    ]));
    await waitForStderr(copy, "copying on");
    await intercept.stop("SIGTERM");
    await waitForStderr(copy, "lost intercept");
    const client = lab.client.spawn(
      agentCommand("tcp_client", ["--to", `${lab.online.address}:80`, "--lines", "1", "--hold-ms", "30000"]),
    );
    try {
      await waitForLine(client, "connected");
      await waitForStderr(copy, "no intercept connected: 1 session(s) wait for the target's replies");
      await waitUntil("the stats say it", async () => {
        const lines = (await Deno.readTextFile(statsFile).catch(() => "")).trim().split("\n");
        const last = JSON.parse(lines.at(-1)!);
        return last["intercept-connected"] === 0 && last["sessions-active"] === 1;
      });
    } finally {
      await client.stop("SIGKILL");
    }
    await lab.stopCopy(copy);
  });
});
