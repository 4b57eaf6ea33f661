import assert from "node:assert/strict";
import {
  Capability,
  encodeExtensionFrame,
  encodeExtensionRecord,
  encodeHello,
  encodeRegistration,
  encodeReplyRecord,
  FIRST_EXTENSION_TYPE,
  MAX_REPLIES_PER_FRAME,
  parseReplyRecord,
  PROTOCOL_VERSION,
  ProtocolError,
  type Registration,
  REGISTRATION_LENGTH,
  RegistrationDecoder,
  RegistrationType,
  REPLY_RECORD_LENGTH,
  ReplyFrameDecoder,
  ReplyFrameEncoder,
} from "../../src/protocol/mod.ts";
import { parseIpv4 } from "../../src/wire/address.ts";
import { buildIpv4Tcp, concatBytes, TcpFlag } from "../../src/wire/mod.ts";

const client = parseIpv4("198.19.0.7")!;
const target = parseIpv4("198.18.0.2")!;

function registration(type: 1 | 2, clientPort: number): Registration {
  return { type, clientAddress: client, clientPort, targetAddress: target, targetPort: 8080 };
}

/** What a copy sends: TCPCopy's hello (or an extended one), then `registrations`. */
function encodeAll(registrations: Registration[], capabilities?: number): Uint8Array {
  const bytes = new Uint8Array((registrations.length + 1) * REGISTRATION_LENGTH);
  encodeHello(bytes, 0, capabilities);
  registrations.forEach((r, i) => encodeRegistration(r, bytes, (i + 1) * REGISTRATION_LENGTH));
  return bytes;
}

/**
 * An IPv4 TCP packet from 198.18.0.2:8080 to 198.19.0.7:`dstPort` with `ipOptions` bytes of IP options,
 * `tcpOptions` bytes of TCP options (filled with 0xa0 + index) and 10 payload bytes, after a 14-byte
 * Ethernet header.
 */
function packet(dstPort: number, ipOptions = 0, tcpOptions = 0): { frame: Uint8Array; ipOffset: number } {
  const ipOffset = 14;
  const ipHeader = 20 + ipOptions;
  const tcpHeader = 20 + tcpOptions;
  const frame = new Uint8Array(ipOffset + ipHeader + tcpHeader + 10);
  const view = new DataView(frame.buffer);
  view.setUint8(ipOffset, 0x40 | (ipHeader / 4));
  view.setUint16(ipOffset + 2, ipHeader + tcpHeader + 10);
  view.setUint8(ipOffset + 8, 64);
  view.setUint8(ipOffset + 9, 6);
  view.setUint32(ipOffset + 12, target);
  view.setUint32(ipOffset + 16, client);
  frame.fill(0x01, ipOffset + 20, ipOffset + ipHeader);
  const tcp = ipOffset + ipHeader;
  view.setUint16(tcp, 8080);
  view.setUint16(tcp + 2, dstPort);
  view.setUint32(tcp + 4, 0x11223344);
  view.setUint32(tcp + 8, 0x55667788);
  view.setUint8(tcp + 12, (tcpHeader / 4) << 4);
  view.setUint8(tcp + 13, 0x12);
  for (let i = 0; i < tcpOptions; i++) frame[tcp + 20 + i] = 0xa0 + i;
  frame.fill(0xee, tcp + tcpHeader);
  return { frame, ipOffset };
}

function record(dstPort: number, tcpOptions = 0): Uint8Array {
  const { frame, ipOffset } = packet(dstPort, 0, tcpOptions);
  const bytes = new Uint8Array(REPLY_RECORD_LENGTH);
  encodeReplyRecord(frame, ipOffset, bytes, 0);
  return bytes;
}

function drain(encoder: ReplyFrameEncoder): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (let chunk; (chunk = encoder.take()) !== undefined;) {
    chunks.push(chunk.slice());
    encoder.release(chunk);
  }
  return concatBytes(chunks);
}

function tcpDestinationPort(record: Uint8Array): number {
  return (record[22] << 8) | record[23];
}

Deno.test("a registration is 14 bytes in TCPCopy's layout, all fields big-endian", () => {
  const bytes = encodeAll([registration(RegistrationType.ADD, 40000)]).subarray(REGISTRATION_LENGTH);
  assert.deepEqual([...bytes], [198, 19, 0, 7, 0x9c, 0x40, 0, 1, 198, 18, 0, 2, 0x1f, 0x90]);
});

Deno.test("registrations decode to what was encoded, add and delete alike", () => {
  const sent = [registration(1, 40000), registration(2, 40000), registration(1, 65535)];
  const decoded = new RegistrationDecoder().push(encodeAll(sent));
  assert.deepEqual(decoded, sent);
});

