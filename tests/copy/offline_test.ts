import assert from "node:assert/strict";
import { main } from "../../main.ts";
import { scanCaptureFile } from "../../src/copy/offline/mod.ts";
import { recordedMs } from "../../src/copy/offline/capture_file.ts";
import { replayOffset } from "../../src/copy/offline/pacing.ts";
import { formatDuration, remainingMs } from "../../src/copy/offline/progress.ts";
import { SessionStarts } from "../../src/copy/offline/session_starts.ts";
import { captureFilter } from "../../src/copy/filter.ts";
import { parseCopyOptions, type ReplayOptions } from "../../src/copy/options.ts";
import { FatalError, UsageError } from "../../src/errors.ts";
import { defaultSessionConfig, SessionTable } from "../../src/session/mod.ts";
import { buildIpv4Tcp, LinkType, parseIpv4, TcpFlag } from "../../src/wire/mod.ts";
import { encodePcapFile, type PcapFileOptions, type PcapRecord } from "../wire/_pcap_file.ts";

const CLIENT = parseIpv4("198.18.0.10")!;
const SERVER = parseIpv4("198.18.0.1")!;
const FILTER = "tcp and (dst port 80)";
const COPY = ["-x", "80-198.18.0.2:8080", "-s", "198.18.0.3"];

/** A raw-IP frame between the client and the server; `toServer` false is the server's reply. */
function frame(
  clientPort: number,
  seq: number,
  flags: number,
  payload = new Uint8Array(0),
  toServer = true,
): Uint8Array {
  const ports = toServer ? { srcPort: clientPort, dstPort: 80 } : { srcPort: 80, dstPort: clientPort };
  return buildIpv4Tcp({
    src: toServer ? CLIENT : SERVER,
    dst: toServer ? SERVER : CLIENT,
    tcp: { ...ports, seq, ack: toServer && !(flags & TcpFlag.SYN) ? 1000 : 0, flags, window: 65535, payload },
  });
}

/** Two recorded sessions (one with a reply the filter leaves out), over 1.5 s. */
function twoSessions(): PcapRecord[] {
  const request = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  return [
    { time: 1000, data: frame(40000, 100, TcpFlag.SYN) },
    { time: 1000.001, data: frame(40000, 0, TcpFlag.SYN | TcpFlag.ACK, undefined, false) },
    { time: 1000.002, data: frame(40000, 101, TcpFlag.ACK | TcpFlag.PSH, request) },
    { time: 1000.5, data: frame(40001, 500, TcpFlag.SYN) },
    { time: 1000.5, data: frame(40001, 500, TcpFlag.SYN) }, // retransmitted: the same session
    { time: 1001.5, data: frame(40001, 501, TcpFlag.ACK | TcpFlag.FIN) },
  ];
}

async function withCaptureFile<T>(
  bytes: Uint8Array,
  fn: (path: string) => T | Promise<T>,
): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    await Deno.writeFile(path, bytes);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

function replayOf(input: string): ReplayOptions {
  return { input, speed: 1, loop: 1 };
}

function pcap(records: PcapRecord[], options?: PcapFileOptions): Uint8Array {
  return encodePcapFile(LinkType.RAW, records, options);
}

Deno.test("--input, --speed and --loop are read into the replay options", () => {
  assert.equal(parseCopyOptions(COPY).replay, undefined);
  assert.deepEqual(parseCopyOptions([...COPY, "-i", "a.pcap"]).replay, {
    input: "a.pcap",
    speed: 1,
    loop: 1,
  });
  assert.deepEqual(
    parseCopyOptions([...COPY, "--input", "a.pcap", "-a", "2.5", "-T", "3"]).replay,
    { input: "a.pcap", speed: 2.5, loop: 3 },
  );
  assert.equal(parseCopyOptions([...COPY, "-i", "a.pcap", "--speed", "max"]).replay?.speed, Infinity);
});

Deno.test("--max-lag: 200 ms, none at --speed max unless given; --capture-buffer in MiB, 16 by default", () => {
  const lag = (args: string[]) => parseCopyOptions([...COPY, ...args]).session.maxLagMs;
  assert.equal(lag([]), 200);
  assert.equal(lag(["--max-lag", "50"]), 50);
  assert.equal(lag(["-i", "x.pcap"]), 200);
  assert.equal(lag(["-i", "x.pcap", "-a", "max"]), Infinity);
  assert.equal(lag(["-i", "x.pcap", "-a", "max", "--max-lag", "500"]), 500);
  assert.equal(parseCopyOptions(COPY).captureBuffer, 16 << 20);
  assert.equal(parseCopyOptions([...COPY, "--capture-buffer", "4"]).captureBuffer, 4 << 20);
});

Deno.test("replay flags that make no sense are usage errors", () => {
  for (
    const extra of [
      ["-i", "a.pcap", "--interface", "eth0"],
      ["--speed", "2"],
      ["--loop", "2"],
      ["-i", "a.pcap", "--speed", "0"],
      ["-i", "a.pcap", "--speed", "fast"],
      ["-i", "a.pcap", "--loop", "0"],
      ["-i", ""],
    ]
  ) {
    assert.throws(() => parseCopyOptions([...COPY, ...extra]), UsageError, extra.join(" "));
  }
});

