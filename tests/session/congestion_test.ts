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

Deno.test("in slow start each ack opens the window by what it acknowledged, at most one segment", () => {
  const congestion = established();
  assert.equal(congestion.onAck(1 + 500, 500), false);
  assert.equal(congestion.window, 10 * MSS + 500);
  congestion.onAck(1 + 500 + 3 * MSS, 3 * MSS);
  assert.equal(congestion.window, 11 * MSS + 500, "a stretch ack counts one segment");
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
  assert.equal(congestion.onAck(1 + 4 * MSS, 4 * MSS), true, "partial: the segment at the ack is lost too");
  assert.equal(congestion.window, 5 * MSS);
  // A new round of duplicates inside the same recovery is the same loss event: no second halving.
  for (let i = 0; i < 2; i++) congestion.onDuplicateAck(1 + 4 * MSS, sent);
  assert.equal(congestion.onDuplicateAck(1 + 4 * MSS, sent), false);
  assert.equal(congestion.window, 5 * MSS);
  assert.equal(congestion.onAck(sent, sent - 1 - 4 * MSS), false, "everything sent before it: over");
  assert.equal(congestion.window, 5 * MSS + Math.floor(MSS * MSS / (5 * MSS)), "then congestion avoidance");
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

Deno.test("after a timeout: one segment, each hole resent in turn, then slow start up to half, then linear", () => {
  const congestion = established();
  const sent = 1 + 8 * MSS;
  congestion.onTimeout(1, sent);
  assert.equal(congestion.window, MSS);
  // What was sent before the timeout is recovered hole by hole, one segment at a time.
  assert.equal(congestion.onAck(1 + MSS, MSS), true);
  assert.equal(congestion.window, MSS);
  assert.equal(congestion.onAck(sent, 7 * MSS), false, "all of it acknowledged: recovery over");
  assert.equal(congestion.window, 2 * MSS);
  let acked = sent;
  for (const expected of [3, 4]) {
    acked += MSS;
    assert.equal(congestion.onAck(acked, MSS), false);
    assert.equal(congestion.window, expected * MSS, "slow start up to ssthresh, half the 8 in flight");
  }
  congestion.onAck(acked + MSS, MSS);
  assert.equal(congestion.window, 4 * MSS + Math.floor(MSS / 4), "linear growth above ssthresh");
});

Deno.test("duplicate acks after a timeout wait for the recovery it began to end", () => {
  const congestion = established();
  congestion.onTimeout(1, 1 + 8 * MSS);
  for (let i = 0; i < 2; i++) congestion.onDuplicateAck(1, 1 + 8 * MSS);
  assert.equal(congestion.onDuplicateAck(1, 1 + 8 * MSS), false);
  assert.equal(congestion.window, MSS);
});
