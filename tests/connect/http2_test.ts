/**
 * The HTTP/2 gate of `copy --connect`, frame by frame: the target's stream limit kept, header blocks in
 * order, connection frames and open streams' frames past held ones, refusals counted, bytes cut anywhere.
 */
import assert from "node:assert/strict";
import {
  beginsWithHttp2Preface,
  type ConnectionSink,
  type ConnectSession,
  HTTP2_PREFACE,
  Http2Gate,
  Http2Sink,
  noHttp2Counts,
} from "../../src/connect/mod.ts";
import { concatBytes } from "../../src/wire/mod.ts";
import { seededUint32 } from "../wire/_fixtures.ts";

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
const REFUSED_STREAM = 0x7;
const INTERNAL_ERROR = 0x2;
const NAMES: Record<number, string> = {
  [DATA]: "DATA",
  [HEADERS]: "HEADERS",
  [RST_STREAM]: "RST_STREAM",
  [SETTINGS]: "SETTINGS",
  [PING]: "PING",
  [GOAWAY]: "GOAWAY",
  [WINDOW_UPDATE]: "WINDOW_UPDATE",
  [CONTINUATION]: "CONTINUATION",
};

function frame(type: number, flags: number, streamId: number, payload: Uint8Array | number = 0): Uint8Array {
  const body = typeof payload === "number" ? new Uint8Array(payload).fill(0xab) : payload;
  const bytes = new Uint8Array(9 + body.length);
  bytes[0] = body.length >> 16;
  bytes[1] = body.length >> 8;
  bytes[2] = body.length;
  bytes[3] = type;
  bytes[4] = flags;
  new DataView(bytes.buffer).setUint32(5, streamId);
  bytes.set(body, 9);
  return bytes;
}

function u32(...values: number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  values.forEach((value, i) => new DataView(bytes.buffer).setUint32(i * 4, value));
  return bytes;
}

/** A request: HEADERS with END_HEADERS, and END_STREAM unless it has a body. */
const request = (streamId: number, endStream = true, size = 20) =>
  frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, size);
/** The target's answer ending a stream. */
const answer = (streamId: number) => frame(HEADERS, END_HEADERS | END_STREAM, streamId, 5);
/** The target's SETTINGS with MAX_CONCURRENT_STREAMS (0x3), and another setting before it. */
function targetSettings(maxConcurrentStreams?: number): Uint8Array {
  if (maxConcurrentStreams === undefined) {
    return frame(SETTINGS, 0, 0, new Uint8Array([0, 4, 0, 0, 0xff, 0xff]));
  }
  const payload = new Uint8Array(12);
  const view = new DataView(payload.buffer);
  view.setUint16(0, 0x4);
  view.setUint32(2, 65535);
  view.setUint16(6, 0x3);
  view.setUint32(8, maxConcurrentStreams);
  return frame(SETTINGS, 0, 0, payload);
}
const clientSettings = () => frame(SETTINGS, 0, 0, new Uint8Array([0, 2, 0, 0, 0, 0]));

/** A gate writing into a log: the writes as they were, and the frames they make, as short names. */
function gate(maxHeldBytes = 1 << 20) {
  const writes: Uint8Array[] = [];
  const log: string[] = [];
  const counts = noHttp2Counts();
  const http2 = new Http2Gate(
    { write: (bytes) => writes.push(bytes), shutdown: () => log.push("shutdown") },
    counts,
    maxHeldBytes,
  );
  /** The frames written so far (after the preface), as "TYPE stream". */
  const frames = () => {
    const all = concatBytes(writes);
    assert.deepEqual(all.subarray(0, HTTP2_PREFACE.length), HTTP2_PREFACE);
    const names: string[] = [];
    for (let at = HTTP2_PREFACE.length; at < all.length;) {
      const length = (all[at] << 16) | (all[at + 1] << 8) | all[at + 2];
      const streamId = new DataView(all.buffer, all.byteOffset).getUint32(at + 5);
      names.push(`${NAMES[all[at + 3]]} ${streamId}`);
      at += 9 + length;
      assert.ok(at <= all.length, "a frame written in part only");
    }
    return names;
  };
  return { http2, writes, log, counts, frames };
}

