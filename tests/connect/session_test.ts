/** One `--connect` session, event by event: what it asks of its connection for each thing that happens. */
import assert from "node:assert/strict";
import { type ConnectionSink, ConnectSession, type TurnEnd } from "../../src/connect/mod.ts";
import { ECONNREFUSED } from "../../src/connect/session.ts";
import { defaultSessionConfig, type SegmentIn } from "../../src/session/mod.ts";
import { TcpFlag, TcpView } from "../../src/wire/mod.ts";

const ENDPOINTS = {
  clientAddress: 0xc6130005,
  clientPort: 40000,
  targetAddress: 0xc6120002,
  targetPort: 8080,
};
const CLIENT_ISN = 0xfffffff0; // wraps during the test
const SERVER_ISN = 9000;
/** No lag limit unless a test sets one: turns are judged by the target's answers alone. */
const CONFIG = { ...defaultSessionConfig, answerGapMs: 200, maxLagMs: Infinity };
const text = new TextEncoder();

function segment(fields: { seq: number; ack?: number; flags?: number; data?: string }): SegmentIn {
  const data = text.encode(fields.data ?? "");
  return {
    seq: (CLIENT_ISN + fields.seq) >>> 0,
    ack: fields.ack === undefined ? 0 : (SERVER_ISN + fields.ack) >>> 0,
    flags: fields.flags ?? (fields.ack === undefined ? 0 : TcpFlag.ACK),
    window: 65535,
    payloadLength: data.length,
    payload: () => data,
    options: () => ({}),
  };
}

/**
 * A captured client segment as the capture hands it over: a `TcpView` on a frame, its header `at` bytes
 * in, the packet carrying `carried` bytes of payload, of which the frame kept those of `data`.
 */
function captured(
  fields: { seq: number; ack: number; data: string; carried?: number; at?: number },
): TcpView {
  const data = text.encode(fields.data);
  const at = fields.at ?? 0;
  const frame = new Uint8Array(at + 20 + data.length);
  const header = new DataView(frame.buffer, at);
  header.setUint32(4, (CLIENT_ISN + fields.seq) >>> 0);
  header.setUint32(8, (SERVER_ISN + fields.ack) >>> 0);
  header.setUint8(12, 5 << 4);
  header.setUint8(13, TcpFlag.ACK | TcpFlag.PSH);
  header.setUint16(14, 65535);
  frame.set(data, at + 20);
  const view = TcpView.check(frame, at, 20 + (fields.carried ?? data.length));
  if (!(view instanceof TcpView)) throw new Error(view.message);
  return view;
}

/** A session and the log of what it asked of its connection, as short strings. */
function open(config = CONFIG) {
  const log: string[] = [];
  const turns: Array<[number, TurnEnd]> = [];
  const decoder = new TextDecoder();
  // What the target has not acknowledged of what was written: a test that loses bytes sets it.
  const connection = { unacknowledged: 0 };
  const sink: ConnectionSink = {
    connect: () => log.push("connect"),
    unacknowledged: () => connection.unacknowledged,
    write: (_session, bytes) => log.push(`write ${decoder.decode(bytes)}`),
    shutdown: () => log.push("shutdown"),
    reset: () => log.push("reset"),
    close: () => log.push("close"),
    turnOver: (_session, turn, end) => turns.push([turn, end]),
  };
  const session = new ConnectSession(
    ENDPOINTS,
    config,
    sink,
    segment({ seq: 0, flags: TcpFlag.SYN }),
    false,
    0,
  );
  // The client's handshake ACK: the online server's bytes count from its SYN-ACK's sequence number.
  session.onClient(segment({ seq: 1, ack: 1 }), 1);
  return { session, log, turns, connection };
}

Deno.test("a request waits for the target to answer the previous one with as many bytes as the online server did", () => {
  const { session, log, turns } = open();
  session.onClient(segment({ seq: 1, ack: 1, data: "GET /a\n" }), 2);
  assert.deepEqual(log, ["connect"]);
  session.onConnected(3);
  assert.deepEqual(log, ["connect", "write GET /a\n"]);
  // The online server answered 10 bytes before the client sent its next request.
  session.onClient(segment({ seq: 8, ack: 11, data: "GET /b\n" }), 4);
  assert.deepEqual(log.length, 2);
  session.onAnswer(6, 5);
  session.onTick(6);
  assert.deepEqual(log.length, 2, "6 of 10 bytes is not the answer yet");
  session.onAnswer(4, 7);
  assert.deepEqual(log, ["connect", "write GET /a\n", "write GET /b\n"]);
  assert.deepEqual(turns, [[1, "answered"]]);
  assert.equal(session.turn, 2);
});

