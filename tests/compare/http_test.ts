import assert from "node:assert/strict";
import { brotliCompressSync, deflateSync } from "node:zlib";
import { parseRequests, parseResponses } from "../../src/compare/http.ts";
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
