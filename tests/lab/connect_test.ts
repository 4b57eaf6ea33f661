/**
 * `copy --connect` end to end: each copied session replayed over an ordinary connection from the online
 * host, with real servers and clients, and what the target received compared with what the online
 * server did, byte for byte.
 */
import assert from "node:assert/strict";
import { agentCommand, type LabProcess } from "./lab.ts";
import {
  CLOSE_REQUESTS,
  compareLogs,
  type CopyLab,
  expectEveryRequestCopied,
  httpClient,
  KEEP_ALIVE_REQUESTS,
  recordPort80,
  stopRecording,
  type Summary,
  tcpshadow,
  waitForStderr,
  withCopyLab,
} from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

const NOBODY = 65534;

Deno.test("--connect, HTTP on a new connection per request: 2,000 requests reach the target identical", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const copy = await lab.startCopy();
    const { summary } = await expectEveryRequestCopied(lab, copy, CLOSE_REQUESTS, 2000, 30_000);
    assert.equal(summary["sessions-copied"], 2000);
    // Linux ends a connection with a RST now and then (bytes unread at close); the copy passes it on.
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      2000,
      JSON.stringify(summary),
    );
    assert.ok(summary["sessions-reset-by-client"] <= 20, JSON.stringify(summary));
    assert.equal(summary["sessions-failed"], 0);
    // Every answer of the target was as long as the online server's (the same server).
    assert.equal(summary["turns-answered"], 2000, JSON.stringify(summary));
  });
});

Deno.test("--connect, HTTP keep-alive: 2,000 requests on 10 connections, POST bodies up to 1 MiB, reach the target identical", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const copy = await lab.startCopy();
    const { summary } = await expectEveryRequestCopied(lab, copy, KEEP_ALIVE_REQUESTS, 2000, 60_000);
    assert.equal(summary["sessions-copied"], 10);
    assert.equal(summary["sessions-completed"], 10, JSON.stringify(summary));
    // Live, a turn goes without waiting once its request was captured --max-lag ago (a 1 MiB body takes a
    // while to come through the capture), so some turns are judged by lag rather than by count; the others
    // got as many bytes from the target as the online server sent, or more (tagged answers). 2,000 turns
    // and, on each connection whose client's last ACK was captured before the target closed, its FIN.
    const turns = summary["turns-answered"] + summary["turns-lagged"] + summary["turns-short"];
    assert.ok(turns >= 2000 && turns <= 2010, JSON.stringify(summary));
    assert.ok(summary["turns-short"] <= 100, JSON.stringify(summary));
  });
});

/** Runs the line client agent on the client host against the online server's echo service. */
async function lineClient(lab: CopyLab, args: string[]): Promise<void> {
  await lab.client.run(agentCommand("tcp_client", ["--to", `${lab.online.address}:80`, ...args]), {
    timeoutMs: 60_000,
  });
}

/** The lines an echo server logged, per connection in order, as one sorted list of texts. */
function linesByConnection(log: Array<Record<string, unknown>>): string[] {
  const byConnection = new Map<unknown, string[]>();
  for (const line of log) {
    const lines = byConnection.get(line.connection) ?? [];
    lines.push(String(line.line));
    byConnection.set(line.connection, lines);
  }
  return [...byConnection.values()].map((lines) => lines.join("|")).sort();
}

Deno.test("--connect through NAT: the packet transport never hears the target, --connect copies every request", async () => {
  await withCopyLab({ extraHosts: ["router"] }, async (lab) => {
    // The target is reachable from the online host only through a router that masquerades: its answers
    // go to the router, which returns them to whoever opened the connection. Copies with made-up client
    // addresses never get theirs; the online host's own connections do.
    const router = lab.lab.host("router");
    await router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await router.run(["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"]);
    await router.run(["sh", "-c", "for f in /proc/sys/net/ipv4/conf/*/send_redirects; do echo 0 > $f; done"]);
    await router.run([
      "nft",
      [
        "add table ip tslnat",
        "add chain ip tslnat post { type nat hook postrouting priority 100; }",
        `add rule ip tslnat post ip daddr ${lab.target.address} masquerade`,
      ].join("; "),
    ]);
    await lab.lab.addRoute(lab.online, `${lab.target.address}/32`, router.address);
    await lab.online.run(["sysctl", "-qw", "net.ipv4.conf.all.accept_redirects=0"]);

    const packet = await lab.startCopy();
    await httpClient(lab, ["--requests", "100", "--connections", "4", "--close"]);
    await sleep(2000);
    const packetSummary = await lab.stopCopy(packet);
    assert.equal((await lab.readLog(lab.targetLogPath)).length, 0, JSON.stringify(packetSummary));
    assert.equal(packetSummary["sessions-completed"], 0, JSON.stringify(packetSummary));

    await Deno.truncate(lab.onlineLogPath);
    const connect = lab.online.spawn(
      tcpshadow(["copy", "-x", `80-${lab.target.address}:8080`, "--connect"]),
      {
        stdout: "piped",
        stderr: "piped",
      },
    );
    await waitForStderr(connect, "copying");
    await httpClient(lab, ["--requests", "1000", "--connections", "8", "--close", "--id-prefix", "nat"]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(1000, 30_000);
    const summary = await lab.stopCopy(connect);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      1000,
      JSON.stringify(summary),
    );
    // The target saw the router's address only.
    assert.ok(target.every((line) => String(line.remote).startsWith(`${router.address}:`)));
  });
});