Deno.test("a banner: the first request waits for the target to speak first, as the online server did", () => {
  const { session, log } = open();
  session.onConnected(2);
  // The client sent its first line after 20 bytes of the online server's banner.
  session.onClient(segment({ seq: 1, ack: 21, data: "HELO x\n" }), 3);
  assert.deepEqual(log, ["connect"]);
  assert.ok(session.nextDeadline > 3);
  session.onAnswer(20, 50);
  assert.deepEqual(log, ["connect", "write HELO x\n"]);
});

Deno.test("a shorter answer ends when the target is quiet for the answer gap; a silent target after the response wait", () => {
  const { session, log, turns } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 101, data: "b\n" }), 4);
  session.onAnswer(60, 10);
  assert.equal(session.nextDeadline, 10 + CONFIG.answerGapMs);
  session.onTick(10 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["write b\n"]);
  // From here the target's count starts at the online server's: the next answer is judged on its own.
  session.onClient(segment({ seq: 5, ack: 201, data: "c\n" }), 300);
  session.onAnswer(100, 310);
  assert.deepEqual(log.slice(-1), ["write c\n"]);
  assert.deepEqual(turns, [[1, "quiet"], [2, "answered"]]);
});

Deno.test("with --max-lag, a request captured that long ago goes without waiting; a close still waits for its turn", () => {
  const { session, log } = open({ ...CONFIG, maxLagMs: 50 });
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 11, data: "b\n" }), 4);
  session.onTick(54);
  assert.deepEqual(log.slice(-1), ["write b\n"]);
  session.onClient(segment({ seq: 5, ack: 21, flags: TcpFlag.ACK | TcpFlag.FIN }), 60);
  session.onTick(500);
  assert.deepEqual(log.slice(-1), ["write b\n"], "the FIN waits for both answers");
  session.onAnswer(20, 600);
  session.onTick(600 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["shutdown"]);
});

Deno.test("bytes captured out of order, twice or overlapping are written once, in order", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 5, ack: 1, data: "efgh" }), 3);
  session.onClient(segment({ seq: 1, ack: 1, data: "abcdef" }), 4);
  session.onClient(segment({ seq: 1, ack: 1, data: "abcd" }), 5);
  assert.deepEqual(log, ["connect", "write abcdefgh"]);
});

Deno.test("several requests in one segment go in one write (a pipelining client), their answers then counted together", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "GET a\nGET b\nGET c\n" }), 3);
  session.onClient(segment({ seq: 19, ack: 31, data: "GET d\n" }), 4);
  session.onAnswer(30, 5);
  assert.deepEqual(log, ["connect", "write GET a\nGET b\nGET c\n", "write GET d\n"]);
});

Deno.test("a close whose turn ended by a pause waits until the target has every byte written, then the answer gap", () => {
  const { session, log, connection } = open({ ...CONFIG, maxLagMs: 50 });
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 11, data: "b\n" }), 4);
  session.onTick(54); // b goes pipelined
  session.onClient(segment({ seq: 5, ack: 21, flags: TcpFlag.ACK | TcpFlag.FIN }), 60);
  session.onAnswer(20, 600);
  // A pause after the answers: the close's turn. But b is still being resent on a lossy way.
  connection.unacknowledged = 2;
  session.onTick(600 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["write b\n"], "no FIN behind a request the target lacks");
  assert.equal(session.nextDeadline, 610 + CONFIG.answerGapMs, "it asks again soon");
  session.onTick(610 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["write b\n"]);
  connection.unacknowledged = 0;
  session.onTick(620 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["write b\n"], "the target only now reads b: its answer may follow");
  assert.equal(session.nextDeadline, 620 + 2 * CONFIG.answerGapMs);
  session.onTick(620 + 2 * CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["shutdown"]);
});

