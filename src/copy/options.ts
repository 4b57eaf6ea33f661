/**
 * `copy`'s command line: TCPCopy's short flags with long names beside them, checked into a plain
 * `CopyOptions` before anything is opened.
 */
import {
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

const MEBIBYTE = 1 << 20;

/** An intercept to connect to. */
export interface InterceptAddress {
  readonly host: string;
  readonly port: number;
}

/** Everything `copy` was asked to do. */
export interface CopyOptions {
  readonly mappings: TargetMapping[];
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
  /** Copy only sessions seen from their SYN (`-O`). */
  readonly onlyFromSyn: boolean;
  /** The rate starts at 1% and rises a point a second up to `rate` (`-g`). */
  readonly gradual: boolean;
  /** Clients on 127.0.0.0/8 are copied as coming from this address (`-H`), if given. */
  readonly localhostAddress: number | undefined;
  /** Keep running while no intercept can be reached, from the start on (`-L`). */
  readonly lonely: boolean;
  /** `-d` and `-P`. */
  readonly daemon: DaemonOptions;
  /** One line for each TCPCopy flag given that changes nothing here. */
  readonly notices: string[];
  /** The shared secret to prove to every intercept and to have them prove (`--secret-file`), if any. */
  readonly secret: Uint8Array | undefined;
}

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

  -x, --target MAP         what to copy and where: [onlineIP:]port-targetIP:targetPort, comma list
                           (e.g. 80-198.18.0.3:8080); IPv6 in brackets (80-[2001:2::3]:8080); required
  -s, --intercept HOSTS    intercept host[:port] to get the target's replies from (default port ${DEFAULT_INTERCEPT_PORT}),
                           IPv6 as [address]:port, comma list; required
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
                           falls further behind (default ${defaultSessionConfig.maxLagMs}; with --speed max: no limit)
  -p, --intercept-port P   intercept's port where -s names none (default ${DEFAULT_INTERCEPT_PORT})
  -C, --connections N      connections to each intercept, 1-16 (default 2)
  -L, --lonely             keep running while no intercept can be reached, also at start (retrying)
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
  -q, --quiet              no log lines, only errors and the final summary
${OPERATION_HELP}
${DAEMON_HELP}
  -k, -R, -U, -S N         TCPCopy's keep-alive timeout, RTT, pool size and snaplen: accepted, and a
                           notice says what does their job here
  -v, --version            print the version
  -h, --help               this text

Run as root (or with CAP_NET_RAW): it captures with libpcap and sends with a raw socket.
Example:
  tcpshadow copy -x 80-198.18.0.3:8080 -s 198.18.0.4 -c 198.19.0.0/24 --rate 20
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
    "secret-file": { type: "string" },
    ...OPERATION_FLAGS,
    ...DAEMON_FLAGS,
    ...acceptedFlagSpecs(ACCEPTED_FLAGS),
  });
  const targets = listValue(values.target);
  if (targets.length === 0) throw new UsageError("--target (-x) is required, e.g. -x 80-198.18.0.3:8080");
  const intercepts = listValue(values.intercept);
  if (intercepts.length === 0) {
    throw new UsageError("--intercept (-s) is required: the host running 'tcpshadow intercept'");
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
  const interceptPort = values["intercept-port"] === undefined
    ? DEFAULT_INTERCEPT_PORT
    : portValue("--intercept-port", values["intercept-port"]);
  const mtu = values.mtu === undefined ? DEFAULT_MTU : intValue("--mtu", values.mtu, 576, 65535);
  const mss = values.mss === undefined
    ? DEFAULT_MTU - IP_TCP_HEADERS
    : intValue("--mss", values.mss, 64, 65495);
  const mappings = targets.map(parseMapping);
  const clients = clientText.length === 0 ? [] : clientRanges(clientText.join(","));
  checkFamilies(mappings, clients);
  return {
    mappings,
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
      // At --speed max the file sets no pace to keep up with: every request waits for its turn.
      maxLagMs: values["max-lag"] !== undefined
        ? intValue("--max-lag", values["max-lag"], 0, 3_600_000)
        : values["no-wait"]
        ? 0
        : replay?.speed === Infinity
        ? Infinity
        : defaultSessionConfig.maxLagMs,
      timestampBaseMs: Date.now() - performance.now(),
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
    secret: values["secret-file"] === undefined
      ? undefined
      : readSecretFile("--secret-file", values["secret-file"]),
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

/** `[onlineIP:]port-targetIP:targetPort`, IPv6 addresses in brackets. */
function parseMapping(text: string): TargetMapping {
  const address = String.raw`([0-9.]+|\[[0-9a-fA-F:.]+\])`;
  const match = new RegExp(`^(?:${address}:)?([0-9]+)-${address}:([0-9]+)$`).exec(text);
  if (!match) {
    throw new UsageError(
      `--target: "${text}" is not [onlineIP:]port-targetIP:targetPort (like 80-198.18.0.3:8080 or ` +
        `[2001:2::2]:80-[2001:2::3]:8080)`,
    );
  }
  const [, online, onlinePort, target, targetPort] = match;
  return {
    onlineAddress: online === undefined ? undefined : mappingAddress(online),
    onlinePort: portValue("--target", onlinePort),
    targetAddress: mappingAddress(target),
    targetPort: portValue("--target", targetPort),
  };
}

/** A dotted quad, or IPv6 in brackets. */
function mappingAddress(text: string): Address {
  if (!text.startsWith("[")) return ipv4Value("--target", text);
  const bytes = parseIpv6(text.slice(1, -1));
  if (bytes === undefined) throw new UsageError(`--target: "${text}" is not an IPv6 address in brackets`);
  return ipv6Address(bytes);
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
