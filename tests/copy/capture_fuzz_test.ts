/**
 * The capture-file reader against damaged files: seeded mutations of good captures (bit flips, bytes
 * overwritten, record lengths made huge or inconsistent, link types changed, files cut short, chunks
 * repeated) must each end in a scan or a one-line usage or fatal error, never another exception; and
 * every packet a scan accepts must go through the session table without one either. A fixed number of
 * cases from one seed: a failure names its case, and the run replays exactly.
 */
import assert from "node:assert/strict";
import { Capture } from "../../ffi/mod.ts";
import { scanCaptureFile } from "../../src/copy/offline/mod.ts";
import { FatalError, UsageError } from "../../src/errors.ts";
import { SessionTable } from "../../src/session/mod.ts";
import {
  buildIpv4Tcp,
  decodeTcpPacket,
  Ipv4View,
  isWireError,
  LinkType,
  parseIpv4,
  TcpFlag,
} from "../../src/wire/mod.ts";
import { encodePcapFile, type PcapRecord } from "../wire/_pcap_file.ts";
import { port80Plan } from "../session/_plan.ts";
import { seededUint32 } from "../wire/_fixtures.ts";

const SEED = 1414;
const CASES = 400;
const FILTER = "tcp and (dst port 80)";
const CLIENT = parseIpv4("198.18.0.10")!;
const SERVER = parseIpv4("198.18.0.1")!;
const TARGET = parseIpv4("198.18.0.2")!;

function ipFrame(port: number, seq: number, flags: number, payload = new Uint8Array(0)): Uint8Array {
  return buildIpv4Tcp({
    src: CLIENT,
    dst: SERVER,
    tcp: {
      srcPort: port,
      dstPort: 80,
      seq,
      ack: flags & TcpFlag.SYN ? 0 : 7000,
      flags,
      window: 65535,
      payload,
    },
  });
}

function conversation(): PcapRecord[] {
  const request = new TextEncoder().encode("GET /fuzz HTTP/1.1\r\nHost: a\r\n\r\n");
  const records: PcapRecord[] = [];
  for (let i = 0; i < 4; i++) {
    const port = 40_000 + i;
    records.push({ time: 1000 + i, data: ipFrame(port, 100, TcpFlag.SYN) });
    records.push({ time: 1000.001 + i, data: ipFrame(port, 101, TcpFlag.ACK) });
    records.push({ time: 1000.002 + i, data: ipFrame(port, 101, TcpFlag.ACK | TcpFlag.PSH, request) });
    records.push({
      time: 1000.003 + i,
      data: ipFrame(port, 101 + request.length, TcpFlag.ACK | TcpFlag.FIN),
    });
  }
  return records;
}

function ethernet(ip: Uint8Array, vlan: boolean): Uint8Array {
  const tag = vlan ? [0x81, 0x00, 0x00, 0x2a] : [];
  return new Uint8Array([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ...tag, 0x08, 0x00, ...ip]);
}

function cooked(ip: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(16 + ip.length);
  const view = new DataView(bytes.buffer);
  view.setUint16(2, 1);
  view.setUint16(4, 6);
  view.setUint16(14, 0x0800);
  bytes.set(ip, 16);
  return bytes;
}

/** The good files the mutations start from: raw IP, Ethernet with and without a VLAN tag, cooked. */
function seedFiles(): Uint8Array[] {
  const records = conversation();
  const relink = (wrap: (ip: Uint8Array) => Uint8Array) =>
    records.map((record) => ({ ...record, data: wrap(record.data) }));
  return [
    encodePcapFile(LinkType.RAW, records),
    encodePcapFile(LinkType.RAW, records, { nanosecond: true, bigEndian: true }),
    encodePcapFile(LinkType.ETHERNET, relink((ip) => ethernet(ip, false))),
    encodePcapFile(LinkType.ETHERNET, relink((ip) => ethernet(ip, true)), { snaplen: 70 }),
    encodePcapFile(LinkType.LINUX_SLL, relink(cooked)),
  ];
}

