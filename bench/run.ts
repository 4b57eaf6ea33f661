/**
 * `deno task bench`: how much traffic `copy` keeps up with, and at what cost. Needs root (network
 * namespaces); installs `wrk` and `nginx-light` from Debian if they are missing.
 *
 * In the copy lab (client → online:80 copied to target:8080, replies through intercept on the
 * assistant), wrk offers a paced HTTP load to nginx on the online host, stepping the rate up, while
 * `copy` copies 100% of it to nginx on the target. Per step: the rate offered and served online, the
 * share of requests the target received, copy's CPU seconds per 10,000 requests, its peak RSS, and
 * the packets the kernel dropped before copy read them. Two scenarios: keep-alive (32 connections)
 * and a new connection per request, each followed by one step of the same over IPv6 (IPv6 clients,
 * copied to the target's IPv6 address from 2001:2:0:1::/64) at a rate the IPv4 steps also run, to set
 * the two families' costs side by side. First, a micro-benchmark of the per-packet path.
 *
 * With `--anchor DIR` (DIR holding C `tcpcopy` and `intercept`, e.g. ../shared/peers/bin), every step
 * runs twice, tcpshadow then C TCPCopy, each with its own copy process started for the step, so the
 * tables set both side by side under the same load and the same hour.
 *
 * On the lab's veths the kernel runs the bridge's and the target's receive of each packet a host sends
 * inside the sending system call, so a copier's CPU includes that receive work (about a quarter of copy's
 * with new connections). `--receive-thread` moves it to a NAPI thread of the online host's bridge port (see
 * `receiveInNapiThread`), so the figures are the copier's own; on two vCPUs that thread then competes with
 * the lab and the steps serve less (22,000 instead of 33,000 keep-alive req/s; RESULTS.md, ninth round),
 * so the default keeps the lab as it was.
 *
 * Run: deno task bench [--duration S] [--scenario NAME[,NAME..]|all] [--quick | --rates R,R,..|max]
 *        [--profile DIR] [--anchor DIR]
 *        (NAME: keepalive, keepalive6, close, close6; run in the order given)
 *        [--receive-thread]  (the bridge and the target receive what the online host sends in a NAPI
 *          thread, not inside its sending system calls: a copier's CPU is its own work)
 *        [--without-copy]  (what the lab serves by itself: the same steps with no copy running)
 *        [--copy-flags="-m 192"]  (more flags for copy, to measure them)
 *        [--copy-v8-flags="--trace-gc"]  (V8 flags for copy alone, to measure them)
 *        [--copy-stdout DIR]  (keep each step's copy stdout there, e.g. what --trace-gc prints)
 *          (with --copy-v8-flags=--trace-gc-nvp each step also says copy's V8 heap bytes allocated per request)
 *        [--target-no-timestamps]  (diagnosis: the target refuses no copied SYN by PAWS)
 *        [--connect]  (each step also with copy --connect, ordinary connections to the target, beside packets)
 *        [--connect-only]  (each step with copy --connect alone; no packet-path micro-benchmarks either)
 *        [--syscalls]  (perf stat counts copy's system calls during each step: per request, by call)
 *        [--repeat N]  (the scenario's steps N times over, in order: with --connect, the CPU ratio of the
 *          two transports per step and over all the steps of a rate, as one step's ratio is noisy)
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { exec, type Host, type Lab, type LabProcess, withLab } from "../tests/lab/lab.ts";
import { FAKE_CLIENTS, FAKE_CLIENTS6, tcpshadow, waitForStderr } from "../tests/lab/copy_lab.ts";
import {
  measureAllocations,
  measurePacketPath,
  measureRetained,
  measureSteady,
  TARGET_MAC,
} from "./packet_path.ts";
import { selfTimes } from "./profile_summary.ts";
import { cpuSeconds, cpuSpent, formatConnectRatios } from "./cpu.ts";
import { formatMemoryAtPeak, type MemoryAtPeak, sampleMemoryAtPeak } from "./memory.ts";
import { errorMessage } from "../src/errors.ts";
import { sleep } from "../src/sleep.ts";

const PACKET_PATH = fileURLToPath(new URL("./packet_path.ts", import.meta.url));
/** The target's kernel counters that tell why copied connections were refused (nstat names). */
const TARGET_TCP_COUNTERS = [
  "TcpExtPAWSTimewait",
  "TcpExtPAWSEstab",
  "TcpExtTW",
  "TcpExtListenDrops",
  "TcpExtTCPTimeWaitOverflow",
  "TcpAttemptFails",
];

interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly connections: number;
  readonly close: boolean;
  /** Offered requests per second per step; 0 is as fast as wrk can. */
  readonly rates: readonly number[];
  /** The clients' and the target's address family (C TCPCopy, IPv4 only, sits out IPv6 steps). */
  readonly family: 4 | 6;
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: "keepalive",
    title: "keep-alive, 32 connections",
    connections: 32,
    close: false,
    rates: [5000, 10_000, 20_000, 34_000, 0],
    family: 4,
  },
  {
    name: "keepalive6",
    title: "IPv6 keep-alive, 32 connections",
    connections: 32,
    close: false,
    rates: [10_000],
    family: 6,
  },
  {
    name: "close",
    title: "a new connection per request, 64 concurrent",
    connections: 64,
    close: true,
    rates: [2000, 5200, 8000, 12_000, 0],
    family: 4,
  },
  {
    name: "close6",
    title: "IPv6, a new connection per request, 64 concurrent",
    connections: 64,
    close: true,
    rates: [5200],
    family: 6,
  },
];