Deno.test("a close whose count the late tail of an earlier answer made up waits for the target to have the request", () => {
  const { session, log, connection } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 11, data: "b\n" }), 4);
  session.onAnswer(6, 5); // the start of a's answer (16 bytes on the target), the rest lost and resent
  session.onTick(5 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["write b\n"], "a pause ended a's turn");
  session.onClient(segment({ seq: 5, ack: 21, flags: TcpFlag.ACK | TcpFlag.FIN }), 300);
  connection.unacknowledged = 2; // b is lost on the way too
  session.onAnswer(10, 310); // the rest of a's answer: as many bytes as the online server's answer to b
  assert.deepEqual(log.slice(-1), ["write b\n"], "no FIN while the target lacks b");
  connection.unacknowledged = 0;
  session.onTick(320);
  assert.deepEqual(log.slice(-1), ["write b\n"], "the target only now reads b");
  session.onTick(320 + CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["shutdown"]);
});

Deno.test("a reset after a short answer waits for the target to have what was written", () => {
  const { session, log, connection } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 11, flags: TcpFlag.RST | TcpFlag.ACK }), 4);
  session.onAnswer(4, 5); // 4 of the online server's 10 bytes, then a pause
  connection.unacknowledged = 2;
  session.onTick(5 + CONFIG.answerGapMs);
  assert.equal(session.outcome, undefined, "a reset now would discard what the kernel still resends");
  connection.unacknowledged = 0;
  session.onTick(15 + CONFIG.answerGapMs);
  session.onTick(15 + 2 * CONFIG.answerGapMs);
  assert.equal(session.outcome, "reset-by-client");
  assert.deepEqual(log, ["connect", "write a\n", "reset"]);
});

Deno.test("the client's FIN shuts the connection's writing side in its turn; the target's close completes the session", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "q\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 6, flags: TcpFlag.ACK | TcpFlag.FIN }), 4);
  assert.deepEqual(log, ["connect", "write q\n"]);
  session.onAnswer(5, 5);
  assert.deepEqual(log.slice(-1), ["shutdown"]);
  assert.equal(session.outcome, undefined);
  session.onTargetClosed(6);
  assert.equal(session.outcome, "completed");
  assert.deepEqual(log.slice(-1), ["close"]);
  assert.equal(session.turnsAnswered, 1);
  assert.equal(session.turnsExpected, 1);
});

Deno.test("a target that closes first (HTTP/1.0): the client's FIN after it completes the session", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "q\n" }), 3);
  session.onAnswer(5, 4);
  session.onTargetClosed(5);
  assert.equal(session.outcome, undefined);
  // The client's FIN acknowledges the online server's 5 bytes and its FIN.
  session.onClient(segment({ seq: 3, ack: 7, flags: TcpFlag.ACK | TcpFlag.FIN }), 6);
  assert.equal(session.outcome, "completed");
  assert.deepEqual(log, ["connect", "write q\n", "shutdown", "close"]);
});

Deno.test("a target that closes while requests are still to go ends the session as closed-by-target", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onTargetClosed(4);
  session.onClient(segment({ seq: 3, ack: 11, data: "b\n" }), 5);
  assert.equal(session.outcome, "closed-by-target");
  assert.deepEqual(log, ["connect", "write a\n", "close"]);
});

Deno.test("the client's RST becomes an abortive close after what it sent before, in its turn", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 4, flags: TcpFlag.RST | TcpFlag.ACK }), 4);
  assert.equal(session.outcome, undefined, "the answer to the request first");
  session.onAnswer(3, 5);
  assert.equal(session.outcome, "reset-by-client");
  assert.deepEqual(log, ["connect", "write a\n", "reset"]);
});

Deno.test("a RST after the client's FIN waits for the answer: the FIN's sequence number is no missing byte", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  // The online server answered 3 bytes and closed; the client closed too, then reset (seq: after its FIN).
  session.onClient(segment({ seq: 3, ack: 5, flags: TcpFlag.ACK | TcpFlag.FIN }), 4);
  session.onClient(segment({ seq: 4, ack: 5, flags: TcpFlag.RST | TcpFlag.ACK }), 5);
  // A slow target: nothing yet, long after the response wait.
  session.onTick(5 + 2 * CONFIG.responseWaitMs);
  assert.deepEqual(log, ["connect", "write a\n"], "neither the FIN nor the RST before the answer");
  // As many bytes as the online server's answer and FIN: the FIN goes, then the RST.
  session.onAnswer(4, 6100);
  assert.equal(session.outcome, "reset-by-client");
  assert.deepEqual(log, ["connect", "write a\n", "shutdown", "reset"]);
});

