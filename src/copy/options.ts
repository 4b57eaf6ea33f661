/**
 * `copy`'s command line: TCPCopy's short flags with long names beside them, checked into a plain
 * `CopyOptions` before anything is opened.
 */
import {
  addressValue,
  captureBufferValue,
  cidrListValue,
  DEFAULT_CAPTURE_BUFFER_MB,
  intValue,
  ipv4Value,
  listValue,
  OPERATION_FLAGS,
  OPERATION_HELP,
  type OperationOptions,
  operationOptions,
  parseFlags,
  portValue,
  positiveNumberValue,
  readSecretFile,
} from "../cli/mod.ts";
import {
  type AcceptedFlag,
  acceptedFlagNotices,
  acceptedFlagSpecs,
  DAEMON_FLAGS,
  DAEMON_HELP,
  type DaemonOptions,
  daemonOptions,
} from "../cli/mod.ts";
import { UsageError } from "../errors.ts";
import type { CompareOptions } from "./comparing.ts";
import { DEFAULT_INTERCEPT_PORT } from "../protocol/mod.ts";
import {
  type AddressRange,
  defaultSessionConfig,
  type SessionConfig,
  type TargetMapping,
} from "../session/mod.ts";
import {
  type Address,
  addressFamily,
  formatAddress,
  ipv4FromBytes,
  ipv6Address,
  parseIpv6,
} from "../wire/mod.ts";
import { parseMac } from "./neighbours.ts";

const MEBIBYTE = 1 << 20;

/** An intercept to connect to. */
export interface InterceptAddress {
  readonly host: string;
  readonly port: number;
}

/** Everything `copy` was asked to do. */
export interface CopyOptions {
  /** The TCP mappings of `-x`. */
  readonly mappings: TargetMapping[];
  /** The `udp:` mappings of `-x`: each datagram copied as it is (`UdpCopier`). */
  readonly udpMappings: TargetMapping[];
  readonly intercepts: InterceptAddress[];
  readonly clients: AddressRange[];
  readonly rate: number;
  readonly multiply: number;
  readonly portShift: number;
  /** Capture devices; `["any"]` for all. */
  readonly interfaces: string[];
  /** Extra BPF, ANDed with the ports `copy` needs. */
  readonly filter: string | undefined;
  /** Kernel buffer of each live capture, in bytes. */
  readonly captureBuffer: number;
  /** Replay a capture file instead of capturing live (`--input`). */
  readonly replay: ReplayOptions | undefined;
  readonly connections: number;
  readonly maxSessions: number;
  readonly session: SessionConfig;
  readonly quiet: boolean;
  /** Logs, stats and metrics. */
  readonly operation: OperationOptions;
  /** Resident memory (bytes) above which no new session is taken, if any. */
  readonly maxMemory: number | undefined;
  /** Copies over ordinary connections (`--connect`) instead of packets, if asked. */
  readonly connect: ConnectOptions | undefined;
  /** Send copies as Ethernet frames on this interface (`--send-interface`) instead of a raw socket. */
  readonly sendInterface: string | undefined;
  /** The MAC address those frames go to (`--target-mac`); by default each target's next hop's. */
  readonly targetMac: Uint8Array | undefined;
  /** Copy only sessions seen from their SYN (`-O`). */
  readonly onlyFromSyn: boolean;
  /** The rate starts at 1% and rises a point a second up to `rate` (`-g`). */
  readonly gradual: boolean;
  /** Clients on 127.0.0.0/8 are copied as coming from this address (`-H`), if given. */
  readonly localhostAddress: number | undefined;
  /**
   * Keep running while no intercept can be reached, from the start on, and without the warning every
   * few seconds that sessions wait for replies that cannot come (`-L`).
   */
  readonly lonely: boolean;
  /** `-d` and `-P`. */
  readonly daemon: DaemonOptions;
  /** One line for each TCPCopy flag given that changes nothing here. */
  readonly notices: string[];
  /** The shared secret to prove to every intercept and to have them prove (`--secret-file`), if any. */
  readonly secret: Uint8Array | undefined;
}

