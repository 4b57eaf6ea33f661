import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { type AnswerListener, ConnectTransport, gatherPause } from "../../src/connect/transport.ts";
import { type ConnectSession, ECONNREFUSED } from "../../src/connect/session.ts";
import { parseIpv4 } from "../../src/wire/mod.ts";
import { readKernelFile } from "../../ffi/mod.ts";
import { sleep } from "../../src/sleep.ts";
import { acceptWithin } from "./_accept.ts";

/**
 * What the transport tells a session, recorded: the transport is tested over real loopback connections,
 * with a session that only listens (the engine's own behaviour is tests/connect/session_test.ts's).
 */
class ListeningSession {
  readonly news: string[] = [];
  answered = 0;
  readonly turn = 0;
  constructor(readonly endpoints: { targetAddress: number; targetPort: number }) {}
  onConnected() {
    this.news.push("connected");
  }
  onConnectFailed(errno: number) {
    this.news.push(errno === ECONNREFUSED ? "refused" : `failed: errno ${errno}`);
  }
  onAnswer(length: number) {
    this.answered += length;
  }
  onTargetClosed() {
    this.news.push("closed by target");
  }
  onTargetReset() {
    this.news.push("reset by target");
  }
}

/** An answer listener that reads the bytes (or only counts them) and keeps what it was given. */
class RecordingListener implements AnswerListener {
  readonly lengths: number[] = [];
  readonly bytes: string[] = [];
  constructor(readonly reads: boolean) {}
  readsAnswers(): boolean {
    return this.reads;
  }
  answer(_session: ConnectSession, _turn: number, length: number, bytes: Uint8Array | undefined) {
    this.lengths.push(length);
    if (bytes !== undefined) this.bytes.push(new TextDecoder().decode(bytes));
  }
  turnOver() {}
}

async function withTransport(
  run: (
    transport: ConnectTransport,
    session: ListeningSession,
    conn: Deno.Conn,
    listener: RecordingListener,
  ) => Promise<void>,
  reads = true,
  onChange = () => {},
) {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const listener = new RecordingListener(reads);
  const transport = new ConnectTransport([], onChange, listener);
  const session = new ListeningSession({
    targetAddress: parseIpv4("127.0.0.1")!,
    targetPort: (server.addr as Deno.NetAddr).port,
  });
  try {
    const accepted = server.accept();
    transport.connect(session as unknown as ConnectSession);
    const conn = await accepted;
    await until(() => session.news.includes("connected"), "connected");
    try {
      await run(transport, session, conn, listener);
    } finally {
      conn.close();
    }
  } finally {
    await transport.closeAll();
    server.close();
  }
}

/**
 * `count` sessions toward a loopback server through one transport, none connected yet: `connect` opens
 * one and gives the server's end of it (its transport call made before it returns, in the caller's turn);
 * `accept` gives the server's end of the next connection, for sessions the caller opened itself.
 */
async function withSessions(
  count: number,
  reads: boolean,
  run: (
    transport: ConnectTransport,
    sessions: ListeningSession[],
    connect: (session: ListeningSession) => Promise<Deno.Conn>,
    listener: RecordingListener,
    accept: () => Promise<Deno.Conn>,
  ) => Promise<void>,
  { connectQueueCapacity, changed = () => {} }: {
    connectQueueCapacity?: number;
    changed?: (session: ConnectSession) => void;
  } = {},
) {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const listener = new RecordingListener(reads);
  const transport = new ConnectTransport([], changed, listener, connectQueueCapacity);
  const target = { targetAddress: parseIpv4("127.0.0.1")!, targetPort: (server.addr as Deno.NetAddr).port };
  const sessions = Array.from({ length: count }, () => new ListeningSession(target));
  const conns: Deno.Conn[] = [];
  const accept = async () => {
    // Long enough for a connect thread still starting (under `deno test` its module is type-checked first).
    const conn = await acceptWithin(server, 60_000);
    conns.push(conn);
    return conn;
  };
  const connect = async (session: ListeningSession) => {
    const accepted = accept();
    transport.connect(session as unknown as ConnectSession);
    return await accepted;
  };
  try {
    await run(transport, sessions, connect, listener, accept);
  } finally {
    for (const conn of conns) conn.close();
    await transport.closeAll();
    server.close();
  }
}

