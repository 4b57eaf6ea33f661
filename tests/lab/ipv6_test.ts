/**
 * IPv6 end to end: IPv6 clients copied to an IPv6 target (fake clients from 2001:2:0:1::/64), copy
 * talking to intercept over IPv6, IPv6 reply headers back as REPLY6 frames; and one copy serving IPv4
 * and IPv6 clients at once. The target's request log is compared with the online server's, byte for byte.
 */
import assert from "node:assert/strict";
import {
  CLOSE_REQUESTS,
  compareLogs,
  expectEveryRequestCopied,
  httpClient,
  recordPort80OnEth0AndAny,
  waitForStderr,
  withCopyLab,
} from "./copy_lab.ts";
import { formatIpv6, LinkType } from "../../src/wire/mod.ts";
import { sleep } from "../../src/sleep.ts";

/** C intercept, the IPv4-only peer (`../shared/peers/README.md`). */
const C_INTERCEPT = "../shared/peers/bin/intercept";
const C_INTERCEPT_PORT = 36525;

/** Every remote address the target logged: each should be a fake IPv6 client. */
function remotes(target: Array<Record<string, unknown>>): Set<string> {
  return new Set(target.map((line) => String(line.remote).replace(/:\d+$/, "")));
}

/**
 * The local addresses of the host's raw IPv6 sockets of protocol IPPROTO_RAW, from /proc/net/raw6: each
 * as four 32-bit words in hex, each word's bytes in the host's (little-endian) order, then `:00FF`.
 */
function rawSocketAddresses6(procNetRaw6: string): string[] {
  return procNetRaw6.split("\n").slice(1).map((line) => line.trim().split(/\s+/)[1] ?? "")
    .filter((local) => local.endsWith(":00FF"))
    .map((local) => {
      const bytes = new Uint8Array(16);
      for (let word = 0; word < 4; word++) {
        for (let i = 0; i < 4; i++) {
          bytes[word * 4 + i] = parseInt(local.slice(word * 8 + (3 - i) * 2, word * 8 + (4 - i) * 2), 16);
        }
      }
      return formatIpv6(bytes);
    });
}

Deno.test("IPv6, a new connection per request: 2,000 requests reach the target identical", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
    const copy = await lab.startCopy();
    // Bound to the address the online host sends from toward the target, the raw socket spares the
    // kernel a source address selection per packet.
    const raw6 = await lab.online.run(["cat", "/proc/net/raw6"]);
    assert.deepEqual(rawSocketAddresses6(raw6.stdout), [lab.online.address6], raw6.stdout);
    const { summary, target } = await expectEveryRequestCopied(lab, copy, CLOSE_REQUESTS, 2000, 30_000);
    assert.equal(summary["sessions-copied"], 2000);
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      2000,
      JSON.stringify(summary),
    );
    assert.equal(summary["sessions-failed"], 0);
    assert.equal((summary as Record<string, number>)["packets-ipv6-skipped"], undefined);
    assert.ok(
      [...remotes(target)].every((remote) => remote.startsWith("2001:2:0:1:")),
      [...remotes(target)][0],
    );
  });
});

// Bodies up to 100 kB, not copy_test's 1 MiB: a connection of 1 MiB POSTs back to back fills a session's
// 16 MiB buffer when the machine is loaded (load 15 on 2 CPUs: 4 of 4 runs, IPv4 and IPv6 alike), and
// buffering does not depend on the family. 1440 bytes is one full IPv6 segment (MSS 1440).
Deno.test("IPv6 keep-alive: 2,000 requests on 10 connections, POST bodies up to 100 kB, reach the target identical", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
    const copy = await lab.startCopy();
    await httpClient(lab, [
      "--requests",
      "2000",
      "--connections",
      "10",
      "--keep-alive",
      "--body-sizes",
      "0,10,1000,1440,3000,0,65536,7,100000,100,0,200,3333,1,0,14600,20,0,1,1441",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 2000);
    const target = await lab.waitForTarget(2000, 60_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
    assert.equal(summary["sessions-copied"], 10);
    assert.equal(summary["sessions-completed"], 10, JSON.stringify(summary));
  });
});

