/** The session table's own bookkeeping, beyond what the simulation checks. */
import assert from "node:assert/strict";
import {
  defaultSessionConfig,
  type SegmentIn,
  type SessionEndpoints,
  sessionIsn,
  SessionTable,
  startsSession,
} from "../../src/session/mod.ts";
import { port80Plan } from "./_plan.ts";
import { TcpFlag, type TcpOptions, type TcpRepr } from "../../src/wire/mod.ts";
import { keptSegment } from "./_segment.ts";

const CLIENT = 0xc6120a0a | 0;
const ONLINE = 0xc6120001 | 0;
const TARGET = 0xc6120002 | 0;
const FAKE_CLIENTS = 0xc6130000 | 0;

function segment(
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  options: TcpOptions = {},
  payload = new Uint8Array(0),
): SegmentIn & { srcPort: number; dstPort: number } {
  return {
    srcPort,
    dstPort,
    seq,
    ack,
    flags,
    window: 502,
    payloadLength: payload.length,
    payload: () => payload,
    options: () => options,
  };
}

Deno.test("sessions that are over do not stay in the timer heap until their old deadlines", () => {
  const table = new SessionTable(port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }] }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  const sessions = 5000;
  for (let i = 0; i < sessions; i++) {
    const port = 10_000 + i;
    const now = i * 3000; // the last session's lingering is over
    table.onCapture(CLIENT, ONLINE, segment(port, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), now);
    const [client] = [...table.openClients()];
    // Established: the next deadline is the idle timeout, minutes away; then the client resets.
    table.onReply(
      client.clientAddress,
      segment(8080, client.clientPort, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK, { mss: 1460 }),
      now,
    );
    table.onCapture(CLIENT, ONLINE, segment(port, 80, 1001, 5001, TcpFlag.ACK), now);
    table.onCapture(CLIENT, ONLINE, segment(port, 80, 1001, 5001, TcpFlag.RST), now);
    table.tick(now + defaultSessionConfig.lingerMs);
    assert.equal(table.active, 0);
  }
  assert.equal(table.counters.outcomes["reset-by-client"], sessions);
  assert.ok(table.timerEntries <= 1024 + 1, `${table.timerEntries} timer entries for no session`);
});

Deno.test("a completed session lingers: a repeated FIN is acknowledged, then the copy is forgotten", () => {
  const sent: number[] = [];
  const clients: string[] = [];
  const table = new SessionTable(
    port80Plan(TARGET, {
      clients: [{ first: FAKE_CLIENTS, count: 254 }],
      session: { ...defaultSessionConfig, lingerMs: 2000 },
    }),
    {
      segment: (_endpoints, tcp) => sent.push(tcp.flags),
      clientOpened: () => clients.push("opened"),
      clientClosed: () => clients.push("closed"),
    },
  );
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  const [{ clientAddress, clientPort }] = [...table.openClients()];
  const reply = (seq: number, ack: number, flags: number, now: number) =>
    table.onReply(clientAddress, segment(8080, clientPort, seq, ack, flags, { mss: 1460 }), now);
  reply(5000, 1001, TcpFlag.SYN | TcpFlag.ACK, 1);
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 5001, TcpFlag.ACK | TcpFlag.FIN), 2);
  reply(5001, 1002, TcpFlag.ACK | TcpFlag.FIN, 3);
  assert.equal(table.counters.outcomes.completed, 1);
  assert.equal(table.active, 0);
  assert.equal(table.lingering, 1);
  assert.deepEqual([...table.openClients()], [], "nothing open to register again");
  const before = sent.length;
  reply(5001, 1002, TcpFlag.ACK | TcpFlag.FIN, 1000);
  assert.deepEqual(sent.slice(before), [TcpFlag.ACK], "the repeated FIN is acknowledged");
  table.tick(2002);
  assert.equal(table.lingering, 1);
  table.tick(table.nextDeadline);
  assert.equal(table.lingering, 0);
  assert.deepEqual(clients, ["opened", "closed"]);
  reply(5001, 1002, TcpFlag.ACK | TcpFlag.FIN, 3000);
  assert.equal(sent.length, before + 1);
  assert.equal(table.counters.repliesUnmatched, 1);
});