Deno.test("--connect, a server that speaks first: each first line waits for the target's banner", async () => {
  await withCopyLab({
    transport: "connect",
    server: "echo",
    echoFlags: {
      online: ["--banner", "220 online ready"],
      target: ["--banner", "220 ready", "--banner-delay-ms", "300"],
    },
  }, async (lab) => {
    // A lag limit above the target's 300 ms banner delay: strict turns.
    const copy = await lab.startCopy(["--max-lag", "5000"]);
    for (let client = 0; client < 4; client++) {
      await lineClient(lab, ["--banner", "--lines", "5", "--pause-ms", "20", "--text", `c${client}`]);
    }
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 20);
    const target = await lab.waitForTarget(20, 20_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(linesByConnection(target), linesByConnection(online));
    assert.deepEqual(target.filter((line) => line.early), [], "a line reached the target before its banner");
    assert.equal(summary["sessions-completed"], 4, JSON.stringify(summary));
  });
});

Deno.test("--connect, a pipelining client (ten requests in one segment, Redis-style): every request in order", async () => {
  await withCopyLab({ transport: "connect", server: "echo" }, async (lab) => {
    const copy = await lab.startCopy();
    const clients = [0, 1, 2, 3].map((client) =>
      lineClient(lab, ["--lines", "500", "--pipeline", "10", "--text", `p${client}`])
    );
    await Promise.all(clients);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 2000);
    const target = await lab.waitForTarget(2000, 30_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(linesByConnection(target), linesByConnection(online));
    assert.equal(summary["sessions-completed"], 4, JSON.stringify(summary));
  });
});

Deno.test("--connect --input replays a recording as an ordinary user (nobody, no capabilities)", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const pcap = `${lab.dir}/traffic.pcap`;
    const dump = await recordPort80(lab.online, pcap);
    await httpClient(lab, [
      "--requests",
      "300",
      "--connections",
      "6",
      "--close",
      "--body-sizes",
      "0,100,5000",
    ]);
    await httpClient(lab, ["--requests", "300", "--connections", "3", "--keep-alive", "--id-prefix", "ka"]);
    await stopRecording(dump, pcap);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 600);

    // Nobody's own Deno cache, with the npm package copy imports (no registry in the lab).
    const denoDir = `${lab.dir}/deno`;
    await lab.online.run(["cp", "-r", `${Deno.env.get("HOME")}/.cache/deno/npm`, `${denoDir}/`]);
    await lab.online.run(["chown", "-R", `${NOBODY}:${NOBODY}`, denoDir]);
    await Deno.chmod(lab.dir, 0o755);
    await Deno.chmod(pcap, 0o644);
    const asNobody = (args: string[]) => [
      "env",
      `DENO_DIR=${denoDir}`,
      "DENO_NO_UPDATE_CHECK=1",
      "setpriv",
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "--inh-caps=-all",
      ...tcpshadow(["copy", "-x", `80-${lab.target.address}:8080`, "--connect", ...args]),
    ];
    const replay = await lab.online.run(asNobody(["-i", pcap, "-a", "max"]), {
      check: false,
      timeoutMs: 60_000,
    });
    assert.equal(replay.code, 0, replay.stderr);
    const target = await lab.waitForTarget(600, 10_000);
    assert.deepEqual(compareLogs(online, target), []);
    const summary = Object.fromEntries(
      replay.stderr.slice(replay.stderr.indexOf(" summary ") + 9).trim().split(" ").map((pair) => {
        const [key, value] = pair.split("=");
        return [key, Number(value)];
      }),
    );
    assert.equal(summary["sessions-copied"], 303, replay.stderr);
    assert.equal(summary["sessions-failed"], 0, replay.stderr);
    // At --speed max every turn waits for the target's whole answer: 600 requests, 600 turns answered.
    assert.equal(summary["turns-lagged"], 0, replay.stderr);
    assert.ok(summary["turns-answered"] >= 600, replay.stderr);

    // A live copy as nobody: the capture is what needs the privilege, and the error says so.
    const live = await lab.online.run(asNobody([]), { check: false, timeoutMs: 30_000 });
    assert.equal(live.code, 1, live.stderr);
    assert.match(live.stderr, /CAP_NET_RAW.*only the live capture \(libpcap\) needs it/);
  });
});

