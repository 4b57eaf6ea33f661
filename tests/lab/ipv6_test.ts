/**
 * IPv6 end to end: IPv6 clients copied to an IPv6 target (fake clients from 2001:2:0:1::/64), copy
 * talking to intercept over IPv6, IPv6 reply headers back as REPLY6 frames; and one copy serving IPv4
 * and IPv6 clients at once. The target's request log is compared with the online server's, byte for byte.
 */
import assert from "node:assert/strict";
import { agentCommand } from "./lab.ts";
import { compareLogs, type CopyLab, withCopyLab } from "./copy_lab.ts";

/** Runs the HTTP client agent on the client host against the online server at `host` (a URL host). */
async function httpClient(lab: CopyLab, args: string[], host = lab.onlineUrlHost): Promise<void> {
  await lab.client.run(agentCommand("http_client", ["--url", `http://${host}:80`, ...args]), {
    timeoutMs: 120_000,
  });
}

/** Every remote address the target logged: each should be a fake IPv6 client. */
function remotes(target: Array<Record<string, unknown>>): Set<string> {
  return new Set(target.map((line) => String(line.remote).replace(/:\d+$/, "")));
}

Deno.test("IPv6, a new connection per request: 2,000 requests reach the target identical", async () => {
  await withCopyLab({ family: 6 }, async (lab) => {
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
    assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
    assert.equal(summary.sessions, 2000);
    assert.equal(summary.completed + summary["reset-by-client"], 2000, JSON.stringify(summary));
    assert.equal(summary.failed, 0);
    assert.equal(summary["ipv6-skipped"], undefined);
    assert.ok(
      [...remotes(target)].every((remote) => remote.startsWith("2001:2:0:1:")),
      [...remotes(target)][0],
    );
  });
});
