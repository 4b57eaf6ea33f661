/**
 * The copy topology, shared by the copy lab tests, `deno task demo` and `deno task bench`:
 *
 *   client ──► online:80 (production server, runs `copy`)
 *                 │ copies, with the client address rewritten to 198.19.0.0/24
 *                 ▼
 *              target:8080 (test server) ──replies to 198.19.0.0/24──► assistant (runs `intercept`)
 *                                                                           │ headers over TCP 36524
 *                                                          online (`copy`) ◄┘
 *
 * The target gets its route from `tcpshadow route ... | sh`, as an operator would do it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  agentCommand,
  type Host,
  type Lab,
  type LabProcess,
  readJsonLines,
  waitForLine,
  withLab,
} from "./lab.ts";
import type { CopyCounterName } from "../../src/copy/counters.ts";
import { sleep } from "../../src/sleep.ts";

/** Where the copies' client addresses come from. */
export const FAKE_CLIENTS = "198.19.0.0/24";
/** Where IPv6 copies' client addresses come from: a /64 of the lab's 2001:2::/48, beside the hosts' /64. */
export const FAKE_CLIENTS6 = "2001:2:0:1::/64";
/** The hosts' IPv6 addresses, when the lab has IPv6. */
const ADDRESSES6 = {
  client: "2001:2::10",
  online: "2001:2::1",
  target: "2001:2::2",
  assistant: "2001:2::3",
} as const;
const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** `deno task tcpshadow`'s words: its environment (`NAME=value`), "deno run", its runtime flags, "main.ts". */
const TASK_WORDS = (JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url))).tasks
  .tcpshadow as string).split(/\s+/);
const isAssignment = (word: string) => /^[A-Z_][A-Z0-9_]*=/.test(word);
/** The environment the task sets, as `env` takes it. */
const TASK_ENV = TASK_WORDS.filter(isAssignment);
/** The task's command: "deno run", its runtime flags (permissions), "main.ts". */
const TASK = TASK_WORDS.filter((word) => !isAssignment(word));

/**
 * The command line that runs tcpshadow from source as `deno task tcpshadow` does (its environment and
 * runtime flags), with `denoFlags` for Deno itself (e.g. a CPU profile). V8 flags among them come after
 * the task's, so they win where both set one.
 */
export function tcpshadow(args: string[], denoFlags: string[] = []): string[] {
  const v8 = (flag: string) => flag.startsWith("--v8-flags=");
  const v8Flags = [...TASK, ...denoFlags].filter(v8).map((flag) => flag.slice("--v8-flags=".length));
  const flags = [
    ...denoFlags.filter((flag) => !v8(flag)),
    ...TASK.slice(2, -1).filter((flag) => !v8(flag)),
    ...(v8Flags.length === 0 ? [] : [`--v8-flags=${v8Flags.join(",")}`]),
  ];
  const command = [Deno.execPath(), "run", "--quiet", ...flags, MAIN, ...args];
  // `env` execs deno in its place, so the process's pid is tcpshadow's.
  return TASK_ENV.length === 0 ? command : ["env", ...TASK_ENV, ...command];
}

/** What the servers of one lab run. */
export type ServerKind = "http" | "echo";

/** Options of `withCopyLab`. */
export interface CopyLabOptions {
  readonly server?: ServerKind;
  /** Leave the target's server off (a target that is down). */
  readonly targetDown?: boolean;
  /** With the echo server: the target takes this long for each answer (a slow build). */
  readonly targetAnswerDelayMs?: number;
  /** With the echo server: more of its flags (a banner), for the online server and for the target's. */
  readonly echoFlags?: { readonly online?: string[]; readonly target?: string[] };
  /** Extra hosts beyond client, online, target and assistant. */
  readonly extraHosts?: string[];
  /** Copies keep the real client's address (no `-c`); the target routes that address to the assistant. */
  readonly keepClientAddress?: boolean;
  /**
   * Which families the copy serves: 4 (the default), 6 (IPv6 clients to an IPv6 target, copy talking to
   * intercept over IPv6), or "both" (each family to the target's address of that family, at once).
   */
  readonly family?: 4 | 6 | "both";
  /**
   * `connect`: copy replays over ordinary connections (`--connect`): no route is set up (intercept runs
   * but idles), and `copyCommand` has `--connect` instead of `-s` and `-c`. Default `packet`.
   */
  readonly transport?: "packet" | "connect";
  /** Flags for intercept beyond -i and -F. */
  readonly interceptFlags?: string[];
}

