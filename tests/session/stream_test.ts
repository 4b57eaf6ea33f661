/**
 * The client stream's reassembly against hostile segment orders: every byte comes out once and in
 * order, memory counts every piece, and the work per segment (tree nodes and pieces visited) stays
 * logarithmic whatever the order, so no session can stall copy's event loop.
 */
import assert from "node:assert/strict";
import {
  ClientStream,
  MAX_OUT_OF_ORDER_PIECES,
  PIECE_OVERHEAD,
  StreamPool,
} from "../../src/session/stream.ts";

const ACK = 1000;
const LARGE = 1 << 30;

/** A deterministic generator (xorshift32) for shuffles and overlaps. */
function generator(seed: number): (below: number) => number {
  let x = seed >>> 0 || 1;
  return (below) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % below;
  };
}

function shuffle<T>(items: T[], random: (below: number) => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** `length` bytes of a recognisable pattern: offset 1 holds `pattern(1)`, and so on. */
function pattern(offset: number): number {
  return (offset * 31 + 7) & 0xff;
}

function bytesAt(offset: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => pattern(offset + i));
}

/** Reads everything the stream holds in order and checks it byte for byte. */
function assertStreamHolds(stream: ClientStream, length: number): void {
  assert.equal(stream.end, 1 + length);
  const all = stream.read(1, length);
  assert.deepEqual(all, bytesAt(1, length));
}

/**
 * A bound on the visits per segment for a tree of `n` pieces: `factor`·log2(n). A segment takes a
 * handful of tree operations (floor, ceiling, insert, delete when drained), each about 1.4·log2(n)
 * deep on average in a treap; the quadratic rescan this replaced visited n/2 pieces per segment.
 */
function logBound(n: number, factor: number): number {
  return factor * Math.log2(n + 2);
}

Deno.test("one-byte segments in reverse order after a hole cost O(log n) each, and stop at the piece cap", () => {
  const stream = new ClientStream(LARGE);
  const segments = 100_000;
  let refusedAt = -1;
  for (let i = 0; i < segments; i++) {
    const offset = segments + 1 - i; // offset 1 is the hole
    const refused = stream.add(offset, bytesAt(offset, 1), ACK, 0);
    if (refused !== undefined) {
      assert.equal(refused, "too-fragmented");
      refusedAt = i;
      break;
    }
  }
  assert.equal(refusedAt, MAX_OUT_OF_ORDER_PIECES);
  const perSegment = stream.visits / refusedAt;
  assert.ok(perSegment < logBound(refusedAt, 8), `${perSegment} visits per segment`);
});

Deno.test("100,000 one-byte segments in a seeded random order are reassembled with O(log n) work each", () => {
  const segments = 100_000;
  const stream = new ClientStream(LARGE, segments);
  const random = generator(14);
  // Distinct acks keep every piece apart: the tree holds up to 100,000 of them.
  const order = shuffle(Array.from({ length: segments }, (_, i) => i + 1), random);
  for (const offset of order) {
    assert.equal(stream.add(offset, bytesAt(offset, 1), ACK + offset, 0), undefined);
  }
  assertStreamHolds(stream, segments);
  const perSegment = stream.visits / segments;
  assert.ok(perSegment < logBound(segments, 12), `${perSegment} visits per segment`);
});

Deno.test("duplicates and overlapping retransmissions are dropped: each byte is held once", () => {
  const length = 20_000;
  const stream = new ClientStream(LARGE, length);
  const random = generator(7);
  const segments: [number, number][] = [];
  for (let copy = 0; copy < 3; copy++) {
    for (let offset = 1; offset <= length;) {
      const size = 1 + random(40);
      segments.push([offset, Math.min(size, length + 1 - offset)]);
      offset += size - (copy === 0 ? 0 : random(size)); // later copies overlap themselves too
    }
  }
  shuffle(segments, random);
  for (const [offset, size] of segments) {
    assert.equal(stream.add(offset, bytesAt(offset, size), ACK + offset, 0), undefined);
    // Never more than the stream's distinct bytes (twice, for the room small pieces grow into), plus
    // the overhead of its pieces: a duplicate adds nothing.
    const held = stream.buffered;
    assert.ok(held <= 2 * length + stream.pieces * PIECE_OVERHEAD, `${held} held in ${stream.pieces} pieces`);
  }
  assertStreamHolds(stream, length);
  stream.release(stream.end);
  assert.equal(stream.buffered, 0);
  assert.equal(stream.pieces, 0);
  assert.ok(stream.visits / segments.length < logBound(length, 8));
});