async function until(condition: () => boolean, what: string) {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 5000) throw new Error(`still waiting: ${what}`);
    await sleep(5);
  }
}

/** Reads `conn` until `count` bytes or its end. */
async function readBytes(conn: Deno.Conn, count: number): Promise<Uint8Array> {
  const got = new Uint8Array(count);
  let length = 0;
  while (length < count) {
    const read = await conn.read(got.subarray(length));
    if (read === null) break;
    length += read;
  }
  return got.subarray(0, length);
}

const encoder = new TextEncoder();

Deno.test("a connection's writes in one turn of the event loop leave in one send, in order", async () => {
  await withTransport(async (transport, session, conn) => {
    const as = session as unknown as ConnectSession;
    for (const part of ["GET /a HTTP/1.1\r\n", "Host: x\r\n", "\r\n"]) {
      transport.write(as, encoder.encode(part));
    }
    assert.equal(transport.writes, 0, "nothing sent before the turn is over");
    await until(() => transport.writes > 0, "the send");
    assert.equal(new TextDecoder().decode(await readBytes(conn, 28)), "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(transport.writes, 1);
  });
});

Deno.test("what a write hands over is copied: the caller may reuse its bytes at once", async () => {
  await withTransport(async (transport, session, conn) => {
    const as = session as unknown as ConnectSession;
    // A stream's pooled buffer, reused for the next request before the turn's send.
    const reused = encoder.encode("GET /first HTTP/1.1\r\n\r\n");
    transport.write(as, reused);
    reused.set(encoder.encode("GET /other"));
    transport.write(as, reused.subarray(0, 10));
    const expected = "GET /first HTTP/1.1\r\n\r\nGET /other";
    assert.equal(new TextDecoder().decode(await readBytes(conn, expected.length)), expected);
  });
});

Deno.test("the writes of several connections in one turn leave together, each whole", async () => {
  await withSessions(5, true, async (transport, sessions, connect) => {
    const conns: Deno.Conn[] = [];
    for (const session of sessions) {
      conns.push(await connect(session));
      await until(() => session.news.includes("connected"), "connected");
    }
    // Each connection's writes of one turn, and one of 100 KB (more than one send takes) among them.
    sessions.forEach((session, i) => {
      const as = session as unknown as ConnectSession;
      transport.write(as, encoder.encode(`request ${i}, `));
      transport.write(as, i === 2 ? new Uint8Array(100_000).fill(120) : encoder.encode("and more"));
    });
    for (let i = 0; i < sessions.length; i++) {
      const expected = `request ${i}, ` + (i === 2 ? "x".repeat(100_000) : "and more");
      assert.equal(new TextDecoder().decode(await readBytes(conns[i], expected.length)), expected);
    }
  });
});

Deno.test("writes the kernel has no room for wait, whole and in order, then the FIN", async () => {
  await withTransport(async (transport, session, conn) => {
    // 4 MB in pieces of odd sizes, some gathered, some larger than one send: far more than the socket
    // buffers hold while the server does not read.
    const pieces: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; total < 4_000_000; i++) {
      const piece = new Uint8Array(i % 3 === 0 ? 70_000 : 1 + (i * 7919) % 9000);
      for (let j = 0; j < piece.length; j++) piece[j] = (total + j) % 251;
      pieces.push(piece);
      total += piece.length;
    }
    const as = session as unknown as ConnectSession;
    for (const piece of pieces) transport.write(as, piece);
    transport.shutdown(as);
    await sleep(50);
    const got = await readBytes(conn, total + 1);
    assert.equal(got.length, total, "every byte, then the end of the stream");
    const wrong = got.findIndex((byte, i) => byte !== i % 251);
    assert.equal(wrong, -1, `byte ${wrong} out of order`);
  });
});

Deno.test("what was written before a close or a reset still goes first", async () => {
  for (const end of ["close", "reset"] as const) {
    await withTransport(async (transport, session, conn) => {
      transport.write(session as unknown as ConnectSession, encoder.encode("last words"));
      transport[end](session as unknown as ConnectSession);
      assert.equal(transport.open, 0);
      assert.equal(new TextDecoder().decode(await readBytes(conn, 10)), "last words", end);
    });
  }
});

