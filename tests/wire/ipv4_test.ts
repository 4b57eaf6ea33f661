import assert from "node:assert/strict";
import { internetChecksum, Ipv4View, isWireError, parseIpv4, type WireError } from "../../src/wire/mod.ts";
import { hex, LO_ETHERNET_SYN, seededUint32 } from "./_fixtures.ts";

const SYN_IP = LO_ETHERNET_SYN.subarray(14);

function checked(bytes: Uint8Array, offset = 0): Ipv4View {
  const view = Ipv4View.check(bytes, offset);
  if (isWireError(view)) throw new Error(view.message);
  return view;
}

function failure(result: Ipv4View | WireError): WireError["kind"] {
  assert.ok(isWireError(result), "expected a WireError");
  return result.kind;
}

Deno.test("an IPv4 view reads every field of a captured header", () => {
  const ip = checked(LO_ETHERNET_SYN, 14);
  assert.equal(ip.version, 4);
  assert.equal(ip.headerLength, 20);
  assert.equal(ip.dscpEcn, 0);
  assert.equal(ip.totalLength, 60);
  assert.equal(ip.id, 53371);
  assert.equal(ip.flags, 0b010);
  assert.equal(ip.fragmentOffset, 0);
  assert.equal(ip.isFragment, false);
  assert.equal(ip.ttl, 64);
  assert.equal(ip.protocol, 6);
  assert.equal(ip.checksum, 0x6c3e);
  assert.equal(ip.src, parseIpv4("127.0.0.1"));
  assert.equal(ip.dst, parseIpv4("127.0.0.1"));
  assert.equal(ip.payloadOffset, 34);
  assert.equal(ip.payloadLength, 40);
  assert.equal(ip.capturedLength, 60);
  assert.equal(ip.truncated, false);
  assert.ok(ip.verifyChecksum());
});

Deno.test("setters write fields in place and fillChecksum makes the header verify again", () => {
  const bytes = SYN_IP.slice();
  const ip = checked(bytes);
  ip.ttl = 3;
  ip.id = 0xbeef;
  ip.dscpEcn = 0xb8;
  ip.flags = 0b001;
  ip.fragmentOffset = 0x1abc;
  ip.totalLength = 0x1234;
  ip.protocol = 17;
  assert.equal(ip.verifyChecksum(), false);
  ip.fillChecksum();
  assert.ok(ip.verifyChecksum());
  assert.deepEqual(
    [ip.ttl, ip.id, ip.dscpEcn, ip.flags, ip.fragmentOffset, ip.totalLength, ip.protocol],
    [3, 0xbeef, 0xb8, 0b001, 0x1abc, 0x1234, 17],
  );
  assert.equal(ip.isFragment, true);
  assert.equal(bytes[0], 0x45, "version and IHL untouched");
});

Deno.test("setSrc and setDst keep the header checksum right without a recompute", () => {
  const random = seededUint32(791);
  const ip = checked(SYN_IP.slice());
  for (let round = 0; round < 1000; round++) {
    if (round % 2 === 0) ip.setDst(random());
    else ip.setSrc(random());
    assert.ok(ip.verifyChecksum(), `round ${round}`);
  }
  ip.setDst(0xc6126302);
  assert.equal(ip.dst, 0xc6126302 | 0);
});

Deno.test("plain address setters leave the checksum to the caller", () => {
  const ip = checked(SYN_IP.slice());
  ip.dst = parseIpv4("198.18.0.9")!;
  assert.equal(ip.checksum, 0x6c3e);
  assert.equal(ip.verifyChecksum(), false);
});

Deno.test("a fragment is recognised by MF or by a non-zero offset", () => {
  const ip = checked(SYN_IP.slice());
  ip.flags = 0b001;
  assert.equal(ip.isFragment, true);
  ip.flags = 0b010;
  ip.fragmentOffset = 185;
  assert.equal(ip.isFragment, true);
  ip.fragmentOffset = 0;
  assert.equal(ip.isFragment, false);
});

Deno.test("IPv4 options lengthen the header and move the payload", () => {
  const bytes = hex("4600 0040 0000 4000 4006 0000 7f00 0001 7f00 0001 0101 0100");
  const withOptions = new Uint8Array(64);
  withOptions.set(bytes);
  const ip = checked(withOptions);
  assert.equal(ip.headerLength, 24);
  assert.equal(ip.payloadOffset, 24);
  assert.equal(ip.payloadLength, 40);
  ip.fillChecksum();
  assert.equal(internetChecksum(withOptions, 0, 24), 0);
});

Deno.test("Ethernet padding after the datagram is not counted as payload", () => {
  const padded = new Uint8Array(SYN_IP.length + 6);
  padded.set(SYN_IP);
  const ip = checked(padded);
  assert.equal(ip.capturedLength, 60);
  assert.equal(ip.payloadLength, 40);
  assert.equal(ip.truncated, false);
});

Deno.test("a datagram cut by the capture is accepted and marked truncated", () => {
  const ip = checked(SYN_IP.subarray(0, 30));
  assert.equal(ip.truncated, true);
  assert.equal(ip.capturedLength, 30);
  assert.equal(ip.payloadLength, 40);
});

Deno.test("malformed and short IPv4 headers are reported as values", () => {
  assert.equal(failure(Ipv4View.check(SYN_IP.subarray(0, 19))), "truncated");
  assert.equal(failure(Ipv4View.check(SYN_IP, 50)), "truncated");
  const v6 = SYN_IP.slice();
  v6[0] = 0x65;
  assert.equal(failure(Ipv4View.check(v6)), "malformed");
  const shortIhl = SYN_IP.slice();
  shortIhl[0] = 0x44;
  assert.equal(failure(Ipv4View.check(shortIhl)), "malformed");
  const longIhl = SYN_IP.slice(0, 24);
  longIhl[0] = 0x47;
  assert.equal(failure(Ipv4View.check(longIhl)), "truncated");
  const shortTotal = SYN_IP.slice();
  shortTotal[3] = 19;
  shortTotal[2] = 0;
  assert.equal(failure(Ipv4View.check(shortTotal)), "malformed");
});
