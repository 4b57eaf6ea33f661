/** The protocol's IPv6 extension: ADD6/DELETE6 records and REPLY6 frames, and that C peers never see them. */
import assert from "node:assert/strict";
import {
  Capability,
  decodeRegistration6,
  encodeExtensionFrame,
  encodeHello,
  encodeRegistration6,
  encodeReplyRecord6,
  ExtensionFrameType,
  type ExtensionRecord,
  MAX_REPLIES6_PER_FRAME,
  parseReplyRecord6,
  ProtocolError,
  type Registration6,
  REGISTRATION6_LENGTH,
  REGISTRATION_LENGTH,
  RegistrationDecoder,
  RegistrationType,
  REPLY6_RECORD_LENGTH,
  ReplyFrameDecoder,
  ReplyFrameEncoder,
} from "../../src/protocol/mod.ts";
import { buildIpv6Tcp, formatIpv6, parseIpv6, TcpFlag } from "../../src/wire/mod.ts";

const client = parseIpv6("2001:2:0:1::7")!;
const target = parseIpv6("2001:2::2")!;

function registration6(type: 1 | 2, clientPort: number): Registration6 {
  return { type, clientAddress: client, clientPort, targetAddress: target, targetPort: 8080 };
}

Deno.test("ADD6 and DELETE6 records pass through the registration decoder after an extended hello", () => {
  const bytes = new Uint8Array(REGISTRATION_LENGTH + 2 * REGISTRATION6_LENGTH);
  encodeHello(bytes, 0, Capability.IPV6);
  let at = REGISTRATION_LENGTH;
  at += encodeRegistration6(registration6(RegistrationType.ADD, 40_000), bytes, at);
  at += encodeRegistration6(registration6(RegistrationType.DELETE, 40_000), bytes, at);
  assert.equal(at, bytes.length);
  // Byte by byte, the way a slow stream may cut it.
  const decoder = new RegistrationDecoder();
  const records = [];
  for (let i = 0; i < bytes.length; i++) {
    const out = decoder.push(bytes.subarray(i, i + 1));
    assert.ok(!(out instanceof ProtocolError));
    for (const record of out) records.push(decodeRegistration6(record as ExtensionRecord));
  }
  assert.equal(decoder.hello?.capabilities, Capability.IPV6);
  assert.deepEqual(
    records.map((r) =>
      r !== undefined && !(r instanceof ProtocolError) &&
      [r.type, formatIpv6(r.clientAddress), r.clientPort, formatIpv6(r.targetAddress), r.targetPort]
    ),
    [
      [RegistrationType.ADD, "2001:2:0:1::7", 40_000, "2001:2::2", 8080],
      [RegistrationType.DELETE, "2001:2:0:1::7", 40_000, "2001:2::2", 8080],
    ],
  );
});

Deno.test("an IPv6 registration of the wrong size is garbage, another extension type not one", () => {
  assert.ok(decodeRegistration6({ type: 0x7401, body: new Uint8Array(35) }) instanceof ProtocolError);
  assert.equal(decodeRegistration6({ type: 0x7480, body: new Uint8Array(36) }), undefined);
});

/** An IPv6 reply from the target with a destination-options header and 32 bytes of TCP options. */
function reply6(dstPort: number): Uint8Array {
  const packet = buildIpv6Tcp({
    src: target,
    dst: client,
    flowInfo: 0x0012345,
    tcp: {
      srcPort: 8080,
      dstPort,
      seq: 5000,
      ack: 1001,
      flags: TcpFlag.ACK | TcpFlag.PSH,
      window: 500,
      options: { timestamp: { value: 1, echo: 2 }, sack: [[1, 2], [3, 4]] },
      payload: new Uint8Array(10),
    },
  });
  // Put an 8-byte destination-options header (PadN) between the IPv6 and TCP headers.
  const withOptions = new Uint8Array(packet.length + 8);
  withOptions.set(packet.subarray(0, 40));
  withOptions.set([6, 0, 1, 4, 0, 0, 0, 0], 40);
  withOptions.set(packet.subarray(40), 48);
  withOptions[6] = 60;
  new DataView(withOptions.buffer).setUint16(4, packet.length - 40 + 8);
  return withOptions;
}