/** How `copy --connect` opens its connections and reads the target's answers. */
export interface ConnectOptions {
  /**
   * Local addresses to open connections from, in turn, each connection from one of its target's family;
   * empty: the kernel chooses. Every family of a target has at least one when any is given.
   */
  readonly bind: Address[];
  /** A target that said something in a turn and then nothing for this long has answered it. */
  readonly answerGapMs: number;
  /** With `--compare`: how each turn's answers are compared, and where the results go. */
  readonly compare: CompareOptions | undefined;
}

/** How long a turn waits for the target's first byte with `--compare` (the packet engine's wait is 3 s). */
const COMPARE_RESPONSE_WAIT_MS = 10_000;

/** Differences kept per endpoint by default (`--diff-samples`). */
export const DEFAULT_DIFF_SAMPLES = 5;

/** `--answer-gap`'s default: well above a LAN round trip, well below a person's pause. */
export const DEFAULT_ANSWER_GAP_MS = 200;

/** The IPv4 and TCP headers without options: what `--mtu` leaves for a segment's payload and options. */
const IP_TCP_HEADERS = 40;
const DEFAULT_MTU = 1500;

/** TCPCopy 1.3 flags `copy` accepts that change nothing here. */
const ACCEPTED_FLAGS: readonly AcceptedFlag[] = [
  {
    short: "k",
    long: "keepalive-timeout",
    instead: "copy resets any session without packets either way for -t/--session-timeout seconds",
  },
  { short: "R", long: "rtt", instead: "copy measures each session's round trip itself (RFC 6298)" },
  {
    short: "U",
    long: "pool-size",
    instead: "copy has no session pool to size; --max-sessions and -m/--max-memory bound it",
  },
  { short: "S", long: "snaplen", instead: "copy captures whole packets" },
];

/** How to replay a capture file (`copy --input`). */
export interface ReplayOptions {
  /** A pcap or pcapng file. */
  readonly input: string;
  /** Times the recorded pace: 1 keeps the capture's timing; `Infinity`, as fast as the target answers. */
  readonly speed: number;
  /** Passes over the file, each with sessions of its own. */
  readonly loop: number;
  /** Gaps between recorded packets longer than this (ms) are skipped whole (`-I`); none when absent. */
  readonly maxGapMs?: number;
}

