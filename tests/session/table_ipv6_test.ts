/** The session table with IPv6 clients and targets: keys, families, `-c` ranges, flow labels. */
import assert from "node:assert/strict";
import { rangeAddress, type SegmentIn, type SessionEndpoints, SessionTable } from "../../src/session/mod.ts";
import { port80Plan } from "./_plan.ts";
import { keptSegment } from "./_segment.ts";
import { RegistrationType } from "../../src/protocol/mod.ts";
import { formatAddress, ipv6Address, parseIpv6, TcpFlag, type TcpRepr } from "../../src/wire/mod.ts";

const v6 = (text: string) => ipv6Address(parseIpv6(text)!);
const CLIENT6 = v6("2001:2::10");
const ONLINE6 = v6("2001:2::1");
const TARGET6 = v6("2001:2::2");
const CLIENT4 = 0xc6120a0a | 0;
const TARGET4 = 0xc6120002 | 0;

function segment(srcPort: number, seq: number, ack: number, flags: number): SegmentIn & {
  srcPort: number;
  dstPort: number;
} {
  const payload = new Uint8Array(0);
  return {
    srcPort,
    dstPort: 80,
    seq,
    ack,
    flags,
    window: 502,
    payloadLength: 0,
    payload: () => payload,
    options: () => ({ mss: 1460 }),
  };
}

/** A client event of the table, as copy turns them into registrations. */
interface ClientEvent extends SessionEndpoints {
  readonly type: 1 | 2;
}

function recording() {
  const segments: Array<{ endpoints: SessionEndpoints; tcp: TcpRepr }> = [];
  const registrations: ClientEvent[] = [];
  return {
    segments,
    registrations,
    sink: {
      segment: (endpoints: SessionEndpoints, tcp: TcpRepr) =>
        segments.push({ endpoints, tcp: keptSegment(tcp) }),
      clientOpened: (endpoints: SessionEndpoints) =>
        registrations.push({ type: RegistrationType.ADD, ...endpoints }),
      clientClosed: (endpoints: SessionEndpoints) =>
        registrations.push({ type: RegistrationType.DELETE, ...endpoints }),
    },
  };
}

Deno.test("an IPv6 session is copied, registered and answered like an IPv4 one, its flow info kept", () => {
  const out = recording();
  const table = new SessionTable(port80Plan(TARGET6), out.sink);
  table.onCapture(CLIENT6, ONLINE6, segment(40_000, 1000, 0, TcpFlag.SYN), 0, 0x0b812345);
  assert.equal(table.counters.sessionsCopied, 1);
  assert.equal(out.registrations.length, 1);
  const registration = out.registrations[0];
  assert.equal(registration.type, RegistrationType.ADD);
  assert.equal(formatAddress(registration.clientAddress), "2001:2::10");
  assert.equal(registration.clientPort, 40_000);
  assert.equal(formatAddress(registration.targetAddress), "2001:2::2");
  assert.equal(out.segments[0].tcp.flags, TcpFlag.SYN);
  assert.equal(out.segments[0].endpoints.flowInfo, 0x0b812345);
  // The target's SYN-ACK finds the session by the IPv6 client address and port.
  const reply = { ...segment(8080, 5000, 1001, TcpFlag.SYN | TcpFlag.ACK), dstPort: 40_000 };
  table.onReply(CLIENT6, reply, 1);
  assert.equal(table.counters.repliesUnmatched, 0);
  assert.equal(out.segments.at(-1)!.tcp.flags & TcpFlag.ACK, TcpFlag.ACK);
  table.onCapture(CLIENT6, ONLINE6, segment(40_000, 1001, 1, TcpFlag.RST), 2);
  assert.equal(table.counters.outcomes["reset-by-client"], 1);
  // Another port of the same address is another session; an unknown one is unmatched.
  table.onReply(v6("2001:2::11"), reply, 3);
  assert.equal(table.counters.repliesUnmatched, 1);
});

