import assert from "node:assert/strict";
import { Capture, type CapturedPacket, compileFilter, libpcapVersion, PcapWriter } from "../../ffi/mod.ts";
import { FatalError } from "../../src/errors.ts";
import { outputOf, withUnprivilegedDeno } from "./_unprivileged.ts";

const LINKTYPE_ETHERNET = 1;
const ETHERTYPE_IPV4 = 0x0800;
const PROTOCOL_TCP = 6;
const PROTOCOL_UDP = 17;

interface Frame {
  timeSeconds: number;
  timeNanos: number;
  data: Uint8Array<ArrayBuffer>;
}

/** An Ethernet frame carrying IPv4 and a TCP or UDP header with the given ports, then `payload` bytes. */
function ethernetFrame(protocol: number, sourcePort: number, destinationPort: number, payload: number) {
  const transportLength = protocol === PROTOCOL_TCP ? 20 : 8;
  const frame = new Uint8Array(14 + 20 + transportLength + payload);
  const view = new DataView(frame.buffer);
  frame.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  view.setUint16(12, ETHERTYPE_IPV4);
  view.setUint8(14, 0x45);
  view.setUint16(16, 20 + transportLength + payload);
  view.setUint8(22, 64);
  view.setUint8(23, protocol);
  frame.set([198, 18, 0, 1, 198, 18, 0, 2], 26);
  view.setUint16(34, sourcePort);
  view.setUint16(36, destinationPort);
  if (protocol === PROTOCOL_TCP) view.setUint8(46, 0x50);
  for (let i = 0; i < payload; i++) frame[14 + 20 + transportLength + i] = (i * 7 + 3) & 0xff;
  return frame;
}

const FRAMES: Frame[] = [
  { timeSeconds: 1_700_000_000, timeNanos: 123_456_789, data: ethernetFrame(PROTOCOL_TCP, 40000, 80, 10) },
  { timeSeconds: 1_700_000_001, timeNanos: 1, data: ethernetFrame(PROTOCOL_TCP, 40001, 9, 0) },
  { timeSeconds: 1_700_000_002, timeNanos: 999_999_999, data: ethernetFrame(PROTOCOL_UDP, 53, 40002, 33) },
];

/** Every packet left in `capture`, copied. */
function drain(capture: Capture): Frame[] {
  const frames: Frame[] = [];
  for (let packet = capture.next(); packet; packet = capture.next()) {
    frames.push({ timeSeconds: packet.timeSeconds, timeNanos: packet.timeNanos, data: packet.data.slice() });
  }
  return frames;
}

async function withTempDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tsffi-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function writePcap(path: string, frames: Frame[], snaplen?: number): void {
  const dead = Capture.openDead(LINKTYPE_ETHERNET, snaplen);
  const writer = PcapWriter.open(dead, path);
  for (const frame of frames) writer.write(frame);
  writer.flush();
  writer.close();
  writer.close();
  dead.close();
}

function readAll(path: string): Frame[] {
  const capture = Capture.openOffline(path);
  try {
    return drain(capture);
  } finally {
    capture.close();
  }
}

/** Asserts `body` throws a one-line FatalError whose message matches `pattern`. */
function assertFatal(body: () => unknown, pattern: RegExp): void {
  assert.throws(body, (error: unknown) => {
    assert.ok(error instanceof FatalError, `expected FatalError, got ${error}`);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), `message spans lines: ${error.message}`);
    return true;
  });
}

/** A minimal pcapng file: section header, one Ethernet interface with nanosecond stamps, one EPB a frame. */
function pcapng(frames: Frame[], littleEndian: boolean): Uint8Array {
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array) => {
    const padded = (body.length + 3) & ~3;
    const bytes = new Uint8Array(12 + padded);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, type, littleEndian);
    view.setUint32(4, bytes.length, littleEndian);
    bytes.set(body, 8);
    view.setUint32(bytes.length - 4, bytes.length, littleEndian);
    blocks.push(bytes);
  };
  const sectionHeader = new DataView(new ArrayBuffer(16));
  sectionHeader.setUint32(0, 0x1a2b3c4d, littleEndian);
  sectionHeader.setUint16(4, 1, littleEndian);
  sectionHeader.setBigInt64(8, -1n, littleEndian);
  block(0x0a0d0d0a, new Uint8Array(sectionHeader.buffer));
  const interfaceDescription = new DataView(new ArrayBuffer(20));
  interfaceDescription.setUint16(0, LINKTYPE_ETHERNET, littleEndian);
  interfaceDescription.setUint32(4, 65535, littleEndian);
  interfaceDescription.setUint16(8, 9, littleEndian); // if_tsresol: 10^-9 seconds
  interfaceDescription.setUint16(10, 1, littleEndian);
  interfaceDescription.setUint8(12, 9);
  block(1, new Uint8Array(interfaceDescription.buffer)); // ends with opt_endofopt (zeros)
  for (const frame of frames) {
    const body = new Uint8Array(20 + frame.data.length);
    const view = new DataView(body.buffer);
    const stamp = BigInt(frame.timeSeconds) * 1_000_000_000n + BigInt(frame.timeNanos);
    view.setUint32(4, Number(stamp >> 32n), littleEndian);
    view.setUint32(8, Number(stamp & 0xffffffffn), littleEndian);
    view.setUint32(12, frame.data.length, littleEndian);
    view.setUint32(16, frame.data.length, littleEndian);
    body.set(frame.data, 20);
    block(6, body);
  }
  const file = new Uint8Array(blocks.reduce((total, b) => total + b.length, 0));
  let offset = 0;
  for (const b of blocks) {
    file.set(b, offset);
    offset += b.length;
  }
  return file;
}