Deno.test("a refused connection, a connection that never opens, a reset under the session: each counted as such", () => {
  const refused = open();
  refused.session.onConnectFailed(ECONNREFUSED, 2);
  assert.equal(refused.session.outcome, "refused");
  assert.equal(refused.session.connectErrno, 111, "why, for the debug line");
  const silent = open();
  silent.session.onTick(silent.session.nextDeadline);
  assert.equal(silent.session.outcome, "no-answer");
  assert.deepEqual(silent.log, ["connect", "reset"]);
  const reset = open();
  reset.session.onConnected(2);
  reset.session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  reset.session.onTargetReset(4);
  assert.equal(reset.session.outcome, "reset-by-target");
});

Deno.test("a session idle for the session timeout is reset", () => {
  const { session, log } = open({ ...CONFIG, idleTimeoutMs: 1000 });
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onTick(1003);
  assert.equal(session.outcome, "timed-out");
  assert.deepEqual(log.slice(-1), ["reset"]);
});

Deno.test("answers longer than the online server's do not add up: each request still waits for its own answer", () => {
  const { session, log } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "0\n" }), 3);
  for (let turn = 1; turn <= 5; turn++) {
    session.onClient(segment({ seq: 1 + 2 * turn, ack: 1 + 10 * turn, data: `${turn}\n` }), 3 + turn);
    session.onAnswer(9, 10 * turn);
    assert.deepEqual(log.slice(-1), [`write ${turn - 1}\n`], `turn ${turn}: 9 of 10 bytes`);
    session.onAnswer(3, 10 * turn + 1); // 12 bytes where the online server sent 10
    assert.deepEqual(log.slice(-1), [`write ${turn}\n`]);
  }
  assert.equal(session.turnsAnswered, 5);
});

Deno.test("a turn that begins as the previous answer completes waits the response wait for its first byte, not the gap", () => {
  // The client's next requests were captured before the target answered (a replay, or a slow target): each
  // turn begins at the very clock reading of the bytes that completed the one before. Those bytes are not
  // the new turn's; a target slower than the answer gap to begin its answer is not "quiet", and its answer
  // must count in its own turn (comparing, it would count in the next one: "no answer", then "different").
  const { session, log, turns } = open();
  session.onConnected(2);
  session.onClient(segment({ seq: 1, ack: 1, data: "a\n" }), 3);
  session.onClient(segment({ seq: 3, ack: 11, data: "b\n" }), 4);
  session.onClient(segment({ seq: 5, ack: 21, data: "c\n" }), 5);
  session.onAnswer(10, 50);
  assert.deepEqual(log.slice(-1), ["write b\n"]);
  assert.equal(session.nextDeadline, 50 + CONFIG.responseWaitMs);
  session.onTick(50 + CONFIG.answerGapMs + 1);
  assert.deepEqual(log.slice(-1), ["write b\n"], "the target has not begun its answer to b: c waits");
  session.onAnswer(10, 50 + 5 * CONFIG.answerGapMs);
  assert.deepEqual(log.slice(-1), ["write c\n"]);
  assert.deepEqual(turns, [[1, "answered"], [2, "answered"]]);
});

Deno.test("a captured segment's bytes are written from its frame, wherever the header sits in it", () => {
  const { session, log } = open();
  session.onClient(captured({ seq: 1, ack: 1, data: "GET /a\n", at: 34 }), 2);
  session.onConnected(3);
  assert.deepEqual(log, ["connect", "write GET /a\n"]);
});

Deno.test("a segment the capture cut short ends the session: its stream has a hole for good", () => {
  const { session } = open();
  session.onClient(captured({ seq: 1, ack: 1, data: "GET /a", carried: 100, at: 14 }), 2);
  assert.equal(session.outcome, "capture-cut");
});
