import assert from "node:assert/strict";
import { brotliCompressSync, deflateSync } from "node:zlib";
import {
  parseRequests,
  parseResponses,
  ResponseFraming,
  responsesUnfinished,
} from "../../src/compare/http.ts";
import { seededRandom } from "../wire/_fixtures.ts";
import { bytes, chunked, concat, gzip, response } from "./_http.ts";

const text = (body: Uint8Array) => new TextDecoder().decode(body);

Deno.test("pipelined requests and their responses are told apart by their lengths", () => {
  const requests = parseRequests(
    bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
  );
  assert.deepEqual(requests.map((r) => [r.method, r.target, text(r.body)]), [["GET", "/a", ""], [
    "POST",
    "/b",
    "abc",
  ]]);
  const responses = parseResponses(concat([response(200, {}, "one"), response(404, {}, "two")]), [
    "GET",
    "POST",
  ]);
  assert.deepEqual(responses.map((r) => [r.status, text(r.body), r.complete]), [[200, "one", true], [
    404,
    "two",
    true,
  ]]);
});

Deno.test("a chunked gzip body is unchunked and gunzipped", () => {
  const body = chunked(gzip('{"a":1}'), 5);
  const [message] = parseResponses(
    response(200, { "Transfer-Encoding": "chunked", "Content-Encoding": "gzip" }, body),
    ["GET"],
  );
  assert.equal(text(message.body), '{"a":1}');
  assert.ok(message.complete);
});

Deno.test("deflate (zlib-wrapped or raw) and br bodies are decoded", () => {
  const deflated = new Uint8Array(deflateSync(bytes("hello")));
  const br = new Uint8Array(brotliCompressSync(bytes("hello")));
  for (const [coding, body] of [["deflate", deflated], ["br", br]] as const) {
    const [message] = parseResponses(response(200, { "Content-Encoding": coding }, body), ["GET"]);
    assert.equal(text(message.body), "hello", coding);
  }
});

Deno.test("a broken gzip body is compared as sent, not thrown", () => {
  const [message] = parseResponses(response(200, { "Content-Encoding": "gzip" }, "not gzip"), ["GET"]);
  assert.equal(text(message.body), "not gzip");
});

Deno.test("interim 100 Continue is left out; a HEAD's response has no body", () => {
  const answer = concat([
    bytes("HTTP/1.1 100 Continue\r\n\r\n"),
    bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
  ]);
  const [message, ...rest] = parseResponses(answer, ["HEAD"]);
  assert.equal(message.status, 200);
  assert.equal(message.body.length, 0);
  assert.deepEqual(rest, []);
});

Deno.test("a body cut short is marked incomplete; one without a length runs to the close", () => {
  const [cut] = parseResponses(response(200, {}, "0123456789").subarray(0, 40), ["GET"]);
  assert.equal(cut.complete, false);
  const [toClose] = parseResponses(bytes("HTTP/1.0 200 OK\r\n\r\nall of it"), ["GET"], true);
  assert.equal(text(toClose.body), "all of it");
});

Deno.test("an answer is unfinished while it stops inside the responses to the turn's requests", () => {
  const two = bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n");
  const first = response(200, {}, "one");
  const head = response(200, {}, "");
  const unfinished = (request: Uint8Array, answer: Uint8Array) => responsesUnfinished(request, answer);
  assert.equal(unfinished(two, first.subarray(0, 10)), true, "inside the head");
  assert.equal(unfinished(two, first.subarray(0, first.length - 1)), true, "inside the body");
  assert.equal(unfinished(two, first), true, "one response of two");
  assert.equal(unfinished(two, concat([first, head])), false, "both, the HEAD's without a body");
  const stream = response(200, { "transfer-encoding": "chunked" }, chunked(bytes("abcdef"), 2));
  const one = bytes("GET /c HTTP/1.1\r\n\r\n");
  assert.equal(unfinished(one, stream.subarray(0, stream.length - 5)), true, "before the last chunk");
  assert.equal(unfinished(one, stream), false);
  assert.equal(unfinished(one, bytes("HTTP/1.0 200 OK\r\n\r\nno length")), true, "only a close ends it");
  assert.equal(unfinished(bytes("PING\r\n"), bytes("+P")), false, "not HTTP: nothing to tell");
});

Deno.test("an answer read in pieces is judged as if read whole after every piece", () => {
  const request = bytes(
    "GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n\r\n",
  );
  const answer = concat([
    bytes("HTTP/1.1 100 Continue\r\n\r\n"),
    response(200, { "content-encoding": "gzip" }, gzip("one")),
    // A HEAD's response tells the length of the body it does not send.
    response(200, { "content-length": "14" }, ""),
    response(200, { "transfer-encoding": "chunked" }, chunked(bytes("a chunked body"), 3)),
    response(204, {}, ""),
  ]);
  const random = seededRandom(18);
  for (let round = 0; round < 200; round++) {
    const framing = new ResponseFraming();
    // The request grows too, as a pipelining client's does while the answers come.
    const requestCut = 1 + Math.floor(random() * request.length);
    let at = 0;
    while (at < answer.length) {
      at = Math.min(answer.length, at + 1 + Math.floor(random() * 40));
      const sent = request.subarray(0, at < answer.length * 0.8 ? requestCut : request.length);
      const seen = answer.subarray(0, at);
      assert.equal(
        framing.unfinished(sent, seen),
        responsesUnfinished(sent, seen),
        `round ${round} at ${at}`,
      );
    }
    assert.equal(framing.unfinished(request, answer), false, "all four answered");
  }
});