Deno.test("--connect, the target down and back: refused sessions counted, copy keeps running, later ones copied", async () => {
  await withCopyLab({ transport: "connect", targetDown: true }, async (lab) => {
    const copy = await lab.startCopy();
    await httpClient(lab, ["--requests", "50", "--connections", "5", "--close", "--id-prefix", "down"]);
    await sleep(1000);
    await lab.startTarget();
    await Deno.truncate(lab.onlineLogPath);
    await httpClient(lab, ["--requests", "200", "--connections", "5", "--close", "--id-prefix", "up"]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(200, 20_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary["sessions-refused"], 50, JSON.stringify(summary));
    assert.equal(
      summary["sessions-completed"] + summary["sessions-reset-by-client"],
      200,
      JSON.stringify(summary),
    );
  });
});

Deno.test("--connect with 2% loss between the online host and the target: every request arrives", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    await lab.lab.dropRandom(lab.target, 2);
    await lab.lab.dropRandom(lab.target, 2, { direction: "out" });
    const copy = await lab.startCopy();
    await httpClient(lab, [
      "--requests",
      "600",
      "--connections",
      "8",
      "--close",
      "--body-sizes",
      "0,1000,20000",
    ]);
    await httpClient(lab, ["--requests", "600", "--connections", "4", "--keep-alive", "--id-prefix", "ka"]);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 1200);
    const target = await lab.waitForTarget(1200, 60_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), [], JSON.stringify(summary));
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
  });
});

/**
 * Asserts that the target logged each request the online server did, `multiply` times. Copy runs with
 * `--log-level debug` here: when one is missing, the message names how each copy of its session ended
 * (copy's line for the client port the online server saw it from), and copy's summary.
 */
function assertEveryRequestCopied(
  online: Array<Record<string, unknown>>,
  target: Array<Record<string, unknown>>,
  copy: LabProcess,
  summary: Summary,
  multiply = 1,
): void {
  const differences = compareLogs(online, target, multiply);
  if (differences.length === 0) return;
  const sessions = copy.stderrText().split("\n");
  const lost = differences.map((difference) => {
    const line = online.find((request) => difference.includes(` ${request.requestId} `));
    const client = String(line?.remote);
    const copies = sessions.filter((text) => text.includes(`session ${client} copied`));
    return `${difference}\n  from ${client}: ${copies.join("\n  ") || "no session line"}`;
  });
  assert.fail(`${lost.join("\n")}\n${JSON.stringify(summary)}`);
}

Deno.test("--connect --bind spreads the connections over the local addresses given", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const second = "198.18.0.31";
    await lab.online.run(["ip", "addr", "add", `${second}/24`, "dev", lab.online.device]);
    const copy = await lab.startCopy(["--bind", `${lab.online.address},${second}`, "--log-level", "debug"]);
    await httpClient(lab, ["--requests", "200", "--connections", "4", "--close"]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(200, 20_000);
    const summary = await lab.stopCopy(copy);
    assertEveryRequestCopied(online, target, copy, summary);
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
    const from = (address: string) =>
      target.filter((line) => String(line.remote).startsWith(`${address}:`)).length;
    assert.equal(from(lab.online.address), 100, JSON.stringify(summary));
    assert.equal(from(second), 100, JSON.stringify(summary));
  });
});

Deno.test("--connect --multiply 3: each session copied as three connections, each request three times", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    const copy = await lab.startCopy(["--multiply", "3", "--log-level", "debug"]);
    await httpClient(lab, [
      "--requests",
      "300",
      "--connections",
      "6",
      "--close",
      "--body-sizes",
      "0,100,3000",
    ]);
    await httpClient(lab, ["--requests", "100", "--connections", "2", "--keep-alive", "--id-prefix", "ka"]);
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(1200, 30_000);
    const summary = await lab.stopCopy(copy);
    assertEveryRequestCopied(online, target, copy, summary, 3);
    assert.equal(summary["sessions-copied"], 906, JSON.stringify(summary));
    assert.equal(summary["sessions-failed"], 0, JSON.stringify(summary));
  });
});