Deno.test("IPv4 and IPv6 sessions on the same port number live side by side", () => {
  const out = recording();
  const plan = port80Plan(TARGET4, {
    mappings: [
      { onlineAddress: ONLINE6, onlinePort: 80, targetAddress: TARGET6, targetPort: 8080 },
      { onlinePort: 80, targetAddress: TARGET4, targetPort: 8080 },
    ],
  });
  const table = new SessionTable(plan, out.sink);
  table.onCapture(CLIENT6, ONLINE6, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  table.onCapture(CLIENT4, 0xc6120001, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  assert.equal(table.active, 2);
  assert.deepEqual(out.registrations.map((r) => formatAddress(r.targetAddress)), ["2001:2::2", "198.18.0.2"]);
});

Deno.test("a client whose family cannot reach the target's is counted, unless -c has the target's family", () => {
  const out = recording();
  const table = new SessionTable(port80Plan(TARGET4), out.sink);
  table.onCapture(CLIENT6, ONLINE6, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  table.onCapture(CLIENT6, ONLINE6, segment(40_000, 1001, 1, TcpFlag.ACK), 1);
  assert.equal(table.counters.sessionsFamilyUnreachable, 1);
  assert.equal(table.counters.sessionsCopied, 0);
  assert.equal(out.segments.length, 0);

  // With an IPv4 range, the IPv6 client gets an IPv4 address; with an IPv6 one, an IPv4 client an IPv6.
  const crossing = new SessionTable(
    port80Plan(TARGET4, { clients: [{ first: 0xc6130001, count: 254 }] }),
    out.sink,
  );
  crossing.onCapture(CLIENT6, ONLINE6, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  assert.equal(crossing.counters.sessionsCopied, 1);
  assert.equal(typeof out.registrations.at(-1)!.clientAddress, "number");
  const toIpv6 = new SessionTable(
    port80Plan(TARGET6, { clients: [{ first: v6("2001:2:0:1::1"), count: 2 ** 32 - 1 }] }),
    out.sink,
  );
  toIpv6.onCapture(CLIENT4, 0xc6120001, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  toIpv6.onCapture(CLIENT4, 0xc6120001, segment(40_001, 1000, 0, TcpFlag.SYN), 0);
  const [first, second] = out.registrations.slice(-2).map((r) => formatAddress(r.clientAddress));
  assert.match(first, /^2001:2:0:1::[0-9a-f:]+$/);
  assert.match(second, /^2001:2:0:1::[0-9a-f:]+$/);
});

Deno.test("a transport whose target never sees the client address copies clients of either family", () => {
  // copy --connect: the target sees this host's connection, so the client's family does not matter.
  const out = recording();
  const sink = { ...out.sink, targetSeesClients: false };
  const toIpv6 = new SessionTable(port80Plan(TARGET6), sink);
  toIpv6.onCapture(CLIENT4, 0xc6120001, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  const toIpv4 = new SessionTable(port80Plan(TARGET4), sink);
  toIpv4.onCapture(CLIENT6, ONLINE6, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  for (const table of [toIpv6, toIpv4]) {
    assert.equal(table.counters.sessionsFamilyUnreachable, 0);
    assert.equal(table.counters.sessionsCopied, 1);
  }
  assert.deepEqual(
    out.registrations.map((r) => [formatAddress(r.clientAddress), formatAddress(r.targetAddress)]),
    [["198.18.10.10", "2001:2::2"], ["2001:2::10", "198.18.0.2"]],
  );
});

Deno.test("sessions toward an IPv6 target are refused and counted while no intercept takes IPv6", () => {
  const out = recording();
  let granted = false;
  const table = new SessionTable(port80Plan(TARGET6), {
    ...out.sink,
    ipv6Replies: () => granted,
  });
  table.onCapture(CLIENT6, ONLINE6, segment(40_000, 1000, 0, TcpFlag.SYN), 0);
  assert.equal(table.counters.sessionsWithoutIpv6Intercept, 1);
  assert.equal(out.segments.length + out.registrations.length, 0);
  granted = true;
  table.onCapture(CLIENT6, ONLINE6, segment(40_001, 1000, 0, TcpFlag.SYN), 1);
  assert.equal(table.counters.sessionsCopied, 1);
});

Deno.test("an IPv6 -c range runs through its low 32 bits, wrapping there, the upper 96 bits kept", () => {
  const ranges = [{ first: v6("2001:2:0:1::ffff:fffe"), count: 4 }];
  const client = v6("2001:2::10");
  const taken = new Set([0, 1, 2, 3].map((probe) => formatAddress(rangeAddress(ranges, 4, client, probe))));
  assert.deepEqual(
    [...taken].sort(),
    ["2001:2:0:1::", "2001:2:0:1::1", "2001:2:0:1::ffff:fffe", "2001:2:0:1::ffff:ffff"],
  );
  // Each a valid Address, the same string every time.
  for (let probe = 0; probe < 4; probe++) {
    assert.equal(rangeAddress(ranges, 4, client, probe), rangeAddress(ranges, 4, client, probe));
    assert.equal(rangeAddress(ranges, 4, client, probe).length, 8);
  }
});