Deno.test("a close in the turn of the client's FIN ends the stream after the bytes, as a FIN would", async () => {
  await withTransport(async (transport, session, conn) => {
    const as = session as unknown as ConnectSession;
    transport.write(as, encoder.encode("request"));
    transport.shutdown(as);
    transport.close(as);
    // A RST would fail the read (ECONNRESET) or lose the bytes; the end of the stream follows them.
    assert.equal(new TextDecoder().decode(await readBytes(conn, 8)), "request");
  });
});

Deno.test("the closes of one turn go at its end, each after its bytes; one opened meanwhile stays open", async () => {
  await withSessions(5, false, async (transport, sessions, connect) => {
    const conns: Deno.Conn[] = [];
    for (const session of sessions.slice(0, 4)) conns.push(await connect(session));
    await until(
      () => sessions.slice(0, 4).every((session) => session.news.includes("connected")),
      "connected",
    );
    // In one turn: each writes and closes, and a fifth connection opens (its descriptor must be a new one).
    for (const [i, session] of sessions.slice(0, 4).entries()) {
      transport.write(session as unknown as ConnectSession, encoder.encode(`request ${i}`));
      transport.close(session as unknown as ConnectSession);
    }
    conns.push(await connect(sessions[4]));
    // Each read ends at the connection's FIN: a close never made would leave it waiting.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const texts = await Promise.race([
      Promise.all(conns.slice(0, 4).map((conn) => readBytes(conn, 100))),
      new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error("no FIN in 5 s")), 5000)),
    ]).finally(() => clearTimeout(timer));
    assert.deepEqual(
      texts.map((bytes) => new TextDecoder().decode(bytes)),
      [0, 1, 2, 3].map((i) => `request ${i}`),
    );
    await until(() => sessions[4].news.includes("connected"), "the fifth connected");
    transport.write(sessions[4] as unknown as ConnectSession, encoder.encode("still open"));
    assert.equal(new TextDecoder().decode(await readBytes(conns[4], 10)), "still open");
    assert.equal(transport.open, 1);
  });
});

Deno.test("answers come one read per news, then the target's FIN, nothing lost between", async () => {
  await withTransport(async (_transport, session, conn, listener) => {
    await conn.write(encoder.encode("first"));
    await until(() => session.answered === 5, "the first answer");
    // Bytes and the FIN at once: read, then the FIN on the poll's next news.
    await conn.write(encoder.encode("second"));
    await conn.closeWrite();
    await until(() => session.news.includes("closed by target"), "the FIN");
    assert.equal(session.answered, 11);
    assert.deepEqual(listener.bytes, ["first", "second"]);
    assert.deepEqual(session.news, ["connected", "closed by target"]);
  });
});

Deno.test("answers nobody reads, of several connections at once, are counted to each one's FIN", async () => {
  await withSessions(20, false, async (_transport, sessions, connect, listener) => {
    const conns: Deno.Conn[] = [];
    for (const session of sessions) conns.push(await connect(session));
    await until(() => sessions.every((session) => session.news.includes("connected")), "all connected");
    // Answers of 100-2,000 bytes and 70 KB (more than one read takes), each followed by its FIN.
    const lengths = sessions.map((_, i) => i % 5 === 0 ? 70_000 : 100 * (i + 1));
    await Promise.all(conns.map(async (conn, i) => {
      const bytes = new Uint8Array(lengths[i]);
      for (let written = 0; written < bytes.length;) written += await conn.write(bytes.subarray(written));
      await conn.closeWrite();
    }));
    await until(() => sessions.every((session) => session.news.includes("closed by target")), "every FIN");
    assert.deepEqual(sessions.map((session) => session.answered), lengths);
    assert.deepEqual(listener.bytes, []);
    assert.ok(sessions.every((session) => session.news.join() === "connected,closed by target"));
  });
});

Deno.test("answers nobody reads are counted, their bytes never handed over", async () => {
  await withTransport(async (_transport, session, conn, listener) => {
    await conn.write(new Uint8Array(300).fill(7));
    await until(() => session.answered === 300, "the answer counted");
    assert.equal(listener.lengths.reduce((sum, length) => sum + length, 0), 300);
    assert.deepEqual(listener.bytes, []);
  }, false);
});

