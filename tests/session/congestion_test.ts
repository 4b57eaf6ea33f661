/** NewReno on its own: the window it allows and the retransmissions it asks for, ack by ack. */
import assert from "node:assert/strict";
import { NewReno } from "../../src/session/congestion.ts";

const MSS = 1000;

function established(): NewReno {
  const congestion = new NewReno();
  congestion.onEstablished(MSS);
  return congestion;
}

Deno.test("the first window is ten segments", () => {
  assert.equal(established().window, 10 * MSS);
});

Deno.test("in slow start each ack opens the window by all it acknowledged, a stretch ack too", () => {
  const congestion = established();
  assert.equal(congestion.onAck(1 + 500, 500), undefined);
  assert.equal(congestion.window, 10 * MSS + 500);
  congestion.onAck(1 + 500 + 3 * MSS, 3 * MSS);
  assert.equal(congestion.window, 13 * MSS + 500, "a stretch ack counts every byte (RFC 3465)");
});

Deno.test("three duplicate acks send the first segment again once and halve what was in flight", () => {
  const congestion = established();
  const unacked = 1;
  const sent = 1 + 10 * MSS;
  assert.equal(congestion.onDuplicateAck(unacked, sent), false);
  assert.equal(congestion.onDuplicateAck(unacked, sent), false);
  assert.equal(congestion.onDuplicateAck(unacked, sent), true, "the third: fast retransmit");
  assert.equal(congestion.window, 5 * MSS);
  assert.equal(congestion.onDuplicateAck(unacked, sent), false, "a fourth does not send it again");
  assert.equal(congestion.window, 5 * MSS, "no inflation during recovery");
});

Deno.test("the window never halves below two segments", () => {
  const congestion = established();
  for (let i = 0; i < 2; i++) congestion.onDuplicateAck(1, 1 + MSS);
  assert.equal(congestion.onDuplicateAck(1, 1 + MSS), true);
  assert.equal(congestion.window, 2 * MSS);
});

Deno.test("during recovery a partial ack asks for the next hole; acking all that was sent ends it", () => {
  const congestion = established();
  const sent = 1 + 10 * MSS;
  for (let i = 0; i < 3; i++) congestion.onDuplicateAck(1, sent);
  assert.equal(
    congestion.onAck(1 + 4 * MSS, 4 * MSS),
    "retransmit",
    "partial: the segment at the ack is lost too",
  );
  assert.equal(congestion.window, 5 * MSS);
  // A new round of duplicates inside the same recovery is the same loss event: no second halving.
  for (let i = 0; i < 2; i++) congestion.onDuplicateAck(1 + 4 * MSS, sent);
  assert.equal(congestion.onDuplicateAck(1 + 4 * MSS, sent), false);
  assert.equal(congestion.window, 5 * MSS);
  assert.equal(congestion.onAck(sent, sent - 1 - 4 * MSS), undefined, "everything sent before it: over");
  assert.equal(
    congestion.window,
    5 * MSS + Math.floor(MSS * 6 * MSS / (5 * MSS)),
    "then congestion avoidance",
  );
});

Deno.test("a new ack resets the duplicate count", () => {
  const congestion = established();
  congestion.onDuplicateAck(1, 1 + 10 * MSS);
  congestion.onDuplicateAck(1, 1 + 10 * MSS);
  congestion.onAck(1 + MSS, MSS);
  assert.equal(congestion.onDuplicateAck(1 + MSS, 1 + 10 * MSS), false);
  assert.equal(congestion.onDuplicateAck(1 + MSS, 1 + 10 * MSS), false);
  assert.equal(congestion.onDuplicateAck(1 + MSS, 1 + 10 * MSS), true);
});

Deno.test("after a timeout: one segment, then slow start up to half, the go-back asking for nothing", () => {
  const congestion = established();
  const sent = 1 + 8 * MSS;
  congestion.onTimeout(1, sent);
  assert.equal(congestion.window, MSS);
  // The go-back resends in order: a partial ack grows the window instead of asking for the hole.
  assert.equal(congestion.onAck(1 + MSS, MSS), undefined);
  assert.equal(congestion.window, 2 * MSS);
  assert.equal(congestion.onAck(sent, 7 * MSS), undefined, "all of it acknowledged: recovery over");
  assert.equal(congestion.window, 4 * MSS, "slow start up to ssthresh, half the 8 in flight");
  congestion.onAck(sent + MSS, MSS);
  assert.equal(congestion.window, 4 * MSS + Math.floor(MSS / 4), "linear growth above ssthresh");
});

Deno.test("a timeout whose first ack acknowledges more than the go-back resent was spurious: undone", () => {
  const congestion = established();
  congestion.onAck(1 + 10 * MSS, 10 * MSS); // 20 segments
  congestion.onTimeout(1 + 10 * MSS, 1 + 30 * MSS);
  congestion.onTimeout(1 + 10 * MSS, 1 + 30 * MSS); // backed off: still the same event
  assert.equal(congestion.window, MSS);
  // Late acks of the originals: the go-back resent one segment, this acknowledges five.
  assert.equal(congestion.onAck(1 + 15 * MSS, 5 * MSS), "resume", "nothing goes back");
  assert.equal(congestion.window, 20 * MSS, "the window before the timeout, back");
  for (let i = 0; i < 2; i++) congestion.onDuplicateAck(1 + 15 * MSS, 1 + 30 * MSS);
  assert.equal(congestion.onDuplicateAck(1 + 15 * MSS, 1 + 30 * MSS), true, "no recovery pending");
});

Deno.test("with timestamps the echo tells a late ack of the original from the retransmission's", () => {
  const late = established();
  late.onTimeout(1, 1 + 8 * MSS, 5000);
  // It acknowledges just the segment resent: by bytes ambiguous, by its echo (older) the original's.
  assert.equal(late.onAck(1 + MSS, MSS, 4700), "resume");
  assert.equal(late.window, 10 * MSS);
  const answer = established();
  answer.onTimeout(1, 1 + 8 * MSS, 5000);
  assert.equal(answer.onAck(1 + MSS, MSS, 5000), undefined, "the retransmission's own ack: a real loss");
  assert.equal(answer.window, 2 * MSS);
});

Deno.test("duplicate acks after a timeout wait for the recovery it began to end", () => {
  const congestion = established();
  congestion.onTimeout(1, 1 + 8 * MSS);
  for (let i = 0; i < 2; i++) congestion.onDuplicateAck(1, 1 + 8 * MSS);
  assert.equal(congestion.onDuplicateAck(1, 1 + 8 * MSS), false);
  assert.equal(congestion.window, MSS);
});
