/**
 * The commands operators run today, as TCPCopy's README writes them (addresses changed to the lab's),
 * `-d` included: both return at once, leave a daemon that writes its pid file and copies, and stop by
 * their pid.
 */
import assert from "node:assert/strict";
import { agentCommand, type Host } from "./lab.ts";
import { type CopyLab, tcpshadow, withCopyLab } from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

/** The seed's `-c 1.1.1.0`: one client address, as TCPCopy reads it (its /24 is `1.1.1.x`). */
const CLIENT = "198.19.5.0";

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function readPid(path: string): Promise<number> {
  const text = await Deno.readTextFile(path);
  assert.match(text, /^[0-9]+\n$/, `pid file ${path}: ${JSON.stringify(text)}`);
  return Number(text);
}

/** SIGTERM to `pid`; resolves once the process is gone (or fails after 10 s). */
async function stopByPid(pid: number): Promise<void> {
  Deno.kill(pid, "SIGTERM");
  for (const deadline = Date.now() + 10_000; alive(pid);) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still runs 10 s after SIGTERM`);
    await sleep(50);
  }
}

/** Runs a `-d` command line to its (quick) end; returns its exit code and what it printed. */
function runDaemon(host: Host, args: string[]) {
  return host.run(tcpshadow(args), { check: false, timeoutMs: 40_000 });
}

Deno.test("the seed's intercept -d and copy -r 20 -d: pid files, 20% copied identical, stopped by pid", async () => {
  await withCopyLab({ extraHosts: ["assistant2"] }, async (lab: CopyLab) => {
    const assistant2 = lab.lab.host("assistant2");
    await assistant2.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    await lab.lab.addRoute(lab.target, `${CLIENT}/24`, assistant2.address);
    const paths = {
      interceptPid: `${lab.dir}/intercept.pid`,
      interceptLog: `${lab.dir}/intercept.log`,
      copyPid: `${lab.dir}/copy.pid`,
      copyLog: `${lab.dir}/copy.log`,
    };

    const intercept = await runDaemon(assistant2, [
      "intercept",
      "-i",
      "eth0",
      "-F",
      "tcp and src port 8080",
      "-d",
      "-P",
      paths.interceptPid,
      "-l",
      paths.interceptLog,
    ]);
    assert.equal(intercept.code, 0, intercept.stderr);
    const interceptPid = await readPid(paths.interceptPid);
    assert.ok(alive(interceptPid));
    assert.match(await Deno.readTextFile(paths.interceptLog), /listening on/);

    // A start-up error still reaches the terminal, with exit 2: here no intercept listens on :36525.
    const refused = await runDaemon(lab.online, [
      "copy",
      "-x",
      `80-${lab.target.address}:8080`,
      "-s",
      `${assistant2.address}:36525`,
      "-d",
    ]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^tcpshadow: cannot connect to intercept at .*:36525/m);

    const copy = await runDaemon(lab.online, [
      "copy",
      "-x",
      `80-${lab.target.address}:8080`,
      "-s",
      assistant2.address,
      "-c",
      CLIENT,
      "-r",
      "20",
      "-d",
      "-P",
      paths.copyPid,
      "-l",
      paths.copyLog,
    ]);
    assert.equal(copy.code, 0, copy.stderr);
    const copyPid = await readPid(paths.copyPid);
    assert.ok(alive(copyPid));

    await lab.client.run(
      agentCommand("http_client", [
        "--url",
        `http://${lab.online.address}:80`,
        "--requests",
        "500",
        "--connections",
        "8",
        "--close",
        "--body-sizes",
        "0,100,3000",
      ]),
      { timeoutMs: 60_000 },
    );
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 500);
    await lab.waitForTarget(500, 3000); // about 100 come; wait only briefly for the rest
    await stopByPid(copyPid);
    const target = await lab.readLog(lab.targetLogPath);
    assert.ok(target.length >= 50 && target.length <= 150, `${target.length} of 500 copied at -r 20`);
    const onlineKeys = new Set(online.map((line) => `${line.requestId} ${line.bodySha256}`));
    for (const line of target) assert.ok(onlineKeys.has(`${line.requestId} ${line.bodySha256}`));
    assert.ok(target.every((line) => String(line.remote).startsWith(`${CLIENT}:`)));
    const copyLog = await Deno.readTextFile(paths.copyLog);
    assert.match(copyLog, / summary sessions-copied=/, copyLog);

    await stopByPid(interceptPid);
    for (const path of [paths.copyPid, paths.interceptPid]) {
      assert.equal(await Deno.stat(path).then(() => true, () => false), false, `${path} left behind`);
    }
  });
});
