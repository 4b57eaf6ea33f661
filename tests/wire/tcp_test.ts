import assert from "node:assert/strict";
import {
  adjustChecksum16,
  adjustChecksum32,
  emitTcpOptions,
  fillTcpChecksumIpv4,
  fillTcpChecksumIpv6,
  Ipv4View,
  Ipv6View,
  isWireError,
  parseTcpOptions,
  TcpFlag,
  type TcpOptions,
  tcpOptionsLength,
  TcpView,
  type WireError,
} from "../../src/wire/mod.ts";
import { expectedTcpChecksum, verifyTcpChecksum } from "./_checksum.ts";
import { hex, LO_ETHERNET_DATA, LO_ETHERNET_SYN, seededUint32, VETH_SLL2_SYN_OUT } from "./_fixtures.ts";

function views(frame: Uint8Array, ipOffset: number): { ip: Ipv4View; tcp: TcpView } {
  const ip = Ipv4View.check(frame, ipOffset);
  if (isWireError(ip)) throw new Error(ip.message);
  const tcp = TcpView.check(frame, ip.payloadOffset, ip.payloadLength);
  if (isWireError(tcp)) throw new Error(tcp.message);
  return { ip, tcp };
}

function failure(result: unknown): WireError["kind"] {
  assert.ok(isWireError(result), "expected a WireError");
  return result.kind;
}

Deno.test("a TCP view reads every field of a captured SYN", () => {
  const { tcp } = views(LO_ETHERNET_SYN, 14);
  assert.equal(tcp.srcPort, 40812);
  assert.equal(tcp.dstPort, 5733);
  assert.equal(tcp.seq, 438402434);
  assert.equal(tcp.ack, 0);
  assert.equal(tcp.headerLength, 40);
  assert.equal(tcp.flags, TcpFlag.SYN);
  assert.equal(tcp.window, 65495);
  assert.equal(tcp.checksum, 0xfe30);
  assert.equal(tcp.urgent, 0);
  assert.equal(tcp.payloadLength, 0);
  assert.equal(tcp.optionBytes().length, 20);
  assert.deepEqual(tcp.options(), {
    mss: 65495,
    sackPermitted: true,
    timestamp: { value: 3018404835, echo: 0 },
    windowScale: 10,
  });
});

Deno.test("sequence numbers above 2^31 read as non-negative", () => {
  const { tcp } = views(VETH_SLL2_SYN_OUT.slice(), 20);
  assert.equal(tcp.seq, 2474456701);
  tcp.ack = 0xfffffffe;
  assert.equal(tcp.ack, 0xfffffffe);
});

Deno.test("the payload is a subarray of the frame, without copying", () => {
  const frame = LO_ETHERNET_DATA.slice();
  const { tcp } = views(frame, 14);
  assert.equal(tcp.flags, TcpFlag.PSH | TcpFlag.ACK);
  assert.equal(tcp.payloadOffset, 14 + 20 + 32);
  assert.equal(new TextDecoder().decode(tcp.payload()), "hello");
  tcp.payload()[0] = 0x4a;
  assert.equal(frame[tcp.payloadOffset], 0x4a);
  assert.deepEqual(tcp.options(), { timestamp: { value: 3018404835, echo: 884884481 } });
});

Deno.test("the TCP checksum of captured segments matches what tcpdump computed", () => {
  // Linux leaves a partial checksum on loopback and veth for offload; tcpdump printed the true one.
  const filled = (frame: Uint8Array, ipOffset: number) => {
    const { ip, tcp } = views(frame.slice(), ipOffset);
    fillTcpChecksumIpv4(ip, tcp);
    assert.ok(verifyTcpChecksum(ip, tcp));
    return tcp.checksum;
  };
  const syn = views(LO_ETHERNET_SYN, 14);
  assert.equal(filled(LO_ETHERNET_SYN, 14), 0x1abd);
  assert.equal(verifyTcpChecksum(syn.ip, syn.tcp), false);
  assert.equal(filled(LO_ETHERNET_DATA, 14), 0x0df9);
  assert.equal(filled(VETH_SLL2_SYN_OUT, 20), 0x8a98);
});