Deno.test("one copy serves IPv4 and IPv6 clients at once, each family to the target's address of it", async () => {
  await withCopyLab({ family: "both" }, async (lab) => {
    // Strict turns (no pipelining past --max-lag): with three clients at once on a loaded machine a
    // keep-alive copy fell behind, pipelined, and its close met the target between answers, which made
    // the server drop requests it had (1 run of 6, IPv6 keep-alive ones); the families are the point here.
    const copy = await lab.startCopy(["--max-lag", "600000"]);
    const common = ["--connections", "8", "--body-sizes", "0,100,5000"];
    await Promise.all([
      httpClient(lab, ["--requests", "500", "--close", "--id-prefix", "v4", ...common], lab.online.address),
      httpClient(
        lab,
        ["--requests", "500", "--close", "--id-prefix", "v6", ...common],
        `[${lab.online.address6}]`,
      ),
      httpClient(
        lab,
        ["--requests", "200", "--keep-alive", "--id-prefix", "k6", ...common],
        `[${lab.online.address6}]`,
      ),
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 1200);
    await lab.waitForTarget(1200, 60_000);
    await sleep(3000); // the keep-alive connections' closes wait for their turns
    const summary = await lab.stopCopy(copy);
    const target = await lab.readLog(lab.targetLogPath);
    assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
    assert.equal(summary["sessions-copied"], 1008);
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      1008,
      JSON.stringify(summary),
    );
    // Each family kept its own: IPv4 requests from 198.19.0.0/24, IPv6 ones from 2001:2:0:1::/64. The
    // target listens on "::", so it logs an IPv4 client as an IPv4-mapped IPv6 address.
    for (const line of target) {
      const fake = String(line.remote).startsWith(
        String(line.requestId).startsWith("v4") ? "::ffff:198.19.0." : "2001:2:0:1:",
      );
      assert.ok(fake, `${line.requestId} from ${line.remote}`);
    }
  });
});

Deno.test("with 2% random loss on the target's IPv6 link every request still reaches the target", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
    await lab.lab.dropRandom(lab.target, 2, { direction: "in", match: "meta nfproto ipv6" });
    await lab.lab.dropRandom(lab.target, 2, { direction: "out", match: "meta nfproto ipv6" });
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
    await sleep(3000); // the last closes, through the loss
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), [], JSON.stringify(summary));
    assert.ok(summary.retransmissions > 0, "loss was real: the engine retransmitted");
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
  });
});

Deno.test("IPv6 --rate 20 copies between 15% and 25% of 1,000 sessions, each whole", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
    const copy = await lab.startCopy(["--rate", "20"]);
    await httpClient(lab, [
      "--requests",
      "1000",
      "--connections",
      "16",
      "--close",
      "--body-sizes",
      "0,500,3000",
    ]);
    await lab.waitForTarget(1000, 3000); // nothing more will come: wait only briefly
    const summary = await lab.stopCopy(copy);
    const target = await lab.readLog(lab.targetLogPath);
    assert.ok(target.length >= 150 && target.length <= 250, `${target.length} of 1000 copied`);
    assert.equal(summary["sessions-copied"], target.length);
    assert.equal(summary["sessions-completed"], target.length);
    assert.equal(summary["sessions-copied"] + summary["sessions-skipped-by-rate"], 1000);
    const onlineKeys = new Set(
      (await lab.readLog(lab.onlineLogPath)).map((l) => `${l.requestId} ${l.bodySha256}`),
    );
    for (const line of target) assert.ok(onlineKeys.has(`${line.requestId} ${line.bodySha256}`));
  });
});

Deno.test("IPv6 --multiply 3 makes each request reach the target exactly 3 times", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
    const copy = await lab.startCopy(["--multiply", "3"]);
    await httpClient(lab, [
      "--requests",
      "200",
      "--connections",
      "4",
      "--close",
      "--id-prefix",
      "m",
      "--body-sizes",
      "0,2000",
    ]);
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
    assert.deepEqual(compareLogs(online, target, 3), [], JSON.stringify(summary));
    assert.equal(summary["sessions-copied"], 3 * 202);
    assert.equal(
      new Set(target.map((line) => line.remote)).size,
      3 * 202,
      "every copy is a distinct session",
    );
  });
});

