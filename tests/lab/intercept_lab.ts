/**
 * The intercept lab, shared by the intercept lab tests: host `target` answers on port 8080 and routes
 * the fake clients' range (198.19.0.0/24) via host `assistant`, which runs the real `intercept`; a
 * `stranger` host is there for connections intercept should not trust. Fake clients are raw SYNs sent
 * from the assistant; copies are played by `intercept_peer.ts` (the one program that speaks the
 * protocol for these tests), or by the real `copy` in the copy lab where a whole copy is the point.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { TcpFlag } from "../../src/wire/mod.ts";
import { sleep } from "../../src/sleep.ts";
import { type Host, type Lab, type LabProcess, waitForLine, withLab } from "./lab.ts";
import { FAKE_CLIENTS, tcpshadow, waitForStderr } from "./copy_lab.ts";

/** The target's port, where its kernel answers SYNs. */
export const TARGET_PORT = 8080;
/** intercept's `-F`: the target's replies. */
export const FILTER = `tcp and src port ${TARGET_PORT}`;
/** The sequence number of every fake client's SYN: the target's SYN-ACK acknowledges it plus one. */
export const SYN_SEQ = 1000;

const PEER = fileURLToPath(new URL("./intercept_peer.ts", import.meta.url));
const url = (path: string) => new URL(`../../${path}`, import.meta.url).href;

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

/** One reply record as `intercept_peer.ts` prints it: the IP and TCP header fields that matter here. */
export interface ReplyRecord {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
}

/** The reply records a peer printed so far. */
export function records(process: LabProcess): ReplyRecord[] {
  return process.stdoutText().split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line)
  );
}

/** Options of `withIntercept`. */
export interface InterceptSetup {
  /** intercept's flags beyond -i and -F. */
  readonly flags?: (lab: Lab) => string[];
  /** Runs intercept under `prlimit --nofile=N`. */
  readonly fileLimit?: number;
}

/**
 * Sets up target, assistant and stranger, starts intercept, runs `fn`; then checks intercept is still
 * running, stops it, checks it exits 0, and returns its stderr.
 */
export async function withIntercept(
  setup: InterceptSetup,
  fn: (lab: Lab, intercept: LabProcess) => Promise<void>,
): Promise<string> {
  let stderr = "";
  await withLab({ hosts: [{ name: "target" }, { name: "assistant" }, { name: "stranger" }] }, async (lab) => {
    const target = lab.host("target"), assistant = lab.host("assistant");
    const listener = target.spawn([Deno.execPath(), "eval", "--quiet", LISTENER]);
    await waitForLine(listener, "listening");
    await lab.addRoute(target, FAKE_CLIENTS, assistant.address);
    const command = tcpshadow([
      "intercept",
      "-i",
      assistant.device,
      "-F",
      FILTER,
      ...(setup.flags?.(lab) ?? []),
    ]);
    const limit = setup.fileLimit === undefined ? [] : ["prlimit", `--nofile=${setup.fileLimit}`];
    const intercept = assistant.spawn([...limit, ...command]);
    await waitForStderr(intercept, "listening on");
    await fn(lab, intercept);
    const exited = await Promise.race([intercept.exited, sleep(100).then(() => undefined)]);
    assert.equal(exited, undefined, `intercept ended before the test stopped it:\n${intercept.stderrText()}`);
    const status = await intercept.stop("SIGTERM");
    stderr = intercept.stderrText();
    assert.equal(status.code, 0, stderr);
  });
  return stderr;
}

/** Starts `intercept_peer.ts` with `args` on `host`, against the intercept of `lab`'s host `assistant`. */
export function peer(lab: Lab, host: Host, args: string[]): LabProcess {
  const intercept = `${lab.host("assistant").address}:36524`;
  return host.spawn([Deno.execPath(), "run", "-A", "--quiet", PEER, "--intercept", intercept, ...args]);
}

/** Sends a SYN from `client` (address:port) to the target's port, from the assistant host. */
export async function sendSyn(lab: Lab, client: string): Promise<void> {
  const sender = lab.host("assistant").spawn([Deno.execPath(), "eval", "--quiet", SYN_SENDER], {
    env: { CLIENT: client, TARGET: `${lab.host("target").address}:${TARGET_PORT}` },
  });
  const status = await sender.exited;
  assert.equal(status.code, 0, `SYN sender failed: ${sender.stderrText()}`);
}

/** Waits for the first reply record to `port` that reaches `process`. */
export async function waitForRecord(process: LabProcess, port: number): Promise<ReplyRecord> {
  await waitForLine(process, `"dstPort":${port}`);
  return records(process).find((record) => record.dstPort === port)!;
}

/** Waits for the target's answer to our SYN from `port` to reach `process`: SYN+ACK, acking the SYN. */
export async function assertSynAck(process: LabProcess, port: number): Promise<void> {
  const record = await waitForRecord(process, port);
  assert.equal(record.flags, TcpFlag.SYN | TcpFlag.ACK, JSON.stringify(record));
  assert.equal(record.ack, SYN_SEQ + 1, JSON.stringify(record));
}

/** The `intercept: stopped; ...` line. */
export function summaryOf(stderr: string): string {
  const line = stderr.split("\n").find((text) => text.startsWith("intercept: stopped;"));
  assert.ok(line, stderr);
  return line;
}