Deno.test("registrations split at every byte boundary still decode whole and in order", () => {
  const sent = [registration(1, 1), registration(2, 2), registration(1, 3)];
  const bytes = encodeAll(sent);
  for (let cut = 0; cut <= bytes.length; cut++) {
    for (let cut2 = cut; cut2 <= bytes.length; cut2++) {
      const decoder = new RegistrationDecoder();
      const decoded = [bytes.subarray(0, cut), bytes.subarray(cut, cut2), bytes.subarray(cut2)]
        .flatMap((chunk) => decoder.push(chunk) as Registration[]);
      assert.deepEqual(decoded, sent, `cuts at ${cut} and ${cut2}`);
    }
  }
});

Deno.test("registrations fed one byte at a time decode whole", () => {
  const sent = [registration(1, 1), registration(2, 2)];
  const decoder = new RegistrationDecoder();
  const decoded = [...encodeAll(sent)].flatMap((byte) =>
    decoder.push(new Uint8Array([byte])) as Registration[]
  );
  assert.deepEqual(decoded, sent);
});

Deno.test("a registration of unknown type is garbage", () => {
  const bytes = encodeAll([registration(1, 1), registration(1, 2)]);
  bytes[2 * REGISTRATION_LENGTH + 7] = 3;
  const result = new RegistrationDecoder().push(bytes);
  assert.ok(result instanceof ProtocolError);
  assert.match(result.message, /unknown registration type 3/);
});

Deno.test("the hello is TCPCopy 1.3's: 14 bytes, all zero but the version 6 in the type field", () => {
  const bytes = new Uint8Array(REGISTRATION_LENGTH);
  encodeHello(bytes, 0);
  assert.deepEqual([...bytes], [0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0]);
  const decoder = new RegistrationDecoder();
  assert.deepEqual(decoder.push(bytes), []);
  assert.deepEqual(decoder.hello, { version: PROTOCOL_VERSION, extended: false, capabilities: 0 });
});

Deno.test("an extended hello carries the magic and the capabilities where C intercept ignores them", () => {
  const bytes = new Uint8Array(REGISTRATION_LENGTH);
  encodeHello(bytes, 0, Capability.IPV6);
  assert.deepEqual([...bytes], [0, 0, 0, 0, 0, 0, 0, 6, 0x74, 0x73, 0x68, 0x64, 0, 1]);
  const decoder = new RegistrationDecoder();
  decoder.push(bytes);
  assert.deepEqual(decoder.hello, {
    version: PROTOCOL_VERSION,
    extended: true,
    capabilities: Capability.IPV6,
  });
});

Deno.test("another version's hello is accepted and its version kept for the log", () => {
  const bytes = encodeAll([registration(1, 1)]);
  bytes[7] = 5;
  const decoder = new RegistrationDecoder();
  assert.deepEqual(decoder.push(bytes), [registration(1, 1)]);
  assert.equal(decoder.hello?.version, 5);
});

Deno.test("registrations with no hello before them are refused, as C intercept does", () => {
  const bytes = encodeAll([registration(1, 1)]).subarray(REGISTRATION_LENGTH);
  const result = new RegistrationDecoder().push(bytes);
  assert.ok(result instanceof ProtocolError);
  assert.match(result.message, /no version hello/);
});

Deno.test("extension records decode after an extended hello, split at every byte boundary", () => {
  const body = new Uint8Array([1, 2, 3, 4, 5]);
  const bytes = new Uint8Array(4 * REGISTRATION_LENGTH + body.length);
  encodeHello(bytes, 0, Capability.AUTH);
  encodeRegistration(registration(1, 1), bytes, REGISTRATION_LENGTH);
  const length = encodeExtensionRecord(FIRST_EXTENSION_TYPE + 1, body, bytes, 2 * REGISTRATION_LENGTH);
  encodeRegistration(registration(2, 1), bytes, 2 * REGISTRATION_LENGTH + length);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new RegistrationDecoder();
    const decoded = [bytes.subarray(0, cut), bytes.subarray(cut)].flatMap((chunk) => {
      const records = decoder.push(chunk);
      assert.ok(!(records instanceof ProtocolError), `cut at ${cut}`);
      return records.map((r) => "body" in r ? { type: r.type, body: [...r.body] } : r);
    });
    assert.deepEqual(decoded, [
      registration(1, 1),
      { type: FIRST_EXTENSION_TYPE + 1, body: [...body] },
      registration(2, 1),
    ], `cut at ${cut}`);
  }
});

Deno.test("an extension record from a peer whose hello was TCPCopy's is garbage", () => {
  const bytes = new Uint8Array(2 * REGISTRATION_LENGTH + 3);
  encodeHello(bytes, 0);
  encodeExtensionRecord(FIRST_EXTENSION_TYPE, new Uint8Array(3), bytes, REGISTRATION_LENGTH);
  const result = new RegistrationDecoder().push(bytes);
  assert.ok(result instanceof ProtocolError);
  assert.match(result.message, /unknown registration type 29696/);
});

