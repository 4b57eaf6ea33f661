/** One session, segment by segment: what it sends for each thing the client or the target does. */
import assert from "node:assert/strict";
import { defaultSessionConfig, type SegmentIn, Session, type SessionConfig } from "../../src/session/mod.ts";
import { TcpFlag, type TcpOptions, type TcpRepr } from "../../src/wire/mod.ts";
import { keptSegment } from "./_segment.ts";

const ENDPOINTS = {
  clientAddress: 0xc6130005,
  clientPort: 40000,
  targetAddress: 0xc6120002,
  targetPort: 8080,
};
const CLIENT_ISN = 0xfffffff0; // wraps during the test
const TARGET_ISN = 5000;

function segment(
  fields: Partial<
    { seq: number; ack: number; flags: number; window: number; data: Uint8Array; length: number }
  >,
  options: TcpOptions = {},
): SegmentIn {
  const data = fields.data ?? new Uint8Array(0);
  return {
    seq: fields.seq ?? 0,
    ack: fields.ack ?? 0,
    flags: fields.flags ?? TcpFlag.ACK,
    window: fields.window ?? 65535,
    payloadLength: fields.length ?? data.length,
    payload: () => data,
    options: () => options,
  };
}

function open(
  config: Partial<SessionConfig> = {},
  synOptions: TcpOptions = { mss: 1460, sackPermitted: true },
) {
  const sent: TcpRepr[] = [];
  const session = Session.open(
    ENDPOINTS,
    { ...defaultSessionConfig, ...config },
    (_session, tcp) => sent.push(keptSegment(tcp)),
    segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 29200 }, synOptions),
    false,
    0,
  );
  return { session, sent };
}

function establish(config: Partial<SessionConfig> = {}, targetOptions: TcpOptions = { mss: 1460 }) {
  const world = open(config);
  world.session.onTarget(
    segment(
      { seq: TARGET_ISN, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK },
      targetOptions,
    ),
    10,
  );
  world.session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777 }), 11);
  return world;
}

const bytes = (length: number, fill = 7) => new Uint8Array(length).fill(fill);

Deno.test("the copy opens with the client's own SYN: its ISN, MSS and SACK-permitted, toward the target", () => {
  const { sent } = open();
  assert.equal(sent.length, 1);
  assert.equal(sent[0].flags, TcpFlag.SYN);
  assert.equal(sent[0].seq, CLIENT_ISN);
  assert.equal(sent[0].srcPort, ENDPOINTS.clientPort);
  assert.equal(sent[0].dstPort, ENDPOINTS.targetPort);
  assert.deepEqual(sent[0].options?.mss, 1460);
  assert.equal(sent[0].options?.sackPermitted, true);
});

Deno.test("the SYN-ACK is acknowledged in the target's sequence space, not the online server's", () => {
  const { sent, session } = establish();
  assert.equal(session.phase, "established");
  const ack = sent[1];
  assert.equal(ack.flags, TcpFlag.ACK);
  assert.equal(ack.ack, TARGET_ISN + 1);
  assert.equal(ack.seq, (CLIENT_ISN + 1) >>> 0);
});

Deno.test("a request captured before the SYN-ACK carries the handshake's ACK: no bare ACK before it", () => {
  const { sent, session } = open();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777 }), 1);
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(100) }), 1);
  assert.equal(sent.length, 1, "only the SYN before the target answers");
  session.onTarget(
    segment({ seq: TARGET_ISN, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK }, {
      mss: 1460,
    }),
    10,
  );
  assert.equal(sent.length, 2);
  assert.equal(sent[1].flags & TcpFlag.ACK, TcpFlag.ACK);
  assert.equal(sent[1].ack, TARGET_ISN + 1);
  assert.equal(sent[1].payload?.length, 100);
});