/** `copy --help`. */
export const copyHelp = `tcpshadow copy: copy live TCP sessions from this (online) host to a target server

Usage: tcpshadow copy -x PORT-TARGET:PORT -s ASSISTANT [flags]
       tcpshadow copy -x PORT-TARGET:PORT -s ASSISTANT -i CAPTURE.pcap [-a SPEED] [-T N] [flags]
       tcpshadow copy -x PORT-TARGET:PORT --connect [-i CAPTURE.pcap] [flags]
       tcpshadow copy -x udp:PORT-TARGET:PORT [flags]

  -x, --target MAP         what to copy and where: [udp:][onlineIP:]port-targetIP:targetPort, comma list
                           (e.g. 80-198.18.0.3:8080); IPv6 in brackets (80-[2001:2::3]:8080); required.
                           udp: copies each UDP datagram to the port as it is (DNS and the like:
                           udp:53-198.18.0.3:5353), no intercept needed
  -s, --intercept HOSTS    intercept host[:port] to get the target's replies from (default port ${DEFAULT_INTERCEPT_PORT}),
                           IPv6 as [address]:port, comma list; required unless --connect, or every target
                           is udp:
      --connect            replay each session over an ordinary TCP connection from this host instead
                           of packets: no raw socket, intercept or route; works through NAT and load
                           balancers; the target sees this host's address; no root with --input
      --bind ADDRS         with --connect: local addresses to open connections from, in turn, comma list;
                           IPv4 and IPv6, each connection from one of its target's family (one needed
                           for every target family)
      --answer-gap MS      with --connect: a target that said less than the online server and then
                           nothing for MS has answered its turn (default ${DEFAULT_ANSWER_GAP_MS})
      --compare MODE       with --connect: compare each turn's answer of the target with the online
                           server's: bytes (any protocol) or http (HTTP/1.x: status, headers but the
                           volatile ones, body decoded, JSON by meaning); live, this also captures the
                           online server's answers
      --baseline IP:PORT   with --compare: a second target running the production build ([IPv6]:port);
                           differences it shows too are noise (timestamps, random ids), learnt per
                           endpoint and field
      --ignore-header H    with --compare http: more headers to leave out (Date, ETag, Set-Cookie values,
                           request ids... are by default), comma list
      --ignore-json-path P with --compare http: JSON fields to leave out ($.meta, $.items[*].id), comma list
      --diff-file FILE     with --compare: the first differences of each endpoint, one JSON line each
      --report FILE        with --compare: an HTML page of the comparison, written at the end
      --diff-samples N     with --compare: differences kept per endpoint (default ${DEFAULT_DIFF_SAMPLES})
  -c, --clients RANGES     client addresses the target sees: CIDR (IPv4 or IPv6), a.b.c.x (a /24), comma
                           list; each copy takes one of its target's family (default: the real client's)
  -r, --rate PERCENT       copy this percent of sessions, 1-100 (default 100); a session is copied whole or not
  -n, --multiply N         copy each session N times as N distinct sessions, 1-1023 (default 1)
  -f, --port-shift K       keep the client ports of several copy processes apart, 0-1023 (default 0)
      --interface DEVS     capture on these interfaces, comma list (default: all); -i DEVS as well when
                           each is an interface of this host with an address (TCPCopy's pcap build)
  -F, --filter BPF         extra capture filter, ANDed with the ports above
  -B, --capture-buffer MB  kernel buffer of each capture (default ${DEFAULT_CAPTURE_BUFFER_MB}); resident memory, holds bursts
                           copy has not read yet: raise it if the stats show kernel drops
  -i, --input FILE         replay the sessions recorded in a pcap/pcapng file (tcpdump -w) instead of
                           capturing live; exits when they are done
  -a, --speed F|max        with --input: F times the recorded pace (default 1), or max: as fast as the
                           target answers
  -T, --loop N             with --input: replay the file N times, each pass as new sessions (default 1)
  -I, --max-gap MS         with --input: skip the silence of any gap between packets longer than MS
  -t, --session-timeout S  seconds without any packet before a session is reset on the target (default 120)
      --max-lag MS         a request waits for the target's answer to the previous one, as online, but
                           goes anyway (pipelined) once it was captured this long ago, so the copy never
                           falls further behind (default ${defaultSessionConfig.maxLagMs}; with --speed max or
                           --compare: no limit, and --compare refuses it)
  -p, --intercept-port P   intercept's port where -s names none (default ${DEFAULT_INTERCEPT_PORT})
  -C, --connections N      connections to each intercept, 1-16 (default 2)
  -L, --lonely             keep running while no intercept can be reached, also at start (retrying),
                           and quietly (by default copy warns every 5 s while sessions wait for one)
  -W, --no-wait            never wait for the target's answer before the next request (--max-lag 0)
  -O, --only-from-syn      copy only sessions seen from their SYN, none taken over when already open
  -g, --gradual            start at 1% of sessions and copy a point more each second, up to --rate
  -H, --localhost-address IP
                           copy clients on 127.0.0.0/8 (this host itself) as coming from IP
  -M, --mtu N              largest packet toward the target, 576-65535 (default ${DEFAULT_MTU})
  -D, --mss N              MSS the copies announce to the target, and their largest payload, 64-65495
                           (default ${DEFAULT_MTU - IP_TCP_HEADERS})
      --max-sessions N     sessions held at once, with those in their 2 s linger after the end; more are
                           counted and skipped (default 100000); was -M before -M became TCPCopy's MTU
      --secret-file FILE   prove this shared secret to each intercept and have it prove it back (the
                           intercept needs the same --secret-file; a C intercept cannot); the file must
                           not be world-readable and holds at least 16 bytes
  -m, --max-memory MB      above this resident memory collect garbage, and if still above take no new
                           sessions (open ones go on) until back below 90% of it (default: no limit)
  -o, --send-interface DEV send the copies as Ethernet frames on DEV (libpcap) instead of a raw socket, so
                           this host's routing, conntrack and firewall never see them; to the next hop's
                           MAC address, found in the neighbour table at start
      --target-mac MAC     with --send-interface: send the frames to this MAC address (aa:bb:cc:dd:ee:ff)
  -q, --quiet              no log lines, only errors and the final summary
${OPERATION_HELP}
${DAEMON_HELP}
  -k, -R, -U, -S N         TCPCopy's keep-alive timeout, RTT, pool size and snaplen: accepted, and a
                           notice says what does their job here
  -v, --version            print the version
  -h, --help               this text

Run as root (or with CAP_NET_RAW): it captures with libpcap and sends with a raw socket (or libpcap, -o).
With --connect a live capture still needs CAP_NET_RAW (for libpcap only); --connect --input needs none.
Examples:
  tcpshadow copy -x 80-198.18.0.3:8080 -s 198.18.0.4 -c 198.19.0.0/24 --rate 20
  tcpshadow copy -x 80-198.18.0.3:8080 --connect -i traffic.pcap
  tcpshadow copy -x 80-198.18.0.3:8080 --connect -i traffic.pcap --compare http --report report.html
`;

