/**
 * `copy --connect` end to end: each copied session replayed over an ordinary connection from the online
 * host, with real servers and clients, and what the target received compared with what the online
 * server did, byte for byte.
 */
import assert from "node:assert/strict";
import { agentCommand } from "./lab.ts";
import { compareLogs, type CopyLab, withCopyLab } from "./copy_lab.ts";

/** Runs the HTTP client agent on the client host against the online server. */
async function httpClient(lab: CopyLab, args: string[]): Promise<void> {
  await lab.client.run(agentCommand("http_client", ["--url", `http://${lab.online.address}:80`, ...args]), {
    timeoutMs: 120_000,
  });
}

Deno.test("--connect, HTTP on a new connection per request: 2,000 requests reach the target identical", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const copy = await lab.startCopy();
    await httpClient(lab, [
      "--requests",
      "2000",
      "--connections",
      "16",
      "--close",
      "--body-sizes",
      "0,0,1,100,1000,1460,1461,2920,5000,20000",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 2000);
    const target = await lab.waitForTarget(2000, 30_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary.sessions, 2000);
    // Linux ends a connection with a RST now and then (bytes unread at close); the copy passes it on.
    assert.equal(summary.completed + summary["reset-by-client"], 2000, JSON.stringify(summary));
    assert.ok(summary["reset-by-client"] <= 20, JSON.stringify(summary));
    assert.equal(summary.failed, 0);
    // Every answer of the target was as long as the online server's (the same server).
    assert.equal(summary["turns-answered"], 2000, JSON.stringify(summary));
  });
});

Deno.test("--connect, HTTP keep-alive: 2,000 requests on 10 connections, POST bodies up to 1 MiB, reach the target identical", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const copy = await lab.startCopy();
    await httpClient(lab, [
      "--requests",
      "2000",
      "--connections",
      "10",
      "--keep-alive",
      "--body-sizes",
      "0,10,1000,1460,3000,0,65536,7,1048576,100,0,200,3333,1,0,14600,20,0,1,2",
    ]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 2000);
    const target = await lab.waitForTarget(2000, 60_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
    assert.equal(summary.sessions, 10);
    assert.equal(summary.completed, 10, JSON.stringify(summary));
    // Live, a turn goes without waiting once its request was captured --max-lag ago (a 1 MiB body takes a
    // while to come through the capture), so some turns are judged by lag rather than by count; the others
    // got as many bytes from the target as the online server sent, or more (tagged answers). 2,000 turns
    // and, on each connection, the target's FIN after the client's.
    const turns = summary["turns-answered"] + summary["turns-lagged"] + summary["turns-short"];
    assert.equal(turns, 2010, JSON.stringify(summary));
    assert.ok(summary["turns-short"] <= 100, JSON.stringify(summary));
  });
});