Deno.test("client data goes out with acks translated, across the 32-bit wrap", () => {
  const { sent, session } = establish();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(100) }), 20);
  const data = sent.at(-1)!;
  assert.equal(data.payload?.length, 100);
  assert.equal(data.seq, (CLIENT_ISN + 1) >>> 0);
  assert.equal(data.ack, TARGET_ISN + 1);
  // The target answers 300 bytes: the next ack covers them.
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 101) >>> 0, length: 300 }), 21);
  session.onClient(segment({ seq: (CLIENT_ISN + 101) >>> 0, ack: 1077, data: bytes(20) }), 30);
  const next = sent.at(-1)!;
  assert.equal(next.seq, (CLIENT_ISN + 101) >>> 0);
  assert.equal(next.seq < CLIENT_ISN, true, "wrapped past 2^32");
  assert.equal(next.ack, TARGET_ISN + 301);
});

Deno.test("the next request waits until the target answered the previous one", () => {
  const { sent, session } = establish();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  // The client got the online server's answer (its ack moved) and sent its next request.
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, data: bytes(10, 9) }), 25);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 0, "held back");
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0 }), 26);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 0, "an ack alone is no answer");
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 27);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 1, "released by the answer");
});

Deno.test("the FIN waits for the last request's answer, not for the late tail of an earlier one", () => {
  const { sent, session } = establish({ responseWaitMs: 1000, maxLagMs: 60_000 });
  const fins = () => sent.filter((tcp) => tcp.flags & TcpFlag.FIN).length;
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  // Online the client had the whole 100-byte answer and sent its last request; after its 30-byte answer,
  // the FIN.
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 877, data: bytes(10, 9) }), 25);
  session.onClient(
    segment({ seq: (CLIENT_ISN + 21) >>> 0, ack: 907, flags: TcpFlag.ACK | TcpFlag.FIN }),
    26,
  );
  // The answer's first half releases the last request; its second half is lost on the way.
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 30);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 1, "the last request went");
  // The second half, sent again, arrives while the last request is still on its way.
  session.onTarget(segment({ seq: TARGET_ISN + 51, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 230);
  session.onTarget(segment({ seq: TARGET_ISN + 101, ack: (CLIENT_ISN + 21) >>> 0 }), 450);
  assert.equal(fins(), 0, "a server that has just read the request drops it at a FIN");
  session.onTarget(segment({ seq: TARGET_ISN + 101, ack: (CLIENT_ISN + 21) >>> 0, length: 30 }), 452);
  assert.equal(fins(), 1, "the request's own answer is the FIN's turn");
});

Deno.test("a target that stays silent gets the next request after the response wait", () => {
  const { sent, session } = establish({ responseWaitMs: 1000, maxLagMs: 60_000 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, data: bytes(10, 9) }), 25);
  // Silent from when it had the request (its ack at 26), not from when the request went (20).
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0 }), 26);
  assert.ok(session.nextDeadline <= 26 + 1000);
  session.onTick(1025);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 0);
  session.onTick(1026);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 1);
});

Deno.test("a session that fell maxLagMs behind the client pipelines its requests, and no further", () => {
  const { sent, session } = establish({ responseWaitMs: 60_000, maxLagMs: 200 });
  const nines = () => sent.filter((tcp) => tcp.payload?.[0] === 9).length;
  const eights = () => sent.filter((tcp) => tcp.payload?.[0] === 8).length;
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  // Online, answers came fast: two more requests, captured at 30 and 40, while the target is slow.
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, data: bytes(10, 9) }), 30);
  session.onClient(segment({ seq: (CLIENT_ISN + 21) >>> 0, ack: 1000, data: bytes(10, 8) }), 40);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0 }), 50);
  assert.equal(session.nextDeadline, 30 + 200, "the second request's lag limit");
  session.onTick(229);
  assert.equal(nines(), 0, "within the lag, the request waits for the answer");
  session.onTick(230);
  assert.equal(nines(), 1, "captured 200 ms ago: it goes unanswered");
  assert.equal(eights(), 0, "the third still has time");
  assert.equal(session.nextDeadline, 40 + 200);
  session.onTick(240);
  assert.equal(eights(), 1, "nor does the third fall further behind");
});