Deno.test("an answer longer than one read is read whole", async () => {
  await withTransport(async (_transport, session, conn) => {
    // 16 MB, then silence with the connection open: one read per news takes 64 KB at most, and the
    // poll reports the socket again while bytes wait.
    const total = 16 * 1024 * 1024;
    const bytes = new Uint8Array(total);
    for (let written = 0; written < total;) written += await conn.write(bytes.subarray(written));
    await until(() => session.answered === total, `all ${total} bytes`);
    assert.deepEqual(session.news, ["connected"]);
  });
});

Deno.test("a refused connection reaches the session", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const transport = new ConnectTransport([], () => {}, new RecordingListener(true));
  const refused = new ListeningSession({ targetAddress: parseIpv4("127.0.0.1")!, targetPort: port });
  transport.connect(refused as unknown as ConnectSession);
  await until(() => refused.news.length > 0, "the refusal");
  assert.deepEqual(refused.news, ["refused"]);
  assert.equal(transport.open, 0);
  await transport.closeAll();
});

Deno.test("news of many connections at once is settled in passes, the event loop turning between", async () => {
  const count = 300;
  const order: string[] = [];
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const transport = new ConnectTransport([], () => {
    if (order.length === 0) setImmediate(() => order.push("turn"));
    order.push("news");
  }, new RecordingListener(false));
  const target = { targetAddress: parseIpv4("127.0.0.1")!, targetPort: (server.addr as Deno.NetAddr).port };
  const sessions = Array.from({ length: count }, () => new ListeningSession(target));
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for (let i = 0; i < count; i++) conns.push(await server.accept());
  })();
  try {
    for (const session of sessions) transport.connect(session as unknown as ConnectSession);
    await accepting;
    await until(() => sessions.every((session) => session.news.includes("connected")), "all connected");
    const firstPass = order.indexOf("turn");
    assert.ok(firstPass > 0 && firstPass <= 256, `the event loop turned after ${firstPass} of ${count}`);
  } finally {
    for (const conn of conns) conn.close();
    await transport.closeAll();
    server.close();
  }
});

Deno.test("a connection is reported only when it has news: not once open and idle, not after the target's FIN", async () => {
  let changes = 0;
  await withTransport(
    async (_transport, session, conn) => {
      // Open, nothing to send or read: a socket still watched for room to write would be reported at every
      // wait, thousands of times in this pause.
      changes = 0;
      await sleep(100);
      assert.equal(changes, 0, "an idle open connection");
      // The target's FIN, nothing left to send: the end of the stream stays readable, and a socket still
      // watched would be reported again and again.
      await conn.closeWrite();
      await until(() => session.news.includes("closed by target"), "the FIN");
      changes = 0;
      await sleep(100);
      assert.equal(changes, 0, "after the target's FIN");
    },
    false,
    () => changes++,
  );
});

/**
 * Sockets of this network namespace that called connect(2) toward loopback port `port` (their handshake on
 * its way or done), from /proc/net/tcp: a connect made at once counts, one queued for the connect thread not
 * yet.
 */
function connectsMadeTo(port: number): number {
  const SYN_SENT = "02", ESTABLISHED = "01";
  return readKernelFile("/proc/net/tcp")!.split("\n").slice(1).filter((line) => {
    const [, , remote, state] = line.trim().split(/\s+/);
    return remote !== undefined && parseInt(remote.split(":")[1], 16) === port &&
      (state === SYN_SENT || state === ESTABLISHED);
  }).length;
}

/**
 * Has each of `sessions` write `request <i>`, and answers it on its connection (one of `conns`, in any order)
 * with `answerLength(i)` bytes: a connection that mixed up its session's bytes gives another's count.
 */
async function requestAndAnswer(
  transport: ConnectTransport,
  sessions: ListeningSession[],
  conns: Deno.Conn[],
  answerLength: (i: number) => number,
) {
  sessions.forEach((session, i) => {
    transport.write(session as unknown as ConnectSession, encoder.encode(`request ${i}`));
  });
  await Promise.all(conns.map(async (conn) => {
    const request = new TextDecoder().decode(await readBytes(conn, "request 0".length));
    assert.match(request, /^request \d$/);
    const bytes = new Uint8Array(answerLength(Number(request.slice(-1))));
    for (let written = 0; written < bytes.length;) written += await conn.write(bytes.subarray(written));
  }));
  await until(() => sessions.every((session, i) => session.answered === answerLength(i)), "every answer");
}