Deno.test("a repeated FIN is answered with the copy's last ACK, from its client address and port", () => {
  const sent: { endpoints: SessionEndpoints; tcp: TcpRepr }[] = [];
  const table = new SessionTable(port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }] }), {
    segment: (endpoints, tcp) => sent.push({ endpoints: { ...endpoints }, tcp: keptSegment(tcp) }),
    clientOpened() {},
    clientClosed() {},
  });
  const timestamp = (value: number, echo: number) => ({ timestamp: { value, echo } });
  table.onCapture(
    CLIENT,
    ONLINE,
    segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460, ...timestamp(9, 0) }),
    0,
  );
  const [{ clientAddress, clientPort }] = [...table.openClients()];
  const reply = (seq: number, ack: number, flags: number, options: TcpOptions, now: number) =>
    table.onReply(clientAddress, segment(8080, clientPort, seq, ack, flags, options), now);
  reply(0xfffffff0, 1001, TcpFlag.SYN | TcpFlag.ACK, { mss: 1460, ...timestamp(0x80000001, 9) }, 1);
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 5001, TcpFlag.ACK | TcpFlag.FIN), 2);
  reply(0xfffffff1, 1002, TcpFlag.ACK | TcpFlag.FIN, timestamp(0x80000002, 9), 3);
  assert.equal(table.lingering, 1);
  const last = sent.at(-1)!;
  assert.equal(last.tcp.flags, TcpFlag.ACK);
  assert.equal(last.tcp.ack, 0xfffffff2);
  reply(0xfffffff1, 1002, TcpFlag.ACK | TcpFlag.FIN, timestamp(0x80000003, 9), 1000);
  assert.deepEqual(sent.at(-1), last, "the same ACK again");
  assert.equal(sent.at(-1)!.endpoints.clientPort, clientPort);
  const count = sent.length;
  reply(0xfffffff2, 1002, TcpFlag.ACK, timestamp(0x80000004, 9), 1001);
  assert.equal(sent.length, count, "nothing but a FIN is answered");
  assert.equal(table.counters.repliesUnmatched, 0, "the copy's replies are its own while it lingers");
});

Deno.test("a late packet of a session over is not copied as a new one while the session lingers", () => {
  const table = new SessionTable(port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }] }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  const request = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  const [{ clientAddress, clientPort }] = [...table.openClients()];
  table.onReply(
    clientAddress,
    segment(8080, clientPort, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK, { mss: 1460 }),
    1,
  );
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 7001, TcpFlag.RST), 3);
  assert.equal(table.counters.outcomes["reset-by-client"], 1);
  assert.equal(table.lingering, 1);
  // Data of the session captured after its end (out of order, or sent again).
  const late = segment(40_000, 80, 1001, 7001, TcpFlag.ACK | TcpFlag.PSH, {}, request);
  table.onCapture(CLIENT, ONLINE, late, 500);
  assert.equal(table.counters.sessionsCopied, 1, "not taken over while the session lingers");
  assert.equal(table.active, 0);
  table.tick(3 + defaultSessionConfig.lingerMs - 1);
  assert.equal(table.lingering, 1);
  table.tick(3 + defaultSessionConfig.lingerMs);
  assert.equal(table.lingering, 0);
  table.onCapture(CLIENT, ONLINE, late, 3000);
  assert.equal(table.counters.sessionsCopied, 2, "forgotten once its lingering is over: data is taken over");
  // A new connection from the port while the copy lingers is copied at once.
  table.onCapture(CLIENT, ONLINE, segment(40_001, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 3001);
  table.onCapture(CLIENT, ONLINE, segment(40_001, 80, 1001, 0, TcpFlag.RST), 3002);
  assert.equal(table.lingering, 1);
  table.onCapture(CLIENT, ONLINE, segment(40_001, 80, 90_000, 0, TcpFlag.SYN, { mss: 1460 }), 3003);
  assert.equal(table.counters.sessionsCopied, 4);
  assert.equal(table.active, 2);
});