Deno.test("a FIN keeps its turn however far behind the session is", () => {
  const { sent, session } = establish({ responseWaitMs: 1000, maxLagMs: 200 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, flags: TcpFlag.FIN | TcpFlag.ACK }), 21);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0 }), 30);
  session.onTick(500);
  assert.equal(sent.filter((tcp) => tcp.flags & TcpFlag.FIN).length, 0, "no FIN before the answer");
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 40 }), 600);
  assert.equal(sent.filter((tcp) => tcp.flags & TcpFlag.FIN).length, 1, "the answer lets it go");
});

Deno.test("after pipelined requests the FIN waits until the target has paused, not for its first answer", () => {
  const { sent, session } = establish({ responseWaitMs: 5000, maxLagMs: 200 });
  const fins = () => sent.filter((tcp) => tcp.flags & TcpFlag.FIN).length;
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, data: bytes(10, 9) }), 21);
  session.onClient(
    segment({ seq: (CLIENT_ISN + 21) >>> 0, ack: 1000, flags: TcpFlag.FIN | TcpFlag.ACK }),
    22,
  );
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0 }), 30); // acked, unanswered
  session.onTick(221); // the second request pipelined
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 1);
  // Both requests acknowledged; the first answer comes, the second follows 150 ms later.
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 21) >>> 0, length: 40 }), 300);
  assert.equal(fins(), 0, "the first answer is not the last");
  session.onTick(450);
  session.onTarget(segment({ seq: TARGET_ISN + 41, ack: (CLIENT_ISN + 21) >>> 0, length: 40 }), 450);
  // The target took up to 150 ms per answer: the FIN waits for twice that of silence (at least 200 ms).
  session.onTick(490); // the delayed ack
  assert.equal(session.nextDeadline, 450 + 300);
  session.onTick(749);
  assert.equal(fins(), 0);
  session.onTick(750);
  assert.equal(fins(), 1, "300 ms of silence: the FIN goes");
});

Deno.test("within the lag limit the turns are kept: each answer releases one request", () => {
  const { sent, session } = establish({ maxLagMs: 200 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, data: bytes(10, 9) }), 21);
  session.onClient(segment({ seq: (CLIENT_ISN + 21) >>> 0, ack: 1000, data: bytes(10, 8) }), 22);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 30);
  assert.deepEqual(sent.filter((tcp) => tcp.payload !== undefined).map((tcp) => tcp.payload![0]), [7, 9]);
  session.onTarget(segment({ seq: TARGET_ISN + 51, ack: (CLIENT_ISN + 21) >>> 0, length: 50 }), 40);
  assert.deepEqual(sent.filter((tcp) => tcp.payload !== undefined).map((tcp) => tcp.payload![0]), [7, 9, 8]);
});

Deno.test("data never goes past the target's advertised window", () => {
  const { sent, session } = establish();
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 1) >>> 0, window: 3000 }), 12);
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10_000) }), 20);
  const inFlight = () => sent.reduce((sum, tcp) => sum + (tcp.payload?.length ?? 0), 0);
  assert.equal(inFlight(), 3000);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 1001) >>> 0, window: 3000 }), 21);
  assert.equal(inFlight(), 4000);
});

Deno.test("a lost segment is sent again after the retransmission timeout, with backoff", () => {
  const { sent, session } = establish();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(100) }), 20);
  const first = sent.length;
  const due = session.nextDeadline;
  session.onTick(due);
  assert.equal(sent.length, first + 1);
  assert.equal(sent.at(-1)!.seq, (CLIENT_ISN + 1) >>> 0);
  assert.equal(session.retransmissions, 1);
  assert.ok(session.nextDeadline - due >= 2 * (due - 20) - 1, "the timeout doubled");
});

Deno.test("the client's RST is passed on and ends the session", () => {
  const { sent, session } = establish();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.RST }), 30);
  assert.equal(sent.at(-1)!.flags & TcpFlag.RST, TcpFlag.RST);
  assert.equal(session.outcome, "reset-by-client");
});