Deno.test("IPv6 captures from tcpdump (Ethernet and -i any) replay to the target with copy --input", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
    const paths = await recordPort80OnEth0AndAny(lab.online, lab.dir, () =>
      httpClient(lab, [
        "--requests",
        "24",
        "--connections",
        "4",
        "--close",
        "--think-ms",
        "100",
        "--body-sizes",
        "0,10,1000,5000",
      ]));
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 24);
    const header = await Deno.readFile(paths.any);
    assert.equal(new DataView(header.buffer).getUint32(20, true), LinkType.LINUX_SLL2);
    for (const [shift, path] of [[1, paths.eth0], [2, paths.any]] as const) {
      await Deno.truncate(lab.targetLogPath).catch(() => {});
      const run = await lab.runCopy(["-i", path, "-q", "-a", "max", "-f", String(shift)], 60_000);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        compareLogs(online, await lab.readLog(lab.targetLogPath)),
        [],
        `${path}: ${run.stderr}`,
      );
      assert.equal(run.summary["file-sessions"], 24);
      assert.equal(run.summary["sessions-completed"], 24, run.stderr);
    }
  });
});

Deno.test("facing C intercept (IPv4 only), IPv6 sessions are counted as sessions-without-ipv6-intercept, IPv4 ones copied", async () => {
  await Deno.stat(C_INTERCEPT).catch(() => {
    throw new Error(`${C_INTERCEPT} is missing: the reference peers are needed (../shared/peers/README.md)`);
  });
  await withCopyLab({ family: "both" }, async (lab) => {
    const cIntercept = lab.assistant.spawn([
      await Deno.realPath(C_INTERCEPT),
      "-i",
      lab.assistant.device,
      "-F",
      "tcp and src port 8080",
      "-p",
      String(C_INTERCEPT_PORT),
      "-l",
      `${lab.dir}/c-intercept.log`,
    ]);
    for (let i = 0; i < 100; i++) {
      const listening = await lab.assistant.run(["ss", "-ltnH", `( sport = :${C_INTERCEPT_PORT} )`]);
      if (listening.stdout.trim() !== "") break;
      await sleep(100);
    }
    const copy = lab.online.spawn(lab.copyCommand([], `${lab.assistant.address}:${C_INTERCEPT_PORT}`), {
      stdout: "piped",
      stderr: "piped",
    });
    await waitForStderr(copy, "copying", 15000);
    await httpClient(
      lab,
      ["--requests", "50", "--connections", "5", "--close", "--id-prefix", "v4"],
      lab.online.address,
    );
    await httpClient(
      lab,
      ["--requests", "30", "--connections", "3", "--close", "--id-prefix", "v6"],
      `[${lab.online.address6}]`,
    );
    const target = await lab.waitForTarget(50, 15_000);
    await sleep(500);
    const status = await copy.stop("SIGTERM", 10000);
    const stderr = copy.stderrText();
    assert.equal(status.code, 0, stderr);
    assert.equal(stderr.match(/did not grant IPv6/g)?.length, 1, stderr);
    const summary = Object.fromEntries(
      stderr.slice(stderr.indexOf(" summary ") + 9).split("\n")[0].split(" ").map((pair) => pair.split("=")),
    );
    assert.equal(Number(summary["sessions-without-ipv6-intercept"]), 30, stderr);
    assert.equal(Number(summary["sessions-completed"]), 50, stderr);
    assert.deepEqual(
      target.map((line) => String(line.requestId).slice(0, 2)).filter((id) => id !== "v4"),
      [],
    );
    await cIntercept.stop("SIGINT", 5000);
    const log = await Deno.readTextFile(`${lab.dir}/c-intercept.log`).catch(() => "");
    assert.doesNotMatch(log, /too old|unknown|error/i, log);
  });
});
