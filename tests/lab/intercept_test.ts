/**
 * `tcpshadow intercept` in a lab (see `intercept_lab.ts`): replies forwarded to the copy that registered
 * their client, held for a registration that comes late, and garbage closing only its own connection;
 * and the one-line refusals of bad flags.
 */
import assert from "node:assert/strict";
import { TcpFlag } from "../../src/wire/mod.ts";
import { waitForLine } from "./lab.ts";
import { tcpshadow, waitForStderr } from "./copy_lab.ts";
import {
  assertSynAck,
  FILTER,
  peer,
  records,
  sendSyn,
  summaryOf,
  SYN_SEQ,
  TARGET_PORT,
  waitForRecord,
  withIntercept,
} from "./intercept_lab.ts";
import { sleep } from "../../src/sleep.ts";

Deno.test("intercept forwards the target's SYN-ACK to the copy that registered the client", async () => {
  const stderr = await withIntercept({}, async (lab, intercept) => {
    const copy = peer(lab, lab.host("target"), ["--hello", "plain", "--register", "198.19.0.7:40000"]);
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
  assert.match(summaryOf(stderr), /[1-9]\d* forwarded/);
});

Deno.test("a reply that beats its registration waits for it", async () => {
  const stderr = await withIntercept({}, async (lab) => {
    await sendSyn(lab, "198.19.0.9:40009");
    await sleep(300);
    const copy = peer(lab, lab.host("target"), ["--hello", "plain", "--register", "198.19.0.9:40009"]);
    await assertSynAck(copy, 40009);
    await copy.stop();
  });
  // The target retransmits its SYN-ACK after a second; only the summary tells the held one was sent.
  assert.match(stderr, /[1-9]\d* after waiting for registration/);
});

Deno.test("garbage and half a registration close only their own connections", async () => {
  const stderr = await withIntercept({}, async (lab, intercept) => {
    const good = peer(lab, lab.host("target"), [
      "--hello",
      "plain",
      "--register",
      "198.19.0.8:40001,198.19.0.8:40002",
    ]);
    await waitForLine(good, "sent");
    const garbage = peer(lab, lab.host("target"), ["--hello", "none", "--garbage", "GET / HTTP/1.1"]);
    await waitForLine(garbage, "closed");
    await waitForStderr(intercept, "garbage from");
    const partial = peer(lab, lab.host("target"), ["--hello", "none", "--partial"]);
    await waitForLine(partial, "left");
    await waitForStderr(intercept, "disconnected");
    await sendSyn(lab, "198.19.0.8:40001");
    await assertSynAck(good, 40001);
    await sendSyn(lab, "198.19.0.8:40002");
    await assertSynAck(good, 40002);
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
    const [program, ...programArgs] = tcpshadow(["intercept", ...args]);
    const output = await new Deno.Command(program, {
      args: programArgs,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(output.stderr).trimEnd().split("\n");
    assert.equal(output.code, 2, lines.join("\n"));
    assert.match(lines[0], message);
    assert.deepEqual(lines.slice(1), ["Try 'tcpshadow intercept --help'."]);
  });
}