Deno.test("the sink hears how each copy ended, with the real client's address and port", () => {
  const ended: string[] = [];
  const table = new SessionTable(
    port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }], multiply: 2 }),
    {
      segment() {},
      clientOpened() {},
      clientClosed() {},
      ended: (address, port, endpoints, outcome) =>
        ended.push(`${address === CLIENT} ${port} ${endpoints.targetPort} ${outcome}`),
    },
  );
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  assert.deepEqual(ended, []);
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 5001, TcpFlag.RST), 1);
  assert.deepEqual(ended, ["true 40000 8080 reset-by-client", "true 40000 8080 reset-by-client"]);
});

Deno.test("what starts a session: a SYN with a new ISN, or data where no session is known", () => {
  const packet = (flags: number, seq: number, payloadLength = 0) => ({ flags, seq, payloadLength });
  assert.equal(startsSession(undefined, packet(TcpFlag.SYN, 100)), true);
  assert.equal(startsSession(100, packet(TcpFlag.SYN, 100)), false, "a retransmitted SYN");
  assert.equal(startsSession(100, packet(TcpFlag.SYN, 900)), true, "the port reused");
  assert.equal(startsSession(undefined, packet(TcpFlag.ACK, 101, 10)), true, "taken over");
  assert.equal(startsSession(undefined, packet(TcpFlag.ACK, 101)), false, "no data to take over from");
  assert.equal(startsSession(undefined, packet(TcpFlag.RST | TcpFlag.ACK, 101, 10)), false);
  assert.equal(startsSession(100, packet(TcpFlag.ACK, 101, 10)), false);
  assert.equal(sessionIsn(packet(TcpFlag.SYN, 100)), 100);
  assert.equal(sessionIsn(packet(TcpFlag.ACK, 0, 10)), -1, "the byte before the data, wrapped, signed");
  assert.equal(
    startsSession(sessionIsn(packet(TcpFlag.SYN, 0xfffffff0)), packet(TcpFlag.SYN, 0xfffffff0)),
    false,
    "a retransmitted SYN whose ISN is above 2**31",
  );
});

Deno.test("a client that reuses its port leaves the old copy to finish: the new one takes another port", () => {
  const sent: { port: number; flags: number; payload: string }[] = [];
  const table = new SessionTable(port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }] }), {
    segment: (endpoints, tcp) =>
      sent.push({
        port: endpoints.clientPort,
        flags: tcp.flags,
        payload: new TextDecoder().decode(tcp.payload ?? new Uint8Array(0)),
      }),
    clientOpened() {},
    clientClosed() {},
  });
  const request = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 7001, TcpFlag.ACK | TcpFlag.PSH, {}, request), 1);
  const [old] = [...table.openClients()];
  // The online conversation is over and the client connects again from the same port before the
  // target has even answered the old copy's SYN.
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 9000, 0, TcpFlag.SYN, { mss: 1460 }), 2);
  const endpoints = [...table.openClients()];
  assert.equal(endpoints.length, 2, "both copies open");
  assert.equal(new Set(endpoints.map((copy) => copy.clientPort)).size, 2, "the new copy on another port");
  assert.ok(sent.every(({ flags }) => !(flags & TcpFlag.RST)), "nothing reset on the target");
  table.onReply(
    old.clientAddress,
    segment(8080, old.clientPort, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK, { mss: 1460 }),
    3,
  );
  assert.ok(
    sent.some(({ port, payload }) => port === old.clientPort && payload === "GET / HTTP/1.1\r\n\r\n"),
    "the old copy still delivers its request",
  );
  assert.equal(table.counters.outcomes.abandoned, 0);
});

