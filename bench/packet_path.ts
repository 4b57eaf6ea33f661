/**
 * Micro-benchmark of copy's per-packet path, the way `CopyRuntime` composes it: decode the captured
 * frame, find the session, run it, build the segment for the target (headers and checksums) and send
 * it with the raw socket; and for the target's replies, read the 64-byte record and run the session.
 *
 * Keep-alive HTTP sessions are prebuilt (SYN, handshake ACK, requests of 100 bytes each answered by
 * the target with 200 bytes, the client's ACKs, FIN; every segment with a TCP timestamp, as Linux
 * sends them), then fed with a synthetic clock, so only the path itself is timed. The table's client
 * events are encoded as registrations into a reused buffer, as copy does (intercept links not timed).
 * With `--send`, segments go through copy's own `PacketSender` (batched sendmmsg on a raw socket);
 * with `--send-interface DEV`, as Ethernet frames on DEV (`copy --send-interface`: batched sendmmsg on
 * libpcap's socket), and with `--inject-each` too, one pcap_inject per frame instead, to compare. With
 * `--ipv6`, the same sessions over IPv6 (client, online server, target and fake client in 2001:2::/48;
 * 84-byte reply records), the way `CopyRuntime` feeds them to the table; IPv6 sends through the raw
 * IPv6 socket only, as copy does.
 *
 * With `--allocations` it measures instead what the path allocates on V8's heap: the same sessions with
 * 10 and with 20 requests each, run with a young generation large enough that no collection happens,
 * so the heap's growth is what was allocated. The difference between the two is the steady-state cost
 * per packet; what remains, per session, is a session's cost from its SYN to its end.
 *
 * With `--retained` it measures what sessions hold: the heap left after a full collection with thousands
 * of sessions open (one request answered, keep-alive), then with the same sessions over and lingering,
 * per session (the difference between 4,000 and 8,000 sessions, so the path's fixed part cancels out).
 * The heap counts with the typed arrays' contents, which V8 keeps outside it (its external memory).
 *
 * With `--steady RATE` it measures what the path holds in a steady state of new connections: 60,000
 * one-request sessions one after another, paced to RATE new sessions per second of the bench's clock, so that
 * about RATE x 2 s of them linger at the end; the heap (typed arrays' contents included) after a full
 * collection, above a fresh path's (its pools fill up in the run: they count).
 *
 * Run: deno run -A bench/packet_path.ts [--send | --send-interface DEV [--inject-each] | --allocations |
 * --retained | --steady RATE]
 * [--ipv6] (`--allocations --ipv6`: the IPv6 workload's allocations; sending needs root: run it inside a lab host, as `deno task bench` does, where the target
 * address leads nowhere)
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Capture, PacketBatch, readKernelFile } from "../ffi/mod.ts";
import { LinkOutlet } from "../src/copy/link_sender.ts";
import { parseMac } from "../src/copy/neighbours.ts";
import { BATCH_PACKETS, BATCH_SLOT, type Outlet, PacketSender } from "../src/copy/sender.ts";
import { encodeClientEvent } from "../src/copy/intercept_link.ts";
import {
  encodeReplyRecord,
  encodeReplyRecord6,
  parseReplyRecord,
  parseReplyRecord6,
  REGISTRATION6_LENGTH,
  RegistrationType,
  REPLY6_RECORD_LENGTH,
  REPLY_RECORD_LENGTH,
  ReplyHeaders,
} from "../src/protocol/mod.ts";
import { SessionTable } from "../src/session/mod.ts";
import { port80Plan } from "../tests/session/_plan.ts";
import {
  type Address,
  buildIpv4Tcp,
  buildIpv6Tcp,
  destinationAddress,
  emitIpv4Tcp,
  emitIpv6Tcp,
  type Ipv4TcpRepr,
  Ipv4View,
  ipv6Address,
  ipv6AddressBytes,
  type Ipv6TcpRepr,
  Ipv6View,
  isWireError,
  LinkType,
  parseIpv6,
  sourceAddress,
  TcpFlag,
  TcpPacketDecoder,
  type TcpRepr,
  writeIpv6Address,
} from "../src/wire/mod.ts";

const CLIENT = 0xc6120a0a | 0; // 198.18.10.10
const ONLINE = 0xc6120001 | 0; // 198.18.0.1
/** An address no lab host has: `deno task bench` gives it a neighbour entry, so sends leave and vanish. */
const TARGET = 0xc61200fa | 0; // 198.18.0.250
const FAKE_CLIENT_NET = 0xc6130000 | 0; // 198.19.0.0
const REQUEST = 100;
const RESPONSE = 200;
const TARGET_ISN = 7_000_000;
const ONLINE_ISN = 9_000_000;
const ETHERNET_HEADER = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 10, 0x08, 0x00];
const ETHERNET_HEADER6 = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 10, 0x86, 0xdd];
const CLIENT6 = parseIpv6("2001:2::10")!;
const ONLINE6 = parseIpv6("2001:2::1")!;
const TARGET6 = ipv6Address(parseIpv6("2001:2::fa")!);
const FAKE_CLIENT6 = ipv6Address(parseIpv6("2001:2:0:1::1")!);
/** The client's flow label, kept on its copies. */
const FLOW_LABEL = 0x12345;