/** A classic big-endian pcap with microsecond stamps, as a big-endian host's tcpdump writes it. */
function bigEndianMicrosecondPcap(frames: Frame[]): Uint8Array {
  const size = 24 + frames.reduce((total, f) => total + 16 + f.data.length, 0);
  const file = new Uint8Array(size);
  const view = new DataView(file.buffer);
  view.setUint32(0, 0xa1b2c3d4);
  view.setUint16(4, 2);
  view.setUint16(6, 4);
  view.setUint32(16, 65535);
  view.setUint32(20, LINKTYPE_ETHERNET);
  let offset = 24;
  for (const frame of frames) {
    view.setUint32(offset, frame.timeSeconds);
    view.setUint32(offset + 4, Math.floor(frame.timeNanos / 1000));
    view.setUint32(offset + 8, frame.data.length);
    view.setUint32(offset + 12, frame.data.length);
    file.set(frame.data, offset + 16);
    offset += 16 + frame.data.length;
  }
  return file;
}

Deno.test("libpcap reports its version", () => {
  assert.match(libpcapVersion(), /^libpcap version \d+\.\d+/);
});

Deno.test("packets written through a dead handle read back with identical bytes and nanosecond stamps", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/three.pcap`;
    writePcap(path, FRAMES);
    const capture = Capture.openOffline(path);
    assert.equal(capture.linkType, LINKTYPE_ETHERNET);
    const first = capture.next();
    assert.ok(first);
    assert.equal(first.capturedLength, FRAMES[0].data.length);
    assert.equal(first.originalLength, FRAMES[0].data.length);
    capture.close();
    assert.deepEqual(readAll(path), FRAMES);
  });
});

Deno.test("next reuses one packet object whose data the following call overwrites", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/reuse.pcap`;
    writePcap(path, FRAMES);
    const capture = Capture.openOffline(path);
    const first = capture.next() as CapturedPacket;
    const firstData = first.data;
    const second = capture.next() as CapturedPacket;
    assert.equal(second, first);
    assert.equal(firstData.buffer, second.data.buffer);
    assert.deepEqual(second.data, FRAMES[1].data);
    capture.close();
  });
});

Deno.test("the end of a file reads as undefined, and so does a closed capture", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/end.pcap`;
    writePcap(path, FRAMES.slice(0, 1));
    const capture = Capture.openOffline(path);
    assert.equal(await capture.waitReadable(1000), true);
    assert.ok(capture.next());
    assert.equal(capture.next(), undefined);
    capture.close();
    capture.close();
    assert.equal(capture.next(), undefined);
  });
});

Deno.test("a writer cuts packets to its snaplen and keeps their original length", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/short.pcap`;
    writePcap(path, FRAMES.slice(0, 1), 40);
    const capture = Capture.openOffline(path);
    const packet = capture.next();
    assert.ok(packet);
    assert.equal(packet.capturedLength, 40);
    assert.equal(packet.originalLength, FRAMES[0].data.length);
    assert.deepEqual(packet.data, FRAMES[0].data.subarray(0, 40));
    capture.close();
  });
});

Deno.test("a filter on a file keeps only the matching packets", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/filter.pcap`;
    writePcap(path, FRAMES);
    const capture = Capture.openOffline(path);
    capture.setFilter("tcp port 9");
    assert.deepEqual(drain(capture), [FRAMES[1]]);
    capture.close();
  });
});

Deno.test("a bad filter throws libpcap's reason and leaves the capture usable", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/bad.pcap`;
    writePcap(path, FRAMES);
    const capture = Capture.openOffline(path);
    assertFatal(() => capture.setFilter("tcp port"), /^bad filter "tcp port": .*syntax error/);
    assert.equal(drain(capture).length, FRAMES.length);
    capture.close();
  });
});

Deno.test("compileFilter returns libpcap's text for a bad filter and undefined for a good one", () => {
  assert.equal(compileFilter(LINKTYPE_ETHERNET, "tcp dst port 80 and host 198.18.0.1"), undefined);
  assert.match(compileFilter(LINKTYPE_ETHERNET, "tcp port") ?? "", /syntax error/);
  assert.match(compileFilter(LINKTYPE_ETHERNET, "host nosuchhost.invalid") ?? "", /unknown host/);
});