/** The lab hosts' IPv6 addresses. */
const ADDRESSES6 = { client: "2001:2::10", online: "2001:2::1", target: "2001:2::2", assistant: "2001:2::3" };

/** wrk paces each thread with a wall clock (LuaJIT FFI) so a step offers a set rate, not its maximum. */
const PACE_LUA = `
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local interval = 0
local next_at = nil
function init(args)
  interval = tonumber(args[1]) or 0
  if args[2] == "close" then wrk.headers["Connection"] = "close" end
end
function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  -- Behind by more than a moment: offer from now on rather than burst to catch up.
  if next_at == nil or next_at < now - 50 then next_at = now end
  next_at = next_at + interval
  local wait = next_at - now
  if wait < 1 then return 0 end
  return math.floor(wait)
end
`;

function nginxConfig(dir: string, name: string, port: number): string {
  return `worker_processes 1;
master_process off;
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
worker_rlimit_nofile 200000;
events { worker_connections 65536; multi_accept on; }
http {
  access_log ${dir}/${name}-access.log combined buffer=64k flush=250ms;
  client_body_temp_path ${dir}/${name}-body;
  proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fastcgi;
  uwsgi_temp_path ${dir}/${name}-uwsgi;
  scgi_temp_path ${dir}/${name}-scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {
    listen ${port} backlog=65535;
    listen [::]:${port} backlog=65535;
    location / { return 200 "ok\\n"; }
  }
}
`;
}

/** The NAPI thread that receives for a bridge port. */
interface ReceiveThread {
  readonly port: string;
  readonly pid: number;
}

/**
 * Has the bridge's port of `host` receive the host's packets in a NAPI kernel thread (GRO on, which gives
 * a veth its NAPI, and threaded NAPI), run at an interrupt thread's priority (SCHED_FIFO 50). Without it a
 * veth hands each packet sent to the receiving side's backlog, which the kernel runs at once inside the
 * sender's system call: the bridge, the target's whole TCP receive (and its SYN-ACK or ACK on to the
 * assistant) were charged to copy's system time (this kernel has no IRQ time accounting), 23-25% of
 * copy's CPU samples with a new connection per request (bench/RESULTS.md, ninth round). On a separate
 * target host that work is not copy's. The priority lets the work preempt the hosts' processes as the
 * softirq it was did, rather than wait its turn behind them on a busy machine (the online server's answers
 * to the client pass the port too). On a loaded machine the steps served a fifth fewer requests than
 * with the old lab in two rounds, more in a third (RESULTS.md, ninth round).
 */
async function receiveInNapiThread(lab: Lab, host: Host): Promise<ReceiveThread> {
  const inBridge = async (args: string[]) =>
    (await exec(["ip", "netns", "exec", lab.bridgeNetns, ...args])).stdout;
  // The host's veth names its peer by interface index, in the bridge's namespace.
  const peer = JSON.parse((await host.run(["ip", "-j", "link", "show", host.device])).stdout)[0].link_index;
  const ports: { ifindex: number; ifname: string }[] = JSON.parse(
    await inBridge(["ip", "-j", "link", "show"]),
  );
  const port = ports.find((link) => link.ifindex === peer)?.ifname;
  if (port === undefined) throw new Error(`no bridge port with index ${peer} for ${host.name}`);
  await inBridge(["ethtool", "-K", port, "gro", "on"]);
  // The thread is named for the port and the NAPI's id, which nothing shows: the one that appears is ours.
  const before = napiThreads(port);
  await inBridge(["sh", "-c", `echo 1 > /sys/class/net/${port}/threaded`]);
  const started = [...napiThreads(port)].filter((pid) => !before.has(pid));
  if (started.length !== 1) throw new Error(`${port}: ${started.length} NAPI threads started, not 1`);
  const pid = started[0];
  await inBridge(["chrt", "-f", "-p", "50", String(pid)]);
  return { port, pid };
}

/** The kernel's NAPI threads of network devices called `port` (in any namespace). */
function napiThreads(port: string): Set<number> {
  const found = new Set<number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const comm = readIfThere(`/proc/${entry.name}/comm`);
    if (comm?.startsWith(`napi/${port}-`)) found.add(Number(entry.name));
  }
  return found;
}

function readIfThere(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined; // the process ended meanwhile
  }
}

async function ensureTools(): Promise<void> {
  const missing: string[] = [];
  for (const [tool, pkg] of [["wrk", "wrk"], ["nginx", "nginx-light"]]) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .output();
    if (!found.success) missing.push(pkg);
  }
  if (missing.length === 0) return;
  console.error(`installing ${missing.join(" ")} from Debian`);
  const install = () =>
    new Deno.Command("apt-get", { args: ["install", "-y", "-qq", ...missing], stdout: "null" }).output();
  if ((await install()).success) return;
  await new Deno.Command("apt-get", { args: ["update", "-qq"], stdout: "null" }).output();
  if (!(await install()).success) throw new Error(`cannot install ${missing.join(" ")}`);
}

