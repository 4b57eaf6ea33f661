/**
 * `copy --connect` with IPv6: connections of the online host's own to an IPv6 target, clients of either
 * family to a target of either, and `--bind` with addresses of both families. What the target received is
 * compared with what the online server did, byte for byte, and the address each request came from checked.
 */
import assert from "node:assert/strict";
import { compareLogs, httpClient, tcpshadow, waitForStderr, withCopyLab } from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

/** Every remote address the target logged (the port cut off), with how many requests came from each. */
function remoteCounts(target: Array<Record<string, unknown>>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of target) {
    const address = String(line.remote).replace(/:\d+$/, "");
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  return counts;
}

Deno.test("--connect to an IPv6 target: 1,000 requests a connection each and 1,000 keep-alive reach it identical", async () => {
  await withCopyLab({ transport: "connect", family: 6 }, async (lab) => {
    const copy = await lab.startCopy();
    await httpClient(lab, [
      "--requests",
      "1000",
      "--connections",
      "16",
      "--close",
      "--id-prefix",
      "close",
      "--body-sizes",
      "0,0,1,100,1000,1440,1441,2880,5000,20000",
    ]);
    await httpClient(lab, [
      "--requests",
      "1000",
      "--connections",
      "10",
      "--keep-alive",
      "--id-prefix",
      "ka",
      "--body-sizes",
      "0,10,1000,1440,3000,0,65536,7,1048576,100,0,200,3333,1,0,14600,20,0,1,1441",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 2000);
    const target = await lab.waitForTarget(2000, 60_000);
    await sleep(1000); // the keep-alive connections' closes
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
    assert.equal(summary["sessions-copied"], 1010, JSON.stringify(summary));
    // Linux ends a connection with a RST now and then (bytes unread at close); the copy passes it on.
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      1010,
      JSON.stringify(summary),
    );
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
    assert.equal(summary["sessions-family-unreachable"], 0, JSON.stringify(summary));
    // The kernel chose the source: the online host's own IPv6 address, for every request.
    assert.deepEqual([...remoteCounts(target).keys()], [lab.online.address6]);
  });
});

Deno.test("--connect crosses families: IPv4 clients to an IPv6 target and IPv6 clients to an IPv4 one, at once", async () => {
  await withCopyLab({ transport: "connect", family: "both" }, async (lab) => {
    // The mapping by the address the client reached: IPv4 clients go to the IPv6 target, IPv6 ones to the
    // IPv4 target. No -c: the target sees the online host's connections, not the clients' addresses.
    const crossing = `${lab.online.address}:80-[${lab.target.address6}]:8080,` +
      `[${lab.online.address6}]:80-${lab.target.address}:8080`;
    const crossed = lab.online.spawn(tcpshadow(["copy", "-x", crossing, "--connect"]), {
      stdout: "piped",
      stderr: "piped",
    });
    await waitForStderr(crossed, "copying");
    const common = ["--connections", "6", "--body-sizes", "0,100,5000,30000"];
    await Promise.all([
      httpClient(lab, ["--requests", "300", "--close", "--id-prefix", "v4c", ...common], lab.online.address),
      httpClient(
        lab,
        ["--requests", "200", "--keep-alive", "--id-prefix", "v4k", ...common],
        lab.online.address,
      ),
      httpClient(
        lab,
        ["--requests", "300", "--close", "--id-prefix", "v6c", ...common],
        `[${lab.online.address6}]`,
      ),
      httpClient(
        lab,
        ["--requests", "200", "--keep-alive", "--id-prefix", "v6k", ...common],
        `[${lab.online.address6}]`,
      ),
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 1000);
    const target = await lab.waitForTarget(1000, 60_000);
    await sleep(1000);
    const summary = await lab.stopCopy(crossed);
    assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
    assert.equal(summary["sessions-copied"], 612, JSON.stringify(summary));
    assert.equal(summary["sessions-family-unreachable"], 0, JSON.stringify(summary));
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
    // The target listens on "::": the IPv4 connections show as IPv4-mapped addresses.
    for (const line of target) {
      const expected = String(line.requestId).startsWith("v4")
        ? lab.online.address6
        : `::ffff:${lab.online.address}`;
      assert.equal(String(line.remote).replace(/:\d+$/, ""), expected, String(line.requestId));
    }
  });
});

Deno.test("--connect --bind with IPv4 and IPv6 addresses: each connection from one of its target's family, in turn", async () => {
  await withCopyLab({ transport: "connect", family: "both" }, async (lab) => {
    const second4 = "198.18.0.31";
    const second6 = "2001:2::31";
    await lab.online.run(["ip", "addr", "add", `${second4}/24`, "dev", lab.online.device]);
    await lab.online.run(["ip", "-6", "addr", "add", `${second6}/64`, "dev", lab.online.device, "nodad"]);
    const copy = await lab.startCopy([
      "--bind",
      `${lab.online.address},${second4},${lab.online.address6},[${second6}]`,
    ]);
    const common = ["--requests", "200", "--connections", "4", "--close"];
    await httpClient(lab, [...common, "--id-prefix", "v4"], lab.online.address);
    await httpClient(lab, [...common, "--id-prefix", "v6"], `[${lab.online.address6}]`);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 400);
    const target = await lab.waitForTarget(400, 30_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), [], JSON.stringify(summary));
    assert.equal(summary["bind-failures"], 0, JSON.stringify(summary));
    // Connections take the addresses of their family in turn: 100 from each (a RST-ended session is
    // still one connection from its address).
    const from = remoteCounts(target);
    assert.deepEqual(
      Object.fromEntries([...from].sort()),
      Object.fromEntries([
        [`::ffff:${lab.online.address}`, 100],
        [`::ffff:${second4}`, 100],
        [lab.online.address6!, 100],
        [second6, 100],
      ].sort()),
      JSON.stringify(summary),
    );
  });
});