Deno.test("a client port reused 40 times while the earlier copies still run: each new connection is copied", () => {
  // A client with one ephemeral port (or two) reconnects faster than a slow target takes the copies: the
  // copies of one client port, open or lingering, each need their own client address and port.
  const table = new SessionTable(port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }] }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  const request = new TextEncoder().encode("POST / HTTP/1.1\r\n\r\n");
  for (let connection = 0; connection < 40; connection++) {
    const isn = 1000 + connection * 100_000;
    table.onCapture(CLIENT, ONLINE, segment(40_000, 80, isn, 0, TcpFlag.SYN, { mss: 1460 }), connection);
    const data = segment(40_000, 80, isn + 1, 7001, TcpFlag.ACK | TcpFlag.PSH, {}, request);
    table.onCapture(CLIENT, ONLINE, data, connection);
  }
  const endpoints = [...table.openClients()];
  assert.equal(endpoints.length, 40);
  assert.equal(new Set(endpoints.map((e) => `${e.clientAddress}:${e.clientPort}`)).size, 40);
  assert.equal(table.counters.sessionsCopied, 40);
  assert.equal(table.counters.sessionsWithoutAddress, 0);
});

Deno.test("a connection left without a client address and port is counted once, not once per packet", () => {
  const table = new SessionTable(port80Plan(TARGET), { segment() {}, clientOpened() {}, clientClosed() {} });
  const request = new TextEncoder().encode("POST / HTTP/1.1\r\n\r\n");
  // 65 connections from one client port, all still copied when the last comes: 64 addresses and ports.
  for (let connection = 0; connection < 65; connection++) {
    const isn = 1000 + connection * 100_000;
    table.onCapture(CLIENT, ONLINE, segment(40_000, 80, isn, 0, TcpFlag.SYN, { mss: 1460 }), connection);
    for (let piece = 0; piece < 3; piece++) {
      const seq = isn + 1 + piece * request.length;
      table.onCapture(CLIENT, ONLINE, segment(40_000, 80, seq, 7001, TcpFlag.ACK, {}, request), connection);
    }
  }
  assert.equal(table.counters.sessionsCopied, 64);
  assert.equal(table.counters.sessionsWithoutAddress, 1);
});

Deno.test("a session refused at the cap or by the memory guard is counted once, not once per packet", () => {
  const table = new SessionTable(port80Plan(TARGET, { maxSessions: 1 }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  const request = (port: number) =>
    segment(port, 80, 1001, 1, TcpFlag.ACK | TcpFlag.PSH, {}, new Uint8Array(10));
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  // Its client completed the handshake: the session keeps its place (a half-open one would go).
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 1, TcpFlag.ACK), 0);
  table.onCapture(CLIENT, ONLINE, segment(40_001, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  table.onCapture(CLIENT, ONLINE, request(40_001), 1);
  table.onCapture(CLIENT, ONLINE, request(40_001), 2);
  assert.equal(table.counters.sessionsRefusedAtCap, 1);

  table.paused = true;
  table.onCapture(CLIENT, ONLINE, segment(40_002, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 3);
  table.onCapture(CLIENT, ONLINE, request(40_002), 4);
  assert.equal(table.counters.sessionsRefusedWhilePaused, 1);
  assert.equal(table.counters.sessionsCopied, 1);
});

Deno.test("a SYN flood cannot keep real clients out: at the cap the oldest half-open copy goes", () => {
  const payloads: string[] = [];
  const table = new SessionTable(
    port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }], maxSessions: 20 }),
    {
      segment: (_endpoints, tcp) => {
        if (tcp.payload !== undefined) payloads.push(new TextDecoder().decode(tcp.payload));
      },
      clientOpened: (endpoints) => opened = endpoints,
      clientClosed() {},
    },
  );
  let opened: SessionEndpoints | undefined;
  let spoofed = 0;
  const flood = (count: number, now: number) => {
    for (let i = 0; i < count; i++, spoofed++) {
      const source = (0x0b000000 + spoofed * 7919) >>> 0; // every SYN from another address
      table.onCapture(source, ONLINE, segment(1024 + (spoofed % 60_000), 80, spoofed, 0, TcpFlag.SYN), now);
    }
  };
  flood(1000, 0);
  assert.equal(table.active, 20);
  // A real client among the flood: its SYN, a few spoofed ones, its handshake ACK and request, then
  // 100,000 more spoofed SYNs.
  const request = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 1);
  const real = opened!;
  table.onReply(
    real.clientAddress,
    segment(8080, real.clientPort, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK, { mss: 1460 }),
    2,
  );
  flood(10, 3); // fewer than the cap: the real copy is still there
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 7001, TcpFlag.ACK), 4);
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 7001, TcpFlag.ACK | TcpFlag.PSH, {}, request), 4);
  flood(100_000, 5);
  assert.deepEqual(payloads, ["GET / HTTP/1.1\r\n\r\n"]);
  assert.ok([...table.openClients()].some((r) => r.clientPort === real.clientPort), "the real copy stays");
  assert.equal(table.counters.sessionsRefusedAtCap, 0);
  assert.equal(table.counters.sessionsHalfOpenEvicted, spoofed - 19);
  assert.equal(table.counters.outcomes["half-open"], spoofed - 19);
  assert.equal(table.lingering, 0, "half-open copies do not linger");
});

