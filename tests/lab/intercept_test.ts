/**
 * `tcpshadow intercept` in a lab: host `target` answers on port 8080 and routes the fake clients'
 * range (198.19.0.0/24) via host `assistant`, which runs the real CLI. Fake clients are raw SYNs sent
 * from the assistant; copy is played by small peers on the target host that speak the protocol.
 */
import assert from "node:assert/strict";
import { TcpFlag } from "../../src/wire/mod.ts";
import { type Host, type Lab, type LabProcess, waitForLine, withLab } from "./lab.ts";
import { waitForStderr } from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const url = (path: string) => new URL(`../../${path}`, import.meta.url).href;
const FAKE_CLIENTS = "198.19.0.0/24";
const TARGET_PORT = 8080;
const FILTER = `tcp and src port ${TARGET_PORT}`;
const SYN_SEQ = 1000;

/** Listens on the target port without ever accepting: the kernel answers SYNs by itself. */
const LISTENER = `
const listener = Deno.listen({ port: ${TARGET_PORT} });
console.log("listening");
for await (const _connection of listener);
`;

/** Sends one SYN from CLIENT (address:port) to TARGET (address:port) through a raw socket. */
const SYN_SENDER = `
import { RawSocket } from "${url("ffi/mod.ts")}";
import { buildIpv4Tcp, ipv4Bytes, parseIpv4, TcpFlag } from "${url("src/wire/mod.ts")}";
const [clientAddress, clientPort] = Deno.env.get("CLIENT").split(":");
const [targetAddress, targetPort] = Deno.env.get("TARGET").split(":");
const packet = buildIpv4Tcp({
  src: parseIpv4(clientAddress),
  dst: parseIpv4(targetAddress),
  tcp: {
    srcPort: Number(clientPort), dstPort: Number(targetPort), seq: ${SYN_SEQ}, ack: 0, flags: TcpFlag.SYN,
    window: 65535, options: { mss: 1460 },
  },
});
const socket = RawSocket.open(4);
if (!socket.send(packet, ipv4Bytes(parseIpv4(targetAddress)))) throw new Error("raw send refused");
socket.close();
`;

/**
 * Plays copy, by MODE: "register" sends ADD registrations for REGISTER (address:port,...) and prints
 * each reply record as a JSON line; "garbage" sends 14 bytes of HTTP; "partial" sends half a
 * registration and leaves. All print "closed" when intercept closes the connection.
 */
const PEER = `
import {
  encodeHello, encodeRegistration, REGISTRATION_LENGTH, RegistrationType, ReplyFrameDecoder,
} from "${url("src/protocol/mod.ts")}";
import { formatIpv4, parseIpv4 } from "${url("src/wire/address.ts")}";
const [host, port] = Deno.env.get("INTERCEPT").split(":");
const connection = await Deno.connect({ hostname: host, port: Number(port) });
const mode = Deno.env.get("MODE");
if (mode === "register") {
  const clients = Deno.env.get("REGISTER").split(",");
  const bytes = new Uint8Array((clients.length + 1) * REGISTRATION_LENGTH);
  encodeHello(bytes, 0);
  clients.forEach((client, i) => {
    const [address, clientPort] = client.split(":");
    encodeRegistration({
      type: RegistrationType.ADD, clientAddress: parseIpv4(address), clientPort: Number(clientPort),
      targetAddress: 0, targetPort: ${TARGET_PORT},
    }, bytes, (i + 1) * REGISTRATION_LENGTH);
  });
  await connection.write(bytes);
} else if (mode === "garbage") {
  await connection.write(new TextEncoder().encode("GET / HTTP/1.1"));
} else {
  await connection.write(new Uint8Array(REGISTRATION_LENGTH / 2));
  connection.close();
  console.log("left");
  Deno.exit(0);
}
console.log("sent");
const decoder = new ReplyFrameDecoder();
const buffer = new Uint8Array(4096);
for (;;) {
  const length = await connection.read(buffer).catch(() => null);
  if (length === null) break;
  const problem = decoder.push(buffer.subarray(0, length), (record) => {
    const view = new DataView(record.buffer, record.byteOffset, record.length);
    console.log(JSON.stringify({
      src: formatIpv4(view.getUint32(12)), dst: formatIpv4(view.getUint32(16)),
      srcPort: view.getUint16(20), dstPort: view.getUint16(22),
      seq: view.getUint32(24), ack: view.getUint32(28), flags: view.getUint8(33),
    }));
  });
  if (problem) throw new Error(problem.message);
}
console.log("closed");
`;

interface ReplyRecord {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
}

function evalIn(host: Host, code: string, env: Record<string, string> = {}): LabProcess {
  return host.spawn([Deno.execPath(), "eval", "--quiet", code], { env });
}

/** Waits until `process` has written a line containing `text` to stderr. */
function records(process: LabProcess): ReplyRecord[] {
  return process.stdoutText().split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line)
  );
}