/** Parses and checks `copy`'s flags. */
export function parseCopyOptions(argv: string[]): CopyOptions {
  const values = parseFlags("copy", argv, {
    target: { type: "string", short: "x", multiple: true },
    intercept: { type: "string", short: "s", multiple: true },
    clients: { type: "string", short: "c", multiple: true },
    rate: { type: "string", short: "r" },
    multiply: { type: "string", short: "n" },
    "port-shift": { type: "string", short: "f" },
    interface: { type: "string", multiple: true },
    filter: { type: "string", short: "F" },
    "capture-buffer": { type: "string", short: "B" },
    input: { type: "string", short: "i" },
    speed: { type: "string", short: "a" },
    loop: { type: "string", short: "T" },
    "max-gap": { type: "string", short: "I" },
    "session-timeout": { type: "string", short: "t" },
    "max-lag": { type: "string" },
    "intercept-port": { type: "string", short: "p" },
    connections: { type: "string", short: "C" },
    lonely: { type: "boolean", short: "L" },
    "no-wait": { type: "boolean", short: "W" },
    "only-from-syn": { type: "boolean", short: "O" },
    gradual: { type: "boolean", short: "g" },
    "localhost-address": { type: "string", short: "H" },
    mtu: { type: "string", short: "M" },
    mss: { type: "string", short: "D" },
    "max-sessions": { type: "string" },
    quiet: { type: "boolean", short: "q" },
    "max-memory": { type: "string", short: "m" },
    connect: { type: "boolean" },
    bind: { type: "string", multiple: true },
    "answer-gap": { type: "string" },
    compare: { type: "string" },
    baseline: { type: "string" },
    "ignore-header": { type: "string", multiple: true },
    "ignore-json-path": { type: "string", multiple: true },
    "diff-file": { type: "string" },
    report: { type: "string" },
    "diff-samples": { type: "string" },
    "send-interface": { type: "string", short: "o" },
    "target-mac": { type: "string" },
    "secret-file": { type: "string" },
    ...OPERATION_FLAGS,
    ...DAEMON_FLAGS,
    ...acceptedFlagSpecs(ACCEPTED_FLAGS),
  });
  const targets = listValue(values.target);
  if (targets.length === 0) throw new UsageError("--target (-x) is required, e.g. -x 80-198.18.0.3:8080");
  const connect = connectOptions(values);
  const mappings = targets.map(parseMapping);
  const tcpMappings = mappings.filter((mapping) => !mapping.udp).map((mapping) => mapping.mapping);
  if (
    connect !== undefined && values["send-interface"] !== undefined && tcpMappings.length === mappings.length
  ) {
    throw new UsageError("--send-interface (-o) sends packets: --connect copies over connections of its own");
  }
  const intercepts = listValue(values.intercept);
  if (intercepts.length === 0 && tcpMappings.length > 0 && connect === undefined) {
    throw new UsageError(
      "--intercept (-s) is required: the host running 'tcpshadow intercept' (or copy with --connect)",
    );
  }
  const clientText = listValue(values.clients);
  const timeoutSeconds = values["session-timeout"] === undefined
    ? defaultSessionConfig.idleTimeoutMs / 1000
    : positiveNumberValue("--session-timeout", values["session-timeout"]);
  const { input, interfaces } = inputOrInterfaces(values.input, listValue(values.interface));
  const replay = replayOptions({ ...values, input, interface: interfaces });
  if (values["max-gap"] !== undefined && replay === undefined) {
    throw new UsageError("--max-gap needs --input: live traffic has its own pace");
  }
  if (values["no-wait"] && values["max-lag"] !== undefined) {
    throw new UsageError("--no-wait is --max-lag 0: give one of them");
  }
  if (values.compare !== undefined && (values["no-wait"] || values["max-lag"] !== undefined)) {
    // A request that goes before its answer came puts that answer in a later turn: a false difference.
    throw new UsageError(
      `--${
        values["no-wait"] ? "no-wait" : "max-lag"
      } does not go with --compare: every request waits for its own answer`,
    );
  }
  const interceptPort = values["intercept-port"] === undefined
    ? DEFAULT_INTERCEPT_PORT
    : portValue("--intercept-port", values["intercept-port"]);
  const mtu = values.mtu === undefined ? DEFAULT_MTU : intValue("--mtu", values.mtu, 576, 65535);
  const mss = values.mss === undefined
    ? DEFAULT_MTU - IP_TCP_HEADERS
    : intValue("--mss", values.mss, 64, 65495);
  const clients = clientText.length === 0 ? [] : clientRanges(clientText.join(","));
  // A connection of this host's own reaches a target of either family, whatever its client's.
  if (connect === undefined) checkFamilies(mappings.map((mapping) => mapping.mapping), clients);
  else checkBindFamilies(connect, tcpMappings);
  return {
    mappings: tcpMappings,
    udpMappings: mappings.filter((mapping) => mapping.udp).map((mapping) => mapping.mapping),
    intercepts: intercepts.map((text) => parseInterceptAddress(text, interceptPort)),
    clients,
    rate: values.rate === undefined ? 100 : intValue("--rate", values.rate, 1, 100),
    multiply: values.multiply === undefined ? 1 : intValue("--multiply", values.multiply, 1, 1023),
    portShift: values["port-shift"] === undefined
      ? 0
      : intValue("--port-shift", values["port-shift"], 0, 1023),
    interfaces: interfaces ?? ["any"],
    filter: values.filter,
    captureBuffer: captureBufferValue(values["capture-buffer"]),
    replay,
    connections: values.connections === undefined ? 2 : intValue("--connections", values.connections, 1, 16),
    maxSessions: values["max-sessions"] === undefined
      ? 100_000
      : intValue("--max-sessions", values["max-sessions"], 1, 10_000_000),
    session: {
      ...defaultSessionConfig,
      idleTimeoutMs: timeoutSeconds * 1000,
      maxSegment: Math.min(mtu - IP_TCP_HEADERS, mss),
      // At --speed max the file sets no pace to keep up with, and --compare needs each answer in its own
      // turn: every request waits for its turn.
      maxLagMs: values["max-lag"] !== undefined
        ? intValue("--max-lag", values["max-lag"], 0, 3_600_000)
        : values["no-wait"]
        ? 0
        : replay?.speed === Infinity || values.compare !== undefined
        ? Infinity
        : defaultSessionConfig.maxLagMs,
      timestampBaseMs: Date.now() - performance.now(),
      // Comparing, an answer that comes late must still count in its own turn: wait longer before giving up.
      ...(values.compare === undefined ? {} : { responseWaitMs: COMPARE_RESPONSE_WAIT_MS }),
    },
    quiet: values.quiet ?? false,
    operation: operationOptions(values, values.quiet ?? false),
    maxMemory: values["max-memory"] === undefined
      ? undefined
      : intValue("--max-memory", values["max-memory"], 16, 1_048_576) * MEBIBYTE,
    onlyFromSyn: values["only-from-syn"] ?? false,
    gradual: values.gradual ?? false,
    localhostAddress: values["localhost-address"] === undefined
      ? undefined
      : ipv4Value("--localhost-address", values["localhost-address"]),
    lonely: values.lonely ?? false,
    daemon: daemonOptions(values),
    notices: acceptedFlagNotices(ACCEPTED_FLAGS, values),
    ...sendPath(values["send-interface"], values["target-mac"]),
    secret: values["secret-file"] === undefined
      ? undefined
      : readSecretFile("--secret-file", values["secret-file"]),
    connect,
  };
}