/** A built copy lab with its servers and intercept running. */
export interface CopyLab {
  readonly lab: Lab;
  /** The intercept process on the assistant. */
  readonly intercept: LabProcess;
  readonly client: Host;
  readonly online: Host;
  readonly target: Host;
  readonly assistant: Host;
  /** A folder for logs, removed with the lab. */
  readonly dir: string;
  /** The address clients reach the online server at, as a URL host (IPv6 in brackets). */
  readonly onlineUrlHost: string;
  readonly onlineLogPath: string;
  readonly targetLogPath: string;
  /** Starts the target's server (with `targetDown`, later on; or again after a test stopped it). */
  startTarget(): Promise<LabProcess>;
  /** Starts `copy` on the online host with the usual -x/-s/-c plus `extra`; resolves once it captures. */
  startCopy(extra?: string[]): Promise<LabProcess>;
  /**
   * The command line `startCopy` runs: copy from online:80 to target:8080 through the assistant (or the
   * intercept at `intercept`, a `-s` value, or with `--connect`), plus `extra`.
   */
  copyCommand(extra: string[], intercept?: string): string[];
  /** Stops `copy` with SIGTERM and returns its summary counters. */
  stopCopy(copy: LabProcess): Promise<Summary>;
  /** Runs `copy` like `startCopy` until it exits by itself (a file replay), killing it after `timeoutMs`. */
  runCopy(extra: string[], timeoutMs?: number): Promise<CopyRun>;
  /** JSON lines a server logged so far. */
  readLog(path: string): Promise<Array<Record<string, unknown>>>;
  /** Waits until the target logged at least `count` lines (or `timeoutMs` passed); returns them. */
  waitForTarget(count: number, timeoutMs: number): Promise<Array<Record<string, unknown>>>;
}

/**
 * The counters of copy's `summary` line, by their names in src/copy/counters.ts: a counter renamed
 * there fails the type check of every test that reads it.
 */
export type Summary = Readonly<Record<CopyCounterName, number>>;

/** How a `copy` that ended by itself ended. */
export interface CopyRun {
  readonly code: number;
  /** The summary counters; empty when there was no summary line. */
  readonly summary: Summary;
  readonly stderr: string;
}

/**
 * Builds the copy lab, runs `fn`, and tears everything down whatever happens. When `fn` fails, its error
 * ends with what the online and target servers printed (a request they could not read, say).
 */