Deno.test("a packet is due at its recorded offset divided by the speed, at once with max", () => {
  assert.equal(replayOffset(3000, 1), 3000);
  assert.equal(replayOffset(3000, 2), 1500);
  assert.equal(replayOffset(3000, 0.5), 6000);
  assert.equal(replayOffset(3000, Infinity), 0);
  assert.equal(replayOffset(-20, 1), 0, "a packet stamped before the first goes at once");
});

Deno.test("recorded offsets count seconds and nanoseconds from the first packet", () => {
  const first = { timeSeconds: 1000, timeNanos: 900_000_000 };
  assert.equal(recordedMs(first, { timeSeconds: 1001, timeNanos: 100_000_000 }), 200);
  assert.equal(recordedMs(first, { timeSeconds: 1000, timeNanos: 900_000_500 }), 0.0005);
  assert.equal(recordedMs(first, { timeSeconds: 1000, timeNanos: 800_000_000 }), -100);
});

Deno.test("the time left is the recording's when paced, and extrapolated from the rate at max", () => {
  assert.equal(remainingMs({ replayed: 5, total: 10, elapsedMs: 4000 }, 10_000), 6000);
  assert.equal(remainingMs({ replayed: 10, total: 10, elapsedMs: 12_000 }, 10_000), 0);
  assert.equal(remainingMs({ replayed: 25, total: 100, elapsedMs: 1000 }, Infinity), 3000);
  assert.equal(remainingMs({ replayed: 0, total: 100, elapsedMs: 1000 }, Infinity), undefined);
  assert.deepEqual([0, 61_400, 3_725_000].map(formatDuration), ["0:00", "1:01", "1:02:05"]);
});

Deno.test("session starts are SYNs with a new ISN, and first data of sessions recorded without one", () => {
  const starts = new SessionStarts();
  const tcp = (srcPort: number, seq: number, flags: number, payloadLength = 0, dstPort = 80) => ({
    srcPort,
    dstPort,
    seq,
    flags,
    payloadLength,
  });
  assert.equal(starts.observe(CLIENT, tcp(1, 100, TcpFlag.SYN)), true);
  assert.equal(starts.observe(CLIENT, tcp(1, 100, TcpFlag.SYN)), false, "retransmitted SYN");
  assert.equal(starts.observe(CLIENT, tcp(1, 101, TcpFlag.ACK, 10)), false, "data of a known session");
  assert.equal(starts.observe(CLIENT, tcp(1, 9000, TcpFlag.SYN)), true, "the port reused");
  assert.equal(starts.observe(CLIENT, tcp(1, 9000, TcpFlag.SYN, 0, 443)), true, "another server port");
  assert.equal(starts.observe(CLIENT, tcp(2, 50, TcpFlag.ACK)), false, "a bare ack opens nothing");
  assert.equal(starts.observe(CLIENT, tcp(2, 50, TcpFlag.RST | TcpFlag.ACK, 5)), false);
  assert.equal(starts.observe(CLIENT, tcp(2, 50, TcpFlag.ACK, 5)), true, "taken over");
  assert.equal(starts.observe(CLIENT, tcp(2, 55, TcpFlag.ACK, 5)), false);
  assert.equal(starts.observe(CLIENT + 1, tcp(2, 55, TcpFlag.ACK, 5)), true, "another client");
});

Deno.test("a scan counts the clients' sessions, packets and recorded time in every pcap format", async () => {
  for (
    const options of [{}, { nanosecond: true }, { bigEndian: true }, { nanosecond: true, bigEndian: true }]
  ) {
    const scan = await withCaptureFile(
      pcap(twoSessions(), options),
      (path) => scanCaptureFile(replayOf(path), FILTER),
    );
    const { sessions, packets, durationMs, cutPackets, outgoing, damage } = scan;
    assert.deepEqual(
      { sessions, packets, durationMs: Math.round(durationMs), cutPackets, outgoing, damage },
      { sessions: 2, packets: 5, durationMs: 1500, cutPackets: 0, outgoing: 0, damage: undefined },
      JSON.stringify(options),
    );
  }
});

Deno.test("a recording from a VLAN trunk is read through its tags, with copy's own filter", async () => {
  const filter = captureFilter(parseCopyOptions(COPY));
  const ethernet = (ip: Uint8Array, vlan?: number) => {
    const tag = vlan === undefined ? [] : [0x81, 0x00, vlan >> 8, vlan & 0xff];
    return new Uint8Array([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ...tag, 0x08, 0x00, ...ip]);
  };
  for (const vlan of [undefined, 42]) {
    const records = twoSessions().map((record) => ({ ...record, data: ethernet(record.data, vlan) }));
    const scan = await withCaptureFile(
      encodePcapFile(LinkType.ETHERNET, records),
      (path) => scanCaptureFile(replayOf(path), filter),
    );
    assert.deepEqual(
      { sessions: scan.sessions, packets: scan.packets },
      { sessions: 2, packets: 5 },
      `VLAN ${vlan}`,
    );
  }
});