/**
 * Resident memory of a process in MB: its peak, and now the anonymous part (heaps) and the
 * file-backed part (code, and the capture ring, which is a mapping of the packet socket).
 */
async function residentMb(pid: number): Promise<{ peak: number; anon: number; file: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
  return { peak: field("VmHWM"), anon: field("RssAnon"), file: field("RssFile") };
}

/** Deno flags that write a CPU profile into `dir` when the process exits. */
function profileFlags(dir: string | undefined): string[] {
  return dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}

async function lineCount(path: string): Promise<number> {
  const bytes = await Deno.readFile(path).catch(() => new Uint8Array());
  let count = 0;
  for (const byte of bytes) if (byte === 10) count++;
  return count;
}

async function statsRecords(path: string): Promise<Record<string, number>[]> {
  const text = (await Deno.readTextFile(path).catch(() => "")).trim();
  return text === "" ? [] : text.split("\n").map((line) => JSON.parse(line));
}

/** The highest `rss` of each minute of records sampled once a second, MB; none under two minutes. */
function rssByMinute(records: Record<string, number>[]): number[] {
  if (records.length < 120) return [];
  const minutes: number[] = [];
  records.forEach((record, index) => {
    const minute = Math.floor(index / 60);
    minutes[minute] = Math.max(minutes[minute] ?? 0, Math.round(record.rss / 2 ** 20));
  });
  return minutes;
}

/** The stats sample with the most V8 heap: that heap and what objects took of it, MB. */
function heapPeakMb(records: Record<string, number>[]): { total: number; used: number } {
  const peak = records.reduce(
    (most, record) => (record["heap-bytes"] ?? 0) > (most["heap-bytes"] ?? 0) ? record : most,
    {} as Record<string, number>,
  );
  return { total: (peak["heap-bytes"] ?? 0) / 2 ** 20, used: (peak["heap-used-bytes"] ?? 0) / 2 ** 20 };
}

/** V8's heap (committed, used) and external bytes in copy's last stats line at `path`. */
async function v8Memory(path: string): Promise<MemoryAtPeak["v8"]> {
  const last = (await statsRecords(path)).at(-1);
  if (last === undefined) return undefined;
  return { heap: last["heap-bytes"], heapUsed: last["heap-used-bytes"], external: last["external-bytes"] };
}

/** Waits until `read` stops changing (the copies have drained), at most `timeoutMs`. */
async function settle(read: () => Promise<number>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let previous = await read();
  for (;;) {
    await sleep(700);
    const current = await read();
    if (current === previous || Date.now() > deadline) return current;
    previous = current;
  }
}

/** Which program copies in a step: tcpshadow (packets, or `--connect`), or C TCPCopy as the anchor. */
type Copier = "tcpshadow" | "tcpshadow --connect" | "tcpcopy";

/** The port C intercept listens on, beside ours on 36524. */
const ANCHOR_INTERCEPT_PORT = 36525;

interface StepResult {
  copier: Copier;
  offered: number;
  served: number;
  received: number;
  onlineRequests: number;
  copyCpuPer10k: number;
  copyUserPer10k: number;
  interceptCpuPer10k: number;
  /** The NAPI thread's CPU seconds per 10k requests: the receiving that no longer runs in copy's sends. */
  receiveThreadCpuPer10k: number | undefined;
  peakRssMb: number;
  anonRssMb: number;
  fileRssMb: number;
  /** The most V8 heap copy held in the step, and what objects took of it then, MB; `undefined` for C. */
  heapMb: { total: number; used: number } | undefined;
  /** Packets the kernel dropped before copy read them; `undefined` where copy does not say (C). */
  kernelDropped: number | undefined;
  wrkErrors: string;
  /** copy's highest RSS in each minute of the step, MB; empty for steps shorter than two minutes. */
  rssByMinuteMb: number[];
  /** What copy's memory was, mapping by mapping, when its RSS was highest in the step. */
  memoryAtPeak: MemoryAtPeak | undefined;
  /** With `--syscalls`: copy's system calls per request served online, all and by call (the most first). */
  syscallsPerRequest?: { all: number; byCall: Record<string, number> };
}