Deno.test("every piece costs its overhead: 400,000 one-byte pieces cannot hide under the byte limit", () => {
  const limit = 1 << 20;
  const stream = new ClientStream(limit, 1_000_000);
  let refused;
  let added = 0;
  for (let i = 0; i < 400_000 && refused === undefined; i++) {
    const offset = 400_001 - i;
    refused = stream.add(offset, bytesAt(offset, 1), ACK, 0);
    if (refused === undefined) added++;
  }
  assert.equal(refused, "buffer-full");
  assert.ok(added <= limit / (PIECE_OVERHEAD + 1), `${added} pieces held under ${limit} bytes`);
  assert.ok(stream.buffered <= limit);
});

Deno.test("small segments that follow each other with one ack share a piece, in order and out of order", () => {
  const stream = new ClientStream(LARGE);
  const segments = 100_000;
  for (let offset = 2; offset <= segments; offset++) {
    assert.equal(stream.add(offset, bytesAt(offset, 1), ACK, 0), undefined);
  }
  assert.ok(stream.pieces <= Math.ceil(segments / 512) + 1, `${stream.pieces} pieces`); // 512 bytes or more each
  assert.equal(stream.add(1, bytesAt(1, 1), ACK, 0), undefined);
  assertStreamHolds(stream, segments);
  assert.ok(stream.buffered < 2 * segments, `${stream.buffered} held for ${segments} bytes`);
  assert.ok(stream.visits < segments * logBound(30, 8));
});

Deno.test("reads from many small in-order pieces find their piece by binary search", () => {
  const stream = new ClientStream(LARGE);
  const segments = 50_000;
  // Each segment starts a request of its own (the ack moves), so none is appended to another.
  for (let offset = 1; offset <= segments; offset++) {
    assert.equal(stream.add(offset, bytesAt(offset, 600), ACK + offset, 0), undefined);
    offset += 599;
  }
  const before = stream.visits;
  const reads = 10_000;
  const random = generator(3);
  for (let i = 0; i < reads; i++) {
    const offset = 1 + random(stream.end - 2);
    assert.deepEqual(stream.read(offset, 1), bytesAt(offset, 1));
  }
  assert.ok((stream.visits - before) / reads < logBound(stream.pieces, 2));
});

Deno.test("a request boundary inside out-of-order data survives: pieces with another ack are not joined", () => {
  const stream = new ClientStream(LARGE);
  stream.noteHandshakeAck(ACK);
  assert.equal(stream.add(4, bytesAt(4, 3), ACK + 50, 0), undefined); // after the server answered
  assert.equal(stream.add(2, bytesAt(2, 2), ACK, 0), undefined);
  assert.equal(stream.add(1, bytesAt(1, 1), ACK, 0), undefined);
  assertStreamHolds(stream, 6);
  assert.equal(stream.nextRequestStart, 1);
  stream.takeRequest();
  assert.equal(stream.nextRequestStart, 4);
});

Deno.test("streams sharing a pool reassemble byte for byte while their buffers go round", () => {
  const pool = new StreamPool(1 << 20);
  const random = generator(23);
  let reused = 0;
  for (let round = 0; round < 20; round++) {
    const length = 3000;
    const stream = new ClientStream(LARGE, length, pool);
    // Segments of 1..700 bytes, some out of order, some repeated with overlaps, some from a larger frame.
    const segments: [number, number][] = [];
    for (let offset = 1; offset <= length;) {
      const size = Math.min(1 + random(700), length + 1 - offset);
      segments.push([offset, size]);
      if (random(4) === 0) segments.push([Math.max(1, offset - random(50)), size]);
      offset += size;
    }
    for (let i = segments.length - 1; i > 0; i -= 3) {
      [segments[i], segments[i - 1]] = [segments[i - 1], segments[i]];
    }
    const idleBefore = pool.idleBytes;
    for (const [offset, size] of segments) {
      const frame = new Uint8Array(size + 40);
      frame.set(bytesAt(offset, size), 40);
      assert.equal(stream.add(offset, frame, ACK + offset, 0, 40, size), undefined);
    }
    if (pool.idleBytes < idleBefore) reused++;
    assertStreamHolds(stream, length);
    // Half is released (the target has it); what is read of the rest is still right.
    stream.release(1 + length / 2);
    assert.deepEqual(stream.read(1 + length / 2, 100), bytesAt(1 + length / 2, 100));
    stream.dispose();
    assert.equal(stream.buffered, 0);
    assert.equal(stream.pieces, 0);
  }
  assert.ok(reused >= 19, `later streams took their buffers from the pool (${reused} of 19)`);
  assert.ok(pool.idleBytes <= 1 << 20);
});

