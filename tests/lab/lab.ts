/**
 * The network lab: throwaway hosts as Linux network namespaces on one bridge, for tests, `deno task demo`
 * and `deno task bench`.
 *
 * Every lab lives entirely in namespaces it creates: the bridge has a namespace of its own and each
 * veth pair is created straight across two lab namespaces, so the root namespace never gains an
 * interface, address or route. Namespace names carry the creating process id (`tsl<pid>-<run>-<host>`),
 * so concurrent runs never collide and `sweepStaleLabs` can tell leftovers of dead runs from live labs.
 *
 * @example
 * ```ts
 * await withLab({ hosts: [{ name: "client" }, { name: "server" }] }, async (lab) => {
 *   const server = lab.host("server").spawn(agentCommand("http_server", ["--port", "80"]));
 *   await waitForLine(server, "listening");
 *   await lab.host("client").run(["ping", "-c", "1", lab.host("server").address]);
 * });
 * ```
 */
import { fileURLToPath } from "node:url";
import {
  formatCidr,
  formatIpv4,
  ipv4FromBytes,
  parseCidr,
  parseIpv4,
  parseIpv6,
} from "../../src/wire/address.ts";
import { sleep } from "../../src/sleep.ts";

/** Prefix of every namespace a lab creates; `sweepStaleLabs` only ever touches names with it. */
export const LAB_NETNS_PREFIX = "tsl";
const NETNS_NAME = /^tsl(\d+)-([0-9a-z]+)-([a-z0-9_-]+)$/;
const HOST_NAME = /^[a-z][a-z0-9_-]{0,15}$/;
/** All lab addresses come from the benchmarking ranges, which no real network routes. */
const LAB_RANGE = parseCidr("198.18.0.0/15")!;
/** IPv6's benchmarking range (RFC 5180). */
export const LAB_RANGE6 = parseCidr("2001:2::/48")!;
const DEFAULT_SUBNET = "198.18.0.0/24";
const BRIDGE_HOST = "br";
const BRIDGE_DEVICE = "br0";
/** Each host's side of its veth pair. */
const HOST_DEVICE = "eth0";
const DEFAULT_GRACE_MS = 2000;
const OUTPUT_DRAIN_MS = 1000;

/** One host of a lab spec. */
export interface HostSpec {
  /** Short name: lower case letters, digits, `_` and `-`, at most 16 characters. */
  readonly name: string;
  /** IPv4 address, with or without `/prefix`; default the next free address of the lab's subnet. */
  readonly address?: string;
  /** IPv6 address with prefix inside 2001:2::/48 (like `2001:2::1/64`); without one IPv6 is off. */
  readonly address6?: string;
}

/** What `createLab` builds. */
export interface LabSpec {
  readonly hosts: readonly HostSpec[];
  /** IPv4 subnet of the hosts, inside 198.18.0.0/15; default 198.18.0.0/24. */
  readonly subnet?: string;
}

/** Options of `Host.run`. */
export interface RunOptions {
  /** Throw on a non-zero exit (default true). */
  readonly check?: boolean;
  readonly stdin?: string;
  readonly env?: Record<string, string>;
  /** Kill the command (SIGKILL) after this long; the result then has a non-zero code. */
  readonly timeoutMs?: number;
}

/** What `Host.run` returns. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of `Host.spawn`. */
export interface SpawnOptions {
  /** "piped" (default) collects the text for `stdoutText()` and `waitForLine`. */
  readonly stdout?: "piped" | "null" | "inherit";
  readonly stderr?: "piped" | "null" | "inherit";
  readonly env?: Record<string, string>;
}

/** A long-running command inside a lab host; the lab stops it on `close()` if the test did not. */
export interface LabProcess {
  readonly pid: number;
  /** The command line, for messages. */
  readonly command: readonly string[];
  /** Resolves when the process has exited and its output has been read to the end. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Standard output so far (empty unless piped). */
  stdoutText(): string;
  /** Standard error so far (empty unless piped). */
  stderrText(): string;
  /** Calls `listener` after each new chunk of standard output; returns a function that unsubscribes. */
  onOutput(listener: () => void): () => void;
  /**
   * Sends `signal`, then SIGKILL if the process is still running after `graceMs`; resolves with its
   * exit status once it is gone and its output is read. Idempotent.
   */
  stop(signal?: Deno.Signal, graceMs?: number): Promise<Deno.CommandStatus>;
}

