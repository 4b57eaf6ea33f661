import assert from "node:assert/strict";
import { captureFilter } from "../../src/copy/filter.ts";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { UdpCopier, type UdpPlan } from "../../src/copy/udp.ts";
import { UsageError } from "../../src/errors.ts";
import {
  type Address,
  buildIpv4Tcp,
  emitIpv4Udp,
  emitIpv6Udp,
  formatAddress,
  ipv6Address,
  LinkType,
  parseIpv4,
  parseIpv6,
  TcpFlag,
} from "../../src/wire/mod.ts";

const SERVER = parseIpv4("198.18.0.1")!;
const TARGET = parseIpv4("198.18.0.3")!;
const QUERY = new TextEncoder().encode("a DNS query");

interface Sent {
  source: Address;
  destination: Address;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

function copier(plan: Partial<UdpPlan> = {}): { copier: UdpCopier; sent: Sent[] } {
  const sent: Sent[] = [];
  const copier = new UdpCopier(
    {
      mappings: [{ onlinePort: 53, targetAddress: TARGET, targetPort: 5353 }],
      clients: [],
      rate: 100,
      multiply: 1,
      portShift: 0,
      ...plan,
    },
    (source, destination, srcPort, dstPort, payload) =>
      sent.push({ source, destination, srcPort, dstPort, payload: payload.slice() }),
  );
  return { copier, sent };
}

function rawDatagram(source: number, srcPort: number, dstPort = 53, payload = QUERY): Uint8Array {
  const packet = new Uint8Array(28 + payload.length);
  emitIpv4Udp({ src: source, dst: SERVER, srcPort, dstPort, payload }, packet);
  return packet;
}

Deno.test("each datagram to a udp: port goes to the target from the client's address and port, payload unchanged", () => {
  const { copier: udp, sent } = copier();
  const client = parseIpv4("198.18.0.10")!;
  udp.onFrame(LinkType.RAW, rawDatagram(client, 40000));
  udp.onFrame(LinkType.RAW, rawDatagram(client, 40000, 54)); // not a copied port
  assert.deepEqual(sent, [
    { source: client, destination: TARGET, srcPort: 40000, dstPort: 5353, payload: QUERY },
  ]);
  assert.deepEqual([udp.captured, udp.copied, udp.skippedByRate, udp.malformed], [1, 1, 0, 0]);
});

Deno.test("a mapping with an online address copies only datagrams to that address", () => {
  const { copier: udp, sent } = copier({
    mappings: [{
      onlineAddress: parseIpv4("198.18.0.9")!,
      onlinePort: 53,
      targetAddress: TARGET,
      targetPort: 53,
    }],
  });
  udp.onDatagram(parseIpv4("198.18.0.10")!, SERVER, 40000, 53, QUERY);
  udp.onDatagram(parseIpv4("198.18.0.10")!, parseIpv4("198.18.0.9")!, 40000, 53, QUERY);
  assert.equal(sent.length, 1);
  assert.equal(udp.captured, 1);
});

Deno.test("--multiply 3 sends each datagram from three client ports, the same three for a client every time", () => {
  const { copier: udp, sent } = copier({ multiply: 3 });
  const client = parseIpv4("198.18.0.10")!;
  udp.onDatagram(client, SERVER, 40000, 53, QUERY);
  udp.onDatagram(client, SERVER, 40000, 53, QUERY);
  const ports = sent.map((datagram) => datagram.srcPort);
  assert.equal(new Set(ports.slice(0, 3)).size, 3);
  assert.deepEqual(ports.slice(3), ports.slice(0, 3));
  assert.deepEqual([udp.captured, udp.copied], [2, 6]);
});

Deno.test("--port-shift moves the client ports of every copy", () => {
  const plain = copier({ multiply: 2 });
  const shifted = copier({ multiply: 2, portShift: 5 });
  for (const { copier: udp } of [plain, shifted]) udp.onDatagram(1, SERVER, 40000, 53, QUERY);
  const ports = [...plain.sent, ...shifted.sent].map((datagram) => datagram.srcPort);
  assert.equal(new Set(ports).size, 4);
});

Deno.test("--clients gives each client one address from the range, stable across datagrams", () => {
  const first = parseIpv4("198.19.0.1")!;
  const { copier: udp, sent } = copier({ clients: [{ first, count: 254 }] });
  for (let client = 0; client < 200; client++) {
    udp.onDatagram(parseIpv4("10.0.0.0")! + client, SERVER, 40000, 53, QUERY);
    udp.onDatagram(parseIpv4("10.0.0.0")! + client, SERVER, 40000, 53, QUERY);
  }
  for (let i = 0; i < sent.length; i += 2) {
    const source = sent[i].source as number;
    assert.ok(source >= first && source < first + 254);
    assert.equal(sent[i + 1].source, sent[i].source);
  }
  assert.ok(new Set(sent.map((datagram) => datagram.source)).size > 100);
});

Deno.test("--rate 20 copies every datagram of about a fifth of the clients", () => {
  const { copier: udp, sent } = copier({ rate: 20 });
  for (let port = 10000; port < 12000; port++) {
    udp.onDatagram(parseIpv4("198.18.0.10")!, SERVER, port, 53, QUERY);
    udp.onDatagram(parseIpv4("198.18.0.10")!, SERVER, port, 53, QUERY);
  }
  assert.ok(udp.copied >= 2 * 300 && udp.copied <= 2 * 500, `${udp.copied} of 4000`);
  assert.equal(udp.copied + udp.skippedByRate, 4000);
  const perPort = new Map<number, number>();
  for (const datagram of sent) perPort.set(datagram.srcPort, (perPort.get(datagram.srcPort) ?? 0) + 1);
  assert.ok([...perPort.values()].every((count) => count === 2));
});

Deno.test("UDP frames cut by the capture or broken are counted, not copied; TCP frames are left alone", () => {
  const { copier: udp, sent } = copier();
  const whole = rawDatagram(1, 40000);
  udp.onFrame(LinkType.RAW, whole.subarray(0, whole.length - 3)); // snaplen cut the payload
  udp.onFrame(LinkType.RAW, whole.subarray(0, 24)); // not even a UDP header
  udp.onFrame(
    LinkType.RAW,
    buildIpv4Tcp({
      src: 1,
      dst: SERVER,
      tcp: { srcPort: 1, dstPort: 53, seq: 0, ack: 0, flags: TcpFlag.SYN, window: 1 },
    }),
  );
  assert.deepEqual(sent, []);
  assert.equal(udp.malformed, 2);
  assert.equal(udp.captured, 0);
});

Deno.test("copy -x udp: needs no intercept; TCP targets still do", () => {
  const options = parseCopyOptions(["-x", "udp:53-198.18.0.3:5353,udp:198.18.0.1:123-198.18.0.3:123"]);
  assert.deepEqual(options.mappings, []);
  assert.deepEqual(options.intercepts, []);
  assert.deepEqual(options.udpMappings, [
    { onlineAddress: undefined, onlinePort: 53, targetAddress: TARGET, targetPort: 5353 },
    { onlineAddress: SERVER, onlinePort: 123, targetAddress: TARGET, targetPort: 123 },
  ]);
  assert.throws(() => parseCopyOptions(["-x", "udp:53-198.18.0.3:5353,80-198.18.0.3:8080"]), UsageError);
  assert.throws(() => parseCopyOptions(["-x", "tcp:53-198.18.0.3:5353"]), UsageError);
  const both = parseCopyOptions(["-x", "udp:53-198.18.0.3:5353,80-198.18.0.3:8080", "-s", "198.18.0.4"]);
  assert.equal(both.mappings.length, 1);
  assert.equal(both.udpMappings.length, 1);
});

Deno.test("the capture filter selects TCP and UDP ports each by their own protocol", () => {
  const filter = (args: string[]) => captureFilter(parseCopyOptions(args));
  assert.equal(filter(["-x", "80-198.18.0.3:8080", "-s", "h"]), "tcp and (dst port 80)");
  assert.equal(filter(["-x", "udp:53-198.18.0.3:53"]), "udp and (dst port 53)");
  assert.equal(
    filter(["-x", "80-198.18.0.3:8080,udp:53-198.18.0.3:53", "-s", "h", "-F", "net 10.0.0.0/8"]),
    "((tcp and (dst port 80)) or (udp and (dst port 53))) and (net 10.0.0.0/8)",
  );
});

const v6 = (text: string) => ipv6Address(parseIpv6(text)!);

function rawDatagram6(source: string, srcPort: number, payload = QUERY): Uint8Array {
  const packet = new Uint8Array(48 + payload.length);
  emitIpv6Udp(
    { src: parseIpv6(source)!, dst: parseIpv6("2001:2::1")!, srcPort, dstPort: 53, payload },
    packet,
  );
  return packet;
}

Deno.test("IPv6 datagrams go to an IPv6 target, -c giving each client an address of the target's family", () => {
  const target6 = v6("2001:2::3");
  const mappings = [{ onlinePort: 53, targetAddress: target6, targetPort: 5353 }];
  const { copier: plain, sent } = copier({ mappings });
  plain.onFrame(LinkType.RAW, rawDatagram6("2001:2::10", 40000));
  assert.deepEqual(
    sent.map((
      datagram,
    ) => [formatAddress(datagram.source), formatAddress(datagram.destination), datagram.srcPort]),
    [["2001:2::10", "2001:2::3", 40000]],
  );
  assert.deepEqual(sent[0].payload, QUERY);

  // An IPv4 client reaches the IPv6 target only through an IPv6 -c range; without one it is counted.
  plain.onFrame(LinkType.RAW, rawDatagram(parseIpv4("198.18.0.10")!, 40001));
  assert.equal(sent.length, 1);
  assert.deepEqual([plain.captured, plain.copied, plain.familyUnreachable], [2, 1, 1]);
  const ranged = copier({
    mappings,
    clients: [{ first: 0xc6130001, count: 254 }, { first: v6("2001:2:0:1::1"), count: 2 ** 32 - 1 }],
  });
  ranged.copier.onFrame(LinkType.RAW, rawDatagram(parseIpv4("198.18.0.10")!, 40001));
  ranged.copier.onFrame(LinkType.RAW, rawDatagram6("2001:2::10", 40000));
  assert.equal(ranged.sent.length, 2);
  for (const datagram of ranged.sent) {
    assert.match(formatAddress(datagram.source), /^2001:2:0:1::[0-9a-f:]+$/);
  }
  assert.equal(ranged.copier.familyUnreachable, 0);
});

Deno.test("copy -x udp: takes IPv6 targets", () => {
  const options = parseCopyOptions(["-x", "udp:53-[2001:2::3]:5353,udp:[2001:2::1]:54-[2001:2::3]:5354"]);
  assert.deepEqual(options.udpMappings.map((mapping) => formatAddress(mapping.targetAddress)), [
    "2001:2::3",
    "2001:2::3",
  ]);
});