export async function withCopyLab<T>(options: CopyLabOptions, fn: (lab: CopyLab) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "tcpshadow-lab-" });
  const servers: LabProcess[] = [];
  const v6 = (name: keyof typeof ADDRESSES6) =>
    (options.family ?? 4) === 4 ? {} : { address6: `${ADDRESSES6[name]}/64` };
  try {
    return await withLab({
      hosts: [
        { name: "client", address: "198.18.0.10/24", ...v6("client") },
        { name: "online", address: "198.18.0.1/24", ...v6("online") },
        { name: "target", address: "198.18.0.2/24", ...v6("target") },
        { name: "assistant", address: "198.18.0.3/24", ...v6("assistant") },
        ...(options.extraHosts ?? []).map((name, i) => ({ name, address: `198.18.0.${20 + i}/24` })),
      ],
    }, async (lab) => {
      const copyLab = await setUp(lab, dir, options, servers);
      try {
        return await fn(copyLab);
      } catch (error) {
        throw withServersOutput(error, servers);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `error`, its message followed by what each server printed on stderr, if any did. */
function withServersOutput(error: unknown, servers: LabProcess[]): unknown {
  const said = servers
    .map((server) => [server.command.join(" "), server.stderrText().trim()])
    .filter(([, text]) => text !== "")
    .map(([command, text]) => `\n\`${command}\` printed:\n${text}`);
  if (said.length === 0 || !(error instanceof Error)) return error;
  error.message += said.join("");
  return error;
}

/** Builds the hosts' servers and intercept; the servers it starts are added to `servers`. */
async function setUp(
  lab: Lab,
  dir: string,
  options: CopyLabOptions,
  servers: LabProcess[],
): Promise<CopyLab> {
  const client = lab.host("client");
  const online = lab.host("online");
  const target = lab.host("target");
  const assistant = lab.host("assistant");
  const onlineLogPath = `${dir}/online.jsonl`;
  const targetLogPath = `${dir}/target.jsonl`;
  const server = options.server ?? "http";
  const family = options.family ?? 4;
  const serverCommand = (port: number, log: string, extra: string[] = []) =>
    agentCommand(server === "http" ? "http_server" : "tcp_echo", [
      "--port",
      String(port),
      "--log",
      log,
      ...(family !== 4 && server === "http" ? ["--hostname", "::"] : []),
      ...extra,
    ]);

  const connect = options.transport === "connect";
  if (!connect) {
    // The operator's setup on the target: replies to the fake clients (or, when copies keep the real
    // client address, to the real client) go to the assistant.
    const routed4 = options.keepClientAddress ? `${client.address}/32` : FAKE_CLIENTS;
    const routed6 = options.keepClientAddress ? `${client.address6}/128` : FAKE_CLIENTS6;
    const [routed, via] = family === 4
      ? [routed4, assistant.address]
      : family === 6
      ? [routed6, assistant.address6!]
      : [`${routed4},${routed6}`, `${assistant.address},${assistant.address6}`];
    const route = await target.run(tcpshadow(["route", "--clients", routed, "--via", via]));
    await target.run(["sh", "-c", route.stdout]);
    await assistant.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
  }

  // The target's server (Deno's) listens with a backlog of 511. On a loaded machine copy completes its
  // handshakes in bursts (SYN-ACKs come back through intercept late) and overflows it; with SYN cookies the
  // kernel then resets a session whose first segment it dropped, as the next one fails the cookie check
  // (TcpExtSyncookiesFailed; 350 sessions of 2,000 once). That is an overloaded target, which these tests
  // are not about: without cookies the kernel drops the segments, and copy's retransmissions deliver them.
  await target.run(["sysctl", "-qw", "net.ipv4.tcp_syncookies=0"]);
  const onlineServer = online.spawn(serverCommand(80, onlineLogPath, options.echoFlags?.online));
  servers.push(onlineServer);
  await waitForLine(onlineServer, "listening");
  const startTarget = async () => {
    // Tagged answers: a client that ever got one would fail its check.
    const targetServer = target.spawn(serverCommand(
      8080,
      targetLogPath,
      server === "http"
        ? ["--tag", "target"]
        : ["--answer-delay-ms", String(options.targetAnswerDelayMs ?? 0), ...options.echoFlags?.target ?? []],
    ));
    servers.push(targetServer);
    await waitForLine(targetServer, "listening");
    return targetServer;
  };
  if (!options.targetDown) await startTarget();
  // Started with --connect too (it idles there): tests may reach for it.
  const intercept = assistant.spawn(
    tcpshadow([
      "intercept",
      "-i",
      assistant.device,
      "-F",
      "tcp and src port 8080",
      ...(family === 6 ? ["-b", "::"] : []),
      ...(options.interceptFlags ?? []),
    ]),
    { stdout: "piped", stderr: "piped" },
  );
  await waitForStderr(intercept, "listening", 15000);

  const mapping = family === 4
    ? `80-${target.address}:8080`
    : family === 6
    ? `80-[${target.address6}]:8080`
    : `${online.address}:80-${target.address}:8080,[${online.address6}]:80-[${target.address6}]:8080`;
  const clients = family === 4
    ? FAKE_CLIENTS
    : family === 6
    ? FAKE_CLIENTS6
    : `${FAKE_CLIENTS},${FAKE_CLIENTS6}`;
  const transportFlags = (intercept: string | undefined) =>
    connect ? ["--connect"] : [
      "-s",
      intercept ?? (family === 6 ? `[${assistant.address6}]` : assistant.address),
      ...(options.keepClientAddress ? [] : ["-c", clients]),
    ];
  const copyCommand = (extra: string[], intercept?: string) =>
    tcpshadow(["copy", "-x", mapping, ...transportFlags(intercept), ...extra]);
  return {
    lab,
    intercept,
    client,
    online,
    target,
    assistant,
    dir,
    onlineUrlHost: family === 6 ? `[${online.address6}]` : online.address,
    onlineLogPath,
    targetLogPath,
    copyCommand,
    startTarget,
    async startCopy(extra = []) {
      const copy = online.spawn(copyCommand(extra), { stdout: "piped", stderr: "piped" });
      await waitForStderr(copy, "copying", 15000);
      return copy;
    },
    async stopCopy(copy) {
      const status = await copy.stop("SIGTERM", 10000);
      const summary = parseSummary(copy.stderrText());
      if (status.code !== 0 || summary === undefined) {
        throw new Error(`copy ended with ${status.code} and no summary:\n${copy.stderrText()}`);
      }
      return summary;
    },
    async runCopy(extra, timeoutMs = 60_000) {
      const copy = online.spawn(copyCommand(extra), { stdout: "piped", stderr: "piped" });
      const timer = setTimeout(() => copy.stop("SIGKILL"), timeoutMs);
      const status = await copy.exited.finally(() => clearTimeout(timer));
      return {
        code: status.code,
        summary: parseSummary(copy.stderrText()) ?? ({} as Summary),
        stderr: copy.stderrText(),
      };
    },
    readLog: readJsonLines,
    async waitForTarget(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const lines = await readJsonLines(targetLogPath);
        if (lines.length >= count || Date.now() > deadline) return lines;
        await sleep(100);
      }
    },
  };
}

/** The counters of the `summary key=value ...` line in `stderr`, if there is one. */
function parseSummary(stderr: string): Summary | undefined {
  const line = stderr.split("\n").find((text) => text.includes(" summary "));
  if (line === undefined) return undefined;
  return Object.fromEntries(
    line.slice(line.indexOf(" summary ") + 9).split(" ").map((pair) => {
      const [key, value] = pair.split("=");
      return [key, Number(value)];
    }),
  ) as Summary;
}

/**
 * Starts tcpdump on `host`'s `device` writing what goes to and from port 80 to `path`, and resolves once it
 * captures; stop it with SIGINT (`stopRecording`). Immediate mode, or the last packets wait in the kernel
 * when it stops; a 16 MiB buffer, or `any` (fixed snaplen-sized frames in immediate mode) drops the bursts
 * of a 5000-byte POST.
 */
export async function recordPort80(host: Host, path: string, device = "eth0"): Promise<LabProcess> {
  const dump = host.spawn([
    "tcpdump",
    "-i",
    device,
    "--immediate-mode",
    "-B",
    "16384",
    "-U",
    "-w",
    path,
    "tcp and port 80",
  ]);
  await waitForStderr(dump, "listening on", 10_000);
  return dump;
}

/**
 * Records port 80 on `host` while `traffic` runs, on eth0 (Ethernet frames) and on `any` (Linux cooked
 * frames) at once, into `dir`: the same sessions in both link types, for replays of each. Fails if the
 * kernel dropped any packet of either.
 */
export async function recordPort80OnEth0AndAny(
  host: Host,
  dir: string,
  traffic: () => Promise<unknown>,
): Promise<{ eth0: string; any: string }> {
  const paths = { eth0: `${dir}/eth0.pcap`, any: `${dir}/any.pcap` };
  const dumps = [
    [await recordPort80(host, paths.eth0, "eth0"), paths.eth0],
    [await recordPort80(host, paths.any, "any"), paths.any],
  ] as const;
  await traffic();
  await Promise.all(dumps.map(([dump, path]) => stopRecording(dump, path)));
  for (const [dump] of dumps) {
    assert.match(dump.stderrText(), /^0 packets dropped by kernel$/m, dump.stderrText());
  }
  return paths;
}

/**
 * Stops a tcpdump writing to `path` once the file has not grown for a second: the last FINs and ACKs are
 * in it then. A fixed 300 ms after the clients ended was too short under load (a capture read late, and
 * the file lacked the last sessions).
 */
export async function stopRecording(dump: LabProcess, path: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let size = -1;
  let grewAt = Date.now();
  while (Date.now() < deadline) {
    const now = (await Deno.stat(path)).size;
    if (now !== size) [size, grewAt] = [now, Date.now()];
    else if (Date.now() - grewAt >= 1000) break;
    await sleep(100);
  }
  await dump.stop("SIGINT", 5000);
}

/** Runs the HTTP client agent on the client host against the online server (`host`, by default its address). */
export async function httpClient(lab: CopyLab, args: string[], host = lab.onlineUrlHost): Promise<void> {
  await lab.client.run(agentCommand("http_client", ["--url", `http://${host}:80`, ...args]), {
    timeoutMs: 120_000,
  });
}

/** The copy tests' new-connection workload: 2,000 requests, each on a connection of its own. */
export const CLOSE_REQUESTS = [
  "--requests",
  "2000",
  "--connections",
  "16",
  "--close",
  "--body-sizes",
  "0,0,1,100,1000,1460,1461,2920,5000,20000",
];

/** The copy tests' keep-alive workload: 2,000 requests on 10 connections, POST bodies up to 1 MiB. */
export const KEEP_ALIVE_REQUESTS = [
  "--requests",
  "2000",
  "--connections",
  "10",
  "--keep-alive",
  "--body-sizes",
  "0,10,1000,1460,3000,0,65536,7,1048576,100,0,200,3333,1,0,14600,20,0,1,2",
];

/**
 * Runs the HTTP client with `clientArgs` (all `count` of its requests) against the online server while
 * `copy` runs, then stops `copy` once the target has logged as many (or `timeoutMs` passed) and checks that
 * the target got every request, identical. Returns copy's summary and the target's log.
 */
export async function expectEveryRequestCopied(
  lab: CopyLab,
  copy: LabProcess,
  clientArgs: string[],
  count: number,
  timeoutMs: number,
): Promise<{ summary: Summary; target: Array<Record<string, unknown>> }> {
  await httpClient(lab, clientArgs);
  const online = await lab.readLog(lab.onlineLogPath);
  assert.equal(online.length, count);
  const target = await lab.waitForTarget(count, timeoutMs);
  const summary = await lab.stopCopy(copy);
  assert.deepEqual(compareLogs(online, target).slice(0, 5), [], JSON.stringify(summary));
  return { summary, target };
}

/** Waits until a process's standard error has a line containing `text`. */
export async function waitForStderr(process: LabProcess, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!process.stderrText().includes(text)) {
    if (Date.now() > deadline) {
      throw new Error(
        `no "${text}" from ${process.command.join(" ")} within ${timeoutMs} ms:\n${process.stderrText()}`,
      );
    }
    const status = await Promise.race([
      process.exited,
      sleep(50).then(() => undefined),
    ]);
    if (status !== undefined && !process.stderrText().includes(text)) {
      throw new Error(`${process.command.join(" ")} exited with ${status.code}:\n${process.stderrText()}`);
    }
  }
}

/**
 * Compares what the online server and the target logged: the same requests (id, method, path, body
 * length and hash), each the same number of times `multiply`. Returns the differences, empty if none.
 */
export function compareLogs(
  online: Array<Record<string, unknown>>,
  target: Array<Record<string, unknown>>,
  multiply = 1,
): string[] {
  const key = (line: Record<string, unknown>) =>
    `${line.requestId} ${line.method} ${line.path} ${line.bodyLength} ${line.bodySha256}`;
  const counts = new Map<string, number>();
  for (const line of online) counts.set(key(line), (counts.get(key(line)) ?? 0) + multiply);
  for (const line of target) counts.set(key(line), (counts.get(key(line)) ?? 0) - 1);
  const problems: string[] = [];
  for (const [request, missing] of counts) {
    if (missing > 0) problems.push(`target lacks ${missing}x ${request}`);
    if (missing < 0) problems.push(`target has ${-missing} extra ${request}`);
  }
  return problems;
}