/** `--connect` with `--bind` and `--answer-gap`; the packet transport's own flags do not go with it. */
function connectOptions(
  values: {
    connect?: boolean;
    bind?: string[];
    "answer-gap"?: string;
    intercept?: string[];
    clients?: string[];
    connections?: string;
  } & CompareValues,
): ConnectOptions | undefined {
  if (!values.connect) {
    if (values.bind !== undefined) throw new UsageError("--bind needs --connect");
    if (values["answer-gap"] !== undefined) throw new UsageError("--answer-gap needs --connect");
    if (values.compare !== undefined) {
      throw new UsageError("--compare needs --connect: the packet transport never sees the target's answers");
    }
    compareOptions(values);
    return undefined;
  }
  const packetOnly = [
    ["--intercept (-s)", values.intercept],
    ["--clients (-c)", values.clients],
    ["--connections (-C)", values.connections],
  ] as const;
  for (const [flag, value] of packetOnly) {
    if (value !== undefined) {
      throw new UsageError(
        `${flag} does not go with --connect: connections come from this host's own addresses (--bind)`,
      );
    }
  }
  return {
    bind: listValue(values.bind).map((address) => addressValue("--bind", address)),
    answerGapMs: values["answer-gap"] === undefined
      ? DEFAULT_ANSWER_GAP_MS
      : intValue("--answer-gap", values["answer-gap"], 1, 3_600_000),
    compare: compareOptions(values),
  };
}

