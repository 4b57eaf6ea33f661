/** The turns policy on its own: when each request of a conversation may go, event by event. */
import assert from "node:assert/strict";
import { type RequestQueue, Turns } from "../../src/session/turns.ts";

const CONFIG = { responseWaitMs: 3000, maxLagMs: 200 };

/** Requests as the client stream would hold them: each `[start, capturedAt]`, oldest first. */
function queue(requests: [number, number][], finOffset?: number, firstRequestWaits = false) {
  const held = [...requests];
  const requestQueue: RequestQueue & { taken: number[] } = {
    taken: [],
    get nextRequestStart() {
      return held[0]?.[0];
    },
    get nextRequestCapturedAt() {
      return held[0]?.[1] ?? Infinity;
    },
    finOffset,
    firstRequestWaits,
    takeRequest() {
      requestQueue.taken.push(held.shift()![0]);
    },
  };
  return requestQueue;
}

/** A conversation whose handshake is done at 0 and whose first request (100 bytes) went out at `now`. */
function afterFirstRequest(requests: RequestQueue, now = 0, config = CONFIG) {
  const turns = new Turns(config);
  turns.delivered(1, 0);
  turns.sent(0);
  turns.release(requests, now);
  turns.sent(now);
  return turns;
}

Deno.test("the client's first request goes at once, unless the server spoke first online", () => {
  const turns = new Turns(CONFIG);
  turns.delivered(1, 0);
  turns.sent(0);
  assert.equal(turns.nextRelease(queue([[1, 0]])), -Infinity);
  const greeted = queue([[1, 0]], undefined, true);
  assert.equal(turns.nextRelease(greeted), 200, "it waits for the greeting, up to the lag limit");
  turns.answered(5);
  assert.equal(turns.nextRelease(greeted), -Infinity, "the target greeted: its turn");
});

Deno.test("nothing waiting: no release time", () => {
  const turns = new Turns(CONFIG);
  assert.equal(turns.nextRelease(queue([])), Infinity);
});

Deno.test("the next request waits until the target has the previous one and answered it", () => {
  const requests = queue([[1, 0], [101, 10]]);
  const turns = afterFirstRequest(requests);
  assert.deepEqual(requests.taken, [1]);
  assert.equal(turns.nextRelease(requests), 10 + 200, "not delivered yet: the lag limit");
  turns.delivered(101, 0);
  assert.equal(turns.nextRelease(requests), 10 + 200, "delivered, not answered: still the lag limit");
  turns.answered(50);
  assert.equal(turns.nextRelease(requests), -Infinity);
  turns.release(requests, 50);
  assert.deepEqual(requests.taken, [1, 101]);
});

Deno.test("an answer counts only if it came after the request went out", () => {
  const requests = queue([[1, 0], [101, 10]]);
  const turns = new Turns({ ...CONFIG, maxLagMs: 60_000 });
  turns.delivered(1, 0);
  turns.sent(0);
  turns.release(requests, 0);
  turns.answered(3); // before the first request's bytes went
  turns.sent(4);
  turns.delivered(101, 0);
  assert.equal(turns.nextRelease(requests), 4 + 3000, "the answer was older: wait for a new one");
});

Deno.test("a target that stays silent gets the next request after the response wait", () => {
  const requests = queue([[1, 0], [101, 10]]);
  const turns = afterFirstRequest(requests, 0, { ...CONFIG, maxLagMs: 60_000 });
  turns.delivered(101, 0);
  assert.equal(turns.nextRelease(requests), 3000);
  turns.release(requests, 2999);
  assert.deepEqual(requests.taken, [1]);
  turns.release(requests, 3000);
  assert.deepEqual(requests.taken, [1, 101]);
});

Deno.test("requests captured maxLagMs ago go without waiting; requests younger wait", () => {
  const requests = queue([[1, 0], [101, 10], [201, 20], [301, 500]]);
  const turns = afterFirstRequest(requests);
  turns.release(requests, 220);
  assert.deepEqual(requests.taken, [1, 101, 201], "both lagged requests pipelined");
  assert.equal(turns.nextRelease(requests), 700, "the next is within the lag limit");
});

Deno.test("a close keeps its turn however far behind the conversation is", () => {
  const requests = queue([[1, 0], [101, 10]], 101);
  const turns = afterFirstRequest(requests);
  assert.equal(turns.nextRelease(requests), Infinity, "the FIN waits for the target to have the request");
  turns.delivered(101, 0);
  assert.equal(turns.nextRelease(requests), 3000, "then for its answer, up to the response wait");
  turns.answered(40);
  assert.equal(turns.nextRelease(requests), -Infinity, "no pipelining: the first answer is its turn");
  assert.equal(turns.closeDueAt(101), -Infinity, "a reset at the same place: the same turn");
});