/** One damaged copy of `file`: 1-6 mutations picked by `random`. */
function mutate(file: Uint8Array, random: () => number): Uint8Array {
  let bytes = file.slice();
  const below = (n: number) => random() % Math.max(n, 1);
  const mutations = 1 + below(6);
  for (let m = 0; m < mutations; m++) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = below(bytes.length);
    switch (below(7)) {
      case 0: // a bit flipped
        bytes[at] ^= 1 << below(8);
        break;
      case 1: // a byte overwritten
        bytes[at] = below(256);
        break;
      case 2: // a 32-bit word (a record's caplen or len, a header field) made huge, zero or odd
        if (at + 4 <= bytes.length) view.setUint32(at, [0xffffffff, 0, 0x7fffffff, random()][below(4)], true);
        break;
      case 3: // the file cut short
        bytes = bytes.subarray(0, at);
        break;
      case 4: { // a chunk repeated in place (records out of step with their headers)
        const length = below(64);
        const copy = new Uint8Array(bytes.length + length);
        copy.set(bytes.subarray(0, at + length));
        copy.set(bytes.subarray(at), at + length);
        bytes = copy;
        break;
      }
      case 5: // the link type in the file header changed
        if (bytes.length >= 24) view.setUint32(20, [0, 1, 12, 101, 108, 113, 276, random()][below(8)], true);
        break;
      case 6: // the snapshot length in the file header changed
        if (bytes.length >= 24) view.setUint32(16, [0, 1, 65535, 0xffffffff][below(4)], true);
        break;
    }
  }
  return bytes.slice();
}

/** Feeds every packet the filter keeps through decoding and the session table, as a replay would. */
function replayThroughTable(path: string): number {
  const table = new SessionTable(port80Plan(TARGET, { maxSessions: 100 }), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  const capture = Capture.openOffline(path);
  let fed = 0;
  try {
    capture.setFilter(FILTER);
    for (let now = 0;; now += 1) {
      let packet;
      try {
        packet = capture.next();
      } catch (error) {
        if (error instanceof FatalError) break; // where the file breaks off
        throw error;
      }
      if (!packet) break;
      const decoded = decodeTcpPacket(capture.linkType, packet.data);
      if (decoded === undefined || isWireError(decoded) || !(decoded.ip instanceof Ipv4View)) continue;
      table.onCapture(decoded.ip.src, decoded.ip.dst, decoded.tcp, now);
      table.tick(now);
      fed++;
    }
    table.abandonAll(1_000_000);
  } finally {
    capture.close();
  }
  return fed;
}

Deno.test(`${CASES} seeded damaged capture files end in a scan or a one-line error, never a crash`, async () => {
  const random = seededUint32(SEED);
  const seeds = seedFiles();
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  const outcomes = { scanned: 0, damaged: 0, refused: 0, fed: 0 };
  try {
    for (let index = 0; index < CASES; index++) {
      const bytes = mutate(seeds[index % seeds.length], random);
      await Deno.writeFile(path, bytes);
      const where = `case ${index} of seed ${SEED}`;
      let scan;
      try {
        scan = scanCaptureFile({ input: path, speed: 1, loop: 1 }, FILTER);
      } catch (error) {
        assert.ok(error instanceof UsageError || error instanceof FatalError, `${where}: ${error}`);
        assert.ok(!error.message.includes("\n"), `${where}: one line: ${error.message}`);
        outcomes.refused++;
        continue;
      }
      outcomes.scanned++;
      if (scan.damage !== undefined) {
        outcomes.damaged++;
        assert.ok(scan.damage.packetNumber >= 1, where);
        assert.ok(!scan.damage.reason.includes("\n"), `${where}: ${scan.damage.reason}`);
      }
      assert.ok(scan.sessions <= scan.packets && scan.cutPackets <= scan.packets, where);
      assert.ok(Number.isFinite(scan.durationMs) && scan.durationMs >= 0, `${where}: ${scan.durationMs}`);
      outcomes.fed += replayThroughTable(path);
    }
  } finally {
    await Deno.remove(path);
  }
  // The mutations must reach every path: files refused, files broken off, files read through.
  assert.ok(
    outcomes.refused > 0 && outcomes.damaged > 0 && outcomes.scanned > outcomes.damaged,
    JSON.stringify(outcomes),
  );
  assert.ok(outcomes.fed > 0, JSON.stringify(outcomes));
});