Deno.test("an extension record longer than the bound is garbage before its body is buffered", () => {
  const bytes = new Uint8Array(2 * REGISTRATION_LENGTH);
  encodeHello(bytes, 0, 0);
  encodeExtensionRecord(FIRST_EXTENSION_TYPE, new Uint8Array(0), bytes, REGISTRATION_LENGTH);
  bytes[REGISTRATION_LENGTH + 4] = 0xff;
  const result = new RegistrationDecoder().push(bytes);
  assert.ok(result instanceof ProtocolError);
});

Deno.test("text sent to the registration port is garbage even when split", () => {
  const decoder = new RegistrationDecoder();
  const text = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.deepEqual(decoder.push(text.subarray(0, 5)), []);
  assert.ok(decoder.push(text.subarray(5)) instanceof ProtocolError);
});

Deno.test("a reply record holds the IPv4 header, the TCP header and its options, zero-padded", () => {
  const { frame, ipOffset } = packet(40000, 0, 12);
  const bytes = new Uint8Array(REPLY_RECORD_LENGTH + 4).fill(0xff);
  encodeReplyRecord(frame, ipOffset, bytes, 2);
  assert.deepEqual(bytes.subarray(2, 2 + 52), frame.subarray(ipOffset, ipOffset + 52));
  assert.ok(bytes.subarray(2 + 52, 2 + 64).every((byte) => byte === 0));
  assert.equal(bytes[0], 0xff, "nothing written before the record");
  assert.equal(bytes[REPLY_RECORD_LENGTH + 3], 0xff, "nothing written after the record");
});

Deno.test("a reply record keeps only 24 bytes of TCP options but the captured data offset", () => {
  const { frame, ipOffset } = packet(40000, 0, 40);
  const bytes = new Uint8Array(REPLY_RECORD_LENGTH);
  encodeReplyRecord(frame, ipOffset, bytes, 0);
  assert.equal(bytes[20 + 12] >> 4, 15);
  assert.deepEqual(bytes.subarray(40), frame.subarray(ipOffset + 40, ipOffset + 64));
});

Deno.test("a reply record drops IP options and shortens the total length by as much", () => {
  const { frame, ipOffset } = packet(40000, 8, 4);
  const bytes = new Uint8Array(REPLY_RECORD_LENGTH);
  encodeReplyRecord(frame, ipOffset, bytes, 0);
  assert.equal(bytes[0], 0x45);
  assert.equal((bytes[2] << 8) | bytes[3], 20 + 24 + 10);
  assert.deepEqual(bytes.subarray(4, 20), frame.subarray(ipOffset + 4, ipOffset + 20));
  assert.deepEqual(bytes.subarray(20, 44), frame.subarray(ipOffset + 28, ipOffset + 52));
  assert.ok(bytes.subarray(44).every((byte) => byte === 0));
});

Deno.test("reply frames carry at most 16 records, with a big-endian count first", () => {
  const encoder = new ReplyFrameEncoder();
  for (let port = 1; port <= 20; port++) assert.ok(encoder.add(record(port)));
  const stream = drain(encoder);
  assert.equal(stream.length, 2 + 16 * 64 + 2 + 4 * 64);
  assert.deepEqual([stream[0], stream[1]], [0, 16]);
  assert.deepEqual([stream[2 + 16 * 64], stream[3 + 16 * 64]], [0, 4]);
});

Deno.test("reply records round-trip through frames, with take closing a partial frame", () => {
  const encoder = new ReplyFrameEncoder();
  const sent = [1, 2, 3].map((port) => record(port, port * 4));
  for (const r of sent.slice(0, 2)) encoder.add(r);
  const first = drain(encoder);
  encoder.add(sent[2]);
  const second = drain(encoder);
  const received: Uint8Array[] = [];
  const decoder = new ReplyFrameDecoder();
  assert.equal(decoder.push(concatBytes([first, second]), (r) => received.push(r.slice())), undefined);
  assert.deepEqual(received, sent);
});

Deno.test("reply frames split at every byte boundary decode to the same records", () => {
  const encoder = new ReplyFrameEncoder();
  const sent = Array.from({ length: 18 }, (_, i) => record(1000 + i, 8));
  for (const r of sent) encoder.add(r);
  const stream = drain(encoder);
  for (let cut = 0; cut <= stream.length; cut++) {
    const received: number[] = [];
    const decoder = new ReplyFrameDecoder();
    for (const chunk of [stream.subarray(0, cut), stream.subarray(cut)]) {
      assert.equal(decoder.push(chunk, (r) => received.push(tcpDestinationPort(r))), undefined);
    }
    assert.deepEqual(received, sent.map(tcpDestinationPort), `cut at ${cut}`);
  }
});