Deno.test("bytes that do not begin with the HTTP/2 preface pass as they came, one write each", () => {
  const { http2, writes } = gate();
  const first = new TextEncoder().encode("PRI * HTTP/1.1\r\n");
  const second = new TextEncoder().encode("Host: x\r\n\r\n");
  http2.fromClient(first);
  http2.fromClient(second);
  assert.equal(http2.phase, "plain");
  assert.deepEqual(writes, [first, second]);
  assert.equal(writes[0], first, "the very bytes, not a copy");
});

Deno.test("no stream opens before the target's SETTINGS; then as many as its limit, the rest as streams close", () => {
  const { http2, counts, frames } = gate();
  http2.fromClient(
    concatBytes([HTTP2_PREFACE, clientSettings(), request(1), request(3), request(5), request(7)]),
  );
  assert.deepEqual(frames(), ["SETTINGS 0"]);
  http2.fromTarget(concatBytes([targetSettings(2), frame(SETTINGS, ACK, 0)]));
  assert.deepEqual(frames(), ["SETTINGS 0", "HEADERS 1", "HEADERS 3"]);
  assert.equal(http2.openStreams, 2);
  http2.fromTarget(answer(3));
  assert.deepEqual(frames(), ["SETTINGS 0", "HEADERS 1", "HEADERS 3", "HEADERS 5"]);
  http2.fromTarget(concatBytes([answer(1), answer(5)]));
  assert.deepEqual(frames(), ["SETTINGS 0", "HEADERS 1", "HEADERS 3", "HEADERS 5", "HEADERS 7"]);
  assert.deepEqual(counts, {
    sessions: 1,
    streamsOpened: 4,
    streamsHeld: 4,
    streamsRefused: 0,
    streamsReset: 0,
    streamsUnsent: 0,
  });
  // A stream the client has not ended stays open, whatever the target said.
  http2.fromClient(request(9, false));
  http2.fromTarget(answer(9));
  assert.equal(http2.openStreams, 2);
});

Deno.test("the target's SETTINGS before the client's preface are not missed", () => {
  const { http2, frames } = gate();
  http2.fromTarget(targetSettings(1));
  http2.fromClient(HTTP2_PREFACE.subarray(0, 10));
  http2.fromTarget(frame(PING, 0, 0, 8));
  http2.fromClient(concatBytes([HTTP2_PREFACE.subarray(10), clientSettings(), request(1), request(3)]));
  assert.deepEqual(frames(), ["SETTINGS 0", "HEADERS 1"]);
});

Deno.test("a target without a limit in its SETTINGS lets every stream open", () => {
  const { http2, counts, frames } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings());
  http2.fromClient(concatBytes([request(1), request(3), request(5)]));
  assert.deepEqual(frames(), ["SETTINGS 0", "HEADERS 1", "HEADERS 3", "HEADERS 5"]);
  assert.equal(counts.streamsHeld, 0);
});

Deno.test("connection frames and frames of open streams pass a held HEADERS; header blocks keep their order", () => {
  const { http2, counts, frames } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(1));
  http2.fromClient(concatBytes([
    request(1, false), // a POST: its body follows
    request(3),
    frame(DATA, 0, 1, 100),
    frame(WINDOW_UPDATE, 0, 0, u32(1000)),
    frame(PING, 0, 0, 8),
    frame(DATA, 0, 3, 10), // a frame of the held stream waits behind its HEADERS
    frame(HEADERS, END_HEADERS | END_STREAM, 1, 4), // trailers of an open stream: a header block, it waits
    request(5),
    frame(SETTINGS, ACK, 0),
  ]));
  assert.deepEqual(frames(), [
    "SETTINGS 0",
    "HEADERS 1",
    "DATA 1",
    "WINDOW_UPDATE 0",
    "PING 0",
    "SETTINGS 0",
  ]);
  // The target answers stream 1 (the client has not ended it: its trailers wait), then resets it.
  http2.fromTarget(answer(1));
  assert.equal(frames().length, 6);
  http2.fromTarget(frame(RST_STREAM, 0, 1, u32(0)));
  assert.deepEqual(frames().slice(6), ["HEADERS 3", "DATA 3", "HEADERS 1"]);
  http2.fromTarget(answer(3));
  assert.deepEqual(frames().slice(9), ["HEADERS 5"]);
  assert.equal(counts.streamsHeld, 2);
  assert.equal(counts.streamsReset, 0, "a reset with NO_ERROR is no failure");
});