function formatTable(scenario: Scenario, steps: StepResult[]): string {
  const header = "| copier | offered req/s | served online req/s | target received / online | " +
    "copy CPU-s per 10k req (of it user) | intercept CPU-s per 10k | copy peak RSS | copy RssAnon | " +
    "copy V8 heap, most (used) | kernel drops |";
  const rows = steps.map((step) => {
    const share = (100 * step.received / Math.max(step.onlineRequests, 1)).toFixed(1);
    return [
      step.copier,
      step.offered === 0 ? "max" : String(step.offered),
      String(Math.round(step.served)),
      `${share}% (${step.received}/${step.onlineRequests})`,
      `${step.copyCpuPer10k.toFixed(3)} (${step.copyUserPer10k.toFixed(3)})`,
      step.interceptCpuPer10k.toFixed(3),
      `${step.peakRssMb.toFixed(0)} MB`,
      `${step.anonRssMb.toFixed(0)} MB`,
      step.heapMb === undefined
        ? "n/a"
        : `${step.heapMb.total.toFixed(0)} (${step.heapMb.used.toFixed(0)}) MB`,
      step.kernelDropped === undefined ? "n/a" : String(step.kernelDropped),
    ].reduce((line, cell) => `${line} ${cell} |`, "|");
  });
  const trends = steps.filter((step) => step.rssByMinuteMb.length > 0).map((step) =>
    `${step.copier} RSS by minute at ${step.offered === 0 ? "max" : step.offered}/s, MB: ${
      step.rssByMinuteMb.join(" ")
    }`
  );
  const lines = [
    `${scenario.title}:`,
    "",
    header,
    "|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
  ];
  const ratios = formatConnectRatios(steps);
  if (ratios !== undefined) lines.push("", ratios);
  if (trends.length > 0) lines.push("", ...trends);
  return lines.join("\n");
}

/** How each step of a scenario runs. */
interface RunOptions {
  readonly durationSeconds: number;
  /** Where copy and intercept write CPU profiles, if anywhere. */
  readonly profileDir: string | undefined;
  /** No copy at all: what the lab serves by itself. */
  readonly withoutCopy: boolean;
  /** More `copy` flags, e.g. `-m 192`. */
  readonly copyFlags: string[];
  /** V8 flags for `copy` alone, e.g. `--trace-gc` or a heap size. */
  readonly copyV8Flags: string | undefined;
  /** Where each step's copy stdout is kept (V8 prints `--trace-gc` there), if anywhere. */
  readonly copyStdoutDir: string | undefined;
  /** Each step also with `copy --connect`, right after the packet transport's. */
  readonly connect: boolean;
  /** Each step with `copy --connect` only. */
  readonly connectOnly: boolean;
  /** Count copy's system calls during each step (`perf stat`). */
  readonly syscalls: boolean;
  /** The folder of C `tcpcopy` and `intercept` to run beside tcpshadow, if any. */
  readonly anchor: string | undefined;
  /** The NAPI thread receiving the online host's packets (`receiveInNapiThread`), if there is one. */
  readonly receiveThreadPid: number | undefined;
}

/** The intercept each copier talks to. */
interface Intercepts {
  readonly tcpshadow: number;
  readonly tcpcopy: number | undefined;
}

async function runScenario(
  scenario: Scenario,
  hosts: Record<"client" | "online" | "target" | "assistant", Host>,
  dir: string,
  intercepts: Intercepts,
  run: RunOptions,
): Promise<StepResult[]> {
  const copiers: Copier[] = run.connectOnly ? [] : ["tcpshadow"];
  if (run.connect || run.connectOnly) copiers.push("tcpshadow --connect");
  if (run.anchor !== undefined && scenario.family === 4 && !run.connectOnly) copiers.push("tcpcopy"); // C TCPCopy has no IPv6
  const steps: StepResult[] = [];
  for (const rate of scenario.rates) {
    for (const copier of copiers) {
      const step = await runStep(scenario, rate, copier, hosts, dir, intercepts, run);
      steps.push(step);
      console.error(`  ${scenario.name} ${rate === 0 ? "max" : rate}/s: ${JSON.stringify(step)}`);
      if (step.memoryAtPeak !== undefined) {
        console.error(
          `  ${step.copier} memory at its highest RSS, MB: ${formatMemoryAtPeak(step.memoryAtPeak)}`,
        );
      }
    }
  }
  const counters = await hosts.target.run(["nstat", "-asz", ...TARGET_TCP_COUNTERS]);
  console.error(
    `  target TCP counters: ${
      counters.stdout.split("\n").slice(1).map((line) => line.split(/\s+/).slice(0, 2).join("=")).filter(
        Boolean,
      ).join(" ")
    }`,
  );
  return steps;
}

/** Starts `copier`'s copy on the online host and resolves once it copies. */
async function startCopier(
  copier: Copier,
  family: 4 | 6,
  hosts: Record<"online" | "target" | "assistant", Host>,
  statsPath: string,
  logPath: string,
  run: RunOptions,
): Promise<LabProcess> {
  const { online, target, assistant } = hosts;
  if (copier === "tcpcopy") {
    const copy = online.spawn([
      `${run.anchor}/tcpcopy`,
      "-x",
      `80-${target.address}:8080`,
      "-s",
      `${assistant.address}:${ANCHOR_INTERCEPT_PORT}`,
      "-c",
      FAKE_CLIENTS.replace(/\.0\/24$/, ".x"),
      "-l",
      logPath,
    ]);
    // C tcpcopy copies once it is connected to its intercept.
    await waitFor(
      online,
      ["ss", "-tnH", "state", "established", `( dport = :${ANCHOR_INTERCEPT_PORT} )`],
      copy,
    );
    return copy;
  }
  const copy = online.spawn(tcpshadow([
    "copy",
    "-x",
    family === 4 ? `80-${target.address}:8080` : `80-[${target.address6}]:8080`,
    ...(copier === "tcpshadow --connect"
      ? ["--connect"]
      : ["-s", assistant.address, "-c", family === 4 ? FAKE_CLIENTS : FAKE_CLIENTS6]),
    "--interface",
    online.device,
    "--stats",
    "1",
    "--stats-json",
    statsPath,
    ...run.copyFlags,
  ], [
    ...profileFlags(run.profileDir),
    ...(run.copyV8Flags === undefined ? [] : [`--v8-flags=${run.copyV8Flags}`]),
  ]));
  await waitForStderr(copy, "copying on");
  return copy;
}