Deno.test("fillTcpChecksumIpv4 makes the segment verify", () => {
  const frame = LO_ETHERNET_DATA.slice();
  const { ip, tcp } = views(frame, 14);
  fillTcpChecksumIpv4(ip, tcp);
  assert.equal(tcp.checksum, 0x0df9);
  assert.ok(verifyTcpChecksum(ip, tcp));
  frame[frame.length - 1] ^= 1;
  assert.equal(verifyTcpChecksum(ip, tcp), false);
});

Deno.test("a rewrite of address, port and ack with incremental updates equals a full recompute", () => {
  const random = seededUint32(1624_2);
  const frame = LO_ETHERNET_DATA.slice();
  const { ip, tcp } = views(frame, 14);
  fillTcpChecksumIpv4(ip, tcp);
  for (let round = 0; round < 2000; round++) {
    const dst = random();
    const port = random() & 0xffff;
    const ack = random();
    tcp.checksum = adjustChecksum32(tcp.checksum, ip.dst, dst);
    ip.setDst(dst);
    tcp.checksum = adjustChecksum16(tcp.checksum, tcp.dstPort, port);
    tcp.dstPort = port;
    tcp.checksum = adjustChecksum32(tcp.checksum, tcp.ack, ack);
    tcp.ack = ack;
    assert.equal(tcp.checksum, expectedTcpChecksum(ip, tcp), `round ${round}`);
    assert.ok(ip.verifyChecksum());
  }
});

Deno.test("IPv6 TCP checksums fill and verify over the IPv6 pseudo-header", () => {
  const packet = hex(`
    6000 0000 0019 0640 2001 0db8 0000 0000 0000 0000 0000 0001 2001 0db8 0000 0000 0000 0000 0000 0002
    1f90 0050 0000 0001 0000 0000 5018 ffff 0000 0000 6865 6c6c 6f`);
  const ip = Ipv6View.check(packet) as Ipv6View;
  const tcp = TcpView.check(packet, 40, ip.payloadLength) as TcpView;
  assert.equal(verifyTcpChecksum(ip, tcp), false);
  fillTcpChecksumIpv6(ip, tcp);
  assert.ok(verifyTcpChecksum(ip, tcp));
  // Independent sum: pseudo-header words, length 25, protocol 6, then the segment.
  let sum = 0x2001 + 0x0db8 + 1 + 0x2001 + 0x0db8 + 2 + 25 + 6;
  for (let i = 40; i < packet.length; i += 2) sum += (packet[i] << 8) | (packet[i + 1] ?? 0);
  sum -= tcp.checksum;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  assert.equal(tcp.checksum, ~sum & 0xffff);
});

Deno.test("a segment cut by the capture keeps its header but never verifies", () => {
  const cut = LO_ETHERNET_DATA.subarray(0, LO_ETHERNET_DATA.length - 2);
  const { ip, tcp } = views(cut, 14);
  assert.equal(tcp.payloadLength, 5);
  assert.equal(tcp.capturedPayloadLength, 3);
  assert.equal(new TextDecoder().decode(tcp.payload()), "hel");
  assert.equal(verifyTcpChecksum(ip, tcp), false);
});

Deno.test("setters write TCP fields in place", () => {
  const frame = LO_ETHERNET_SYN.slice();
  const { tcp } = views(frame, 14);
  tcp.srcPort = 1;
  tcp.dstPort = 2;
  tcp.seq = 0x80000000;
  tcp.flags = TcpFlag.RST | TcpFlag.ACK;
  tcp.window = 7;
  tcp.urgent = 9;
  tcp.headerLength = 24;
  assert.deepEqual(
    [tcp.srcPort, tcp.dstPort, tcp.seq, tcp.flags, tcp.window, tcp.urgent, tcp.headerLength],
    [1, 2, 0x80000000, TcpFlag.RST | TcpFlag.ACK, 7, 9, 24],
  );
});