Deno.test("a scan counts packets cut by the snapshot length", async () => {
  const records = twoSessions();
  const scan = await withCaptureFile(
    pcap(records, { snaplen: 60 }),
    (path) => scanCaptureFile(replayOf(path), FILTER),
  );
  assert.equal(scan.cutPackets, 1);
  assert.equal(scan.sessions, 2);
});

Deno.test("a scan of a file that breaks off inside a packet says which packet and where", async () => {
  const bytes = pcap(twoSessions());
  // The last record (16-byte header + 40-byte FIN) loses its last 10 bytes.
  const scan = await withCaptureFile(
    bytes.subarray(0, bytes.length - 10),
    (path) => scanCaptureFile(replayOf(path), FILTER),
  );
  assert.equal(scan.packets, 4, "the whole packets before the break");
  assert.equal(scan.damage?.packetNumber, 6, "counted over every record, the filtered-out reply too");
  assert.equal(scan.damage?.byteOffset, bytes.length - 16 - 40);
  assert.match(scan.damage?.reason ?? "", /truncated/);
});

Deno.test("Linux cooked packets the capturing host sent are counted and not taken as sessions", async () => {
  const sllHeader = (packetType: number) => {
    const header = new Uint8Array(16);
    const view = new DataView(header.buffer);
    view.setUint16(0, packetType);
    view.setUint16(2, 1); // ARPHRD_ETHER
    view.setUint16(4, 6);
    view.setUint16(14, 0x0800);
    return header;
  };
  const cooked = (packetType: number, data: Uint8Array) => {
    const bytes = new Uint8Array(16 + data.length);
    bytes.set(sllHeader(packetType));
    bytes.set(data, 16);
    return bytes;
  };
  const records = [
    { time: 1, data: cooked(0, frame(40000, 100, TcpFlag.SYN)) },
    { time: 2, data: cooked(4, frame(40001, 200, TcpFlag.SYN)) },
  ];
  const scan = await withCaptureFile(
    encodePcapFile(LinkType.LINUX_SLL, records),
    (path) => scanCaptureFile(replayOf(path), FILTER),
  );
  assert.deepEqual([scan.sessions, scan.outgoing, scan.packets], [1, 1, 2]);
});

Deno.test("a file that is not a capture is a usage error; one that cannot be read is fatal", async () => {
  await withCaptureFile(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), (path) => {
    assert.throws(() => scanCaptureFile(replayOf(path), FILTER), UsageError, "not a pcap or pcapng capture");
  });
  await withCaptureFile(new Uint8Array(2), (path) => {
    assert.throws(() => scanCaptureFile(replayOf(path), FILTER), UsageError);
  });
  await withCaptureFile(encodePcapFile(147, []), (path) => {
    assert.throws(() => scanCaptureFile(replayOf(path), FILTER), UsageError, "link type 147");
  });
  assert.throws(() => scanCaptureFile(replayOf("/nonexistent/x.pcap"), FILTER), FatalError);
});

Deno.test("copy --input exits 2 for a file that is not a capture and 1 for one that is missing", async () => {
  await withCaptureFile(new TextEncoder().encode("not a capture at all"), async (path) => {
    assert.equal(await main(["copy", ...COPY, "-i", path]), 2);
  });
  assert.equal(await main(["copy", ...COPY, "-i", "/nonexistent/x.pcap"]), 1);
});

Deno.test("each loop pass opens its own sessions, on other client ports than earlier passes", () => {
  const ports: number[] = [];
  const table = new SessionTable(
    {
      mappings: [{ onlinePort: 80, targetAddress: parseIpv4("198.18.0.2")!, targetPort: 8080 }],
      clients: [],
      rate: 100,
      multiply: 1,
      portShift: 0,
      maxSessions: 100,
      session: defaultSessionConfig,
    },
    {
      segment: (_session, tcp) => tcp.flags & TcpFlag.SYN && ports.push(tcp.srcPort),
      clientOpened: () => {},
      clientClosed: () => {},
    },
  );
  const syn = {
    srcPort: 40000,
    dstPort: 80,
    seq: 100,
    ack: 0,
    flags: TcpFlag.SYN,
    window: 65535,
    payloadLength: 0,
    payload: () => new Uint8Array(0),
    options: () => ({}),
  };
  table.onCapture(CLIENT, SERVER, syn, 0);
  table.onCapture(CLIENT, SERVER, syn, 1); // the same pass: a retransmission, no new session
  assert.equal(table.counters.sessionsCopied, 1);
  for (let pass = 1; pass < 4; pass++) {
    table.startPass();
    table.onCapture(CLIENT, SERVER, syn, 2);
  }
  assert.equal(table.counters.sessionsCopied, 4);
  assert.equal(table.active, 4);
  assert.equal(ports[0], 40000, "the first pass keeps the client's port");
  assert.equal(new Set(ports).size, 4, `ports ${ports}`);
});
