/**
 * What the kernel spends per packet on copy's raw-socket sends (issue #15): system time per packet of
 * sendmmsg batches of 64 TCP segments (100 bytes of payload, timestamps), IPv4 and IPv6, the IPv6 socket
 * bound to the host's own source toward the target as copy binds it (`sourceToward`) or left unbound as
 * it was; then the same with a host route to the target through itself (the README's option for on-link
 * targets). Builds a one-host lab whose target is a neighbour entry nobody answers, so the packets leave
 * on the veth and vanish; each run is a child process of its own, the variants interleaved run after run,
 * and the medians printed. Timings on a shared machine are noisy: the runs' spread is printed too, and
 * `perf record -e cpu-clock -g` on a child (its command line is printed) says where the time goes.
 *
 * Run (root): deno run -A bench/raw_send.ts [--runs N] [--packets N]
 * One child (inside a host with the lab's addresses): deno run -A bench/raw_send.ts --child --family 4|6
 * [--unbound] [--packets N]
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PacketBatch, RawSocket, readKernelFile } from "../ffi/mod.ts";
import { sourceToward } from "../src/copy/sender.ts";
import { cpuSeconds } from "./cpu.ts";
import { buildIpv4Tcp, buildIpv6Tcp, ipv6Address, parseIpv4, parseIpv6, TcpFlag } from "../src/wire/mod.ts";
import { type Host, withLab } from "../tests/lab/lab.ts";
import { TARGET_MAC } from "./packet_path.ts";

const HOST = { name: "sender", address: "198.18.0.10/24", address6: "2001:2::10/64" };
/** Addresses no lab host has (as in packet_path.ts): a neighbour entry makes the packets leave. */
const TARGET = "198.18.0.250";
const TARGET6 = "2001:2::fa";
const FAKE_CLIENT = "198.19.0.1";
const FAKE_CLIENT6 = "2001:2:0:1::1";
const BATCH = 64;

/** One child's figures. */
interface SendRun {
  readonly family: 4 | 6;
  readonly bound: boolean;
  readonly packets: number;
  readonly dropped: number;
  readonly systemNsPerPacket: number;
  readonly userNsPerPacket: number;
}

/** Sends `packets` copies of one segment to the target through a raw socket of `family`. */
async function sendLoop(family: 4 | 6, bound: boolean, packets: number): Promise<SendRun> {
  const tcp = {
    srcPort: 40_000,
    dstPort: 8080,
    seq: 1,
    ack: 1,
    flags: TcpFlag.PSH | TcpFlag.ACK,
    window: 502,
    options: { timestamp: { value: 1, echo: 1 } },
    payload: new Uint8Array(100),
  };
  const packet = family === 4
    ? buildIpv4Tcp({ src: parseIpv4(FAKE_CLIENT)!, dst: parseIpv4(TARGET)!, tcp })
    : buildIpv6Tcp({ src: parseIpv6(FAKE_CLIENT6)!, dst: parseIpv6(TARGET6)!, tcp });
  const destination = packet.subarray(family === 4 ? 16 : 24, family === 4 ? 20 : 40);
  const socket = RawSocket.open(family);
  socket.setSendBuffer(8 << 20);
  if (family === 6 && bound) {
    const source = sourceToward([ipv6Address(destination)]);
    if (source === undefined) throw new Error(`no source address toward ${TARGET6}`);
    const refused = socket.bind(source);
    if (refused !== 0) throw new Error(`cannot bind to ${TARGET6}'s source: errno ${refused}`);
  }
  const batch = new PacketBatch(family, BATCH, 2048);
  const before = await cpuSeconds(Deno.pid);
  let dropped = 0;
  for (let sent = 0; sent < packets; sent += BATCH) {
    for (let i = 0; i < BATCH; i++) {
      batch.nextSlot().set(packet);
      batch.push(packet.length, destination);
    }
    dropped += socket.sendBatch(batch);
  }
  const after = await cpuSeconds(Deno.pid);
  socket.close();
  return {
    family,
    bound: family === 6 && bound,
    packets,
    dropped,
    systemNsPerPacket: Math.round((after.system - before.system) * 1e9 / packets),
    userNsPerPacket: Math.round((after.user - before.user) * 1e9 / packets),
  };
}