Deno.test("a pool keeps only whole buffers of its size classes, up to its idle bytes", () => {
  const pool = new StreamPool(1000);
  const small = pool.buffer(100);
  assert.equal(small.length, 128, "rounded up to its class");
  assert.equal(pool.buffer(64).length, 64);
  assert.equal(pool.buffer(65).length, 128);
  pool.recycleBuffer(small);
  assert.equal(pool.idleBytes, 128);
  assert.equal(pool.buffer(120), small, "the same buffer again");
  assert.equal(pool.idleBytes, 0);
  pool.recycleBuffer(new Uint8Array(100)); // not a class size
  pool.recycleBuffer(new Uint8Array(256).subarray(0, 128)); // a view into a larger one
  pool.recycleBuffer(new Uint8Array(1024)); // past the idle bytes
  assert.equal(pool.idleBytes, 0);
  const unpooled = new StreamPool(0);
  assert.equal(unpooled.buffer(100).length, 100, "without a pool, exact sizes as before");
});

Deno.test("a restarted stream is a new one: nothing held, no FIN, no request, its pieces back in the pool", () => {
  const pool = new StreamPool(1 << 20);
  const stream = new ClientStream(LARGE, undefined, pool);
  stream.noteHandshakeAck(ACK);
  assert.equal(stream.add(1, new Uint8Array(100).fill(1), ACK + 50, 0), undefined);
  assert.equal(stream.firstRequestWaits, true, "the server spoke first");
  assert.equal(stream.add(301, new Uint8Array(100).fill(3), ACK + 50, 1), undefined); // past a hole
  stream.addFin(401, ACK + 50, 2);
  assert.equal(stream.pieces, 2);
  assert.equal(stream.add(101, new Uint8Array(200).fill(2), ACK + 50, 3), undefined); // the hole closes
  assert.equal(stream.finOffset, 401);
  stream.restart(4000);
  assert.deepEqual(
    [stream.end, stream.finOffset, stream.firstRequestWaits, stream.buffered, stream.pieces],
    [1, undefined, false, 0, 0],
  );
  assert.equal(stream.nextRequestStart, undefined);
  assert.ok(pool.idleBytes >= 200, `${pool.idleBytes} idle bytes: both pieces' buffers came back`);
  // The next session's bytes, as a new stream takes them: its own limit, its own requests.
  const fresh = new ClientStream(4000, undefined, new StreamPool(1 << 20));
  const requests = (each: ClientStream) => {
    const starts = [];
    for (; each.nextRequestStart !== undefined; each.takeRequest()) starts.push(each.nextRequestStart);
    return starts;
  };
  for (const each of [stream, fresh]) {
    assert.equal(each.add(1, new Uint8Array(100).fill(7), ACK, 10), undefined);
    assert.equal(each.add(101, new Uint8Array(50).fill(8), ACK + 9, 11), undefined);
    assert.equal(each.add(151, new Uint8Array(4000).fill(9), ACK + 9, 12), "buffer-full");
  }
  assert.deepEqual(stream.read(1, 150), fresh.read(1, 150));
  assert.deepEqual(
    [stream.end, stream.firstRequestWaits, stream.buffered, requests(stream)],
    [fresh.end, fresh.firstRequestWaits, fresh.buffered, requests(fresh)],
  );
});

Deno.test("readShared gives read's bytes, across pieces and from inside one, in the buffer streams share", () => {
  const pool = new StreamPool(1 << 20);
  const stream = new ClientStream(1 << 20, undefined, pool);
  const other = new ClientStream(1 << 20, undefined, pool);
  // Pieces of several sizes (pooled buffers larger than their bytes), one past the shared buffer's room.
  let offset = 1;
  for (const size of [1, 63, 64, 65, 700, 1460, 3000, 70_000, 5]) {
    assert.equal(stream.add(offset, bytesAt(offset, size), ACK, 0), undefined);
    offset += size;
  }
  assert.equal(other.add(1, new Uint8Array(100).fill(0xee), ACK, 0), undefined);
  for (
    const [from, length] of [[1, 1], [2, 63], [30, 100], [65, 64], [193, 700], [100, 5000], [1, 65_535], [
      800,
      75_000,
    ], [75_000, 400]]
  ) {
    const expected = stream.read(from, length).slice();
    const shared = stream.readShared(from, length);
    assert.deepEqual(shared, expected, `${from} + ${length}`);
    assert.deepEqual(other.readShared(1, 100), new Uint8Array(100).fill(0xee));
    if (length <= 65_535) assert.notDeepEqual(shared, expected, "the next readShared overwrote it");
  }
});
