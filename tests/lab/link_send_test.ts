/**
 * Link-layer send (`copy --send-interface`): copies leave as Ethernet frames written by libpcap, so the
 * online host's firewall never sees them. An nft rule on the online host's output hook drops what the
 * raw socket sends to the target: copies through the raw socket then reach nothing, while frames reach
 * the target whole (the target's log compared with the online server's, body hashes and all).
 */
import assert from "node:assert/strict";
import { agentCommand } from "./lab.ts";
import {
  compareLogs,
  type CopyLab,
  FAKE_CLIENTS,
  tcpshadow,
  waitForStderr,
  withCopyLab,
} from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

/**
 * Drops every packet the online host itself sends to the target's port 8080 (output hook), to its IPv4
 * address or (`family` 6) its IPv6 one.
 */
async function dropOwnCopies(lab: CopyLab, family: 4 | 6 = 4): Promise<void> {
  const daddr = family === 4 ? `ip daddr ${lab.target.address}` : `ip6 daddr ${lab.target.address6}`;
  const script = [
    "table inet rawdrop {",
    "  chain out {",
    "    type filter hook output priority 0;",
    `    ${daddr} tcp dport 8080 counter drop`,
    "  }",
    "}",
  ].join("\n");
  await lab.online.run(["nft", "-f", "-"], { stdin: script });
}

/** Packets the online host's rule dropped so far. */
async function droppedByRule(lab: CopyLab): Promise<number> {
  const { stdout } = await lab.online.run(["nft", "list", "table", "inet", "rawdrop"]);
  return Number(/counter packets (\d+)/.exec(stdout)?.[1] ?? NaN);
}

async function httpClient(lab: CopyLab, prefix: string, requests: number): Promise<void> {
  await lab.client.run(
    agentCommand("http_client", [
      "--url",
      `http://${lab.onlineUrlHost}:80`,
      "--requests",
      String(requests),
      "--connections",
      "8",
      "--close",
      "--id-prefix",
      prefix,
      "--body-sizes",
      "0,1,1000,1460,3000,20000",
    ]),
    { timeoutMs: 120_000 },
  );
}

for (const family of [4, 6] as const) {
  Deno.test(`--send-interface over IPv${family}: with the raw socket's copies dropped by the online host's firewall, frames still get 100% through`, async () => {
    await framesPassTheFirewall(family);
  });
}

/**
 * Copies through the raw socket meet the online host's firewall; frames do not. Over IPv6 the target's MAC
 * address comes from the IPv6 neighbour table (NDP, through rtnetlink), asked for since it was flushed.
 */
async function framesPassTheFirewall(family: 4 | 6): Promise<void> {
  await withCopyLab({ family }, async (lab) => {
    await dropOwnCopies(lab, family);

    const raw = await lab.startCopy();
    await httpClient(lab, "raw", 100);
    await sleep(1000);
    const rawSummary = await lab.stopCopy(raw);
    assert.equal((await lab.readLog(lab.targetLogPath)).length, 0, "raw-socket copies got through");
    assert.equal(rawSummary["sessions-copied"], 100);
    assert.equal(rawSummary["sessions-completed"], 0);
    assert.ok(await droppedByRule(lab) >= 100, "the rule saw the raw socket's copies");

    // No neighbour entry for the target yet: copy has to ask for it.
    await lab.online.run(["ip", `-${family}`, "neigh", "flush", "dev", lab.online.device]);
    const dropsBefore = await droppedByRule(lab);
    const link = await lab.startCopy(["--send-interface", lab.online.device]);
    await httpClient(lab, "link", 1000);
    const online = (await lab.readLog(lab.onlineLogPath)).filter((line) =>
      String(line.requestId).startsWith("link")
    );
    assert.equal(online.length, 1000);
    const target = await lab.waitForTarget(1000, 30_000);
    const summary = await lab.stopCopy(link);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary["sessions-copied"], 1000);
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      1000,
      JSON.stringify(summary),
    );
    assert.equal(summary["packets-send-dropped"], 0);
    assert.equal(await droppedByRule(lab), dropsBefore, "frames went through the firewall");
    const targetAddress = family === 4 ? lab.target.address : lab.target.address6;
    assert.match(link.stderrText(), new RegExp(`asking for ${targetAddress}'s MAC address`));
    assert.match(
      link.stderrText(),
      new RegExp(`sending to ${targetAddress} as frames on eth0 to ${lab.target.mac}`),
    );
  });
}

Deno.test("--send-interface with --target-mac sends to that MAC without asking the neighbour table", async () => {
  await withCopyLab({}, async (lab) => {
    await dropOwnCopies(lab);
    await lab.online.run(["ip", "neigh", "flush", "dev", lab.online.device]);
    const link = await lab.startCopy([
      "--send-interface",
      lab.online.device,
      "--target-mac",
      lab.target.mac,
    ]);
    await httpClient(lab, "mac", 200);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(200, 30_000);
    const summary = await lab.stopCopy(link);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary["sessions-copied"], 200);
    assert.doesNotMatch(link.stderrText(), /asking for/);
  });
});

Deno.test("--send-interface sends to the gateway's MAC when the target is not on the link", async () => {
  await withCopyLab({ extraHosts: ["router"] }, async (lab) => {
    // The target also answers on 198.18.1.2, a network the online host reaches only through the router.
    const far = "198.18.1.2";
    const router = lab.lab.host("router");
    await lab.target.run(["ip", "addr", "add", `${far}/32`, "dev", lab.target.device]);
    await router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for (const setting of ["all", "default", router.device]) {
      await router.run(["sysctl", "-qw", `net.ipv4.conf.${setting}.rp_filter=0`]);
    }
    await router.run(["ip", "route", "add", `${far}/32`, "via", lab.target.address]);
    await lab.online.run(["ip", "route", "add", "198.18.1.0/24", "via", router.address]);

    const copy = lab.online.spawn(
      tcpshadow([
        "copy",
        "-x",
        `80-${far}:8080`,
        "-s",
        lab.assistant.address,
        "-c",
        FAKE_CLIENTS,
        "-o",
        lab.online.device,
      ]),
      { stdout: "piped", stderr: "piped" },
    );
    await waitForStderr(copy, "copying", 15_000);
    await httpClient(lab, "far", 200);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(200, 30_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary["sessions-copied"], 200);
    assert.match(copy.stderrText(), new RegExp(`asking for ${router.address}'s MAC address`));
    assert.match(copy.stderrText(), new RegExp(`sending to ${far} as frames on eth0 to ${router.mac}`));
  });
});