/** A variant of the runs: the family and, for IPv6, whether the socket is bound. */
interface Variant {
  readonly label: string;
  readonly args: string[];
}

const VARIANTS: readonly Variant[] = [
  { label: "IPv4", args: ["--family", "4"] },
  { label: "IPv6, unbound (as before)", args: ["--family", "6", "--unbound"] },
  { label: "IPv6, bound (as copy sends)", args: ["--family", "6"] },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function loadAverage(): string {
  return readKernelFile("/proc/loadavg")!.split(" ").slice(0, 3).join(" ");
}

/** Runs every variant `runs` times, interleaved, in `host`; prints each variant's median and spread. */
async function runVariants(host: Host, runs: number, packets: number, heading: string): Promise<void> {
  const results = new Map<string, SendRun[]>(VARIANTS.map((variant) => [variant.label, []]));
  const script = fileURLToPath(import.meta.url);
  const started = loadAverage();
  for (let run = 0; run < runs; run++) {
    for (const variant of VARIANTS) {
      const command = [Deno.execPath(), "run", "-A", "--quiet", script, "--child", ...variant.args];
      const output = await host.run([...command, "--packets", String(packets)]);
      results.get(variant.label)!.push(JSON.parse(output.stdout));
    }
  }
  console.log(`${heading} (load ${started} at the start, ${loadAverage()} at the end):`);
  for (const [label, done] of results) {
    const system = done.map((result) => result.systemNsPerPacket);
    const dropped = done.reduce((sum, result) => sum + result.dropped, 0);
    console.log(
      `- ${label}: system ${median(system)} ns/packet (median of ${runs}; ${Math.min(...system)}-${
        Math.max(...system)
      }), user ${median(done.map((result) => result.userNsPerPacket))}; ${dropped} dropped`,
    );
  }
}

async function main(): Promise<void> {
  const flags = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "boolean" },
      family: { type: "string", default: "4" },
      unbound: { type: "boolean" },
      packets: { type: "string", default: "1000000" },
      runs: { type: "string", default: "6" },
    },
  }).values;
  const packets = Number(flags.packets);
  if (flags.child) {
    console.log(JSON.stringify(await sendLoop(flags.family === "6" ? 6 : 4, !flags.unbound, packets)));
    return;
  }
  const runs = Number(flags.runs);
  await withLab({ hosts: [HOST] }, async (lab) => {
    const host = lab.host(HOST.name);
    await host.run(["ip", "neigh", "replace", TARGET, "lladdr", TARGET_MAC, "dev", host.device]);
    await host.run(["ip", "-6", "neigh", "replace", TARGET6, "lladdr", TARGET_MAC, "dev", host.device]);
    console.log(
      `Raw-socket sends of TCP segments with 100 bytes of payload, ${packets} per run, ${BATCH} per ` +
        `sendmmsg; one run: ip netns exec ${host.netns} deno run -A bench/raw_send.ts --child --family 4|6 ` +
        `[--unbound]\n`,
    );
    await runVariants(host, runs, packets, "The target on-link");
    // The README's option: a host route through the target itself, the same next hop, so the kernel's
    // route lookup finds a gateway and hands out its cached route instead of a copy per packet.
    await host.run(["ip", "route", "add", `${TARGET}/32`, "via", TARGET]);
    await host.run(["ip", "-6", "route", "add", `${TARGET6}/128`, "via", TARGET6]);
    console.log();
    await runVariants(host, runs, packets, "With a host route through the target");
  });
}

if (import.meta.main) await main();