/** The flags of `--compare`. */
interface CompareValues {
  compare?: string;
  baseline?: string;
  "ignore-header"?: string[];
  "ignore-json-path"?: string[];
  "diff-file"?: string;
  report?: string;
  "diff-samples"?: string;
}

/** `--compare` and the flags that only go with it. */
function compareOptions(values: CompareValues): CompareOptions | undefined {
  if (values.compare === undefined) {
    const stray =
      (["baseline", "ignore-header", "ignore-json-path", "diff-file", "report", "diff-samples"] as const)
        .find((flag) => values[flag] !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} needs --compare`);
    return undefined;
  }
  const mode = values.compare;
  if (mode !== "bytes" && mode !== "http") {
    throw new UsageError(`--compare: '${mode}' is neither bytes nor http`);
  }
  const ignoreHeaders = listValue(values["ignore-header"]);
  const ignoreJsonPaths = listValue(values["ignore-json-path"]);
  if (mode === "bytes" && (ignoreHeaders.length > 0 || ignoreJsonPaths.length > 0)) {
    throw new UsageError("--ignore-header and --ignore-json-path go with --compare http");
  }
  for (const path of ignoreJsonPaths) {
    if (!/^\$(?:\.[A-Za-z_$][\w$]*|\[(?:\d+|\*|"[^"]*")\])*$/.test(path)) {
      throw new UsageError(`--ignore-json-path: '${path}' is not a path like $.a.b or $.items[*].id`);
    }
  }
  let baseline: CompareOptions["baseline"];
  if (values.baseline !== undefined) {
    const match = /^([0-9.]+|\[[0-9a-fA-F:.]+\]):(\d+)$/.exec(values.baseline);
    if (match === null) {
      throw new UsageError(`--baseline: '${values.baseline}' is not IPv4:port or [IPv6]:port`);
    }
    baseline = {
      address: addressValue("--baseline", match[1]),
      port: intValue("--baseline port", match[2], 1, 65535),
    };
  }
  return {
    mode,
    baseline,
    ignoreHeaders,
    ignoreJsonPaths,
    diffFile: values["diff-file"],
    report: values.report,
    samplesPerEndpoint: values["diff-samples"] === undefined
      ? DEFAULT_DIFF_SAMPLES
      : intValue("--diff-samples", values["diff-samples"], 0, 10_000),
  };
}

/**
 * `-i`: TCPCopy's offline build reads a file with it, its pcap build captures on a device with it.
 * Names that are all interfaces of this host with an address (or `any`) are a capture, anything else a file.
 */
function inputOrInterfaces(
  input: string | undefined,
  interfaces: string[],
): { input: string | undefined; interfaces: string[] | undefined } {
  const listed = interfaces.length > 0 ? interfaces : undefined;
  if (input === undefined || input === "" || interfaces.length > 0) return { input, interfaces: listed };
  const names = listValue(input);
  // Deno lets only --allow-all read /sys/class/net; the interfaces with an address need only --allow-sys.
  const devices = new Set(["any", ...Deno.networkInterfaces().map((entry) => entry.name)]);
  const isDevice = (name: string) => devices.has(name);
  return names.length > 0 && names.every(isDevice)
    ? { input: undefined, interfaces: names }
    : { input, interfaces: listed };
}

/** `--send-interface` and `--target-mac`; the second only means something with the first. */
function sendPath(
  device: string | undefined,
  mac: string | undefined,
): { sendInterface: string | undefined; targetMac: Uint8Array | undefined } {
  if (device === undefined) {
    if (mac !== undefined) throw new UsageError("--target-mac needs --send-interface");
    return { sendInterface: undefined, targetMac: undefined };
  }
  if (device === "" || device === "any") {
    throw new UsageError(`--send-interface needs one interface to send on, like eth0`);
  }
  const targetMac = mac === undefined ? undefined : parseMac(mac);
  if (mac !== undefined && targetMac === undefined) {
    throw new UsageError(`--target-mac: "${mac}" is not a MAC address like 02:00:00:00:00:01`);
  }
  return { sendInterface: device, targetMac };
}

/** `[udp:][onlineIP:]port-targetIP:targetPort`, IPv6 addresses in brackets. */
function parseMapping(text: string): { udp: boolean; mapping: TargetMapping } {
  const address = String.raw`([0-9.]+|\[[0-9a-fA-F:.]+\])`;
  const match = new RegExp(`^(udp:)?(?:${address}:)?([0-9]+)-${address}:([0-9]+)$`).exec(text);
  if (!match) {
    throw new UsageError(
      `--target: "${text}" is not [udp:][onlineIP:]port-targetIP:targetPort (like 80-198.18.0.3:8080 or ` +
        `[2001:2::2]:80-[2001:2::3]:8080)`,
    );
  }
  const [, udp, online, onlinePort, target, targetPort] = match;
  return {
    udp: udp !== undefined,
    mapping: {
      onlineAddress: online === undefined ? undefined : addressValue("--target", online),
      onlinePort: portValue("--target", onlinePort),
      targetAddress: addressValue("--target", target),
      targetPort: portValue("--target", targetPort),
    },
  };
}

/** `host[:port]`; an IPv6 address as `[address]:port`, or bare without a port. */
function parseInterceptAddress(text: string, defaultPort: number): InterceptAddress {
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::([0-9]+))?$/.exec(text);
  if (bracketed !== null || (text.split(":").length > 2 && parseIpv6(text) !== undefined)) {
    const host = bracketed?.[1] ?? text;
    if (parseIpv6(host) === undefined) throw new UsageError(`--intercept: "${text}" is not an IPv6 address`);
    const port = bracketed?.[2];
    return { host, port: port === undefined ? defaultPort : portValue("--intercept", port) };
  }
  const [host, port, extra] = text.split(":");
  if (extra !== undefined || host === "") {
    throw new UsageError(`--intercept: "${text}" is not host[:port] (IPv6: [address]:port)`);
  }
  return { host, port: port === undefined ? defaultPort : portValue("--intercept", port) };
}

/**
 * Usable host addresses of each range: IPv4's network and broadcast left out where the range has them,
 * IPv6's all-zero host (the subnet routers' anycast address) likewise; an IPv6 range runs through its
 * low 32 bits at most (4 billion addresses are plenty).
 */
function clientRanges(text: string): AddressRange[] {
  return cidrListValue("--clients", text).map((cidr) => {
    if (cidr.family === 4) {
      const size = 2 ** (32 - cidr.prefix);
      const network = ipv4FromBytes(cidr.network);
      return size > 2 ? { first: network + 1, count: size - 2 } : { first: network, count: size };
    }
    const size = 2 ** Math.min(128 - cidr.prefix, 32);
    if (size === 1) return { first: ipv6Address(cidr.network), count: 1 };
    const first = cidr.network.slice();
    first[15] |= 1; // host bits are clear
    return { first: ipv6Address(first), count: size - 1 };
  });
}

/**
 * The families must fit: a `-c` range of a family no target has is a mistake, and an online address of
 * one family copied to a target of the other needs a `-c` range of the target's family.
 */
function checkFamilies(mappings: TargetMapping[], clients: AddressRange[]): void {
  const targetFamilies = new Set(mappings.map((mapping) => addressFamily(mapping.targetAddress)));
  const clientFamilies = new Set(clients.map((range) => addressFamily(range.first)));
  for (const family of clientFamilies) {
    if (!targetFamilies.has(family)) {
      throw new UsageError(`--clients: an IPv${family} range, but no --target is IPv${family}`);
    }
  }
  for (const mapping of mappings) {
    if (mapping.onlineAddress === undefined) continue;
    const family = addressFamily(mapping.targetAddress);
    if (addressFamily(mapping.onlineAddress) !== family && !clientFamilies.has(family)) {
      throw new UsageError(
        `--target: clients of ${formatAddress(mapping.onlineAddress)} cannot reach the IPv${family} target ` +
          `${
            formatAddress(mapping.targetAddress)
          } under their own address: give --clients an IPv${family} range`,
      );
    }
  }
}

/**
 * With `--connect`, each connection opens from a `--bind` address of its target's family: when `--bind`
 * names any, a target family without one is a mistake (an operator who pins the source addresses expects
 * every connection from one of them, not some from the kernel's choice), as is an address of a family
 * no target (or baseline) has.
 */
function checkBindFamilies(connect: ConnectOptions, mappings: readonly TargetMapping[]): void {
  if (connect.bind.length === 0) return;
  const targets = [
    ...mappings.map((mapping) => mapping.targetAddress),
    ...(connect.compare?.baseline === undefined ? [] : [connect.compare.baseline.address]),
  ];
  const targetFamilies = new Set(targets.map(addressFamily));
  const bindFamilies = new Set(connect.bind.map(addressFamily));
  for (const family of targetFamilies) {
    if (!bindFamilies.has(family)) {
      const target = formatAddress(targets.find((address) => addressFamily(address) === family)!);
      throw new UsageError(
        `--bind: no IPv${family} address for the IPv${family} target ${target}: add one, or leave --bind out`,
      );
    }
  }
  for (const family of bindFamilies) {
    if (!targetFamilies.has(family)) {
      throw new UsageError(`--bind: an IPv${family} address, but no --target is IPv${family}`);
    }
  }
}

/** Whether some of `mappings` goes to an IPv6 target. */
export function hasIpv6Target(mappings: readonly TargetMapping[]): boolean {
  return ipv6Targets(mappings).length > 0;
}

/** The IPv6 targets of `mappings` (each `Address` as often as it is named). */
export function ipv6Targets(mappings: readonly TargetMapping[]): string[] {
  return mappings.map((mapping) => mapping.targetAddress).filter((target) => typeof target === "string");
}

/** `--input`, `--speed` and `--loop`; the last two only mean something with the first. */
function replayOptions(
  values: { input?: string; speed?: string; loop?: string; interface?: string[]; "max-gap"?: string },
): ReplayOptions | undefined {
  if (values.input === undefined) {
    if (values.speed !== undefined) {
      throw new UsageError("--speed needs --input: live traffic has its own pace");
    }
    if (values.loop !== undefined) throw new UsageError("--loop needs --input");
    return undefined;
  }
  if (values.input === "") throw new UsageError("--input needs a file name");
  if (values.interface !== undefined) {
    throw new UsageError("--interface and --input do not go together: a file replay captures nothing");
  }
  return {
    input: values.input,
    speed: values.speed === "max"
      ? Infinity
      : values.speed === undefined
      ? 1
      : positiveNumberValue("--speed", values.speed),
    loop: values.loop === undefined ? 1 : intValue("--loop", values.loop, 1, 1_000_000),
    ...(values["max-gap"] === undefined
      ? {}
      : { maxGapMs: intValue("--max-gap", values["max-gap"], 1, 86_400_000) }),
  };
}
