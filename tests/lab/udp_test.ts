/**
 * UDP copy end to end (`-x udp:...`, no intercept): dnsmasq answers DNS on the online host's port 53,
 * another dnsmasq listens on the target's port 5353, and every query a client sends online reaches the
 * target too, counted by both servers and identical byte for byte (a capture on the target).
 */
import assert from "node:assert/strict";
import { Capture } from "../../ffi/mod.ts";
import {
  type Address,
  decodeUdpPacket,
  formatAddress,
  ipv4FromBytes,
  isWireError,
  parseCidr,
  sourceAddress,
} from "../../src/wire/mod.ts";
import { agentCommand, type Host, type LabProcess, waitForLine } from "./lab.ts";
import {
  type CopyLab,
  FAKE_CLIENTS,
  FAKE_CLIENTS6,
  tcpshadow,
  waitForStderr,
  withCopyLab,
} from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

const QUERIES = 300;
const ZONE = "lab.test";

/** dnsmasq on `host`'s address (`family` 6: its IPv6 one) answering A queries for *.lab.test itself, logging each query to `log`. */
async function startDnsmasq(host: Host, port: number, log: string, family: 4 | 6 = 4): Promise<LabProcess> {
  const server = host.spawn([
    "dnsmasq",
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--bind-interfaces",
    `--listen-address=${family === 4 ? host.address : host.address6}`,
    `--port=${port}`,
    `--address=/${ZONE}/198.18.0.99`,
    "--log-queries",
    `--log-facility=${log}`,
    "--user=root",
    "--pid-file=",
  ]);
  await waitForLog(log, "started", 10_000);
  return server;
}

/** The names of the A queries dnsmasq logged, one entry per query. */
async function loggedQueries(log: string): Promise<string[]> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return [...text.matchAll(/query\[A\] (\S+) from (\S+)/g)].map((match) => `${match[1]} ${match[2]}`);
}

async function waitForLog(path: string, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Deno.readTextFile(path).catch(() => "")).includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in ${path} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Waits until `log` holds at least `count` queries, or `timeoutMs` passed; returns them. */
async function waitForQueries(log: string, count: number, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const queries = await loggedQueries(log);
    if (queries.length >= count || Date.now() > deadline) return queries;
    await sleep(100);
  }
}

/** The client's queries, as the hex of each datagram it sent (retries included). */
async function sentQueries(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line).query);
}

/** The UDP datagrams in a capture file: source address and port, and the payload in hex. */
function capturedDatagrams(path: string): Array<{ source: Address; port: number; hex: string }> {
  const capture = Capture.openOffline(path);
  const datagrams = [];
  try {
    for (let packet = capture.next(); packet; packet = capture.next()) {
      const decoded = decodeUdpPacket(capture.linkType, packet.data);
      if (decoded === undefined || isWireError(decoded)) continue;
      const hex = [...decoded.udp.payload()].map((b) => b.toString(16).padStart(2, "0")).join("");
      datagrams.push({ source: sourceAddress(decoded.ip), port: decoded.udp.srcPort, hex });
    }
  } finally {
    capture.close();
  }
  return datagrams;
}

/** What the target's kernel says of UDP it dropped (socket buffer full, ...), for failure messages. */
/** Datagrams the target's kernel dropped because a socket's receive buffer was full. */
async function targetRcvbufErrors(lab: CopyLab): Promise<number> {
  const { stdout } = await lab.target.run(["nstat", "-az", "UdpRcvbufErrors"], { check: false });
  return Number(/UdpRcvbufErrors\s+(\d+)/.exec(stdout)?.[1] ?? 0);
}

async function targetUdpDrops(lab: CopyLab): Promise<string> {
  const { stdout } = await lab.target.run(["nstat", "-az", "UdpInErrors", "UdpRcvbufErrors"], {
    check: false,
  });
  return stdout.split("\n").filter((line) => line.startsWith("Udp")).map((line) => line.trim()).join(", ");
}