Deno.test("a held HEADERS goes with its CONTINUATION frames, nothing in between", () => {
  const { http2, frames } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(1));
  http2.fromClient(concatBytes([
    request(1),
    frame(HEADERS, END_STREAM, 3, 30),
    frame(CONTINUATION, 0, 3, 30),
    frame(CONTINUATION, END_HEADERS, 3, 30),
    frame(PING, 0, 0, 8),
  ]));
  assert.deepEqual(frames(), ["SETTINGS 0", "HEADERS 1", "PING 0"]);
  http2.fromTarget(answer(1));
  assert.deepEqual(frames().slice(3), ["HEADERS 3", "CONTINUATION 3", "CONTINUATION 3"]);
});

Deno.test("the target's refusals are counted: RST_STREAM REFUSED_STREAM, another error, a GOAWAY's last stream id", () => {
  const { http2, counts, frames } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(3));
  http2.fromClient(concatBytes([request(1), request(3), request(5), request(7), request(9), request(11)]));
  assert.deepEqual(frames().slice(1), ["HEADERS 1", "HEADERS 3", "HEADERS 5"]);
  http2.fromTarget(frame(RST_STREAM, 0, 3, u32(REFUSED_STREAM)));
  http2.fromTarget(frame(RST_STREAM, 0, 1, u32(INTERNAL_ERROR)));
  assert.deepEqual(frames().slice(4), ["HEADERS 7", "HEADERS 9"]);
  assert.equal(counts.streamsRefused, 1);
  assert.equal(counts.streamsReset, 1);
  // The target goes away having taken stream 7: 9 was refused, and 11, held, is refused when it goes.
  http2.fromTarget(frame(GOAWAY, 0, 0, u32(7, 0)));
  assert.deepEqual(frames().slice(6), ["HEADERS 11"]);
  assert.equal(counts.streamsRefused, 3);
  http2.fromClient(request(13));
  assert.equal(counts.streamsRefused, 4, "a stream opened after the GOAWAY is refused as it goes");
  assert.equal(counts.streamsOpened, 7);
  // A reset for a stream already counted is not counted again.
  http2.fromTarget(frame(RST_STREAM, 0, 9, u32(REFUSED_STREAM)));
  assert.equal(counts.streamsRefused, 4);
});

Deno.test("the client's reset closes its stream and lets a held one open", () => {
  const { http2, frames } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(1));
  http2.fromClient(concatBytes([request(1), request(3), frame(RST_STREAM, 0, 1, u32(8))]));
  assert.deepEqual(frames().slice(1), ["HEADERS 1", "RST_STREAM 1", "HEADERS 3"]);
});

Deno.test("the client's FIN waits for its held frames", () => {
  const { http2, log, frames } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings(), request(1), request(3)]));
  http2.shutdown();
  assert.deepEqual(log, []);
  http2.fromTarget(targetSettings(1));
  assert.deepEqual(log, []);
  http2.fromTarget(answer(1));
  assert.deepEqual(frames().slice(1), ["HEADERS 1", "HEADERS 3"]);
  assert.deepEqual(log, ["shutdown"]);
  http2.shutdown();
  assert.deepEqual(log, ["shutdown", "shutdown"], "nothing held: at once");
});

