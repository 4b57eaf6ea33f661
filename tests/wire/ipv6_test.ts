import assert from "node:assert/strict";
import {
  formatIpv6,
  Ipv6View,
  isWireError,
  parseIpv6,
  type UpperLayer,
  type WireError,
} from "../../src/wire/mod.ts";
import { hex } from "./_fixtures.ts";

/** 2001:db8::1 > 2001:db8::2, payload length `length`, next header `next`, then `rest`. */
function ipv6(next: number, length: number, rest: string): Uint8Array {
  return hex(
    `6000 0000 ${length.toString(16).padStart(4, "0")} ${next.toString(16).padStart(2, "0")}40
     2001 0db8 0000 0000 0000 0000 0000 0001  2001 0db8 0000 0000 0000 0000 0000 0002 ${rest}`,
  );
}

const TCP_HEADER = "1f90 0050 0000 0001 0000 0000 5002 ffff 0000 0000";

function checked(bytes: Uint8Array): Ipv6View {
  const view = Ipv6View.check(bytes);
  if (isWireError(view)) throw new Error(view.message);
  return view;
}

function upper(bytes: Uint8Array): UpperLayer | WireError {
  return checked(bytes).upperLayer();
}

Deno.test("an IPv6 view reads the fixed header", () => {
  const ip = checked(ipv6(6, 20, TCP_HEADER));
  assert.equal(ip.version, 6);
  assert.equal(ip.payloadLength, 20);
  assert.equal(ip.nextHeader, 6);
  assert.equal(ip.hopLimit, 64);
  assert.equal(formatIpv6(ip.src), "2001:db8::1");
  assert.equal(formatIpv6(ip.dst), "2001:db8::2");
  assert.equal(ip.payloadOffset, 40);
  assert.equal(ip.truncated, false);
  assert.deepEqual(ip.upperLayer(), { protocol: 6, offset: 40, length: 20 });
});

Deno.test("address setters copy 16 bytes into the header", () => {
  const bytes = ipv6(6, 20, TCP_HEADER);
  const ip = checked(bytes);
  ip.dst = parseIpv6("fd00::beef")!;
  ip.src = parseIpv6("fd00::1")!;
  ip.hopLimit = 9;
  assert.equal(formatIpv6(ip.dst), "fd00::beef");
  assert.equal(formatIpv6(ip.src), "fd00::1");
  assert.equal(bytes[7], 9);
  assert.equal(ip.payloadLength, 20);
  // Only the first 16 bytes of a longer array; the TCP header after the addresses is left alone.
  const tcpBefore = bytes.slice(40);
  ip.src = new Uint8Array(20).fill(0xab);
  assert.deepEqual(ip.src, new Uint8Array(16).fill(0xab));
  assert.equal(formatIpv6(ip.dst), "fd00::beef");
  assert.deepEqual(bytes.slice(40), tcpBefore);
  assert.throws(() => ip.dst = new Uint8Array(4), RangeError);
  assert.equal(formatIpv6(ip.dst), "fd00::beef");
});

Deno.test("hop-by-hop, routing and destination-options headers are skipped to TCP", () => {
  const hopByHop = "2b00 0000 0000 0000"; // next: routing, 8 bytes
  const routing = "3c02 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000"; // next: dest opts, 24 bytes
  const destination = "0600 0104 0000 0000"; // next: TCP, 8 bytes, PadN
  const bytes = ipv6(0, 40 + 20, hopByHop + routing + destination + TCP_HEADER);
  assert.deepEqual(upper(bytes), { protocol: 6, offset: 80, length: 20 });
});

Deno.test("a fragment header is unsupported, but an atomic fragment's is skipped to TCP", () => {
  const first = upper(ipv6(44, 28, "0600 0001 0000 0001" + TCP_HEADER)); // offset 0, more fragments
  assert.ok(isWireError(first));
  assert.equal(first.kind, "unsupported");
  const later = upper(ipv6(44, 28, "0600 0008 0000 0001" + TCP_HEADER)); // offset 8, the last one
  assert.ok(isWireError(later));
  assert.equal(later.kind, "unsupported");
  assert.deepEqual(upper(ipv6(44, 28, "0600 0000 0000 0001" + TCP_HEADER)), {
    protocol: 6,
    offset: 48,
    length: 20,
  });
  assert.deepEqual(upper(ipv6(0, 36, "2c00 0000 0000 0000 0600 0000 0000 0002" + TCP_HEADER)), {
    protocol: 6,
    offset: 56,
    length: 20,
  });
});

Deno.test("the traffic class and flow label read as one 28-bit word, and are written with the version", () => {
  const bytes = ipv6(6, 20, TCP_HEADER);
  bytes.set([0x6b, 0x8f, 0x12, 0x34], 0); // traffic class 0xb8 (EF, not ECN-capable), flow label 0xf1234
  const ip = checked(bytes);
  assert.equal(ip.flowInfo, 0xb8f1234);
  ip.setVersionAndFlowInfo(0x0212345);
  assert.deepEqual([...bytes.subarray(0, 4)], [0x60, 0x21, 0x23, 0x45]);
  bytes.fill(0xff, 0, 4);
  ip.setVersionAndFlowInfo(0xfb8f1234); // bits above the 28 are not the flow info's: the version stays 6
  assert.deepEqual([...bytes.subarray(0, 4)], [0x6b, 0x8f, 0x12, 0x34]);
  assert.equal(ip.version, 6);
  assert.equal(ip.flowInfo, 0xb8f1234);
});

Deno.test("an extension header longer than the payload is malformed, and one cut by the capture truncated", () => {
  const tooLong = upper(ipv6(60, 8, "0601 0000 0000 0000"));
  assert.ok(isWireError(tooLong));
  assert.equal(tooLong.kind, "malformed");
  const cut = upper(ipv6(60, 28, "06"));
  assert.ok(isWireError(cut));
  assert.equal(cut.kind, "truncated");
});

Deno.test("a non-extension next header is reported as the upper layer", () => {
  assert.deepEqual(upper(ipv6(17, 8, "0035 0035 0008 0000")), { protocol: 17, offset: 40, length: 8 });
});

Deno.test("short, wrong-version and jumbo IPv6 packets are reported as values", () => {
  const results = [
    Ipv6View.check(ipv6(6, 0, "").subarray(0, 39)),
    Ipv6View.check(hex("4500" + "00".repeat(38))),
    Ipv6View.check(ipv6(0, 0, "")),
  ];
  assert.deepEqual(results.map((result) => isWireError(result) && result.kind), [
    "truncated",
    "malformed",
    "unsupported",
  ]);
});

Deno.test("a packet cut by the capture is accepted and marked truncated", () => {
  const ip = checked(ipv6(6, 20, TCP_HEADER).subarray(0, 50));
  assert.equal(ip.truncated, true);
  assert.equal(ip.capturedLength, 50);
});