/** Counts of each item of `items`. */
function tally(items: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** `sent` repeated `times` times, as counts. */
function times(sent: string[], n: number): Map<string, number> {
  return new Map([...tally(sent)].map(([key, count]) => [key, count * n]));
}

/** Whether `address` is one of the copies' client addresses: FAKE_CLIENTS, or FAKE_CLIENTS6 (a /64). */
function inFakeClients(address: Address): boolean {
  if (typeof address === "string") return formatAddress(address).startsWith("2001:2:0:1:");
  const cidr = parseCidr(FAKE_CLIENTS)!;
  const shift = 32 - cidr.prefix;
  return address >>> shift === ipv4FromBytes(cidr.network) >>> shift;
}

/** The DNS servers, a capture of what reaches the target's port 5353, and the paths of their logs. */
async function dnsLab(lab: CopyLab, family: 4 | 6 = 4) {
  const onlineLog = `${lab.dir}/online-dns.log`;
  const targetLog = `${lab.dir}/target-dns.log`;
  const targetPcap = `${lab.dir}/target.pcap`;
  await startDnsmasq(lab.online, 53, onlineLog, family);
  await startDnsmasq(lab.target, 5353, targetLog, family);
  const capture = lab.target.spawn(agentCommand("capture", [
    "--device",
    lab.target.device,
    "--out",
    targetPcap,
    "--filter",
    "udp dst port 5353",
    "--direction",
    "in",
  ]));
  await waitForLine(capture, "capturing");
  return { onlineLog, targetLog, targetPcap, capture };
}

async function askOnline(lab: CopyLab, log: string): Promise<void> {
  await lab.client.run(
    agentCommand("dns_client", [
      "--to",
      `${lab.onlineUrlHost}:53`,
      "--queries",
      String(QUERIES),
      "--zone",
      ZONE,
      "--log",
      log,
    ]),
    { timeoutMs: 60_000 },
  );
}

/** copy of the online host's UDP port 53 to the target's 5353, clients from the fake range of `family`. */
function udpCopy(lab: CopyLab, extra: string[], family: 4 | 6 = 4): string[] {
  const [target, clients] = family === 4
    ? [lab.target.address, FAKE_CLIENTS]
    : [`[${lab.target.address6}]`, FAKE_CLIENTS6];
  return tcpshadow(["copy", "-x", `udp:53-${target}:5353`, "-c", clients, ...extra]);
}

async function stopCopy(copy: LabProcess): Promise<Record<string, number>> {
  const status = await copy.stop("SIGTERM", 10_000);
  const line = copy.stderrText().split("\n").find((text) => text.includes(" summary "));
  if (status.code !== 0 || line === undefined) {
    throw new Error(`copy ended with ${status.code} and no summary:\n${copy.stderrText()}`);
  }
  return Object.fromEntries(
    line.slice(line.indexOf(" summary ") + 9).split(" ").map((pair) => pair.split("=")).map((
      [key, value],
    ) => [key, Number(value)]),
  );
}

for (const family of [4, 6] as const) {
  Deno.test(`udp over IPv${family}: 300 DNS queries reach the target's dnsmasq, counted on both sides and identical byte for byte, with no intercept`, async () => {
    await dnsQueriesReachTarget(family);
  });
}

async function dnsQueriesReachTarget(family: 4 | 6): Promise<void> {
  await withCopyLab({ family }, async (lab) => {
    const dns = await dnsLab(lab, family);
    const copy = lab.online.spawn(udpCopy(lab, ["--stats", "1"], family), {
      stdout: "piped",
      stderr: "piped",
    });
    await waitForStderr(copy, "copying", 15_000);
    const clientLog = `${lab.dir}/client.jsonl`;
    await askOnline(lab, clientLog);
    const sent = await sentQueries(clientLog);
    const online = await loggedQueries(dns.onlineLog);
    assert.equal(online.length, sent.length);
    const target = await waitForQueries(dns.targetLog, sent.length, 30_000);
    await sleep(300); // anything extra would show up now
    const summary = await stopCopy(copy);
    await dns.capture.stop();

    const why = `${JSON.stringify(summary)}; target: ${await targetUdpDrops(lab)}`;
    assert.equal(target.length, sent.length, `target logged ${target.length} of ${sent.length}: ${why}`);
    const names = (queries: string[]) => queries.map((query) => query.split(" ")[0]).sort();
    assert.deepEqual(names(target), names(online));
    assert.equal(summary["datagrams-captured"], sent.length, JSON.stringify(summary));
    assert.equal(summary["datagrams-copied"], sent.length);
    assert.equal(summary["packets-send-dropped"], 0);
    assert.match(
      copy.stderrText(),
      /stats .* datagrams-captured=\d+ datagrams-copied=\d+ \(\d+(\.\d+)?\/s\)/,
    );

    const datagrams = capturedDatagrams(dns.targetPcap);
    assert.deepEqual(tally(datagrams.map((datagram) => datagram.hex)), tally(sent));
    for (const { source } of datagrams) assert.ok(inFakeClients(source), formatAddress(source));
    assert.ok(
      datagrams.length > 0 &&
        datagrams.every(({ source }) => typeof source === (family === 4 ? "number" : "string")),
    );
  });
}

Deno.test("udp: --multiply 3 sends each DNS query three times from three client ports", async () => {
  await withCopyLab({}, async (lab) => {
    const dns = await dnsLab(lab);
    const copy = lab.online.spawn(udpCopy(lab, ["--multiply", "3"]), { stdout: "piped", stderr: "piped" });
    await waitForStderr(copy, "copying", 15_000);
    const clientLog = `${lab.dir}/client.jsonl`;
    await askOnline(lab, clientLog);
    const sent = await sentQueries(clientLog);
    // Three copies of every query come in bursts (a capture block's worth at once) that dnsmasq may not read
    // in time: what its socket had no room for the target's kernel counts (170 of 900 once), and the capture
    // below still sees every copy arrive, byte for byte: that is what copy answers for.
    const deadline = Date.now() + 30_000;
    let target = await loggedQueries(dns.targetLog);
    while (target.length + await targetRcvbufErrors(lab) < 3 * sent.length && Date.now() < deadline) {
      await sleep(100);
      target = await loggedQueries(dns.targetLog);
    }
    await sleep(300);
    const summary = await stopCopy(copy);
    await dns.capture.stop();

    const dropped = await targetRcvbufErrors(lab);
    const why = `${JSON.stringify(summary)}; target: ${await targetUdpDrops(lab)}`;
    assert.equal(
      target.length + dropped,
      3 * sent.length,
      `target logged ${target.length} and its kernel dropped ${dropped} of ${3 * sent.length}: ${why}`,
    );
    assert.ok(target.length > 0, `the target's dnsmasq served none: ${why}`);
    assert.equal(summary["datagrams-captured"], sent.length);
    assert.equal(summary["datagrams-copied"], 3 * sent.length);
    const datagrams = capturedDatagrams(dns.targetPcap);
    assert.deepEqual(tally(datagrams.map((datagram) => datagram.hex)), times(sent, 3));
    assert.equal(new Set(datagrams.map((datagram) => datagram.port)).size, 3);
  });
});

Deno.test("udp: with --send-interface the queries leave as Ethernet frames and arrive identical", async () => {
  await withCopyLab({}, async (lab) => {
    const dns = await dnsLab(lab);
    const copy = lab.online.spawn(udpCopy(lab, ["--send-interface", lab.online.device]), {
      stdout: "piped",
      stderr: "piped",
    });
    await waitForStderr(copy, "copying", 15_000);
    const clientLog = `${lab.dir}/client.jsonl`;
    await askOnline(lab, clientLog);
    const sent = await sentQueries(clientLog);
    const target = await waitForQueries(dns.targetLog, sent.length, 30_000);
    await sleep(300);
    const summary = await stopCopy(copy);
    await dns.capture.stop();

    assert.equal(target.length, sent.length);
    assert.equal(summary["datagrams-copied"], sent.length);
    assert.match(copy.stderrText(), new RegExp(`frames on ${lab.online.device} to ${lab.target.mac}`));
    const datagrams = capturedDatagrams(dns.targetPcap);
    assert.deepEqual(tally(datagrams.map((datagram) => datagram.hex)), tally(sent));
  });
});

Deno.test("udp: DNS queries recorded online and replayed from the file (-i) reach the target identical", async () => {
  await withCopyLab({}, async (lab) => {
    const dns = await dnsLab(lab);
    const recording = `${lab.dir}/online.pcap`;
    const recorder = lab.online.spawn(agentCommand("capture", [
      "--device",
      lab.online.device,
      "--out",
      recording,
      "--filter",
      "udp dst port 53",
      "--direction",
      "in",
    ]));
    await waitForLine(recorder, "capturing");
    const clientLog = `${lab.dir}/client.jsonl`;
    await askOnline(lab, clientLog);
    await recorder.stop();
    const sent = await sentQueries(clientLog);

    // At the recorded pace: with -a max the 300 datagrams leave in one burst, more than dnsmasq's socket
    // buffer holds (it kept 256 of 300 in one run), as they would for any UDP server.
    const replay = lab.online.spawn(udpCopy(lab, ["-i", recording]), {
      stdout: "piped",
      stderr: "piped",
    });
    const status = await replay.exited;
    assert.equal(status.code, 0, replay.stderrText());
    const target = await waitForQueries(dns.targetLog, sent.length, 30_000);
    await dns.capture.stop();

    assert.equal(target.length, sent.length);
    assert.match(replay.stderrText(), new RegExp(`datagrams-copied=${sent.length}\\b`));
    const datagrams = capturedDatagrams(dns.targetPcap);
    assert.deepEqual(tally(datagrams.map((datagram) => datagram.hex)), tally(sent));
  });
});