Deno.test("bytes cut anywhere, both ways: the same frames in the same order as whole", () => {
  const client = concatBytes([
    HTTP2_PREFACE,
    clientSettings(),
    request(1, false),
    request(3),
    frame(DATA, END_STREAM, 1, 300),
    frame(HEADERS, END_STREAM, 5, 40),
    frame(CONTINUATION, END_HEADERS, 5, 40),
    frame(WINDOW_UPDATE, 0, 0, u32(1 << 20)),
    request(7),
    frame(SETTINGS, ACK, 0),
    request(9),
  ]);
  // The target's bytes in rounds: it answers only streams it has been sent.
  const target = [
    concatBytes([targetSettings(2), frame(SETTINGS, ACK, 0), frame(PING, ACK, 0, 8)]),
    concatBytes([
      answer(3),
      frame(DATA, 0, 1, 200),
      frame(DATA, END_STREAM, 1, 7),
    ]),
    concatBytes([answer(5), answer(7)]),
    answer(9),
  ];
  // All the client's bytes come first: only its connection frames go before the target's SETTINGS.
  const expected = [
    "SETTINGS 0",
    "WINDOW_UPDATE 0",
    "SETTINGS 0",
    "HEADERS 1",
    "HEADERS 3",
    "DATA 1",
    "HEADERS 5",
    "CONTINUATION 5",
    "HEADERS 7",
    "HEADERS 9",
  ];
  for (const cut of [1, 2, 5, 8, 9, 10, 13, 64, 1000]) {
    const { http2, frames, counts, writes } = gate();
    for (let at = 0; at < client.length; at += cut) http2.fromClient(client.subarray(at, at + cut));
    for (const round of target) {
      for (let at = 0; at < round.length; at += cut) http2.fromTarget(round.subarray(at, at + cut));
    }
    assert.deepEqual(frames(), expected, `pieces of ${cut}`);
    assert.equal(counts.streamsOpened, 5, `pieces of ${cut}`);
    assert.equal(http2.openStreams, 0, `pieces of ${cut}`);
    // What went is what came: no byte lost, doubled or changed.
    assert.equal(concatBytes(writes).length, client.length, `pieces of ${cut}`);
  }
});

Deno.test("a held frame still coming when it may go: what came goes, the rest passes as it comes", () => {
  const { http2, frames, writes } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(1));
  const body = frame(HEADERS, END_HEADERS | END_STREAM, 3, 1000);
  http2.fromClient(concatBytes([request(1), body.subarray(0, 400)]));
  http2.fromTarget(answer(1));
  http2.fromTarget(targetSettings(1)); // news from the target while the frame is half written: nothing else
  http2.fromClient(concatBytes([body.subarray(400), frame(PING, 0, 0, 8)]));
  assert.deepEqual(frames().slice(1), ["HEADERS 1", "HEADERS 3", "PING 0"]);
  assert.deepEqual(concatBytes(writes).subarray(-body.length - 17, -17), body);
});

Deno.test("a stream closing while a passing frame is half written: held frames wait for its end", () => {
  const { http2, frames, writes } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(1));
  const body = frame(DATA, END_STREAM, 1, 1000);
  http2.fromClient(concatBytes([request(1, false), request(3), body.subarray(0, 400)]));
  http2.fromTarget(answer(1));
  const written = concatBytes(writes).length;
  assert.equal(written, HTTP2_PREFACE.length + 15 + 29 + 400, "nothing inside the DATA frame");
  http2.fromClient(body.subarray(400));
  assert.deepEqual(frames().slice(1), ["HEADERS 1", "DATA 1", "HEADERS 3"]);
});

Deno.test("frames that pass go in one write per stretch of the client's bytes, without copies", () => {
  const { http2, writes } = gate();
  http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  http2.fromTarget(targetSettings(100));
  const burst = concatBytes(Array.from({ length: 50 }, (_, i) => request(1 + 2 * i)));
  http2.fromClient(burst);
  assert.equal(writes.length, 2);
  assert.equal(writes[1], burst);
  // Past a held frame: one write before it, one after it (the frames of open streams).
  const limited = gate();
  limited.http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  limited.http2.fromTarget(targetSettings(1));
  limited.http2.fromClient(concatBytes([
    request(1, false),
    frame(DATA, 0, 1, 10),
    request(3),
    frame(DATA, 0, 1, 10),
    frame(DATA, END_STREAM, 1, 10),
  ]));
  assert.equal(limited.writes.length, 3);
  limited.http2.fromTarget(answer(1));
  assert.equal(limited.writes.length, 4);
  // Streams that close in one piece of the target's bytes let held frames that lay side by side go as one.
  const together = gate();
  together.http2.fromClient(concatBytes([HTTP2_PREFACE, clientSettings()]));
  together.http2.fromTarget(targetSettings(2));
  together.http2.fromClient(concatBytes([request(1), request(3), request(5), request(7), request(9)]));
  assert.equal(together.writes.length, 2);
  together.http2.fromTarget(concatBytes([answer(1), answer(3)]));
  assert.deepEqual(together.frames().slice(3), ["HEADERS 5", "HEADERS 7"]);
  assert.equal(together.writes.length, 3);
});