Deno.test("connects past the queue's capacity are made at once on this thread, their sessions served as the rest", async () => {
  await withSessions(5, true, async (transport, sessions, _connect, listener, accept) => {
    const port = sessions[0].endpoints.targetPort;
    const before = connectsMadeTo(port);
    // In one turn of the event loop, as a capture batch's new sessions: two queued, three made here.
    for (const session of sessions) transport.connect(session as unknown as ConnectSession);
    assert.equal(connectsMadeTo(port) - before, 3, "connect(2) called within connect() past the capacity");
    assert.equal(transport.open, 5);
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < sessions.length; i++) conns.push(await accept());
    await until(() => sessions.every((session) => session.news.includes("connected")), "all connected");
    await requestAndAnswer(transport, sessions, conns, (i) => 100 * (i + 1));
    assert.equal(listener.lengths.reduce((sum, length) => sum + length, 0), 1500);
    assert.ok(sessions.every((session) => session.news.join() === "connected"));
    assert.equal(transport.open, 5);
  }, { connectQueueCapacity: 2 });
});

Deno.test("a connect that fails at once on this thread is told to its session once, after connect()", async () => {
  const ENETUNREACH = 101;
  const changes: unknown[] = [];
  await withSessions(1, true, async (transport, [queued], _connect, _listener, accept) => {
    // Loopback's broadcast address: the kernel refuses a TCP connect to it at once, and sends nothing.
    const unreachable = new ListeningSession({
      targetAddress: parseIpv4("127.255.255.255")!,
      targetPort: queued.endpoints.targetPort,
    });
    transport.connect(queued as unknown as ConnectSession); // the queue's one place
    transport.connect(unreachable as unknown as ConnectSession);
    assert.deepEqual(unreachable.news, [], "told once the caller has set the session up");
    assert.equal(transport.open, 1);
    await accept();
    await until(() => queued.news.includes("connected") && unreachable.news.length > 0, "both outcomes");
    await sleep(100); // a connection left watched would be reported again meanwhile
    assert.deepEqual(unreachable.news, [`failed: errno ${ENETUNREACH}`]);
    assert.equal(changes.filter((session) => session === unreachable).length, 1);
    assert.equal(transport.bindFailures, 0);
    assert.deepEqual(queued.news, ["connected"]);
    assert.equal(transport.open, 1);
  }, { connectQueueCapacity: 1, changed: (session) => changes.push(session) });
});

// The worker's module cannot be read, so the connect thread never starts, as when a compiled binary lacks
// it. Deno still prints the worker's error on stderr (the queue's `onerror` keeps it from ending the run).
Deno.test({
  name: "without a connect thread, connects are made on this thread, the one queued before it failed too",
  permissions: { read: false, net: true, ffi: true },
  fn: async () => {
    await withSessions(2, true, async (transport, sessions, connect) => {
      const [queued, madeHere] = sessions;
      // Queued: the thread's failure is an event, told in a later turn of the event loop.
      const conns = [await connect(queued)];
      await until(() => queued.news.includes("connected"), "the queued one connected");
      conns.push(await connect(madeHere));
      await until(() => madeHere.news.includes("connected"), "the one made here connected");
      await requestAndAnswer(transport, sessions, conns, (i) => 300 + i);
      assert.ok(sessions.every((session) => session.news.join() === "connected"));
      assert.equal(transport.open, 2);
    });
  },
});

Deno.test("the pause that gathers answers never holds the busiest connection below its pace", () => {
  // 32 connections at 34,000 req/s: about 106 writes each in 100 ms, 940 µs apart: the whole 400 µs.
  assert.equal(gatherPause(106, 100), 400);
  assert.equal(gatherPause(0, 100), 400); // nothing written: nothing to hold back
  // A pool's connection at 4,000 writes a second: 250 µs apart, so at most half of that.
  assert.equal(gatherPause(400, 100), 125);
  // A pipelining client at 20,000 a second: a pause of 25 µs would save less than it delays, so none.
  assert.equal(gatherPause(2000, 100), 0);
  for (const writes of [1, 10, 100, 500, 999, 1000, 5000]) {
    const pause = gatherPause(writes, 100);
    assert.ok(pause <= (100_000 / writes) / 2, `${writes} writes: ${pause} µs`);
  }
});