Deno.test("bad TCP headers are reported as values", () => {
  const header = LO_ETHERNET_SYN.slice(34);
  assert.equal(failure(TcpView.check(header, 0, 19)), "malformed");
  assert.equal(failure(TcpView.check(header.subarray(0, 19), 0, 40)), "truncated");
  const shortOffset = header.slice();
  shortOffset[12] = 0x40;
  assert.equal(failure(TcpView.check(shortOffset, 0, 40)), "malformed");
  assert.equal(failure(TcpView.check(header, 0, 36)), "malformed", "data offset past the segment");
  assert.equal(failure(TcpView.check(header.subarray(0, 30), 0, 40)), "truncated", "options cut by capture");
});

Deno.test("options emit in Linux's layout, byte for byte as a captured SYN carries them", () => {
  const options: TcpOptions = {
    mss: 65495,
    sackPermitted: true,
    timestamp: { value: 3018404835, echo: 0 },
    windowScale: 10,
  };
  const into = new Uint8Array(40);
  assert.equal(emitTcpOptions(options, into, 0), 20);
  assert.deepEqual(into.subarray(0, 20), LO_ETHERNET_SYN.subarray(54, 74));
  assert.equal(tcpOptionsLength(options), 20);
});

Deno.test("each option combination pads with NOPs to 4-byte alignment and parses back", () => {
  const cases: Array<[TcpOptions, string]> = [
    [{}, ""],
    [{ mss: 1460 }, "0204 05b4"],
    [{ sackPermitted: true }, "0101 0402"],
    [{ windowScale: 7 }, "0103 0307"],
    [{ timestamp: { value: 1, echo: 2 } }, "0101 080a 0000 0001 0000 0002"],
    [{ sack: [[100, 200]] }, "0101 050a 0000 0064 0000 00c8"],
    [{ mss: 536, sackPermitted: true, windowScale: 0 }, "0204 0218 0101 0402 0103 0300"],
  ];
  for (const [options, bytes] of cases) {
    const into = new Uint8Array(40);
    const length = emitTcpOptions(options, into, 0);
    assert.deepEqual(into.subarray(0, length), hex(bytes), JSON.stringify(options));
    assert.deepEqual(parseTcpOptions(into.subarray(0, length)), options);
  }
});

Deno.test("random option sets round-trip through emit and parse", () => {
  const random = seededUint32(7323);
  for (let round = 0; round < 500; round++) {
    const options: TcpOptions = {};
    if (random() & 1) options.mss = random() & 0xffff;
    if (random() & 1) options.sackPermitted = true;
    if (random() & 1) options.timestamp = { value: random(), echo: random() };
    if (random() & 1) options.windowScale = random() % 15;
    const into = new Uint8Array(48).fill(0xee);
    const length = emitTcpOptions(options, into, 4);
    assert.equal(length % 4, 0);
    assert.equal(length, tcpOptionsLength(options));
    assert.equal(into[4 + length], 0xee, "nothing written past the returned length");
    assert.deepEqual(parseTcpOptions(into.subarray(4, 4 + length)), options);
  }
});

Deno.test("SACK blocks that do not fit in 40 bytes are left out", () => {
  const blocks: Array<[number, number]> = [[1, 2], [3, 4], [5, 6], [7, 8]];
  const into = new Uint8Array(40);
  const alone = emitTcpOptions({ sack: blocks }, into, 0);
  assert.equal(alone, 36);
  assert.deepEqual(parseTcpOptions(into.subarray(0, alone)), { sack: blocks });
  const withTimestamp = { timestamp: { value: 9, echo: 8 }, sack: blocks };
  const length = emitTcpOptions(withTimestamp, into, 0);
  assert.equal(length, 40);
  assert.equal(tcpOptionsLength(withTimestamp), 40);
  assert.deepEqual(parseTcpOptions(into.subarray(0, length)), {
    timestamp: { value: 9, echo: 8 },
    sack: blocks.slice(0, 3),
  });
});

Deno.test("emitting options into too small a buffer is a RangeError", () => {
  assert.throws(() => emitTcpOptions({ mss: 1460 }, new Uint8Array(6), 4), RangeError);
});

Deno.test("EOL ends the list and unknown kinds are skipped by their length", () => {
  assert.deepEqual(parseTcpOptions(hex("1e06 0000 0000 0204 05b4 0000 0204")), { mss: 1460 });
});