/** Waits until `command` on `host` prints something, as long as `process` runs (at most 15 s). */
async function waitFor(host: Host, command: string[], process: LabProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  let exited = false;
  process.exited.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    if ((await host.run(command, { check: false })).stdout.trim() !== "") return;
    await sleep(200);
  }
  throw new Error(`${process.command.join(" ")} did not start: ${process.stderrText().slice(-400)}`);
}

async function runStep(
  scenario: Scenario,
  rate: number,
  copier: Copier,
  hosts: Record<"client" | "online" | "target" | "assistant", Host>,
  dir: string,
  intercepts: Intercepts,
  run: RunOptions,
): Promise<StepResult> {
  const { durationSeconds } = run;
  const { client, online } = hosts;
  const name = `${scenario.name}-${rate}-${copier.replace(/\W+/g, "-")}`;
  const statsPath = `${dir}/${name}-copy-stats.jsonl`;
  const copy = run.withoutCopy
    ? undefined
    : await startCopier(copier, scenario.family, hosts, statsPath, `${dir}/${name}-tcpcopy.log`, run);
  const interceptPid = copier === "tcpcopy" ? intercepts.tcpcopy! : intercepts.tcpshadow;
  let onlineRequests = 0;
  const copyCpu = () => copy === undefined ? { user: 0, system: 0 } : cpuSeconds(copy.pid);
  try {
    const threads = 2;
    const interval = rate === 0 ? 0 : 1000 / (rate / threads);
    const onlineBefore = await lineCount(`${dir}/online-access.log`);
    const targetBefore = await lineCount(`${dir}/target-access.log`);
    const copyCpuBefore = await copyCpu();
    const interceptCpuBefore = await cpuSeconds(interceptPid);
    const receiveCpu = () =>
      run.receiveThreadPid === undefined ? undefined : cpuSeconds(run.receiveThreadPid);
    const receiveCpuBefore = await receiveCpu();
    const syscallCount = run.syscalls && copy !== undefined ? countSyscalls(copy.pid) : undefined;
    const memorySampler = copy === undefined
      ? undefined
      : sampleMemoryAtPeak(copy.pid, () =>
        copier === "tcpcopy" ? Promise.resolve(undefined) : v8Memory(statsPath));
    const wrk = await client.run([
      "wrk",
      `-t${threads}`,
      `-c${scenario.connections}`,
      `-d${durationSeconds}s`,
      "-s",
      `${dir}/pace.lua`,
      `http://${scenario.family === 4 ? online.address : `[${online.address6}]`}:80/`,
      "--",
      String(interval),
      scenario.close ? "close" : "keep",
    ], { timeoutMs: (durationSeconds + 30) * 1000 });
    const served = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk.stdout)?.[1] ?? 0);
    const errors = /Socket errors:.*|Non-2xx.*/.exec(wrk.stdout)?.[0] ?? "";
    onlineRequests = await settle(() => lineCount(`${dir}/online-access.log`), 3000) - onlineBefore;
    const received = await settle(() => lineCount(`${dir}/target-access.log`), 10_000) - targetBefore;
    const syscalls = await syscallCount?.stop();
    const memoryAtPeak = await memorySampler?.stop();
    await sleep(1200); // one more stats line, with this step's kernel drops
    const copyCpuAfter = await copyCpu();
    const interceptCpuAfter = await cpuSeconds(interceptPid);
    const receiveCpuAfter = await receiveCpu();
    const per10k = (seconds: number) => seconds / Math.max(onlineRequests, 1) * 10_000;
    const stats = await statsRecords(statsPath);
    const memory = copy === undefined ? { peak: 0, anon: 0, file: 0 } : await residentMb(copy.pid);
    return {
      copier,
      offered: rate,
      served,
      received,
      onlineRequests,
      copyCpuPer10k: per10k(cpuSpent(copyCpuBefore, copyCpuAfter)),
      copyUserPer10k: per10k(copyCpuAfter.user - copyCpuBefore.user),
      interceptCpuPer10k: per10k(cpuSpent(interceptCpuBefore, interceptCpuAfter)),
      receiveThreadCpuPer10k: receiveCpuAfter === undefined || receiveCpuBefore === undefined
        ? undefined
        : per10k(cpuSpent(receiveCpuBefore, receiveCpuAfter)),
      peakRssMb: memory.peak,
      anonRssMb: memory.anon,
      fileRssMb: memory.file,
      heapMb: copier === "tcpcopy" ? undefined : heapPeakMb(stats),
      kernelDropped: copier === "tcpcopy" ? undefined : stats.at(-1)?.["packets-kernel-dropped"] ?? 0,
      wrkErrors: errors,
      rssByMinuteMb: rssByMinute(stats),
      memoryAtPeak,
      ...(syscalls === undefined ? {} : { syscallsPerRequest: perRequest(syscalls, onlineRequests) }),
    };
  } finally {
    if (copy !== undefined) {
      // C tcpcopy ends on SIGINT; ours prints its summary on SIGTERM.
      const status = await copy.stop(copier === "tcpcopy" ? "SIGINT" : "SIGTERM", 15_000);
      const summary = copy.stderrText().split("\n").find((line) => line.includes(" summary "));
      if (copier !== "tcpcopy") {
        console.error(`  copy exited ${status.code}: ${summary?.slice(summary.indexOf(" summary ") + 1)}`);
        const collections = heapAllocated(copy.stdoutText());
        if (collections !== undefined) {
          console.error(
            `  copy's V8 heap: ${Math.round(collections.allocated / Math.max(onlineRequests, 1))} bytes ` +
              `allocated per request served online (${collections.scavenges} scavenges, ` +
              `${collections.markCompacts} full collections; the process's whole life up to its last collection)`,
          );
        }
      }
      if (run.copyStdoutDir !== undefined) {
        await Deno.writeTextFile(`${run.copyStdoutDir}/${name}.txt`, copy.stdoutText());
        await Deno.copyFile(statsPath, `${run.copyStdoutDir}/${name}-stats.jsonl`).catch(() => {});
      }
    }
  }
}