Deno.test("reply frames fed one byte at a time decode to the same records", () => {
  const encoder = new ReplyFrameEncoder();
  const sent = Array.from({ length: 17 }, (_, i) => record(2000 + i));
  for (const r of sent) encoder.add(r);
  const received: Uint8Array[] = [];
  const decoder = new ReplyFrameDecoder();
  for (const byte of drain(encoder)) decoder.push(new Uint8Array([byte]), (r) => received.push(r.slice()));
  assert.deepEqual(received, sent);
});

Deno.test("a reply frame counting 0 or more than 16 records is garbage", () => {
  for (const count of [0, MAX_REPLIES_PER_FRAME + 1, 0xffff]) {
    const result = new ReplyFrameDecoder().push(new Uint8Array([count >> 8, count & 0xff]), () => {
      throw new Error("no record expected");
    });
    assert.ok(result instanceof ProtocolError, `count ${count}`);
  }
});

Deno.test("the frame encoder drops and counts records past its pending cap until chunks are released", () => {
  const chunkLength = 2 + 16 * 64;
  const encoder = new ReplyFrameEncoder({ chunkLength, maxPendingBytes: 2 * chunkLength });
  for (let i = 0; i < 32; i++) assert.ok(encoder.add(record(i)));
  assert.equal(encoder.add(record(99)), false);
  assert.equal(encoder.dropped, 1);
  assert.equal(encoder.pendingBytes, 2 * chunkLength);
  const chunk = encoder.take()!;
  assert.equal(encoder.add(record(100)), false, "a taken chunk counts until it is released");
  encoder.release(chunk);
  assert.ok(encoder.add(record(101)));
  assert.equal(encoder.dropped, 2);
  const received: number[] = [];
  new ReplyFrameDecoder().push(drain(encoder), (r) => received.push(tcpDestinationPort(r)));
  assert.deepEqual(received, [...Array.from({ length: 16 }, (_, i) => 16 + i), 101]);
});

Deno.test("the frame encoder reuses released chunks", () => {
  const encoder = new ReplyFrameEncoder();
  encoder.add(record(1));
  const first = encoder.take()!;
  encoder.release(first);
  encoder.add(record(2));
  const second = encoder.take()!;
  assert.equal(second.buffer, first.buffer);
  assert.equal(encoder.take(), undefined);
});

Deno.test("a reply whose TCP options outgrow the record keeps its seq, ack, flags and payload length", () => {
  // Timestamps and three SACK blocks: a 60-byte TCP header, of which the record keeps 44.
  const options = new Uint8Array(40);
  options.set([1, 1, 8, 10], 0);
  options.set([1, 1, 5, 26], 12);
  const frame = buildIpv4Tcp({
    src: 0xc6120002,
    dst: 0xc6130007,
    tcp: {
      srcPort: 8080,
      dstPort: 40000,
      seq: 1000,
      ack: 2000,
      flags: TcpFlag.ACK,
      window: 500,
      payload: new Uint8Array(100),
    },
  });
  // Splice the long options in by hand: the builder would lay them out itself.
  const long = new Uint8Array(frame.length + 40);
  long.set(frame.subarray(0, 40));
  long.set(options, 40);
  long.set(frame.subarray(40), 80);
  long[32] = (15 << 4) | (long[32] & 0x0f);
  new DataView(long.buffer).setUint16(2, long.length);
  const record = new Uint8Array(REPLY_RECORD_LENGTH);
  encodeReplyRecord(long, 0, record, 0);
  const reply = parseReplyRecord(record);
  assert.ok(reply);
  assert.equal(reply.tcp.seq, 1000);
  assert.equal(reply.tcp.ack, 2000);
  assert.equal(reply.tcp.flags, TcpFlag.ACK);
  assert.equal(reply.tcp.payloadLength, 100);
  assert.equal(reply.ip.dst, 0xc6130007 | 0);
});

Deno.test("extension frames between reply frames reach their listener, split at every byte boundary", () => {
  const encoder = new ReplyFrameEncoder();
  encoder.add(record(1));
  assert.ok(encoder.addExtension(encodeExtensionFrame(7, new Uint8Array([9, 8, 7]))));
  assert.ok(encoder.addExtension(encodeExtensionFrame(8, new Uint8Array(0))));
  encoder.add(record(2));
  const bytes = drain(encoder);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const events: string[] = [];
    const decoder = new ReplyFrameDecoder((type, body) => events.push(`x${type}:${[...body]}`));
    for (const chunk of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
      assert.equal(decoder.push(chunk, (r) => events.push(`r${tcpDestinationPort(r)}`)), undefined);
    }
    assert.deepEqual(events, ["r1", "x7:9,8,7", "x8:", "r2"], `cut at ${cut}`);
  }
});
