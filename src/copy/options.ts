/**
 * `copy`'s command line: TCPCopy's short flags with long names beside them, checked into a plain
 * `CopyOptions` before anything is opened.
 */
import {
  cidrListValue,
  intValue,
  ipv4Value,
  listValue,
  parseFlags,
  portValue,
  positiveNumberValue,
} from "../cli/flags.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_INTERCEPT_PORT } from "../intercept/protocol.ts";
import {
  type AddressRange,
  defaultSessionConfig,
  type SessionConfig,
  type TargetMapping,
} from "../session/mod.ts";
import { ipv4FromBytes } from "../wire/mod.ts";

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
  readonly connections: number;
  readonly maxSessions: number;
  readonly session: SessionConfig;
  readonly quiet: boolean;
}

/** `copy --help`. */
export const copyHelp = `tcpshadow copy: copy live TCP sessions from this (online) host to a target server

Usage: tcpshadow copy -x PORT-TARGET:PORT -s ASSISTANT [flags]

  -x, --target MAP         what to copy and where: [onlineIP:]port-targetIP:targetPort, comma list
                           (e.g. 80-198.18.0.3:8080); required
  -s, --intercept HOSTS    intercept host[:port] to get the target's replies from (default port ${DEFAULT_INTERCEPT_PORT}),
                           comma list; required
  -c, --clients RANGES     client addresses the target sees: CIDR, a.b.c.x (a /24), comma list
                           (default: each real client's own address)
  -r, --rate PERCENT       copy this percent of sessions, 1-100 (default 100); a session is copied whole or not
  -n, --multiply N         copy each session N times as N distinct sessions, 1-1023 (default 1)
  -f, --port-shift K       keep the client ports of several copy processes apart, 0-1023 (default 0)
  -I, --interface DEVS     capture on these interfaces, comma list (default: all)
  -F, --filter BPF         extra capture filter, ANDed with the ports above
  -t, --session-timeout S  seconds without any packet before a session is reset on the target (default 120)
  -C, --connections N      connections to each intercept, 1-16 (default 2)
  -M, --max-sessions N     sessions held at once; more are counted and skipped (default 100000)
  -q, --quiet              no log lines, only errors and the final summary
  -h, --help               this text

Run as root (or with CAP_NET_RAW): it captures with libpcap and sends with a raw socket.
Example:
  tcpshadow copy -x 80-198.18.0.3:8080 -s 198.18.0.4 -c 198.19.0.0/24 --rate 20
`;

/** Parses and checks `copy`'s flags. */
export function parseCopyOptions(argv: string[]): CopyOptions {
  const values = parseFlags(argv, {
    target: { type: "string", short: "x", multiple: true },
    intercept: { type: "string", short: "s", multiple: true },
    clients: { type: "string", short: "c", multiple: true },
    rate: { type: "string", short: "r" },
    multiply: { type: "string", short: "n" },
    "port-shift": { type: "string", short: "f" },
    interface: { type: "string", short: "I", multiple: true },
    filter: { type: "string", short: "F" },
    "session-timeout": { type: "string", short: "t" },
    connections: { type: "string", short: "C" },
    "max-sessions": { type: "string", short: "M" },
    quiet: { type: "boolean", short: "q" },
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
  const interfaces = listValue(values.interface);
  return {
    mappings: targets.map(parseMapping),
    intercepts: intercepts.map(parseInterceptAddress),
    clients: clientText.length === 0 ? [] : clientRanges(clientText.join(",")),
    rate: values.rate === undefined ? 100 : intValue("--rate", values.rate, 1, 100),
    multiply: values.multiply === undefined ? 1 : intValue("--multiply", values.multiply, 1, 1023),
    portShift: values["port-shift"] === undefined
      ? 0
      : intValue("--port-shift", values["port-shift"], 0, 1023),
    interfaces: interfaces.length === 0 ? ["any"] : interfaces,
    filter: values.filter,
    connections: values.connections === undefined ? 2 : intValue("--connections", values.connections, 1, 16),
    maxSessions: values["max-sessions"] === undefined
      ? 100_000
      : intValue("--max-sessions", values["max-sessions"], 1, 10_000_000),
    session: { ...defaultSessionConfig, idleTimeoutMs: timeoutSeconds * 1000 },
    quiet: values.quiet ?? false,
  };
}

/** `[onlineIP:]port-targetIP:targetPort`. */
function parseMapping(text: string): TargetMapping {
  const match = /^(?:([0-9.]+):)?([0-9]+)-([0-9.]+):([0-9]+)$/.exec(text);
  if (!match) {
    throw new UsageError(
      `--target: "${text}" is not [onlineIP:]port-targetIP:targetPort (like 80-198.18.0.3:8080)`,
    );
  }
  const [, online, onlinePort, target, targetPort] = match;
  return {
    onlineAddress: online === undefined ? undefined : ipv4Value("--target", online),
    onlinePort: portValue("--target", onlinePort),
    targetAddress: ipv4Value("--target", target),
    targetPort: portValue("--target", targetPort),
  };
}

function parseInterceptAddress(text: string): InterceptAddress {
  const [host, port, extra] = text.split(":");
  if (extra !== undefined || host === "") throw new UsageError(`--intercept: "${text}" is not host[:port]`);
  return { host, port: port === undefined ? DEFAULT_INTERCEPT_PORT : portValue("--intercept", port) };
}

/** Usable host addresses of each range: network and broadcast left out where the range has them. */
function clientRanges(text: string): AddressRange[] {
  return cidrListValue("--clients", text).map((cidr) => {
    if (cidr.family !== 4) throw new UsageError("--clients: only IPv4 ranges can be copied for now");
    const size = 2 ** (32 - cidr.prefix);
    const network = ipv4FromBytes(cidr.network);
    return size > 2 ? { first: network + 1, count: size - 2 } : { first: network, count: size };
  });
}
