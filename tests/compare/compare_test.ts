import assert from "node:assert/strict";
import {
  Answer,
  Comparison,
  type ComparisonOptions,
  endpointOf,
  type Sample,
} from "../../src/compare/mod.ts";
import { diffJson, ignoredPaths } from "../../src/compare/json_diff.ts";
import { bytes, concat, response } from "./_http.ts";

const get = (path: string) => bytes(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
const json = (body: unknown, headers: Record<string, string> = {}) =>
  response(200, { "Content-Type": "application/json", ...headers }, JSON.stringify(body));

function compare(
  options: ComparisonOptions,
  request: Uint8Array,
  online: Uint8Array,
  target: Uint8Array,
  baseline?: Uint8Array,
) {
  const samples: Sample[] = [];
  const comparison = new Comparison(options, (sample) => samples.push(sample));
  const verdict = comparison.compare({
    request,
    online: Answer.of(online),
    target: Answer.of(target),
    baseline: baseline && Answer.of(baseline),
  });
  return { verdict, samples, comparison };
}

Deno.test("endpoints collapse numbers and ids and drop the query", () => {
  assert.equal(
    endpointOf(get("/users/42/orders/9f86d081884c7d659a2feaa0c55ad015?x=1"), "http"),
    "GET /users/{n}/orders/{id}",
  );
  assert.equal(endpointOf(get("/a/123e4567-e89b-12d3-a456-426614174000"), "http"), "GET /a/{uuid}");
  assert.equal(endpointOf(get("/static/app.js"), "http"), "GET /static/app.js");
  assert.equal(endpointOf(bytes("*2\r\n$3\r\nget\r\n$1\r\nk\r\n"), "bytes"), "redis GET");
  assert.equal(endpointOf(bytes("HELO a\r\n\x00"), "bytes"), "HELO a...");
});

Deno.test("JSON is compared by meaning: key order ignored, paths named, ignored paths left out", () => {
  assert.deepEqual(diffJson({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }), []);
  assert.deepEqual(diffJson({ a: { b: 1 }, c: [1] }, { a: { b: 2 }, c: [1, 3] }), [
    { path: "$.a.b", online: "1", target: "2" },
    { path: "$.c[1]", online: undefined, target: "3" },
  ]);
  const ignored = ignoredPaths(["$.meta", "$.items[*].id"]);
  assert.deepEqual(
    diffJson(
      { meta: { t: 1 }, items: [{ id: 1, n: 1 }] },
      { meta: { t: 2 }, items: [{ id: 2, n: 1 }] },
      ignored,
    ),
    [],
  );
});

Deno.test("volatile headers and Set-Cookie values do not count; other headers do", () => {
  const online = response(200, { Date: "Mon", ETag: "a", "Set-Cookie": "sid=1; Path=/", Server: "v1" }, "x");
  const sameish = response(200, { Date: "Tue", ETag: "b", "Set-Cookie": "sid=2; Path=/", Server: "v1" }, "x");
  assert.equal(compare({ mode: "http" }, get("/"), online, sameish).verdict, "same");
  const changed = response(200, { Date: "Tue", Server: "v2", "Set-Cookie": "sid=2" }, "x");
  const { verdict, samples } = compare({ mode: "http" }, get("/"), online, changed);
  assert.equal(verdict, "different");
  assert.deepEqual(samples[0].differences.map((d) => d.field), ["header:server"]);
  assert.equal(
    compare({ mode: "http", ignoreHeaders: ["Server"] }, get("/"), online, changed).verdict,
    "same",
  );
});

Deno.test("a changed status and a changed JSON field are named as such", () => {
  const { samples } = compare(
    { mode: "http" },
    get("/u/1"),
    json({ name: "a", n: 1 }),
    json({ n: 1, name: "b" }),
  );
  assert.deepEqual(samples[0].differences, [{ field: "json:$.name", online: '"a"', target: '"b"' }]);
  assert.equal(samples[0].endpoint, "GET /u/{n}");
  const status = compare({ mode: "http" }, get("/"), response(200, {}, "x"), response(500, {}, "x"));
  assert.deepEqual(status.samples[0].differences.map((d) => d.field), ["status"]);
});

Deno.test("a random id is a difference without a baseline and noise with one", () => {
  const online = json({ id: "r1", v: 1 });
  const target = json({ id: "r2", v: 1 });
  assert.equal(compare({ mode: "http" }, get("/x"), online, target).verdict, "different");
  assert.equal(
    compare({ mode: "http" }, get("/x"), online, target, json({ id: "r3", v: 1 })).verdict,
    "noise",
  );
  // Noise in one field does not hide a real difference in another.
  const both = compare(
    { mode: "http" },
    get("/x"),
    online,
    json({ id: "r2", v: 2 }),
    json({ id: "r3", v: 1 }),
  );
  assert.equal(both.verdict, "different");
  assert.deepEqual(both.samples[0].differences.map((d) => d.field), ["json:$.v"]);
});

Deno.test("noise learnt for an endpoint stays learnt for its later turns", () => {
  const comparison = new Comparison({ mode: "http" });
  const turn = (target: number, baseline?: number) =>
    comparison.compare({
      request: get("/t"),
      online: Answer.of(json({ t: 0 })),
      target: Answer.of(json({ t: target })),
      baseline: baseline === undefined ? undefined : Answer.of(json({ t: baseline })),
    });
  assert.equal(turn(1, 2), "noise");
  assert.equal(turn(3), "noise");
  assert.deepEqual(comparison.rows()[0].noisyFields, new Set(["json:$.t"]));
});

Deno.test("no answer and an extra answer are their own verdicts; bytes mode compares streams", () => {
  assert.equal(
    compare({ mode: "bytes" }, bytes("PING\r\n"), bytes("+PONG\r\n"), new Uint8Array()).verdict,
    "no-answer",
  );
  assert.equal(compare({ mode: "bytes" }, bytes("X"), new Uint8Array(), bytes("y")).verdict, "extra-answer");
  assert.equal(
    compare({ mode: "bytes" }, bytes("PING\r\n"), bytes("+PONG\r\n"), bytes("+PONG\r\n")).verdict,
    "same",
  );
  const { samples } = compare(
    { mode: "bytes" },
    bytes("*1\r\n$4\r\nINFO\r\n"),
    bytes("$1\r\na\r\n"),
    bytes("$1\r\nb\r\n"),
  );
  assert.equal(samples[0].differences[0].field, "bytes");
  assert.match(samples[0].differences[0].online, /at 4/);
});

Deno.test("samples stop at the cap per endpoint while counting goes on", () => {
  const samples: Sample[] = [];
  const comparison = new Comparison({ mode: "bytes", samplesPerEndpoint: 2 }, (s) => samples.push(s));
  for (let i = 0; i < 5; i++) {
    comparison.compare({
      request: bytes("GET"),
      online: Answer.of(bytes("a")),
      target: Answer.of(bytes("b")),
    });
  }
  assert.equal(samples.length, 2);
  assert.equal(comparison.totals.different, 5);
});

Deno.test("an answer past its limit keeps its first bytes and compares by the hash of all of it", () => {
  const answer = new Answer(8);
  answer.push(bytes("0123456789"));
  assert.equal(answer.length, 10);
  assert.equal(answer.whole, false);
  assert.equal(new TextDecoder().decode(answer.bytes), "01234567");
  const big = (last: string) => response(200, {}, "x".repeat(100) + last);
  const comparison = new Comparison({ mode: "http" });
  const turn = (last: string) => ({
    request: get("/"),
    online: Answer.of(big("a"), 64),
    target: Answer.of(big(last), 64),
  });
  assert.equal(comparison.compare(turn("a")), "same");
  assert.equal(comparison.compare(turn("b")), "different");
});

Deno.test("pipelined HTTP requests in one turn are judged one by one, each under its own endpoint", () => {
  const comparison = new Comparison({ mode: "http" });
  const request = concat([get("/users/1"), get("/price/2"), get("/users/3")]);
  const online = concat([json({ u: 1 }), json({ p: 20 }), json({ u: 3 })]);
  const target = concat([json({ u: 1 }), json({ p: 21 }), json({ u: 3 })]);
  assert.equal(
    comparison.compare({ request, online: Answer.of(online), target: Answer.of(target) }),
    "different",
  );
  assert.deepEqual(
    comparison.rows().map((row) => [row.endpoint, row.compared, row.different]),
    [["GET /price/{n}", 1, 1], ["GET /users/{n}", 2, 0]],
  );
});