/** One lab host: a network namespace with `lo` and `eth0` on the lab bridge. */
export interface Host {
  readonly name: string;
  readonly netns: string;
  /** IPv4 address of `eth0`, without prefix. */
  readonly address: string;
  /** IPv6 address of `eth0`, without prefix, when the spec gave one. */
  readonly address6?: string;
  /** MAC address of `eth0`. */
  readonly mac: string;
  /** The interface on the bridge, `eth0`. */
  readonly device: string;
  /** Runs a command to completion inside the host; throws (command and stderr) on failure unless `check: false`. */
  run(cmd: string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a command inside the host and leaves it running. */
  spawn(cmd: string[], opts?: SpawnOptions): LabProcess;
}

/** Options of `Lab.dropRandom`. */
export interface DropOptions {
  /** Packets the host receives ("in", the default) or sends ("out"). */
  readonly direction?: "in" | "out";
  /** An nft match expression that narrows the drop, like `tcp dport 80`. */
  readonly match?: string;
}

/** A running lab. */
export interface Lab {
  readonly hosts: Readonly<Record<string, Host>>;
  /** The namespace that holds the bridge (for captures on the bridge ports). */
  readonly bridgeNetns: string;
  /** The host called `name`; throws if there is none. */
  host(name: string): Host;
  /** Adds a route in `host`: `ip route add CIDR via VIA`. */
  addRoute(host: Host, cidr: string, via: string): Promise<void>;
  /** Drops `percent`% of the host's packets at random (nft `numgen random`); calls add up. */
  dropRandom(host: Host, percent: number, opts?: DropOptions): Promise<void>;
  /** Limits what the host sends to `rate` (tc units like `10mbit`) with a token bucket. */
  rateLimit(host: Host, rate: string): Promise<void>;
  /** Removes every `dropRandom` and `rateLimit` of the host. */
  clearImpairments(host: Host): Promise<void>;
  /** Stops every process started in the lab and deletes every namespace; idempotent. */
  close(): Promise<void>;
}

/** The command line that runs agent `name` (a script in `tests/lab/agents/`) with Deno. */
export function agentCommand(name: string, args: readonly string[] = []): string[] {
  const script = fileURLToPath(new URL(`./agents/${name}.ts`, import.meta.url));
  return [Deno.execPath(), "run", "-A", "--quiet", script, ...args];
}

/** Runs `args` to its end; with `check` (the default) a non-zero exit throws, naming the command. */
export async function exec(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = new Deno.Command(args[0], {
    args: args.slice(1),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
  });
  const child = command.spawn();
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs);
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const output = await child.output().finally(() => clearTimeout(timer));
  const result = {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
  if ((opts.check ?? true) && result.code !== 0) {
    throw new Error(
      `\`${args.join(" ")}\` exited with ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
}

function execSync(args: string[]): void {
  try {
    new Deno.Command(args[0], { args: args.slice(1), stdout: "null", stderr: "null" }).outputSync();
  } catch { /* best effort: used only while the process is dying */ }
}

/** Whether `promise` settles within `ms`; the timer is cleared either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function spawnProcess(args: string[], opts: SpawnOptions): LabProcess {
  const stdoutMode = opts.stdout ?? "piped";
  const stderrMode = opts.stderr ?? "piped";
  const child = new Deno.Command(args[0], {
    args: args.slice(1),
    stdin: "null",
    stdout: stdoutMode,
    stderr: stderrMode,
    env: opts.env,
  }).spawn();
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>, append: (text: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      append(decoder.decode(chunk, { stream: true }));
      for (const listener of listeners) listener();
    }
  };
  const pumps = [
    stdoutMode === "piped" ? pump(child.stdout, (text) => stdout += text) : undefined,
    stderrMode === "piped" ? pump(child.stderr, (text) => stderr += text) : undefined,
  ];
  const exited = Promise.all([child.status, ...pumps]).then(([status]) => {
    for (const listener of listeners) listener();
    return status;
  });
  let stopping: Promise<Deno.CommandStatus> | undefined;
  let childDone = false;
  child.status.then(() => childDone = true);
  const signalChild = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* exited meanwhile */ }
  };
  return {
    pid: child.pid,
    command: args,
    exited,
    stdoutText: () => stdout,
    stderrText: () => stderr,
    onOutput(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop(signal: Deno.Signal = "SIGTERM", graceMs = DEFAULT_GRACE_MS) {
      stopping ??= (async () => {
        if (!childDone) {
          signalChild(signal);
          if (!(await settlesWithin(child.status, graceMs))) signalChild("SIGKILL");
        }
        const status = await child.status;
        // The output ends when its last writer closes the pipe, which may be a child it left behind.
        await settlesWithin(exited, OUTPUT_DRAIN_MS);
        return status;
      })();
      return stopping;
    },
  };
}

/**
 * Waits until `labProcess` prints a line containing `text` on standard output; rejects on timeout or
 * if the process exits first, with its output in the message.
 */
export function waitForLine(labProcess: LabProcess, text: string, timeoutMs = 15000): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      if (error) reject(error);
      else resolve();
    };
    const found = () => labProcess.stdoutText().split("\n").some((line) => line.includes(text));
    const describe = () =>
      [
        labProcess.command.join(" "),
        `stdout: ${labProcess.stdoutText().trim()}`,
        `stderr: ${labProcess.stderrText().trim()}`,
      ].join("\n");
    const unsubscribe = labProcess.onOutput(() => {
      if (found()) finish();
    });
    const timer = setTimeout(
      () => finish(new Error(`no line with "${text}" within ${timeoutMs} ms from ${describe()}`)),
      timeoutMs,
    );
    labProcess.exited.then((status) => {
      if (!found()) finish(new Error(`exited with ${status.code} before printing "${text}": ${describe()}`));
    });
    if (found()) finish();
  });
}

/** Polls `check` every 100 ms until it holds; rejects, saying `what` it waited for, after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

/**
 * The JSON lines of the file at `path` so far (none if it does not exist). A line still being written has
 * no newline yet and is left for the next read: a process may be appending while the test reads.
 */
export async function readJsonLines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
}

function netnsNames(): string[] {
  try {
    return [...Deno.readDirSync("/run/netns")].map((entry) => entry.name);
  } catch {
    return [];
  }
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Kills whatever still runs inside `netns` (processes the lab did not spawn itself, like `sh -c` children). */
function killNetnsProcesses(netns: string): number[] {
  const listed = new Deno.Command("ip", { args: ["netns", "pids", netns], stdout: "piped", stderr: "null" })
    .outputSync();
  const pids = new TextDecoder().decode(listed.stdout).split(/\s+/).filter((pid) => pid !== "").map(Number);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
  return pids;
}

function deleteNamespacesSync(namespaces: readonly string[]): void {
  for (const netns of namespaces) killNetnsProcesses(netns);
  for (const netns of namespaces) execSync(["ip", "netns", "del", netns]);
}

/**
 * Deletes namespaces left behind by lab runs whose process is gone (a crash, a SIGKILL). Namespaces
 * of live processes, this one included, are left alone. Returns the names deleted.
 */
export function sweepStaleLabs(): string[] {
  const stale = netnsNames().filter((name) => {
    const match = NETNS_NAME.exec(name);
    return match !== null && Number(match[1]) !== Deno.pid && !processAlive(Number(match[1]));
  });
  deleteNamespacesSync(stale);
  return stale;
}

/** Labs not yet closed; the signal and unload handlers tear these down if the process is ending. */
const openLabs = new Set<LabImpl>();

function teardownAllSync(): void {
  for (const lab of openLabs) lab.teardownSync();
  openLabs.clear();
  unregisterSafetyNet();
}

const onSigint = () => {
  teardownAllSync();
  Deno.exit(130);
};
const onSigterm = () => {
  teardownAllSync();
  Deno.exit(143);
};
/** Also runs on an uncaught error, which ends the process without an unload event. */
const onUnload = () => teardownAllSync();

function registerSafetyNet(): void {
  if (openLabs.size !== 1) return;
  Deno.addSignalListener("SIGINT", onSigint);
  Deno.addSignalListener("SIGTERM", onSigterm);
  globalThis.addEventListener("unload", onUnload);
  globalThis.addEventListener("error", onUnload);
  globalThis.addEventListener("unhandledrejection", onUnload);
}

function unregisterSafetyNet(): void {
  if (openLabs.size !== 0) return;
  Deno.removeSignalListener("SIGINT", onSigint);
  Deno.removeSignalListener("SIGTERM", onSigterm);
  globalThis.removeEventListener("unload", onUnload);
  globalThis.removeEventListener("error", onUnload);
  globalThis.removeEventListener("unhandledrejection", onUnload);
}

function randomTag(): string {
  return crypto.getRandomValues(new Uint32Array(1))[0].toString(36).slice(0, 5);
}

function inLabRange(address: number): boolean {
  const network = ipv4FromBytes(LAB_RANGE.network);
  const mask = 0xffffffff << (32 - LAB_RANGE.prefix);
  return (address & mask) === network; // both signed, as every `Ipv4Address`
}

/** Parses tc rate text (`100kbit`, `10mbit`, `1gbit`, `5000bit`) into bits per second. */
function rateBitsPerSecond(rate: string): number {
  const match = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/.exec(rate);
  if (match === null) throw new Error(`rate "${rate}" is not like 10mbit (units bit, kbit, mbit, gbit)`);
  const scale = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[match[2] as "bit" | "kbit" | "mbit" | "gbit"];
  return Number(match[1]) * scale;
}

interface HostPlan {
  readonly name: string;
  readonly address: string;
  readonly prefix: number;
  readonly address6?: string;
}

/** Throws unless `text` is `address/prefix` with the address inside 2001:2::/48 and the prefix 48..128. */
export function checkLabAddress6(text: string): void {
  const [address, prefix, extra] = text.split("/");
  const bytes = parseIpv6(address);
  const inside = bytes !== undefined && extra === undefined && /^[0-9]+$/.test(prefix ?? "") &&
    Number(prefix) >= LAB_RANGE6.prefix && Number(prefix) <= 128 &&
    bytes.subarray(0, LAB_RANGE6.prefix / 8).every((byte, i) => byte === LAB_RANGE6.network[i]);
  if (!inside) {
    throw new Error(
      `lab host IPv6 address "${text}" must be address/prefix inside ${
        formatCidr(LAB_RANGE6)
      } (prefix 48..128)`,
    );
  }
}

function planHosts(spec: LabSpec): HostPlan[] {
  const subnet = parseCidr(spec.subnet ?? DEFAULT_SUBNET);
  if (subnet === undefined || subnet.family !== 4 || !inLabRange(ipv4FromBytes(subnet.network))) {
    throw new Error(`lab subnet "${spec.subnet}" must be an IPv4 range inside ${formatCidr(LAB_RANGE)}`);
  }
  const names = new Set<string>();
  const taken = new Set<number>();
  const explicit = spec.hosts.map((host) => {
    if (!HOST_NAME.test(host.name) || host.name === BRIDGE_HOST || names.has(host.name)) {
      throw new Error(
        `lab host name "${host.name}" must be unique, not "${BRIDGE_HOST}", and match ${HOST_NAME}`,
      );
    }
    names.add(host.name);
    if (host.address6 !== undefined) checkLabAddress6(host.address6);
    if (host.address === undefined) return undefined;
    const [text, prefix] = host.address.split("/");
    const address = parseIpv4(text);
    if (address === undefined || !inLabRange(address)) {
      throw new Error(`lab host address "${host.address}" must be IPv4 inside ${formatCidr(LAB_RANGE)}`);
    }
    taken.add(address);
    return { address, prefix: prefix === undefined ? subnet.prefix : Number(prefix) };
  });
  let next = ipv4FromBytes(subnet.network) + 1;
  return spec.hosts.map((host, index) => {
    let chosen = explicit[index];
    if (chosen === undefined) {
      while (taken.has(next)) next++;
      taken.add(next);
      chosen = { address: next, prefix: subnet.prefix };
    }
    return {
      name: host.name,
      address: formatIpv4(chosen.address),
      prefix: chosen.prefix,
      address6: host.address6,
    };
  });
}

class LabImpl implements Lab {
  readonly hosts: Record<string, Host> = {};
  readonly bridgeNetns: string;
  readonly #runTag: string;
  /** Every namespace created so far, bridge first. */
  readonly #namespaces: string[] = [];
  readonly #processes = new Set<LabProcess>();
  #closing: Promise<void> | undefined;

  constructor() {
    this.#runTag = randomTag();
    this.bridgeNetns = this.#netnsName(BRIDGE_HOST);
  }

  #netnsName(host: string): string {
    return `${LAB_NETNS_PREFIX}${Deno.pid}-${this.#runTag}-${host}`;
  }

  async #addNetns(name: string): Promise<void> {
    await exec(["ip", "netns", "add", name]);
    this.#namespaces.push(name);
  }

  async build(plans: HostPlan[]): Promise<void> {
    await this.#addNetns(this.bridgeNetns);
    const inBridge = (args: string[]) => exec(["ip", "-n", this.bridgeNetns, ...args]);
    // No IPv6 on the bridge's own ports: their router solicitations would show up in every capture.
    await exec([
      "ip",
      "netns",
      "exec",
      this.bridgeNetns,
      "sysctl",
      "-qw",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    await exec([
      "ip",
      "netns",
      "exec",
      this.bridgeNetns,
      "sysctl",
      "-qw",
      "net.ipv6.conf.all.disable_ipv6=1",
    ]);
    await inBridge(["link", "add", BRIDGE_DEVICE, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"]);
    await inBridge(["link", "set", BRIDGE_DEVICE, "up"]);
    for (const [index, plan] of plans.entries()) {
      const netns = this.#netnsName(plan.name);
      await this.#addNetns(netns);
      const port = `v${index}`;
      const inHost = (args: string[]) => exec(["ip", "-n", netns, ...args]);
      const inNetns = (args: string[]) => exec(["ip", "netns", "exec", netns, ...args]);
      const sysctl = (setting: string) => inNetns(["sysctl", "-qw", setting]);
      if (plan.address6 === undefined) {
        await sysctl("net.ipv6.conf.default.disable_ipv6=1");
        await sysctl("net.ipv6.conf.all.disable_ipv6=1");
      } else {
        await sysctl("net.ipv6.conf.default.accept_dad=0");
        await sysctl("net.ipv6.conf.default.accept_ra=0");
      }
      await inHost([
        "link",
        "add",
        HOST_DEVICE,
        "type",
        "veth",
        "peer",
        "name",
        port,
        "netns",
        this.bridgeNetns,
      ]);
      await inBridge(["link", "set", port, "master", BRIDGE_DEVICE]);
      await inBridge(["link", "set", port, "up"]);
      await inHost(["link", "set", "lo", "up"]);
      await inHost(["addr", "add", `${plan.address}/${plan.prefix}`, "dev", HOST_DEVICE]);
      if (plan.address6 !== undefined) {
        await inHost(["-6", "addr", "add", plan.address6, "dev", HOST_DEVICE, "nodad"]);
      }
      // Segment and checksum in software, as a real NIC's wire shows them: with offloads on, a capture
      // sees 64 KiB "packets" and unfilled checksums that no real network carries.
      await inNetns(["ethtool", "-K", HOST_DEVICE, ..."tx off tso off gso off gro off".split(" ")]);
      await inHost(["link", "set", HOST_DEVICE, "up"]);
      const link = JSON.parse((await inHost(["-j", "link", "show", HOST_DEVICE])).stdout)[0];
      this.hosts[plan.name] = this.#host(plan, netns, link.address);
    }
  }

  #host(plan: HostPlan, netns: string, mac: string): Host {
    const processes = this.#processes;
    return {
      name: plan.name,
      netns,
      address: plan.address,
      address6: plan.address6?.split("/")[0],
      mac,
      device: HOST_DEVICE,
      run: (cmd, opts) => exec(["ip", "netns", "exec", netns, ...cmd], opts),
      spawn(cmd, opts = {}) {
        const started = spawnProcess(["ip", "netns", "exec", netns, ...cmd], opts);
        processes.add(started);
        const forget = () => processes.delete(started);
        started.exited.then(forget, forget);
        return started;
      },
    };
  }

  host(name: string): Host {
    const host = this.hosts[name];
    if (host === undefined) throw new Error(`the lab has no host "${name}"`);
    return host;
  }

  async addRoute(host: Host, cidr: string, via: string): Promise<void> {
    await host.run(["ip", "route", "add", cidr, "via", via]);
  }

  async dropRandom(host: Host, percent: number, opts: DropOptions = {}): Promise<void> {
    if (!(percent >= 0 && percent <= 100)) throw new Error(`drop percent ${percent} is not within 0..100`);
    const chain = opts.direction === "out" ? "loss_out" : "loss_in";
    // In hundredths of a percent, so 0.5% works; numgen's result must stay below the modulus.
    const chance = percent === 100 ? "" : `numgen random mod 10000 < ${Math.round(percent * 100)}`;
    const script = [
      "table inet tslab {",
      // Before conntrack and routing, so the host's stack never sees the dropped packets.
      "  chain loss_in { type filter hook prerouting priority -300; }",
      "  chain loss_out { type filter hook postrouting priority 300; }",
      "}",
      `add rule inet tslab ${chain} ${opts.match ?? ""} ${chance} drop`,
    ].join("\n");
    await host.run(["nft", "-f", "-"], { stdin: script });
  }

  async rateLimit(host: Host, rate: string): Promise<void> {
    const bitsPerSecond = rateBitsPerSecond(rate);
    // The bucket must hold at least one timer tick of traffic or tbf cannot reach the rate.
    const burstBytes = Math.max(16 * 1024, Math.ceil(bitsPerSecond / 8 / 100));
    const tbf = `rate ${rate} burst ${burstBytes} latency 100ms`;
    await host.run(["tc", "qdisc", "replace", "dev", HOST_DEVICE, "root", "tbf", ...tbf.split(" ")]);
  }

  async clearImpairments(host: Host): Promise<void> {
    await host.run(["nft", "delete", "table", "inet", "tslab"], { check: false });
    await host.run(["tc", "qdisc", "del", "dev", HOST_DEVICE, "root"], { check: false });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const processes = [...this.#processes];
      await Promise.all(processes.map((running) => running.stop()));
      // Hosts first: deleting a host's namespace deletes its veth pair, bridge port included.
      const namespaces = [...this.#namespaces].reverse();
      for (const netns of namespaces) await this.#drainNetns(netns);
      // Only now are the children that held our processes' output pipes gone.
      await Promise.all(processes.map((running) => running.exited));
      for (const netns of namespaces) await exec(["ip", "netns", "del", netns], { check: false });
      openLabs.delete(this);
      unregisterSafetyNet();
      const left = netnsNames().filter((name) => namespaces.includes(name));
      if (left.length > 0) throw new Error(`lab namespaces survived close(): ${left.join(" ")}`);
    })();
    return this.#closing;
  }

  /** Kills what still runs in `netns` and waits (bounded) for it to be gone, so deletion frees it. */
  async #drainNetns(netns: string): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      if (killNetnsProcesses(netns).length === 0) return;
      await sleep(20);
    }
  }

  /** The synchronous last resort of the signal and unload handlers. */
  teardownSync(): void {
    for (const running of this.#processes) {
      try {
        Deno.kill(running.pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    deleteNamespacesSync([...this.#namespaces].reverse());
  }

  register(): void {
    openLabs.add(this);
    registerSafetyNet();
  }
}

/**
 * Builds a lab: one namespace per host plus one for the bridge, addresses from 198.18.0.0/15,
 * offloads off. Sweeps leftovers of dead runs first. If building fails halfway, what was built is
 * torn down before the error is rethrown.
 */
export async function createLab(spec: LabSpec): Promise<Lab> {
  const plans = planHosts(spec);
  sweepStaleLabs();
  const lab = new LabImpl();
  lab.register();
  try {
    await lab.build(plans);
  } catch (error) {
    await lab.close();
    throw error;
  }
  return lab;
}

/** Runs `fn` with a fresh lab and closes the lab afterwards, whether `fn` returned or threw. */
export async function withLab<T>(spec: LabSpec, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(spec);
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}