Deno.test("a RST before the client's handshake ACK counts only right after its SYN", () => {
  // The online server answered a reused port's SYN from TIME_WAIT with an ACK of the old connection;
  // the client resets at that ACK's number and sends its SYN again.
  const stray = open();
  stray.session.onClient(segment({ seq: (CLIENT_ISN + 40_000) >>> 0, flags: TcpFlag.RST }), 5);
  assert.equal(stray.session.outcome, undefined);
  stray.session.onTarget(
    segment({ seq: TARGET_ISN, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK }, {
      mss: 1460,
    }),
    10,
  );
  stray.session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 11);
  assert.equal(stray.sent.filter((tcp) => tcp.payload?.length === 10).length, 1, "the request goes");
  stray.session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 12);
  stray.session.onTick(5000);
  assert.equal(stray.sent.filter((tcp) => tcp.flags & TcpFlag.RST).length, 0, "no reset, ever");
  assert.equal(stray.session.outcome, undefined);

  // A client that gave up on its connect answers the SYN-ACK with a RST right after its SYN.
  const aborted = open();
  aborted.session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.RST }), 5);
  assert.equal(aborted.session.outcome, "reset-by-client");
});

Deno.test("a client that resets with requests still held: the target gets them in turn, then the RST", () => {
  const { sent, session } = establish({ responseWaitMs: 1000 });
  const resets = () => sent.filter((tcp) => tcp.flags & TcpFlag.RST).length;
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 900, data: bytes(10, 9) }), 21);
  session.onClient(segment({ seq: (CLIENT_ISN + 21) >>> 0, flags: TcpFlag.RST }), 22);
  assert.equal(resets(), 0, "not before the target has what came before");
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 23);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 1, "the held request goes in its turn");
  assert.equal(resets(), 0, "nor before the target answered it");
  session.onTarget(segment({ seq: TARGET_ISN + 51, ack: (CLIENT_ISN + 21) >>> 0, length: 50 }), 24);
  assert.equal(resets(), 1);
  assert.equal(sent.at(-1)!.seq, (CLIENT_ISN + 21) >>> 0);
  assert.equal(session.outcome, "reset-by-client");
});

Deno.test("data the capture hands over after the client's RST, but sent before it, still reaches the target first", () => {
  const { sent, session } = establish({ responseWaitMs: 1000 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0, length: 50 }), 21);
  // Reordered capture: the RST (after 20 bytes) comes before the second 10.
  session.onClient(segment({ seq: (CLIENT_ISN + 21) >>> 0, flags: TcpFlag.RST }), 22);
  assert.equal(sent.filter((tcp) => tcp.flags & TcpFlag.RST).length, 0);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, ack: 827, data: bytes(10, 9) }), 23);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 9).length, 1, "the late bytes go");
  session.onClient(segment({ seq: (CLIENT_ISN + 21) >>> 0, ack: 900, data: bytes(5, 8) }), 24);
  assert.equal(sent.filter((tcp) => tcp.payload?.[0] === 8).length, 0, "nothing after the reset does");
  session.onTarget(segment({ seq: TARGET_ISN + 51, ack: (CLIENT_ISN + 21) >>> 0, length: 50 }), 25);
  assert.equal(sent.at(-1)!.flags & TcpFlag.RST, TcpFlag.RST);
  assert.equal(session.outcome, "reset-by-client");
});

Deno.test("a client's RST goes after the response wait when the target does not answer", () => {
  const { sent, session } = establish({ responseWaitMs: 1000 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onClient(segment({ seq: (CLIENT_ISN + 11) >>> 0, flags: TcpFlag.RST }), 30);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 11) >>> 0 }), 31);
  assert.equal(session.nextDeadline, 31 + 1000, "the wait counts from when the target had the request");
  session.onTick(1030);
  assert.equal(sent.filter((tcp) => tcp.flags & TcpFlag.RST).length, 0);
  session.onTick(1031);
  assert.equal(sent.at(-1)!.flags & TcpFlag.RST, TcpFlag.RST);
  assert.equal(session.outcome, "reset-by-client");
});