Deno.test("a copy whose client never completes its handshake ends after a few seconds, not the idle timeout", () => {
  const table = new SessionTable(port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }] }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  const [{ clientAddress, clientPort }] = [...table.openClients()];
  table.onReply(clientAddress, segment(8080, clientPort, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK, {}), 1);
  const timeout = defaultSessionConfig.halfOpenTimeoutMs;
  assert.ok(timeout <= 5000);
  table.tick(timeout);
  assert.equal(table.active, 1);
  table.tick(timeout + 1);
  assert.equal(table.active, 0);
  assert.equal(table.lingering, 0);
  assert.equal(table.counters.outcomes["half-open"], 1);
  // The client's data, should it come after all, is taken over: the copy was not given up for good.
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 7001, TcpFlag.ACK, {}, new Uint8Array(10)), 9000);
  assert.equal(table.active, 1);
});

Deno.test("the sink hears each copy's client address and port opened, then closed once its lingering is over", () => {
  const events: string[] = [];
  const name = (e: SessionEndpoints) =>
    `${e.clientAddress}:${e.clientPort}>${e.targetAddress}:${e.targetPort}`;
  const table = new SessionTable(
    port80Plan(TARGET, { clients: [{ first: FAKE_CLIENTS, count: 254 }], multiply: 2 }),
    {
      segment() {},
      clientOpened: (endpoints) => events.push(`opened ${name(endpoints)}`),
      clientClosed: (endpoints) => events.push(`closed ${name(endpoints)}`),
    },
  );
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1000, 0, TcpFlag.SYN, { mss: 1460 }), 0);
  const open = [...table.openClients()].map(name);
  assert.equal(new Set(open).size, 2, "two copies, two client ports");
  // The table lists its copies in no particular order (its map's hashes are seeded per process).
  assert.deepEqual([...events].sort(), open.map((copy) => `opened ${copy}`).sort());
  table.onCapture(CLIENT, ONLINE, segment(40_000, 80, 1001, 5001, TcpFlag.RST), 1);
  assert.deepEqual([...table.openClients()], [], "over: nothing to tell a reconnected listener");
  assert.equal(events.length, 2, "still lingering: the address and port are held");
  table.tick(1 + defaultSessionConfig.lingerMs);
  assert.deepEqual(events.slice(2).sort(), open.map((copy) => `closed ${copy}`).sort());
});

Deno.test("the table has room for sessions up to its cap, lingering ones counted", () => {
  const table = new SessionTable(port80Plan(TARGET, { maxSessions: 2 }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  assert.ok(table.hasRoomFor(2));
  assert.ok(!table.hasRoomFor(3));
  table.onCapture(CLIENT, ONLINE, segment(40000, 80, 1000, 0, TcpFlag.SYN), 0);
  assert.ok(table.hasRoomFor(1));
  assert.ok(!table.hasRoomFor(2));
  table.onCapture(CLIENT, ONLINE, segment(40000, 80, 1001, 0, TcpFlag.RST), 1);
  assert.equal(table.active, 0);
  assert.equal(table.lingering, 1);
  assert.ok(!table.hasRoomFor(2), "a lingering session still holds its place");
  table.tick(2 + defaultSessionConfig.lingerMs);
  assert.ok(table.hasRoomFor(2));
});