/**
 * What copy allocated on V8's heap, from the lines `--trace-gc-nvp` prints (each collection's `allocated`:
 * the bytes allocated since the one before), and how many collections of each kind; `undefined` without them.
 * Counted by V8, so steady where CPU time on a shared machine is not.
 */
function heapAllocated(
  stdout: string,
): { allocated: number; scavenges: number; markCompacts: number } | undefined {
  let allocated = 0;
  let scavenges = 0;
  let markCompacts = 0;
  for (const [, json] of stdout.matchAll(/ GC: (\{.*\})$/gm)) {
    const collection: { gc?: string; allocated?: number } = JSON.parse(json);
    if (collection.allocated === undefined) continue;
    allocated += collection.allocated;
    if (collection.gc === "s") scavenges++;
    else if (collection.gc === "mc") markCompacts++;
  }
  return scavenges + markCompacts === 0 ? undefined : { allocated, scavenges, markCompacts };
}

/** The scenarios `names` lists (comma-separated, in that order), or all of them for `all`. */
function scenariosNamed(names: string): Scenario[] {
  if (names === "all") return [...SCENARIOS];
  return names.split(",").map((name) => {
    const scenario = SCENARIOS.find((known) => known.name === name);
    if (scenario === undefined) {
      console.error(`bench: no scenario "${name}" (${SCENARIOS.map((known) => known.name).join(", ")})`);
      Deno.exit(2);
    }
    return scenario;
  });
}

/**
 * Counts the system calls of process `pid` (all its threads) with `perf stat` until `stop`, by call. The
 * counts are exact, where CPU time on a shared machine is not.
 */
function countSyscalls(pid: number): { stop(): Promise<Record<string, number>> } {
  const perf = new Deno.Command("perf", {
    args: ["stat", "-x", ",", "-e", "syscalls:sys_enter_*", "-p", String(pid)],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return {
    async stop() {
      perf.kill("SIGINT");
      const { stderr } = await perf.output();
      const counts: Record<string, number> = {};
      // CSV lines: count,unit,event,...
      for (const line of new TextDecoder().decode(stderr).split("\n")) {
        const [count, , event] = line.split(",");
        const call = event?.replace("syscalls:sys_enter_", "");
        if (call !== undefined && call !== event && Number(count) > 0) counts[call] = Number(count);
      }
      return counts;
    },
  };
}

/** `counts` per request, the calls of more than 0.01 a request by name, the most first. */
function perRequest(counts: Record<string, number>, requests: number) {
  const per = (count: number) => Math.round(count / Math.max(requests, 1) * 1000) / 1000;
  const byCall = Object.fromEntries(
    Object.entries(counts).sort(([, a], [, b]) => b - a).map(([call, count]) => [call, per(count)])
      .filter(([, count]) => (count as number) >= 0.01),
  );
  return { all: per(Object.values(counts).reduce((sum, count) => sum + count, 0)), byCall };
}

function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        duration: { type: "string", default: "8" },
        scenario: { type: "string", default: "all" },
        quick: { type: "boolean" },
        rates: { type: "string" },
        profile: { type: "string" },
        "target-no-timestamps": { type: "boolean" },
        "without-copy": { type: "boolean" },
        "copy-flags": { type: "string" },
        "copy-v8-flags": { type: "string" },
        "copy-stdout": { type: "string" },
        connect: { type: "boolean" },
        "connect-only": { type: "boolean" },
        syscalls: { type: "boolean" },
        anchor: { type: "string" },
        "receive-thread": { type: "boolean" },
        repeat: { type: "string", default: "1" },
      },
    }).values;
  } catch (error) {
    console.error(`bench: ${errorMessage(error).split("\n")[0]} (usage: bench/run.ts's first comment)`);
    Deno.exit(2);
  }
}