Deno.test("opening a missing file names the file and the reason", () => {
  assertFatal(
    () => Capture.openOffline("/nonexistent/capture.pcap"),
    /^cannot read \/nonexistent\/capture\.pcap: No such file or directory$/,
  );
});

Deno.test("opening a file of arbitrary bytes says the format is unknown", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/noise.pcap`;
    let state = 12345;
    const noise = new Uint8Array(200).map(() => (state = (state * 1103515245 + 12345) >>> 0) >>> 24);
    await Deno.writeFile(path, noise);
    assertFatal(() => Capture.openOffline(path), /^cannot read .*noise\.pcap: unknown file format$/);
  });
});

Deno.test("a file cut inside a record yields its whole packets, then says it is truncated", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/cut.pcap`;
    writePcap(path, FRAMES);
    const whole = await Deno.readFile(path);
    await Deno.writeFile(path, whole.subarray(0, whole.length - 10));
    const capture = Capture.openOffline(path);
    assert.deepEqual(capture.next()?.data, FRAMES[0].data);
    assert.deepEqual(capture.next()?.data, FRAMES[1].data);
    assertFatal(() => capture.next(), /^cannot read .*cut\.pcap: truncated dump file/);
    capture.close();
  });
});

Deno.test("pcapng files of either byte order read back with nanosecond stamps", async () => {
  await withTempDir(async (dir) => {
    for (const littleEndian of [true, false]) {
      const path = `${dir}/frames-${littleEndian ? "le" : "be"}.pcapng`;
      await Deno.writeFile(path, pcapng(FRAMES, littleEndian));
      const capture = Capture.openOffline(path);
      assert.equal(capture.linkType, LINKTYPE_ETHERNET);
      capture.close();
      assert.deepEqual(readAll(path), FRAMES);
    }
  });
});

Deno.test("big-endian microsecond pcap files read back with stamps in nanoseconds", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/big-endian.pcap`;
    await Deno.writeFile(path, bigEndianMicrosecondPcap(FRAMES));
    const micro = FRAMES.map((f) => ({ ...f, timeNanos: Math.floor(f.timeNanos / 1000) * 1000 }));
    assert.deepEqual(readAll(path), micro);
  });
});

Deno.test("statistics of a file are refused with libpcap's reason", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/stats.pcap`;
    writePcap(path, FRAMES);
    const capture = Capture.openOffline(path);
    assertFatal(() => capture.stats(), /^cannot read capture statistics of .*stats\.pcap: .+/);
    capture.close();
  });
});

Deno.test("writing to a directory that does not exist names the file", () => {
  const dead = Capture.openDead(LINKTYPE_ETHERNET);
  assertFatal(
    () => PcapWriter.open(dead, "/nonexistent/out.pcap"),
    /^cannot write \/nonexistent\/out\.pcap: No such file/,
  );
  dead.close();
});

Deno.test("capturing on a missing interface fails with libpcap's reason", () => {
  assertFatal(
    () => Capture.openLive({ device: "eth9nonexistent" }),
    /^cannot capture on eth9nonexistent: (No such device exists|permission denied \(run as root or grant CAP_NET_RAW\))$/,
  );
});

Deno.test("capturing without privileges says how to get them", async () => {
  const script = `import { Capture } from ${
    JSON.stringify(new URL("../../ffi/mod.ts", import.meta.url).href)
  };
    try { Capture.openLive({ device: "lo" }); console.log("opened"); } catch (e) { console.log(e.message); }`;
  assert.equal(
    await withUnprivilegedDeno(script, "null", outputOf),
    "cannot capture on lo: permission denied (run as root or grant CAP_NET_RAW)",
  );
});

Deno.test("next() reads each frame whole into one view per length, kept from frame to frame", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/lengths.pcap`;
    const frames = [FRAMES[0], FRAMES[2], FRAMES[0], FRAMES[1], FRAMES[2]].map((frame, i) => ({
      ...frame,
      data: frame.data.map((byte, at) => at < 14 ? byte : (byte + i) & 0xff),
    }));
    writePcap(path, frames);
    const capture = Capture.openOffline(path);
    try {
      const views: Uint8Array[] = [];
      for (const frame of frames) {
        const packet = capture.next();
        assert.ok(packet);
        assert.deepEqual(packet.data, frame.data);
        assert.equal(packet.capturedLength, frame.data.length);
        views.push(packet.data);
      }
      assert.equal(capture.next(), undefined);
      assert.equal(views[2], views[0], "a frame of a length seen before comes in the same view");
      assert.equal(views[4], views[1]);
      assert.notEqual(views[1], views[0]);
    } finally {
      capture.close();
    }
  });
});