Deno.test("once the target closed and has everything, a missing client FIN is waited for 10 s, not the idle timeout", () => {
  const { sent, session } = establish({ idleTimeoutMs: 120_000 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(10) }), 20);
  session.onTarget(
    segment({
      seq: TARGET_ISN + 1,
      ack: (CLIENT_ISN + 11) >>> 0,
      length: 50,
      flags: TcpFlag.ACK | TcpFlag.FIN,
    }),
    30,
  );
  // The client's FIN was among the packets the capture lost.
  assert.equal(session.nextDeadline, 30 + 10_000);
  session.onTick(10_029);
  assert.equal(session.outcome, undefined);
  session.onTick(10_030);
  assert.equal(session.outcome, "timed-out");
  assert.equal(sent.at(-1)!.flags & TcpFlag.RST, TcpFlag.RST);
});

Deno.test("a target that refuses the SYN fails the session as refused", () => {
  const { session } = open();
  session.onTarget(segment({ seq: 0, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK }), 5);
  assert.equal(session.outcome, "refused");
});

Deno.test("a target that never answers the SYN fails the session after the SYN retries", () => {
  const { session, sent } = open({ synRetries: 2 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777 }), 1); // the online handshake completed
  for (let i = 0; i < 5 && session.outcome === undefined; i++) session.onTick(session.nextDeadline);
  assert.equal(session.outcome, "no-answer");
  assert.equal(sent.filter((tcp) => tcp.flags === TcpFlag.SYN).length, 3);
});

Deno.test("a session whose client never completed its handshake online ends after halfOpenTimeoutMs", () => {
  const { session, sent } = open({ halfOpenTimeoutMs: 3000 });
  session.onTarget(
    segment({ seq: TARGET_ISN, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK }, {
      mss: 1460,
    }),
    10,
  );
  assert.equal(session.halfOpen, true);
  assert.equal(session.nextDeadline, 3010);
  session.onTick(3010);
  assert.equal(session.outcome, "half-open");
  assert.equal(sent.at(-1)!.flags & TcpFlag.RST, TcpFlag.RST);
});

Deno.test("a silent session is reset on the target after the idle timeout", () => {
  const { session, sent } = establish({ idleTimeoutMs: 5000 });
  session.onTick(5011);
  assert.equal(session.outcome, "timed-out");
  assert.equal(sent.at(-1)!.flags & TcpFlag.RST, TcpFlag.RST);
});

Deno.test("FINs on both sides complete the session, which lingers with its last ACK to send again", () => {
  const { session, sent } = establish({ lingerMs: 1000 });
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, flags: TcpFlag.ACK | TcpFlag.FIN }), 20);
  assert.equal(sent.at(-1)!.flags, TcpFlag.ACK | TcpFlag.FIN);
  assert.equal(session.lingersUntil, undefined, "not over yet");
  session.onTarget(
    segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 2) >>> 0, flags: TcpFlag.ACK | TcpFlag.FIN }),
    20.4,
  );
  assert.equal(session.outcome, "completed");
  const lastAck = sent.at(-1)!;
  assert.equal(lastAck.ack, TARGET_ISN + 2);
  assert.equal(session.lingersUntil, 21 + 1000, "whole milliseconds");
  assert.deepEqual(keptSegment(session.finalAck()!), lastAck);
  const count = sent.length;
  session.onTarget(
    segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 2) >>> 0, flags: TcpFlag.ACK | TcpFlag.FIN }),
    500,
  );
  assert.equal(sent.length, count, "the session itself is over: the table answers for what lingers");
});

Deno.test("a session that did not complete lingers with no last ACK to send again", () => {
  const { session } = establish({ lingerMs: 1000 });
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.RST }), 20);
  assert.equal(session.outcome, "reset-by-target");
  assert.equal(session.finished, true);
  assert.equal(session.lingersUntil, 20 + 1000, "its address and port stay taken meanwhile");
  assert.equal(session.finalAck(), undefined);
});