/** The address family of the workload. */
type Family = 4 | 6;

/** One input of the path: a captured frame or a reply record. */
type Step = { kind: "capture"; frame: Uint8Array } | { kind: "reply"; record: Uint8Array };

/** What one run measured. */
export interface PacketPathResult {
  readonly packets: number;
  readonly captured: number;
  readonly replies: number;
  readonly sent: number;
  readonly nsPerPacket: number;
  readonly send: SendPath;
  readonly family: Family;
}

/**
 * How the measured path sends: not at all, through copy's raw socket, as frames on an interface (batched
 * as copy sends them), or as frames with one pcap_inject each.
 */
export type SendPath =
  | { kind: "none" }
  | { kind: "raw" }
  | { kind: "link"; device: string }
  | { kind: "inject-each"; device: string };

/** The MAC address frames to the bench's target go to (`deno task bench` gives the target this neighbour). */
export const TARGET_MAC = "02:00:00:00:00:fa";

/** `LinkOutlet`'s frames sent one pcap_inject at a time: what batching saves. */
class InjectEachOutlet implements Outlet {
  readonly headerLength = 14;
  readonly batch = new PacketBatch("link", BATCH_PACKETS, BATCH_SLOT);
  readonly #capture: Capture;
  readonly #header = new Uint8Array(14);
  readonly #frames: Uint8Array<ArrayBuffer>[] = [];

  constructor(device: string) {
    this.#capture = Capture.openSender(device);
    this.#header.set(parseMac(TARGET_MAC)!, 0);
    this.#header.set(parseMac(readKernelFile(`/sys/class/net/${device}/address`)!.trim())!, 6);
    this.#header[12] = 0x08;
  }