Deno.test("the sink gates only connections that begin with the preface", () => {
  const written: Array<[string, Uint8Array]> = [];
  const inner: ConnectionSink = {
    unacknowledged: () => 0,
    connect: () => {},
    write: (session, bytes) => written.push([(session as unknown as { name: string }).name, bytes]),
    shutdown: (session) =>
      written.push([`${(session as unknown as { name: string }).name} shutdown`, new Uint8Array()]),
    reset: () => {},
    close: () => {},
  };
  const sink = new Http2Sink(inner, 1 << 20);
  const plain = { name: "plain" } as unknown as ConnectSession;
  const h2 = { name: "h2" } as unknown as ConnectSession;
  const get = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
  sink.write(plain, get);
  sink.write(h2, concatBytes([HTTP2_PREFACE, clientSettings(), request(1)]));
  sink.shutdown(h2);
  sink.answer(plain, targetSettings(1));
  sink.shutdown(plain);
  assert.deepEqual(written.map(([name]) => name), ["plain", "h2", "plain shutdown"]);
  assert.equal(written[0][1], get);
  sink.answer(h2, targetSettings(1));
  assert.deepEqual(written.map(([name]) => name), ["plain", "h2", "plain shutdown", "h2", "h2 shutdown"]);
  // A server that speaks first (a banner): its bytes come before the client's, which then pass as they are.
  const banner = { name: "banner" } as unknown as ConnectSession;
  sink.answer(banner, new TextEncoder().encode("220 ready\r\n"));
  const helo = new TextEncoder().encode("HELO x\r\n");
  sink.write(banner, helo);
  assert.deepEqual(written.at(-1)![1], helo);
  assert.deepEqual(sink.counts, {
    sessions: 1,
    streamsOpened: 1,
    streamsHeld: 1,
    streamsRefused: 0,
    streamsReset: 0,
    streamsUnsent: 0,
  });
});

Deno.test("streams still held when the target closes or resets the connection are counted unsent", () => {
  const inner: ConnectionSink = {
    unacknowledged: () => 0,
    connect: () => {},
    write: () => {},
    shutdown: () => {},
    reset: () => {},
    close: () => {},
  };
  const sink = new Http2Sink(inner, 1 << 20);
  const closed = {} as ConnectSession;
  const reset = {} as ConnectSession;
  for (const session of [closed, reset]) {
    sink.write(session, concatBytes([HTTP2_PREFACE, clientSettings()]));
    sink.answer(session, targetSettings(1));
    // Stream 1 opens; 3 and 5 wait for it, and 5's body waits behind its HEADERS.
    sink.write(
      session,
      concatBytes([request(1), request(3), request(5, false), frame(DATA, END_STREAM, 5, 10)]),
    );
  }
  assert.equal(sink.counts.streamsOpened, 2);
  sink.close(closed);
  assert.equal(sink.counts.streamsUnsent, 2, "3 and 5, each once");
  sink.reset(reset);
  assert.equal(sink.counts.streamsUnsent, 4);
  sink.close(closed);
  assert.equal(sink.counts.streamsUnsent, 4, "a connection is counted once");
});

