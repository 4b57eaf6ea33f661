import assert from "node:assert/strict";
import {
  buildIpv4Tcp,
  buildIpv6Tcp,
  decodeTcpPacket,
  emitIpv4Tcp,
  emitIpv6Tcp,
  type Ipv4TcpRepr,
  Ipv4View,
  type Ipv6TcpRepr,
  Ipv6View,
  isWireError,
  LinkType,
  parseIpv4,
  parseIpv6,
  parseTcpRepr,
  TcpFlag,
  type TcpPacket,
  TcpView,
} from "../../src/wire/mod.ts";
import { verifyTcpChecksum } from "./_checksum.ts";
import { LO_ETHERNET_SYN, seededUint32 } from "./_fixtures.ts";

function decodedRaw(packet: Uint8Array): TcpPacket {
  const result = decodeTcpPacket(LinkType.RAW, packet);
  if (result === undefined || isWireError(result)) throw new Error(`not decoded: ${JSON.stringify(result)}`);
  return result;
}

const CAPTURED_SYN: Ipv4TcpRepr = {
  src: parseIpv4("127.0.0.1")!,
  dst: parseIpv4("127.0.0.1")!,
  id: 53371,
  tcp: {
    srcPort: 40812,
    dstPort: 5733,
    seq: 438402434,
    ack: 0,
    flags: TcpFlag.SYN,
    window: 65495,
    options: { mss: 65495, sackPermitted: true, timestamp: { value: 3018404835, echo: 0 }, windowScale: 10 },
  },
};

Deno.test("a built SYN equals the captured one, with the TCP checksum tcpdump computed", () => {
  const built = buildIpv4Tcp(CAPTURED_SYN);
  const expected = LO_ETHERNET_SYN.slice(14);
  expected.set([0x1a, 0xbd], 20 + 16);
  assert.deepEqual(built, expected);
});

Deno.test("built IPv4 packets decode back to their description with both checksums right", () => {
  const random = seededUint32(9293);
  for (let round = 0; round < 200; round++) {
    const payload = new Uint8Array(random() % 100).map(() => random() & 0xff);
    const repr: Ipv4TcpRepr = {
      src: random() | 0,
      dst: random() | 0,
      ttl: 1 + (random() % 255),
      id: random() & 0xffff,
      tcp: {
        srcPort: random() & 0xffff,
        dstPort: random() & 0xffff,
        seq: random(),
        ack: random(),
        flags: random() & 0xff,
        window: random() & 0xffff,
        ...(round % 3 === 0 ? { urgent: 1 + (random() & 0x7fff) } : {}),
        ...(round % 2 === 0
          ? { options: { mss: 1460, timestamp: { value: random(), echo: random() } } }
          : {}),
        ...(payload.length > 0 ? { payload } : {}),
      },
    };
    const packet = buildIpv4Tcp(repr);
    const { ip, tcp } = decodedRaw(packet);
    assert.ok(ip instanceof Ipv4View);
    assert.deepEqual([ip.src, ip.dst, ip.ttl, ip.id, ip.flags], [
      repr.src,
      repr.dst,
      repr.ttl,
      repr.id,
      0b010,
    ]);
    assert.ok(ip.verifyChecksum());
    assert.ok(verifyTcpChecksum(ip, tcp));
    assert.deepEqual(parseTcpRepr(tcp), repr.tcp);
  }
});

Deno.test("a built IPv6 packet decodes back to its description with the checksum right", () => {
  const repr: Ipv6TcpRepr = {
    src: parseIpv6("2001:db8::1")!,
    dst: parseIpv6("2001:db8::2")!,
    hopLimit: 7,
    tcp: {
      srcPort: 8080,
      dstPort: 80,
      seq: 0xfffffff0,
      ack: 12,
      flags: TcpFlag.PSH | TcpFlag.ACK,
      window: 512,
      options: { sack: [[1, 2], [0xfffffff0, 5]] },
      payload: new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
    },
  };
  const packet = buildIpv6Tcp(repr);
  assert.equal(packet.length, 40 + 20 + 20 + 18);
  const { ip, tcp } = decodedRaw(packet);
  assert.ok(!(ip instanceof Ipv4View));
  assert.deepEqual([ip.hopLimit, ip.payloadLength, ip.nextHeader], [7, 58, 6]);
  assert.deepEqual(ip.src, repr.src);
  assert.ok(verifyTcpChecksum(ip, tcp));
  assert.deepEqual(parseTcpRepr(tcp), repr.tcp);
});

Deno.test("emitting at an offset over stale bytes writes the same packet as a fresh build", () => {
  const fresh = buildIpv4Tcp(CAPTURED_SYN);
  const into = new Uint8Array(200).fill(0xff);
  assert.equal(emitIpv4Tcp(CAPTURED_SYN, into, 30), fresh.length);
  assert.deepEqual(into.subarray(30, 30 + fresh.length), fresh);
  assert.equal(into[30 + fresh.length], 0xff);
  const v6: Ipv6TcpRepr = {
    src: new Uint8Array(16).fill(1),
    dst: new Uint8Array(16).fill(2),
    flowInfo: 0xb8f1234,
    tcp: CAPTURED_SYN.tcp,
  };
  // The IPv6 header is written field by field over the stale bytes, none zeroed first.
  into.fill(0xff, 0, 30);
  const freshV6 = buildIpv6Tcp(v6);
  assert.equal(emitIpv6Tcp(v6, into, 1), freshV6.length);
  assert.deepEqual(into.subarray(1, 1 + freshV6.length), freshV6);
  const header = Ipv6View.check(into, 1);
  assert.ok(!isWireError(header));
  assert.deepEqual([header.version, header.flowInfo], [6, 0xb8f1234]);
});

Deno.test("emitting into too small a buffer, or past 65535 bytes, is a RangeError", () => {
  assert.throws(() => emitIpv4Tcp(CAPTURED_SYN, new Uint8Array(59)), RangeError);
  assert.throws(() => emitIpv4Tcp(CAPTURED_SYN, new Uint8Array(60), 1), RangeError);
  const huge = { ...CAPTURED_SYN, tcp: { ...CAPTURED_SYN.tcp, payload: new Uint8Array(65500) } };
  assert.throws(() => buildIpv4Tcp(huge), RangeError);
});

Deno.test("parseTcpRepr reports a payload cut by the capture and bad options", () => {
  const packet = buildIpv4Tcp({ ...CAPTURED_SYN, tcp: { ...CAPTURED_SYN.tcp, payload: new Uint8Array(10) } });
  const cut = TcpView.check(packet.subarray(0, packet.length - 4), 20, packet.length - 20) as TcpView;
  const cutResult = parseTcpRepr(cut);
  assert.ok(isWireError(cutResult));
  assert.equal(cutResult.kind, "truncated");
  packet[20 + 20 + 1] = 0; // MSS option length 0
  const badResult = parseTcpRepr(TcpView.check(packet, 20, packet.length - 20) as TcpView);
  assert.ok(isWireError(badResult));
  assert.equal(badResult.kind, "malformed");
});