/** The per-packet path's micro-benchmarks, in the process and inside lab host `client` (with the send). */
async function printPacketPath(client: Host): Promise<void> {
  const micro = measurePacketPath();
  const micro6 = measurePacketPath(2000, 10, 5, { kind: "none" }, 6);
  const allocated = await measureAllocations();
  const retained = await measureRetained();
  const steady = [await measureSteady(5200), await measureSteady(10_000)];
  // The per-packet path again with the raw socket's sends, and as frames on the host's interface
  // (copy --send-interface), inside a lab host: they go nowhere.
  await client.run([
    "ip",
    "neigh",
    "replace",
    "198.18.0.250",
    "lladdr",
    TARGET_MAC,
    "dev",
    "eth0",
  ]);
  await client.run([
    "ip",
    "-6",
    "neigh",
    "replace",
    "2001:2::fa",
    "lladdr",
    TARGET_MAC,
    "dev",
    "eth0",
  ]);
  const packetPath = async (...args: string[]) =>
    JSON.parse(
      (await client.run([Deno.execPath(), "run", "-A", "--quiet", PACKET_PATH, ...args])).stdout,
    );
  const withSend = await packetPath("--send");
  const withSend6 = await packetPath("--send", "--ipv6");
  const withFrames = await packetPath("--send-interface", client.device);
  const withEachFrame = await packetPath("--send-interface", client.device, "--inject-each");
  console.log(
    "Per-packet path (decode, session lookup and engine, rewrite, checksums; best of 5 runs of",
  );
  console.log(
    "2,000 keep-alive sessions x 10 requests = 72,000 packets with timestamps, captured and replies):\n",
  );
  console.log(
    `- without the send: ${micro.nsPerPacket} ns/packet (IPv6: ${micro6.nsPerPacket} ns/packet)`,
  );
  console.log(
    `- with the raw-socket send (${withSend.sent} sends): ${withSend.nsPerPacket} ns/packet ` +
      `(IPv6, AF_INET6 IPPROTO_RAW: ${withSend6.nsPerPacket} ns/packet)`,
  );
  console.log(
    `- with the link-layer send (--send-interface, sendmmsg on libpcap's socket): ` +
      `${withFrames.nsPerPacket} ns/packet; one pcap_inject per frame instead: ${withEachFrame.nsPerPacket}`,
  );
  console.log(
    `- V8 heap allocated: ${allocated.bytesPerPacket} bytes per packet in steady state, ` +
      `${allocated.bytesPerSession} bytes per session besides; ` +
      `${allocated.bytesPerOneRequestSession} bytes per one-request session, its packets included`,
  );
  console.log(
    `- V8 heap (typed arrays' contents included) held after a full collection: ` +
      `${retained.bytesPerOpenSession} bytes per open session, ` +
      `${retained.bytesPerLingeringSession} bytes per lingering session`,
  );
  console.log(
    `- held at a steady rate of one-request sessions (bench clock), table, sessions and pools: ` +
      steady.map((held) => `${held.heldMb} MB at ${held.rate}/s (${held.lingering} lingering)`).join(", ") +
      "\n",
  );
}