Deno.test("truncated options and bad lengths are malformed", () => {
  for (
    const bytes of [
      "02", // no length byte
      "0204 05", // runs past the end
      "0200", // length 0
      "1e00", // unknown kind, length 0
      "1e01 0101", // unknown kind, length 1
      "0203 05", // MSS with length 3
      "0302", // window scale with length 2
      "0403 00", // SACK-permitted with length 3
      "0506 0000 0000", // SACK with no whole block
      "080b 0000 0000 0000 0000 00", // timestamp with length 11
    ]
  ) {
    assert.equal(failure(parseTcpOptions(hex(bytes))), "malformed", bytes);
  }
});

Deno.test("timestampValue, timestampEcho and optionsInto read as options() does, malformed meaning none", () => {
  const reused: TcpOptions = {};
  const reusedTimestamp = { value: 0, echo: 0 };
  const withOptions = (options: string) => {
    const bytes = hex(options);
    const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
    padded.set(bytes);
    const header = new Uint8Array(20 + padded.length);
    header[12] = (header.length / 4) << 4;
    header.set(padded, 20);
    const tcp = TcpView.check(header, 0, header.length);
    assert.ok(!isWireError(tcp));
    return tcp;
  };
  for (
    const options of [
      "0101 080a b3e9 5ee3 34be 8701", // NOP NOP timestamp
      "0204 05b4 0402 080a ffff fffe 0000 0001 0103 0307", // SYN: MSS, SACK-permitted, timestamp, window scale
      "0204 05b4", // no timestamp
      "080a 0000 0001 0000 0002 00 080a 0000 0003", // EOL ends the list before a second one
      "080a 0000 0001 0000 0002 0203 05", // a bad MSS after it: malformed, none
      "080b 0000 0000 0000 0000 00", // timestamp with length 11
      "1e06 0000 0000 080a 0000 0007 0000 0000", // an unknown kind skipped
    ]
  ) {
    const tcp = withOptions(options);
    const parsed = tcp.options();
    const expected = isWireError(parsed) ? -1 : parsed.timestamp?.value ?? -1;
    assert.equal(tcp.timestampValue(), expected, options);
    const expectedEcho = isWireError(parsed) ? -1 : parsed.timestamp?.echo ?? -1;
    assert.equal(tcp.timestampEcho(), expectedEcho, options);
    // Into one object from option list to option list: nothing of the one before stays.
    const into = tcp.optionsInto(reused, reusedTimestamp);
    if (isWireError(parsed)) assert.ok(isWireError(into), options);
    else {
      assert.ok(!isWireError(into), options);
      assert.deepEqual(JSON.parse(JSON.stringify(into)), parsed, options);
      // A timestamp option goes into the object given, not a new one.
      if (parsed.timestamp !== undefined) assert.equal(into.timestamp, reusedTimestamp, options);
    }
  }
  assert.equal(withOptions("0101 080a ffff fffe 0000 0001").timestampValue(), 0xfffffffe);
  assert.equal(withOptions("0101 080a 0000 0001 ffff fffd").timestampEcho(), 0xfffffffd);
  assert.equal(withOptions("").timestampValue(), -1);
});

Deno.test("checkAt points one view at segment after segment, and checks each", () => {
  const first = LO_ETHERNET_DATA.slice();
  const second = VETH_SLL2_SYN_OUT.slice();
  const view = new TcpView(new Uint8Array(0), 0, 0);
  const ip = Ipv4View.check(first, 14);
  assert.ok(!isWireError(ip));
  assert.equal(view.checkAt(first, ip.payloadOffset, ip.payloadLength), view);
  assert.equal(new TextDecoder().decode(view.payload()), "hello");
  const ip2 = Ipv4View.check(second, 20);
  assert.ok(!isWireError(ip2));
  assert.equal(view.checkAt(second, ip2.payloadOffset, ip2.payloadLength), view);
  assert.equal(view.seq, 2474456701);
  assert.equal(view.bytes, second);
  assert.equal(failure(view.checkAt(second, ip2.payloadOffset, 19)), "malformed");
});