Deno.test("a close waits for an answer from when the target had the request, not from when it first went", () => {
  const requests = queue([[1, 0], [101, 10]], 101);
  const turns = afterFirstRequest(requests);
  // The request's last segment was lost and went again: the target acknowledged it only at 2,900.
  turns.delivered(101, 2900);
  assert.equal(turns.nextRelease(requests), 2900 + 3000, "a server drops a request it works on at a close");
  turns.answered(2950);
  assert.equal(turns.nextRelease(requests), -Infinity);
});

Deno.test("a close does not take an answer the target sent before it had the whole request", () => {
  const requests = queue([[1, 0], [101, 10]], 101);
  const turns = afterFirstRequest(requests);
  // The tail of an earlier answer, lost on its way and sent again, arrives while the request's last
  // segment is still being resent: it answers an earlier request, not this one.
  turns.answered(100);
  turns.delivered(101, 500);
  assert.equal(turns.nextRelease(requests), 500 + 3000, "the FIN would reach a server still reading");
  turns.answered(520);
  assert.equal(turns.nextRelease(requests), -Infinity, "an answer after the target had it: its turn");
});

Deno.test("after pipelining a close waits for the target to pause: 200 ms, or twice its longest gap", () => {
  const requests = queue([[1, 0], [101, 10], [201, 20]], 201);
  const turns = afterFirstRequest(requests);
  turns.release(requests, 210);
  assert.deepEqual(requests.taken, [1, 101], "the second request pipelined at 210");
  turns.sent(210);
  turns.delivered(201, 0);
  turns.answered(300);
  assert.equal(
    turns.nextRelease(requests),
    300 + 200,
    "the first answer after pipelining need not be the last",
  );
  turns.answered(450); // 150 ms after the last answer
  assert.equal(turns.nextRelease(requests), 450 + 300, "twice the longest gap");
  turns.release(requests, 749);
  assert.deepEqual(requests.taken, [1, 101]);
  turns.release(requests, 750);
  assert.deepEqual(requests.taken, [1, 101, 201]);
});

Deno.test("restarted turns forget a conversation that pipelined: its close goes as a new one's", () => {
  const pipelined = queue([[1, 0], [101, 10], [201, 20]], 201);
  const turns = afterFirstRequest(pipelined);
  turns.release(pipelined, 210); // pipelined
  turns.sent(210);
  turns.delivered(201, 0);
  turns.answered(300);
  turns.answered(450);
  turns.restart({ ...CONFIG, responseWaitMs: 1000 });
  // As in "a close keeps its turn": no pipelining in the new conversation, a response wait of 1000.
  const requests = queue([[1, 0], [101, 10]], 101);
  turns.delivered(1, 0);
  turns.sent(0);
  assert.equal(turns.nextRelease(requests), -Infinity);
  turns.release(requests, 0);
  turns.sent(0);
  assert.equal(turns.nextRelease(requests), Infinity, "the FIN waits for the target to have the request");
  turns.delivered(101, 0);
  assert.equal(turns.nextRelease(requests), 1000, "then for its answer, up to the new response wait");
  turns.answered(40);
  assert.equal(turns.nextRelease(requests), -Infinity, "not pipelined: the first answer is its turn");
});

Deno.test("a close after pipelining still goes after the response wait when the target falls silent", () => {
  const requests = queue([[1, 0], [101, 10], [201, 20]], 201);
  const turns = afterFirstRequest(requests, 0, { responseWaitMs: 300, maxLagMs: 200 });
  turns.release(requests, 210);
  turns.sent(210);
  turns.delivered(201, 0);
  turns.answered(220);
  turns.answered(480); // a gap of 260 ms: the pause would be 520 ms
  assert.equal(turns.nextRelease(requests), 210 + 300);
});

Deno.test("silences before the conversation pipelined do not count toward the close's pause", () => {
  const requests = queue([[1, 0], [101, 800], [201, 950], [301, 960]], 301);
  const turns = afterFirstRequest(requests);
  turns.delivered(101, 0);
  turns.answered(900); // 900 ms after the first request: the turns were kept
  turns.release(requests, 900);
  assert.deepEqual(requests.taken, [1, 101]);
  turns.sent(900);
  turns.release(requests, 1150); // silent for the request at 201 until its lag limit: it pipelines
  assert.deepEqual(requests.taken, [1, 101, 201]);
  turns.sent(1150);
  turns.delivered(301, 0);
  turns.answered(1200);
  assert.equal(turns.nextRelease(requests), 1200 + 200, "only the 50 ms since pipelining count");
});