async function main(): Promise<void> {
  const flags = parseFlags();
  const duration = Number(flags.duration);
  const chosenScenarios = scenariosNamed(flags.scenario);
  const repeat = Number(flags.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    console.error(`bench: --repeat takes a whole number of at least 1, not "${flags.repeat}"`);
    Deno.exit(2);
  }
  await ensureTools();
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1] ?? "unknown";
  console.log(
    `tcpshadow bench, ${
      new Date().toISOString().slice(0, 10)
    }, ${navigator.hardwareConcurrency} CPUs (${cpu}), Deno ${Deno.version.deno}\n`,
  );

  const dir = await Deno.makeTempDir({ prefix: "tcpshadow-bench-" });
  try {
    await withLab({
      hosts: [
        { name: "client", address: "198.18.0.10/24", address6: `${ADDRESSES6.client}/64` },
        { name: "online", address: "198.18.0.1/24", address6: `${ADDRESSES6.online}/64` },
        { name: "target", address: "198.18.0.2/24", address6: `${ADDRESSES6.target}/64` },
        { name: "assistant", address: "198.18.0.3/24", address6: `${ADDRESSES6.assistant}/64` },
      ],
    }, async (lab) => {
      const hosts = {
        client: lab.host("client"),
        online: lab.host("online"),
        target: lab.host("target"),
        assistant: lab.host("assistant"),
      };
      if (!flags["connect-only"]) await printPacketPath(hosts.client);

      for (const host of Object.values(hosts)) {
        for (
          const setting of [
            "net.core.somaxconn=65535",
            "net.ipv4.tcp_max_syn_backlog=65535",
            "net.ipv4.ip_local_port_range=1024 65535",
            "net.ipv4.tcp_tw_reuse=1",
          ]
        ) await host.run(["sysctl", "-qw", setting]);
      }
      let receiveThread: ReceiveThread | undefined;
      if (flags["receive-thread"]) {
        receiveThread = await receiveInNapiThread(lab, hosts.online);
        console.log(
          `(the online host's packets are received on the bridge by ${receiveThread.port}'s NAPI thread)\n`,
        );
      }
      const route = await hosts.target.run(
        tcpshadow([
          "route",
          "--clients",
          `${FAKE_CLIENTS},${FAKE_CLIENTS6}`,
          "--via",
          `${hosts.assistant.address},${hosts.assistant.address6}`,
        ]),
      );
      await hosts.target.run(["sh", "-c", route.stdout]);
      await hosts.assistant.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
      // The assistant captures the replies and has nothing else to do with them: without this drop (after
      // the capture, which comes first) its kernel answers each with an ICMP error, and IPv6's path for
      // that (a route lookup per reply) ran inside copy's send on these veths, charged to copy.
      await hosts.assistant.run(["nft", "-f", "-"], {
        stdin: `table inet replies {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    ip daddr ${FAKE_CLIENTS} drop
    ip6 daddr ${FAKE_CLIENTS6} drop
  }
}
`,
      });
      if (flags["target-no-timestamps"]) {
        // Diagnosis only: without timestamps the target's TIME-WAIT cannot refuse a copy's SYN by PAWS.
        console.log("(target with net.ipv4.tcp_timestamps=0)\n");
        await hosts.target.run(["sysctl", "-qw", "net.ipv4.tcp_timestamps=0"]);
      }
      await Deno.writeTextFile(`${dir}/pace.lua`, PACE_LUA);
      for (
        const [name, host, port] of [["online", hosts.online, 80], ["target", hosts.target, 8080]] as const
      ) {
        await Deno.writeTextFile(`${dir}/${name}.conf`, nginxConfig(dir, name, port));
        host.spawn(["nginx", "-e", `${dir}/${name}-error.log`, "-c", `${dir}/${name}.conf`]);
      }
      const intercept = hosts.assistant.spawn(
        tcpshadow(
          ["intercept", "-i", hosts.assistant.device, "-F", "tcp and src port 8080"],
          profileFlags(flags.profile),
        ),
      );
      await waitForStderr(intercept, "listening on");
      const anchor = flags.anchor === undefined ? undefined : await Deno.realPath(flags.anchor);
      const anchorIntercept = anchor === undefined ? undefined : hosts.assistant.spawn([
        `${anchor}/intercept`,
        "-i",
        hosts.assistant.device,
        "-F",
        "tcp and src port 8080",
        "-p",
        String(ANCHOR_INTERCEPT_PORT),
        "-l",
        `${dir}/c-intercept.log`,
      ]);
      if (anchorIntercept !== undefined) {
        await waitFor(
          hosts.assistant,
          ["ss", "-ltnH", `( sport = :${ANCHOR_INTERCEPT_PORT} )`],
          anchorIntercept,
        );
        console.log(`(anchor: C tcpcopy and intercept from ${anchor}, each step run by both)\n`);
      }

      const scenarios = chosenScenarios.map((scenario) => {
        const rates = flags.rates !== undefined
          ? flags.rates.split(",").map((rate) => rate === "max" ? 0 : Number(rate))
          : flags.quick
          ? scenario.rates.slice(-2)
          : scenario.rates;
        return { ...scenario, rates: Array.from({ length: repeat }, () => rates).flat() };
      });
      const tables: string[] = [];
      for (const scenario of scenarios) {
        console.error(`running ${scenario.title}, ${scenario.rates.length} steps of ${duration} s`);
        const withoutCopy = flags["without-copy"] === true;
        if (withoutCopy) console.log("(without copy: what the lab serves by itself)\n");
        const steps = await runScenario(scenario, hosts, dir, {
          tcpshadow: intercept.pid,
          tcpcopy: anchorIntercept?.pid,
        }, {
          durationSeconds: duration,
          profileDir: flags.profile,
          withoutCopy,
          copyFlags: flags["copy-flags"]?.split(/\s+/).filter(Boolean) ?? [],
          copyV8Flags: flags["copy-v8-flags"],
          copyStdoutDir: flags["copy-stdout"],
          connect: flags.connect === true,
          connectOnly: flags["connect-only"] === true,
          syscalls: flags.syscalls === true,
          anchor,
          receiveThreadPid: receiveThread?.pid,
        });
        tables.push(formatTable(scenario, steps));
      }
      console.log(tables.join("\n\n"));
      await intercept.stop("SIGTERM", 15_000); // writes its profile
      await anchorIntercept?.stop("SIGINT", 5000);
      if (flags.profile !== undefined) {
        for (const entry of Deno.readDirSync(flags.profile)) {
          if (!entry.name.endsWith(".cpuprofile")) continue;
          const profile = JSON.parse(await Deno.readTextFile(`${flags.profile}/${entry.name}`));
          console.log(`\nProfile ${entry.name}, top self time:`);
          for (const [label, time, share] of selfTimes(profile).slice(0, 25)) {
            console.log(
              `${(share * 100).toFixed(1).padStart(5)}%  ${
                (time / 1000).toFixed(0).padStart(6)
              } ms  ${label}`,
            );
          }
        }
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await main();