Deno.test("a payload begins with the HTTP/2 preface only when all of it is there", () => {
  const text = new TextEncoder();
  assert.ok(beginsWithHttp2Preface(concatBytes([HTTP2_PREFACE, clientSettings()])));
  assert.ok(beginsWithHttp2Preface(HTTP2_PREFACE));
  assert.ok(!beginsWithHttp2Preface(HTTP2_PREFACE.subarray(0, 23)));
  assert.ok(!beginsWithHttp2Preface(text.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r")));
  assert.ok(!beginsWithHttp2Preface(text.encode("POST / HTTP/1.1\r\nHost: x\r\n\r\n")));
  assert.ok(!beginsWithHttp2Preface(new Uint8Array()));
});

Deno.test("past the bytes a gate may hold, the oldest held frames go, whatever the target's limit", () => {
  const { http2, frames } = gate(200);
  // A target that never sends its SETTINGS: nothing would ever open.
  http2.fromClient(
    concatBytes([HTTP2_PREFACE, clientSettings(), request(1, true, 91), request(3, true, 91)]),
  );
  assert.deepEqual(frames(), ["SETTINGS 0"], "200 bytes held: not past the limit");
  http2.fromClient(concatBytes([frame(PING, 0, 0, 8), request(5, true, 1)]));
  // 210 bytes held: the oldest frame goes, and 110 bytes stay held.
  assert.deepEqual(frames(), ["SETTINGS 0", "PING 0", "HEADERS 1"]);
  assert.equal(http2.holding, true);
  http2.fromTarget(targetSettings(1));
  assert.deepEqual(frames().slice(3), [], "stream 1 is open, the limit 1");
  http2.fromTarget(answer(1));
  assert.deepEqual(frames().slice(3), ["HEADERS 3"]);
});

/**
 * Seeded runs against a simulated target: random GETs and POSTs (bodies in DATA frames interleaved across
 * streams, header blocks split into CONTINUATION frames, client resets, PINGs), the client's bytes and the
 * target's cut at random, the target answering a random closable stream now and then. After every write
 * the target's side checks: whole frames only, each sent once, header blocks and each stream's frames in
 * the client's order, never more streams open on the target than its limit; at the end, every frame went.
 */
Deno.test("seeded runs against a simulated target: limits kept, order kept, every frame delivered", () => {
  for (let seed = 1; seed <= 1000; seed++) simulate(seed);
});

function simulate(seed: number): void {
  const random = seededUint32(seed);
  const below = (n: number) => random() % n;
  const limit = 1 + below(4);
  // The client's frames, each tagged in its payload's first 4 bytes with its index.
  const client: Array<{ type: number; flags: number; streamId: number; bytes: Uint8Array }> = [];
  const add = (type: number, flags: number, streamId: number, size: number) => {
    const payload = new Uint8Array(4 + size);
    new DataView(payload.buffer).setUint32(0, client.length);
    client.push({ type, flags, streamId, bytes: frame(type, flags, streamId, payload) });
  };
  add(SETTINGS, 0, 0, 2);
  const bodies: number[] = []; // streams whose body is still to come
  for (let stream = 1; stream < 2 * (8 + below(24)); stream += 2) {
    const post = below(3) === 0;
    const continuations = below(4) === 0 ? 1 + below(2) : 0;
    add(HEADERS, (post ? 0 : END_STREAM) | (continuations === 0 ? END_HEADERS : 0), stream, below(30));
    for (let c = 1; c <= continuations; c++) {
      add(CONTINUATION, c === continuations ? END_HEADERS : 0, stream, 10);
    }
    if (post) bodies.push(stream);
    // Bodies of earlier streams go on between requests; some end, some are reset by the client.
    for (let i = 0; i < bodies.length; i++) {
      if (below(2) === 0) continue;
      const ends = below(3) === 0;
      if (below(12) === 0) add(RST_STREAM, 0, bodies[i], 0);
      else if (ends) add(DATA, END_STREAM, bodies[i], below(200));
      else {
        add(DATA, 0, bodies[i], below(200));
        continue;
      }
      bodies.splice(i--, 1);
    }
    if (below(5) === 0) add(below(2) ? PING : WINDOW_UPDATE, 0, 0, 4);
  }
  for (const stream of bodies) add(DATA, END_STREAM, stream, 5);
  const clientBytes = concatBytes([HTTP2_PREFACE, ...client.map((f) => f.bytes)]);

  // The target: reads what the gate wrote, frame by frame, as the checks above.
  let received: Uint8Array = new Uint8Array(0);
  let read = HTTP2_PREFACE.length;
  const seen: number[] = [];
  /** Streams open on the target: whether the client has ended its half. */
  const open = new Map<number, boolean>();
  const failure = (what: string) => new Error(`seed ${seed}, limit ${limit}: ${what}`);
  const take = (bytes: Uint8Array) => {
    received = concatBytes([received, bytes]);
    while (received.length - read >= 9) {
      const length = (received[read] << 16) | (received[read + 1] << 8) | received[read + 2];
      if (received.length - read < 9 + length) break;
      const index = new DataView(received.buffer, received.byteOffset).getUint32(read + 9);
      const sent = client[index];
      if (sent === undefined || sent.bytes.length !== 9 + length) throw failure(`a broken frame at ${read}`);
      if (seen.includes(index)) throw failure(`frame ${index} twice`);
      const before = seen.filter((i) => client[i].streamId === sent.streamId && i > index);
      if (sent.streamId !== 0 && before.length > 0) {
        throw failure(
          `frame ${index} after ${before}: ${
            client.map((f, i) => `${i}:${NAMES[f.type]}/${f.streamId}/${f.flags}`).join(" ")
          } seen ${seen}`,
        );
      }
      if (sent.type === HEADERS || sent.type === CONTINUATION) {
        const later = seen.filter((i) =>
          (client[i].type === HEADERS || client[i].type === CONTINUATION) && i > index
        );
        if (later.length > 0) throw failure(`header block ${index} after ${later}`);
      }
      if (
        sent.type === HEADERS && !open.has(sent.streamId) &&
        !seen.some((i) => client[i].streamId === sent.streamId)
      ) {
        if (open.size >= limit) throw failure(`stream ${sent.streamId} opened with ${open.size} open`);
        open.set(sent.streamId, (sent.flags & END_STREAM) !== 0);
      } else if (sent.type === DATA && sent.flags & END_STREAM && open.has(sent.streamId)) {
        open.set(sent.streamId, true);
      } else if (sent.type === RST_STREAM) {
        open.delete(sent.streamId);
      }
      seen.push(index);
      read += 9 + length;
    }
  };
  const { http2, counts } = (() => {
    const counts = noHttp2Counts();
    return { counts, http2: new Http2Gate({ write: take, shutdown: () => {} }, counts, 1 << 20) };
  })();

  let fed = 0;
  let settingsSent = false;
  for (let step = 0; step < 100_000; step++) {
    const answerable = [...open].filter(([, clientEnded]) => clientEnded).map(([stream]) => stream);
    if (fed === clientBytes.length && answerable.length === 0 && settingsSent) break;
    const choice = below(3);
    if (choice === 0 && fed < clientBytes.length) {
      const cut = Math.min(clientBytes.length, fed + 1 + below(120));
      http2.fromClient(clientBytes.subarray(fed, cut));
      fed = cut;
    } else if (choice === 1 && !settingsSent && fed > 0) {
      settingsSent = true;
      const settings = targetSettings(limit);
      const cut = below(settings.length);
      http2.fromTarget(settings.subarray(0, cut));
      http2.fromTarget(settings.subarray(cut));
    } else if (choice === 2 && answerable.length > 0) {
      // One or two streams answered in one piece of the target's bytes, cut once at random.
      const answers = answerable.slice(0, 1 + below(2)).map((stream) => {
        open.delete(stream);
        return answer(stream);
      });
      const bytes = concatBytes(answers);
      const cut = below(bytes.length);
      http2.fromTarget(bytes.subarray(0, cut));
      http2.fromTarget(bytes.subarray(cut));
    }
  }
  if (seen.length !== client.length) {
    throw failure(
      `${seen.length} of ${client.length} frames went: ${
        client.map((f, i) => `${i}:${NAMES[f.type]}/${f.streamId}/${f.flags}`).join(" ")
      } seen ${seen}`,
    );
  }
  if (http2.holding || http2.openStreams !== 0) {
    throw failure(
      `frames held (${http2.holding}) or streams open at the end (${http2.openStreams}, target ${[
        ...open.keys(),
      ]})`,
    );
  }
  const streams = client.filter((f) => f.type === HEADERS).length;
  if (counts.streamsOpened !== streams) throw failure(`${counts.streamsOpened} of ${streams} streams opened`);
}