  queue(length: number, _destination: number): void {
    const slot = this.batch.nextSlot();
    slot.set(this.#header);
    this.#frames.push(slot.subarray(0, length));
    this.batch.push(length);
  }

  sendBatch(): number {
    let dropped = 0;
    for (const frame of this.#frames) if (!this.#capture.inject(frame)) dropped++;
    this.#frames.length = 0;
    this.batch.clear();
    return dropped;
  }

  sendOne(packet: Uint8Array<ArrayBuffer>, _destination: number): boolean {
    packet.set(this.#header);
    return this.#capture.inject(packet);
  }

  close(): void {
    this.#capture.close();
  }
}

function senderFor(send: SendPath, family: Family): PacketSender | undefined {
  if (family === 6 && (send.kind === "link" || send.kind === "inject-each")) {
    throw new Error("--send-interface sends IPv4 only, as copy does");
  }
  switch (send.kind) {
    case "none":
      return undefined;
    case "raw":
      return new PacketSender(undefined, family === 6 ? [TARGET6] : []);
    case "link": {
      const sourceMac = parseMac(readKernelFile(`/sys/class/net/${send.device}/address`)!.trim())!;
      const macs = new Map([[TARGET, parseMac(TARGET_MAC)!]]);
      return new PacketSender(new LinkOutlet({ device: send.device, sourceMac, macs }));
    }
    case "inject-each":
      return new PacketSender(new InjectEachOutlet(send.device));
  }
}

function frame(tcp: TcpRepr, family: Family): Uint8Array {
  const ip = family === 4
    ? buildIpv4Tcp({ src: CLIENT, dst: ONLINE, id: 1, tcp })
    : buildIpv6Tcp({ src: CLIENT6, dst: ONLINE6, flowInfo: FLOW_LABEL, tcp });
  const header = family === 4 ? ETHERNET_HEADER : ETHERNET_HEADER6;
  const bytes = new Uint8Array(header.length + ip.length);
  bytes.set(header);
  bytes.set(ip, header.length);
  return bytes;
}

function record(family: Family, clientPort: number, tcp: Omit<TcpRepr, "dstPort">): Uint8Array {
  if (family === 6) {
    const packet = buildIpv6Tcp({
      src: ipv6AddressBytes(TARGET6),
      dst: ipv6AddressBytes(FAKE_CLIENT6),
      tcp: { ...tcp, dstPort: clientPort },
    });
    const out = new Uint8Array(REPLY6_RECORD_LENGTH);
    encodeReplyRecord6(packet, 0, 40, out, 0);
    return out;
  }
  const packet = buildIpv4Tcp({ src: TARGET, dst: FAKE_CLIENT_NET, tcp: { ...tcp, dstPort: clientPort } });
  const out = new Uint8Array(REPLY_RECORD_LENGTH);
  encodeReplyRecord(packet, 0, out, 0);
  return out;
}

/**
 * The inputs of one keep-alive session of `requests` requests from client port `10_000 + index`: its
 * opening (handshake, requests, answers, the client's ACKs) and its closing (FINs, last ACK), apart so
 * that `--retained` can hold sessions open. Every ISN is spread over all 32 bits, as real ones are: a
 * sequence number above 2**31 is not a small integer to V8, and the bench must meet them where copy does.
 */
function sessionSteps(index: number, requests: number, family: Family): { opening: Step[]; closing: Step[] } {
  const opening: Step[] = [];
  const closing: Step[] = [];
  const request = new Uint8Array(REQUEST).fill(0x61);
  // Both ends use timestamps on every segment, as Linux does by default.
  const timestamp = { value: 1, echo: 0 };
  const replyOptions = { timestamp: { value: 2, echo: 1 } };
  const port = 10_000 + index;
  const isn = (index * 7919 * 65536) >>> 0;
  const targetIsn = (index * 6271 * 65536 + TARGET_ISN) >>> 0;
  const onlineIsn = (index * 4099 * 65536 + ONLINE_ISN) >>> 0;
  const base = { srcPort: port, dstPort: 80, window: 502, options: { timestamp } };
  // The copy keeps the client port; its address comes from the -c range of one address.
  const reply = (seq: number, ack: number, flags: number, payload?: Uint8Array) =>
    ({
      kind: "reply",
      record: record(family, port, {
        srcPort: 8080,
        seq: seq >>> 0,
        ack: ack >>> 0,
        flags,
        window: 502,
        options: flags & TcpFlag.SYN
          ? { mss: 1460, sackPermitted: true, windowScale: 7, ...replyOptions }
          : replyOptions,
        payload,
      }),
    }) as Step;
  const capture = (seq: number, ack: number, flags: number, payload?: Uint8Array) =>
    ({
      kind: "capture",
      frame: frame({ ...base, seq: seq >>> 0, ack: ack >>> 0, flags, payload }, family),
    }) as Step;
  opening.push({
    kind: "capture",
    frame: frame({
      ...base,
      seq: isn,
      ack: 0,
      flags: TcpFlag.SYN,
      window: 64240,
      options: { mss: 1460, sackPermitted: true, windowScale: 7, timestamp },
    }, family),
  });
  opening.push(reply(targetIsn, isn + 1, TcpFlag.SYN | TcpFlag.ACK));
  opening.push(capture(isn + 1, onlineIsn + 1, TcpFlag.ACK));
  for (let r = 0; r < requests; r++) {
    const seq = isn + 1 + r * REQUEST;
    const onlineAck = onlineIsn + 1 + r * RESPONSE;
    opening.push(capture(seq, onlineAck, TcpFlag.PSH | TcpFlag.ACK, request));
    const response = new Uint8Array(RESPONSE);
    opening.push(reply(targetIsn + 1 + r * RESPONSE, seq + REQUEST, TcpFlag.PSH | TcpFlag.ACK, response));
    opening.push(capture(seq + REQUEST, onlineAck + RESPONSE, TcpFlag.ACK));
  }
  const end = isn + 1 + requests * REQUEST;
  const onlineEnd = onlineIsn + 1 + requests * RESPONSE;
  closing.push(capture(end, onlineEnd, TcpFlag.FIN | TcpFlag.ACK));
  closing.push(reply(targetIsn + 1 + requests * RESPONSE, end + 1, TcpFlag.FIN | TcpFlag.ACK));
  closing.push(capture(end + 1, onlineEnd + 1, TcpFlag.ACK));
  return { opening, closing };
}

/** The inputs of `sessions` keep-alive sessions of `requests` requests each, one session after another. */
function workload(sessions: number, requests: number, family: Family = 4): Step[] {
  const steps: Step[] = [];
  for (let s = 0; s < sessions; s++) {
    const { opening, closing } = sessionSteps(s, requests, family);
    steps.push(...opening, ...closing);
  }
  return steps;
}

/** The bench clock's milliseconds per input (per captured packet or reply). */
const MS_PER_INPUT = 0.05;

/**
 * Copy's packet path around a fresh table: `feed` runs inputs through it on the bench's clock (`msPerInput`
 * per input), `finish` lets every timer run out.
 */
function packetPath(sender: PacketSender | undefined, family: Family, msPerInput = MS_PER_INPUT) {
  const buffer = new Uint8Array(65535);
  const registration = new Uint8Array(REGISTRATION6_LENGTH);
  const source6 = new Uint8Array(16);
  const target6 = ipv6AddressBytes(TARGET6);
  let sent = 0;
  const decoder = new TcpPacketDecoder();
  const reply4 = new ReplyHeaders(new Ipv4View(buffer, 0));
  const reply6 = new ReplyHeaders(new Ipv6View(buffer, 0));
  // As copy's sender builds its packets: into one description, reused.
  const packet4: Ipv4TcpRepr = {
    src: 0,
    dst: TARGET,
    id: 0,
    tcp: { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0 },
  };
  const packet6: Ipv6TcpRepr = { src: source6, dst: target6, flowInfo: 0, tcp: packet4.tcp };
  const target: Address = family === 4 ? TARGET : TARGET6;
  const first: Address = family === 4 ? FAKE_CLIENT_NET : FAKE_CLIENT6;
  const table = new SessionTable(port80Plan(target, { clients: [{ first, count: 1 }] }), {
    segment(endpoints, tcp) {
      sent++;
      if (sender !== undefined) return sender.send(endpoints.clientAddress, target, tcp, endpoints.flowInfo);
      const client = endpoints.clientAddress;
      if (typeof client === "number") {
        packet4.id = (packet4.id! + 1) & 0xffff;
        packet4.src = client;
        packet4.tcp = tcp;
        emitIpv4Tcp(packet4, buffer);
      } else {
        writeIpv6Address(client, source6);
        packet6.flowInfo = endpoints.flowInfo ?? 0;
        packet6.tcp = tcp;
        emitIpv6Tcp(packet6, buffer);
      }
    },
    clientOpened(endpoints) {
      encodeClientEvent(RegistrationType.ADD, endpoints, registration, 0);
    },
    clientClosed(endpoints) {
      encodeClientEvent(RegistrationType.DELETE, endpoints, registration, 0);
    },
  });
  let now = 0;
  let inputs = 0;
  let captured = 0;
  let replies = 0;
  return {
    table,
    get sent() {
      return sent;
    },
    get captured() {
      return captured;
    },
    get replies() {
      return replies;
    },
    feed(steps: Step[]): void {
      for (let i = 0; i < steps.length; i++, inputs++) {
        const step = steps[i];
        // One clock reading per batch of inputs, as copy's capture loop reads it once per drain: a
        // fractional clock read per packet would be a heap number per packet that copy never makes.
        if ((inputs & 63) === 0) now += 64 * msPerInput;
        if (step.kind === "capture") {
          captured++;
          const decoded = decoder.decode(LinkType.ETHERNET, step.frame);
          if (decoded === undefined || isWireError(decoded)) continue;
          const ip = decoded.ip;
          if (ip instanceof Ipv4View) table.onCapture(ip.src, ip.dst, decoded.tcp, now);
          else table.onCapture(sourceAddress(ip), destinationAddress(ip), decoded.tcp, now, ip.flowInfo);
        } else {
          replies++;
          if (family === 6) {
            const reply = parseReplyRecord6(step.record, reply6);
            if (reply === undefined) continue;
            table.onReply(destinationAddress(reply.ip), reply.tcp, now);
          } else {
            const reply = parseReplyRecord(step.record, reply4);
            if (reply === undefined) continue;
            table.onReply(reply.ip.dst, reply.tcp, now);
          }
        }
        if ((inputs & 63) === 0) table.tick(now);
      }
    },
    finish(): void {
      table.tick(now + 10_000);
      sender?.flush();
    },
  };
}

/** Runs the workload once through a fresh table; returns the counts and the time taken. */
function runOnce(steps: Step[], sender: PacketSender | undefined, family: Family = 4) {
  const path = packetPath(sender, family);
  const started = performance.now();
  path.feed(steps);
  path.finish();
  const elapsed = performance.now() - started;
  const completed = path.table.counters.outcomes.completed;
  return { captured: path.captured, replies: path.replies, sent: path.sent, elapsed, completed };
}

/** Measures the path over `sessions` keep-alive sessions of `requests` requests (best of `rounds`). */
export function measurePacketPath(
  sessions = 2000,
  requests = 10,
  rounds = 5,
  send: SendPath = { kind: "none" },
  family: Family = 4,
): PacketPathResult {
  const steps = workload(sessions, requests, family);
  const sender = senderFor(send, family);
  try {
    let best: ReturnType<typeof runOnce> | undefined;
    for (let round = 0; round < rounds; round++) {
      const result = runOnce(steps, sender, family);
      if (result.completed !== sessions) {
        throw new Error(`the workload did not complete: ${result.completed} of ${sessions} sessions`);
      }
      if (best === undefined || result.elapsed < best.elapsed) best = result;
    }
    const packets = best!.captured + best!.replies;
    return {
      packets,
      captured: best!.captured,
      replies: best!.replies,
      sent: best!.sent,
      nsPerPacket: Math.round((best!.elapsed * 1e6) / packets),
      send,
      family,
    };
  } finally {
    sender?.close();
  }
}

/** Bytes V8 allocated on the packet path: per packet in steady state, and per session. */
export interface AllocationResult {
  readonly bytesPerPacket: number;
  readonly bytesPerSession: number;
  /**
   * Everything a session of one request allocates, its nine packets included (`close`'s sessions):
   * measured whole, not fitted, so it does not trade against `bytesPerPacket`; over 20,000 sessions, so
   * that most end their lingering within the run, as in a steady state.
   */
  readonly bytesPerOneRequestSession: number;
}

/** The young generation, in MB, for `--allocations`: the runs allocate less than this, so nothing is collected. */
const ALLOCATION_SEMI_SPACE_MB = 256;

/** Runs `--allocations` (of the `family` workload) in a child with the V8 flags it needs. */
export function measureAllocations(family: Family = 4): Promise<AllocationResult> {
  return inChild(
    "--allocations",
    family,
    `--expose-gc,--min-semi-space-size=${ALLOCATION_SEMI_SPACE_MB},--max-semi-space-size=${ALLOCATION_SEMI_SPACE_MB}`,
  );
}

/**
 * Runs `--retained` (of the `family` workload) in a child that may force full collections, done whole
 * when `gc()` returns: a typed array's contents, freed by a sweeper thread otherwise, still counted now and
 * then after it (three runs of e3c5684: 671 to 1,049 bytes per lingering session, and 907 to 912 this way).
 */
export function measureRetained(family: Family = 4): Promise<RetainedResult> {
  return inChild("--retained", family, "--expose-gc,--single-threaded-gc");
}

/** This bench run with `flag` (and `values`) in a child with `v8Flags`: its JSON line. */
async function inChild<T>(flag: string, family: Family, v8Flags: string, values: string[] = []): Promise<T> {
  const args = [
    "run",
    "-A",
    "--quiet",
    `--v8-flags=${v8Flags}`,
    fileURLToPath(import.meta.url),
    flag,
    ...values,
  ];
  const output = await new Deno.Command(Deno.execPath(), {
    args: family === 6 ? [...args, "--ipv6"] : args,
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`the ${flag} measurement failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** Heap bytes in use after a full collection has just run, and after `run`. */
async function allocatedBy(run: () => void): Promise<number> {
  const { getHeapStatistics } = await import("node:v8");
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("--allocations needs --v8-flags=--expose-gc");
  gc();
  const before = getHeapStatistics().used_heap_size;
  run();
  return getHeapStatistics().used_heap_size - before;
}

async function allocations(family: Family): Promise<AllocationResult> {
  // Enough sessions that both workloads run mostly in a steady state: what lingers of a session (lingerMs,
  // 2 s of the bench's clock) is recycled for later ones, and the table's maps have grown. With 2,000,
  // the shorter workload still filled its pools when it ended, and the fit came out negative.
  const sessions = 6000;
  const shorter = workload(sessions, 10, family);
  const longer = workload(sessions, 20, family);
  // Long enough that most sessions end lingering (lingerMs, 2 s, is 4,444 of these sessions on the bench's
  // clock) within the run, as in a steady state, and what lingers of them is reused by the next ones.
  const oneRequestSessions = 20_000;
  const oneRequest = workload(oneRequestSessions, 1, family);
  // Warm the JIT up on all, so compiled code is not counted.
  for (let i = 0; i < 3; i++) {
    runOnce(shorter, undefined, family);
    runOnce(longer, undefined, family);
    runOnce(oneRequest, undefined, family);
  }
  let a = Infinity;
  let b = Infinity;
  let c = Infinity;
  for (let i = 0; i < 3; i++) {
    a = Math.min(a, await allocatedBy(() => runOnce(shorter, undefined, family)));
    b = Math.min(b, await allocatedBy(() => runOnce(longer, undefined, family)));
    c = Math.min(c, await allocatedBy(() => runOnce(oneRequest, undefined, family)));
  }
  const perPacket = (b - a) / (longer.length - shorter.length);
  return {
    bytesPerPacket: Math.round(perPacket),
    bytesPerSession: Math.round((a - perPacket * shorter.length) / sessions),
    bytesPerOneRequestSession: Math.round(c / oneRequestSessions),
  };
}

/** Heap bytes a session holds after a full collection: while open, and while it lingers once over. */
export interface RetainedResult {
  /** Per session established, one request answered, nothing in flight (keep-alive between requests). */
  readonly bytesPerOpenSession: number;
  /** Per session over and lingering (`lingerMs`), after the same sessions closed with FINs. */
  readonly bytesPerLingeringSession: number;
}

/**
 * A measure of what the heap holds after a full collection (`gc`, which the child's `--expose-gc` gives;
 * `mode` names the measurement that needs it): the used heap and the typed arrays' contents (maps over
 * typed arrays, stream buffers), which are V8's external memory.
 */
async function heldAfterCollection(mode: string): Promise<() => number> {
  const { getHeapStatistics } = await import("node:v8");
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error(`${mode} needs --v8-flags=--expose-gc`);
  return () => {
    gc();
    const heap = getHeapStatistics();
    return heap.used_heap_size + heap.external_memory;
  };
}

/**
 * The heap `sessions` sessions of one request hold, open and then lingering, above what the path held
 * before them (both after full collections); throws unless every session was where it should be.
 */
async function retainedBy(sessions: number, family: Family): Promise<{ open: number; lingering: number }> {
  const held = await heldAfterCollection("--retained");
  const parts = Array.from({ length: sessions }, (_, index) => sessionSteps(index, 1, family));
  const opening = parts.flatMap((part) => part.opening);
  const closing = parts.flatMap((part) => part.closing);
  const path = packetPath(undefined, family);
  const before = held();
  path.feed(opening);
  const open = held() - before;
  if (path.table.active !== sessions) throw new Error(`${path.table.active} of ${sessions} sessions open`);
  path.feed(closing);
  const lingering = held() - before;
  if (path.table.lingering !== sessions) {
    throw new Error(`${path.table.lingering} of ${sessions} sessions lingering`);
  }
  path.finish();
  return { open, lingering };
}

async function retained(family: Family): Promise<RetainedResult> {
  // The difference between two counts of sessions, so that what the path holds whatever the count (its
  // pools, kept up to a fixed size, compiled code) cancels out. Both fit in the bench clock's lingerMs
  // (2 s: 8,000 sessions close in 1.2 s of it), so every one of them still lingers when measured.
  const fewer = 4000;
  const more = 8000;
  await retainedBy(fewer, family); // compiles the path, fills the pools
  let open = Infinity;
  let lingering = Infinity;
  for (let i = 0; i < 3; i++) {
    const a = await retainedBy(fewer, family);
    const b = await retainedBy(more, family);
    open = Math.min(open, (b.open - a.open) / (more - fewer));
    lingering = Math.min(lingering, (b.lingering - a.lingering) / (more - fewer));
  }
  return { bytesPerOpenSession: Math.round(open), bytesPerLingeringSession: Math.round(lingering) };
}

/** What the path holds in a steady state of new sessions at a rate: its table, sessions and pools. */
export interface SteadyResult {
  /** New sessions per second of the bench's clock. */
  readonly rate: number;
  /** Sessions lingering at the end (about `rate` x `lingerMs`). */
  readonly lingering: number;
  /** Heap and typed arrays' contents held after a full collection, above a fresh path's. */
  readonly heldMb: number;
}

/**
 * Runs `--steady` in a child that may force full collections: 60,000 one-request sessions, one after
 * another, at `rate` new sessions per second of the bench's clock. A child per rate: a second path in the
 * same process finds the pools full and the first path's typed arrays not yet counted out.
 */
export function measureSteady(rate: number): Promise<SteadyResult> {
  return inChild("--steady", 4, "--expose-gc,--single-threaded-gc", [String(rate)]);
}

async function steady(rate: number): Promise<SteadyResult> {
  const held = await heldAfterCollection("--steady");
  // Ports come back after 50,000 sessions, long after their lingering: a client's port range, reused.
  const steps = Array.from({ length: 60_000 }, (_, index) => sessionSteps(index % 50_000, 1, 4))
    .flatMap((part) => [...part.opening, ...part.closing]);
  const path = packetPath(undefined, 4, 1000 / (rate * steps.length / 60_000));
  const before = held();
  path.feed(steps);
  return { rate, lingering: path.table.lingering, heldMb: Math.round((held() - before) / 1e4) / 100 };
}

if (import.meta.main) {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      send: { type: "boolean" },
      "send-interface": { type: "string" },
      "inject-each": { type: "boolean" },
      allocations: { type: "boolean" },
      retained: { type: "boolean" },
      steady: { type: "string" },
      ipv6: { type: "boolean" },
    },
  }).values;
  const device = flags["send-interface"];
  const send: SendPath = device !== undefined
    ? { kind: flags["inject-each"] ? "inject-each" : "link", device }
    : { kind: flags.send ? "raw" : "none" };
  const child = (globalThis as { gc?: unknown }).gc !== undefined;
  const family = flags.ipv6 ? 6 : 4;
  const steadyRate = flags.steady === undefined ? undefined : Number(flags.steady);
  const result = steadyRate !== undefined
    ? child ? await steady(steadyRate) : await measureSteady(steadyRate)
    : flags.retained
    ? child ? await retained(family) : await measureRetained(family)
    : !flags.allocations
    ? measurePacketPath(2000, 10, 5, send, family)
    : child
    ? await allocations(family)
    : await measureAllocations(family);
  console.log(JSON.stringify(result));
}