Deno.test("timestamps echo the target's, not the online server's", () => {
  const world = open({}, { mss: 1460, timestamp: { value: 111, echo: 0 } });
  world.session.onTarget(
    segment({ seq: TARGET_ISN, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK }, {
      mss: 1460,
      timestamp: { value: 424242, echo: 1 },
    }),
    10,
  );
  const ack = world.sent.at(-1)!;
  assert.equal(ack.options?.timestamp?.echo, 424242);
});

Deno.test("a packet cut by the capture ends the session: the stream has a hole for good", () => {
  const { session } = establish();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, data: bytes(100), length: 1400 }), 20);
  assert.equal(session.outcome, "capture-cut");
});

Deno.test("an old connection's ACK to our SYN is reset and the SYN sent again at once", () => {
  const { session, sent } = open();
  session.onTarget(segment({ seq: 9999, ack: 123456, flags: TcpFlag.ACK }), 5);
  assert.equal(sent.at(-2)!.flags, TcpFlag.RST);
  assert.equal(sent.at(-2)!.seq, 123456);
  assert.equal(sent.at(-1)!.flags, TcpFlag.SYN);
  assert.equal(session.outcome, undefined);
});

Deno.test("timestamps come from one clock, so a port's next session starts above its last one", () => {
  const config = { timestampBaseMs: 1_000_000 };
  const first = open(config, { mss: 1460, timestamp: { value: 1, echo: 0 } });
  const later = open(config, { mss: 1460, timestamp: { value: 1, echo: 0 } });
  first.session.onTick(50);
  assert.equal(first.sent[0].options?.timestamp?.value, 1_000_000);
  assert.equal(later.sent[0].options?.timestamp?.value, 1_000_000);
});

Deno.test("the phase follows the handshake and each side's FIN, whichever closes first", () => {
  const clientFirst = open();
  assert.equal(clientFirst.session.phase, "syn-sent");
  clientFirst.session.onTarget(
    segment({ seq: TARGET_ISN, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK }, {
      mss: 1460,
    }),
    10,
  );
  assert.equal(clientFirst.session.phase, "established");
  const finAck = (CLIENT_ISN + 2) >>> 0;
  clientFirst.session.onClient(
    segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, flags: TcpFlag.ACK | TcpFlag.FIN }),
    20,
  );
  assert.equal(clientFirst.session.phase, "established", "the FIN went, not yet acknowledged");
  clientFirst.session.onTarget(segment({ seq: TARGET_ISN + 1, ack: finAck }), 21);
  assert.equal(clientFirst.session.phase, "client-closed");
  clientFirst.session.onTarget(
    segment({ seq: TARGET_ISN + 1, ack: finAck, flags: TcpFlag.ACK | TcpFlag.FIN }),
    22,
  );
  assert.equal(clientFirst.session.phase, "ended");
  assert.equal(clientFirst.session.outcome, "completed");

  const targetFirst = establish();
  targetFirst.session.onTarget(
    segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 1) >>> 0, flags: TcpFlag.ACK | TcpFlag.FIN }),
    20,
  );
  assert.equal(targetFirst.session.phase, "target-closed");
  targetFirst.session.onClient(
    segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 778, flags: TcpFlag.ACK | TcpFlag.FIN }),
    30,
  );
  assert.equal(targetFirst.session.phase, "target-closed");
  targetFirst.session.onTarget(segment({ seq: TARGET_ISN + 2, ack: finAck }), 31);
  assert.equal(targetFirst.session.phase, "ended");
  assert.equal(targetFirst.session.outcome, "completed");
});

Deno.test("a target's reset after it acknowledged the client's FIN ends a complete conversation", () => {
  const { session } = establish();
  session.onClient(segment({ seq: (CLIENT_ISN + 1) >>> 0, ack: 777, flags: TcpFlag.ACK | TcpFlag.FIN }), 20);
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 2) >>> 0 }), 21);
  assert.equal(session.phase, "client-closed");
  session.onTarget(segment({ seq: TARGET_ISN + 1, ack: (CLIENT_ISN + 2) >>> 0, flags: TcpFlag.RST }), 22);
  assert.equal(session.outcome, "completed");
});