Deno.test("an IPv6 reply record drops extension headers, keeps the flow info and a derivable payload length", () => {
  const packet = reply6(40_000);
  const record = new Uint8Array(REPLY6_RECORD_LENGTH).fill(0xee);
  encodeReplyRecord6(packet, 0, 48, record, 0);
  const parsed = parseReplyRecord6(record);
  assert.ok(parsed !== undefined);
  assert.equal(formatIpv6(parsed.ip.dst), "2001:2:0:1::7");
  assert.equal(parsed.ip.flowInfo, 0x0012345);
  assert.equal(parsed.ip.nextHeader, 6);
  assert.equal(parsed.tcp.dstPort, 40_000);
  assert.equal(parsed.tcp.seq, 5000);
  assert.equal(parsed.tcp.ack, 1001);
  assert.equal(parsed.tcp.window, 500);
  assert.equal(parsed.tcp.payloadLength, 10); // 32 option bytes cut to 24, the payload still 10
});

Deno.test("IPv6 records travel in REPLY6 frames beside IPv4 reply frames, in order", () => {
  const encoder = new ReplyFrameEncoder({ chunkLength: 4096 });
  const record = new Uint8Array(REPLY6_RECORD_LENGTH);
  const record4 = new Uint8Array(64).fill(4);
  const count = MAX_REPLIES6_PER_FRAME + 3;
  for (let i = 0; i < count; i++) {
    record[0] = i;
    assert.ok(encoder.add6(record));
    if (i === 5) encoder.add(record4);
  }
  encoder.addExtension(encodeExtensionFrame(ExtensionFrameType.ACCEPTED, new Uint8Array([0, 1])));
  const seen: string[] = [];
  const decoder = new ReplyFrameDecoder((type, body) => {
    if (type === ExtensionFrameType.REPLY6) {
      assert.equal(body.length % REPLY6_RECORD_LENGTH, 0);
      for (let at = 0; at < body.length; at += REPLY6_RECORD_LENGTH) seen.push(`6:${body[at]}`);
    } else seen.push(`ext${type}`);
  });
  for (let chunk; (chunk = encoder.take()) !== undefined;) {
    for (let i = 0; i < chunk.length; i += 7) {
      assert.equal(decoder.push(chunk.subarray(i, i + 7), (r) => seen.push(`4:${r[0]}`)), undefined);
    }
    encoder.release(chunk);
  }
  const expected = [];
  for (let i = 0; i < count; i++) {
    expected.push(`6:${i}`);
    if (i === 5) expected.push("4:4");
  }
  expected.push("ext1");
  assert.deepEqual(seen, expected);
});

Deno.test("a REPLY6 body whole in what was read is handed over as a view of it, not copied", () => {
  const encoder = new ReplyFrameEncoder({ chunkLength: 4096 });
  const record = new Uint8Array(REPLY6_RECORD_LENGTH);
  for (let i = 0; i < 3; i++) {
    record[0] = i;
    assert.ok(encoder.add6(record));
  }
  const chunk = encoder.take()!;
  const bodies: Uint8Array[] = [];
  const seen: number[] = [];
  const decoder = new ReplyFrameDecoder((type, body) => {
    assert.equal(type, ExtensionFrameType.REPLY6);
    bodies.push(body);
    for (let at = 0; at < body.length; at += REPLY6_RECORD_LENGTH) seen.push(body[at]);
  });
  // The frame's header in one read, its body whole in the next: the body is still not copied.
  const headerEnd = chunk.length - 3 * REPLY6_RECORD_LENGTH;
  assert.equal(decoder.push(chunk.subarray(0, headerEnd), () => assert.fail("no IPv4 record")), undefined);
  const rest = chunk.subarray(headerEnd);
  assert.equal(decoder.push(rest, () => assert.fail("no IPv4 record")), undefined);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(bodies.length, 1);
  assert.equal(bodies[0].buffer, chunk.buffer);
  assert.equal(bodies[0].byteOffset, rest.byteOffset);
  // And the whole frame, header and body, in one read.
  const again = new ReplyFrameDecoder((_type, body) => bodies.push(body));
  assert.equal(again.push(chunk, () => assert.fail("no IPv4 record")), undefined);
  assert.equal(bodies[1].buffer, chunk.buffer);
  assert.equal(bodies[1].length, 3 * REPLY6_RECORD_LENGTH);
  encoder.release(chunk);
});