/** Sets up target and assistant, starts intercept, and runs `fn`; then stops intercept and checks its exit. */
async function withIntercept(
  fn: (lab: Lab, intercept: LabProcess) => Promise<void>,
): Promise<string> {
  let stderr = "";
  await withLab({ hosts: [{ name: "target" }, { name: "assistant" }] }, async (lab) => {
    const target = lab.host("target"), assistant = lab.host("assistant");
    const listener = evalIn(target, LISTENER);
    await waitForLine(listener, "listening");
    await lab.addRoute(target, FAKE_CLIENTS, assistant.address);
    const intercept = assistant.spawn([
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN,
      "intercept",
      "-i",
      assistant.device,
      "-F",
      FILTER,
    ]);
    await waitForStderr(intercept, "listening on");
    await fn(lab, intercept);
    const status = await intercept.stop("SIGTERM");
    stderr = intercept.stderrText();
    assert.equal(status.code, 0, stderr);
  });
  return stderr;
}

/** Sends a SYN from `client` (address:port) to the target's port, from the assistant host. */
async function sendSyn(lab: Lab, client: string): Promise<void> {
  const target = lab.host("target");
  const sender = evalIn(lab.host("assistant"), SYN_SENDER, {
    CLIENT: client,
    TARGET: `${target.address}:${TARGET_PORT}`,
  });
  const status = await sender.exited;
  assert.equal(status.code, 0, `SYN sender failed: ${sender.stderrText()}`);
}

function peer(lab: Lab, env: Record<string, string>): LabProcess {
  return evalIn(lab.host("target"), PEER, { INTERCEPT: `${lab.host("assistant").address}:36524`, ...env });
}

async function waitForRecord(process: LabProcess, dstPort: number): Promise<ReplyRecord> {
  await waitForLine(process, `"dstPort":${dstPort}`);
  return records(process).find((record) => record.dstPort === dstPort)!;
}

/** The target's answer to our SYN: SYN+ACK, acknowledging the SYN's sequence number. */
function assertSynAck(record: ReplyRecord): void {
  assert.equal(record.flags, TcpFlag.SYN | TcpFlag.ACK, JSON.stringify(record));
  assert.equal(record.ack, SYN_SEQ + 1, JSON.stringify(record));
}

Deno.test("intercept forwards the target's SYN-ACK to the copy that registered the client", async () => {
  const stderr = await withIntercept(async (lab, intercept) => {
    const copy = peer(lab, { MODE: "register", REGISTER: "198.19.0.7:40000" });
    await waitForLine(copy, "sent");
    await waitForStderr(intercept, "copy connected from");
    await sendSyn(lab, "198.19.0.7:40000");
    const record = await waitForRecord(copy, 40000);
    assert.deepEqual(record, {
      src: lab.host("target").address,
      dst: "198.19.0.7",
      srcPort: TARGET_PORT,
      dstPort: 40000,
      seq: record.seq,
      ack: SYN_SEQ + 1,
      flags: TcpFlag.SYN | TcpFlag.ACK,
    });
    await copy.stop();
  });
  const summary = stderr.split("\n").find((line) => line.startsWith("intercept: stopped;"));
  assert.ok(summary, stderr);
  assert.match(summary, /[1-9]\d* forwarded/);
});

Deno.test("a reply that beats its registration waits for it", async () => {
  const stderr = await withIntercept(async (lab) => {
    await sendSyn(lab, "198.19.0.9:40009");
    await sleep(300);
    const copy = peer(lab, { MODE: "register", REGISTER: "198.19.0.9:40009" });
    assertSynAck(await waitForRecord(copy, 40009));
    await copy.stop();
  });
  // The target retransmits its SYN-ACK after a second; only the summary tells the held one was sent.
  assert.match(stderr, /[1-9]\d* after waiting for registration/);
});

Deno.test("garbage and half a registration close only their own connections", async () => {
  const stderr = await withIntercept(async (lab, intercept) => {
    const good = peer(lab, { MODE: "register", REGISTER: "198.19.0.8:40001,198.19.0.8:40002" });
    await waitForLine(good, "sent");
    const garbage = peer(lab, { MODE: "garbage" });
    await waitForLine(garbage, "closed");
    await waitForStderr(intercept, "garbage from");
    const partial = peer(lab, { MODE: "partial" });
    await waitForLine(partial, "left");
    await waitForStderr(intercept, "disconnected");
    await sendSyn(lab, "198.19.0.8:40001");
    assertSynAck(await waitForRecord(good, 40001));
    await sendSyn(lab, "198.19.0.8:40002");
    assertSynAck(await waitForRecord(good, 40002));
    assert.deepEqual(records(garbage), []);
    await good.stop();
  });
  assert.match(stderr, /garbage from \S+ \(no version hello: [^)]*\), connection closed/);
  assert.match(stderr, /1 closed for garbage/);
});

for (
  const [name, args, message] of [
    ["an unknown flag", ["-F", FILTER, "--bogus"], /^tcpshadow: unknown option --bogus$/],
    ["a missing filter", ["-i", "eth0"], /^tcpshadow: -F\/--filter is required/],
    ["a filter libpcap cannot compile", ["-F", "tcp and nonsense"], /^tcpshadow: -F\/--filter: .+/],
    ["a bad port", ["-F", FILTER, "-p", "99999"], /^tcpshadow: --port: "99999" is not a port/],
  ] as const
) {
  Deno.test(`intercept refuses ${name} with exit 2 and one line`, async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "intercept", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(output.stderr).trimEnd().split("\n");
    assert.equal(output.code, 2, lines.join("\n"));
    assert.match(lines[0], message);
    assert.deepEqual(lines.slice(1), ["Try 'tcpshadow intercept --help'."]);
  });
}
