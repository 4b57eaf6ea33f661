/**
 * The `intercept` subcommand: runs on the assistant host the target's replies are routed to, captures
 * them and streams their IP and TCP headers to the `copy` processes that registered their clients
 * (`registry.ts` keeps who registered which client; `runtime.ts` does the I/O, `access.ts` says who may
 * connect).
 *
 * The wire protocol both sides speak is `src/protocol/`.
 *
 * @example
 * ```ts
 * import { interceptCommand } from "./mod.ts";
 *
 * const code = await interceptCommand.run(["-i", "eth0", "-F", "tcp and src port 8080"]);
 * ```
 *
 * @module
 */
import { compileFilter } from "../../ffi/mod.ts";
import {
  addressValue,
  captureBufferValue,
  cidrListValue,
  type Command,
  DEFAULT_CAPTURE_BUFFER_MB,
  intValue,
  ipv4Value,
  listValue,
  OPERATION_FLAGS,
  OPERATION_HELP,
  operationOptions,
  parseFlags,
  portValue,
  readSecretFile,
} from "../cli/mod.ts";
import { reopenOnHangup, withLogger } from "../ops/mod.ts";
import {
  type AcceptedFlag,
  acceptedFlagNotices,
  acceptedFlagSpecs,
  announceRunning,
  DAEMON_FLAGS,
  DAEMON_HELP,
  daemonOptions,
  detach,
  shouldDetach,
} from "../cli/mod.ts";
import { UsageError } from "../errors.ts";
import { formatAddress, LinkType } from "../wire/mod.ts";
import { DEFAULT_INTERCEPT_PORT } from "../protocol/mod.ts";
import { InterceptMonitor } from "./monitor.ts";
import { AllowList } from "./access.ts";
import {
  DEFAULT_MAX_REGISTRATIONS,
  DEFAULT_MAX_REGISTRATIONS_PER_PEER,
  DEFAULT_REGISTRATION_IDLE_MS,
} from "./registry.ts";
import { InterceptRuntime } from "./runtime.ts";

const DEFAULT_MAX_CONNECTIONS = 256;
const DEFAULT_HELLO_TIMEOUT_S = 10;

/** intercept 1.0 flags accepted that change nothing here. */
const ACCEPTED_FLAGS: readonly AcceptedFlag[] = [
  {
    short: "n",
    long: "combined",
    instead: "replies go to copy in frames of up to 16, gathered for at most 1 ms while busy",
  },
  { short: "s", long: "hash-size", instead: "the table of registered clients grows as needed" },
];

const help = `tcpshadow intercept: send the target's replies to copy

Runs on the assistant host the target routes its replies to the copied clients through. Captures the
replies (which then die here: the assistant must not forward IP) and sends their IP and TCP headers to
each copy process that registered the client, on TCP port ${DEFAULT_INTERCEPT_PORT} (TCPCopy 1.3 compatible).

Usage: tcpshadow intercept -F <filter> [flags]

Flags:
  -F, --filter <bpf>        which packets are the target's replies (tcpdump syntax), e.g.
                            'tcp and src port 8080'; required
  -i, --interface <dev,..>  interfaces to capture on (default any)
      --capture-buffer <MB> kernel buffer of each capture (default ${DEFAULT_CAPTURE_BUFFER_MB}); raise it on kernel drops
  -p, --port <port>         port copy connects to (default ${DEFAULT_INTERCEPT_PORT})
  -b, --bind <address>      address to listen on, IPv4 or IPv6 (default 0.0.0.0; :: takes both)
  -D, --docker <ip1-ip2>    replies to ip1 (a client address as seen inside a container) go to the copy
                            that registered ip2, rewritten to ip2 (intercept 1.0's dockered_ip-orig_ip)
  -q, --quiet               log only problems, not copy connections coming and going

Access (without either, any host that reaches the port reads the target's replies):
      --allow <cidr,..>     only these hosts may connect; others are closed at once, counted, and
                            logged once a minute per address
      --secret-file <file>  copy must prove this shared secret (HMAC challenge-response, both ways;
                            copy needs the same --secret-file). The file must not be world-readable
                            and holds at least 16 bytes. C tcpcopy cannot prove it: it is refused

Bounds (a connection past a registration cap is closed and its registrations dropped):
      --max-connections <n>          copy connections at once (default ${DEFAULT_MAX_CONNECTIONS}); more are closed
      --max-registrations <n>        client registrations held over all connections (default ${DEFAULT_MAX_REGISTRATIONS})
      --max-registrations-per-connection <n>
                                     client registrations one connection may hold (default ${DEFAULT_MAX_REGISTRATIONS_PER_PEER})
      --registration-timeout <s>     a registration no reply used for this long is forgotten after 1-2x
                                     this (default ${
  DEFAULT_REGISTRATION_IDLE_MS / 1000
}; C tcpcopy never deletes its own); keep it above
                                     copy's -t
      --hello-timeout <s>            a connection that has not sent its hello (and proved the secret)
                                     within this is closed (default ${DEFAULT_HELLO_TIMEOUT_S})

Operation:
${OPERATION_HELP}
${DAEMON_HELP}
  -n, -s <num>              intercept 1.0's combined packets and hash size: accepted, and a notice
                            says what does their job here
  -v, --version             print the version
  -h, --help                this help

Runs until SIGINT or SIGTERM, then prints a summary of its counters to stderr.`;

/** `tcpshadow intercept`. */
export const interceptCommand: Command = {
  name: "intercept",
  summary: "on the assistant host: capture the target's replies and send them to copy",
  help,
  run(argv: string[]): Promise<number> {
    const flags = parseFlags("intercept", argv, {
      interface: { type: "string", short: "i", multiple: true },
      filter: { type: "string", short: "F" },
      "capture-buffer": { type: "string" },
      port: { type: "string", short: "p" },
      bind: { type: "string", short: "b" },
      docker: { type: "string", short: "D" },
      quiet: { type: "boolean", short: "q" },
      allow: { type: "string", multiple: true },
      "secret-file": { type: "string" },
      "max-connections": { type: "string" },
      "max-registrations": { type: "string" },
      "max-registrations-per-connection": { type: "string" },
      "registration-timeout": { type: "string" },
      "hello-timeout": { type: "string" },
      ...OPERATION_FLAGS,
      ...DAEMON_FLAGS,
      ...acceptedFlagSpecs(ACCEPTED_FLAGS),
    });
    const filter = flags.filter;
    if (filter === undefined || filter.trim() === "") {
      throw new UsageError("-F/--filter is required: a BPF expression matching the target's replies");
    }
    // Checked as for Ethernet before any interface is opened; each capture compiles it again for its own link.
    const filterProblem = compileFilter(LinkType.ETHERNET, filter);
    if (filterProblem !== undefined) throw new UsageError(`-F/--filter: ${filterProblem}`);
    const devices = listValue(flags.interface);
    const options = {
      devices: devices.length > 0 ? devices : ["any"],
      filter,
      captureBuffer: captureBufferValue(flags["capture-buffer"]),
      bind: bindAddress(flags.bind ?? "0.0.0.0"),
      port: flags.port === undefined ? DEFAULT_INTERCEPT_PORT : portValue("--port", flags.port),
      rewriteDestination: flags.docker === undefined ? undefined : dockerValue(flags.docker),
      allow: flags.allow === undefined
        ? undefined
        : new AllowList(cidrListValue("--allow", listValue(flags.allow).join(","))),
      secret: flags["secret-file"] === undefined
        ? undefined
        : readSecretFile("--secret-file", flags["secret-file"]),
      maxConnections: optionalInt(
        "--max-connections",
        flags["max-connections"],
        DEFAULT_MAX_CONNECTIONS,
        1,
        65535,
      ),
      maxRegistrations: optionalInt(
        "--max-registrations",
        flags["max-registrations"],
        DEFAULT_MAX_REGISTRATIONS,
        1,
        100_000_000,
      ),
      maxRegistrationsPerConnection: optionalInt(
        "--max-registrations-per-connection",
        flags["max-registrations-per-connection"],
        DEFAULT_MAX_REGISTRATIONS_PER_PEER,
        1,
        100_000_000,
      ),
      registrationIdleMs: optionalInt(
        "--registration-timeout",
        flags["registration-timeout"],
        DEFAULT_REGISTRATION_IDLE_MS / 1000,
        1,
        86_400,
      ) * 1000,
      helloTimeoutMs:
        optionalInt("--hello-timeout", flags["hello-timeout"], DEFAULT_HELLO_TIMEOUT_S, 1, 3600) * 1000,
    };
    const operation = operationOptions(flags, flags.quiet ?? false);
    const daemon = daemonOptions(flags);
    const notices = acceptedFlagNotices(ACCEPTED_FLAGS, flags);
    if (shouldDetach(daemon)) {
      for (const notice of notices) console.error(`tcpshadow intercept: warning: ${notice}`);
      return detach();
    }
    return withLogger("intercept", operation.log, async (log) => {
      for (const notice of notices) log.warn(notice);
      let removePidFile = () => {};
      const controller = new AbortController();
      const stop = () => controller.abort();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      const stopReopening = reopenOnHangup(log);
      const runtime = InterceptRuntime.open(options, log);
      let monitor: InterceptMonitor | undefined;
      try {
        monitor = new InterceptMonitor(runtime, operation, log);
        removePidFile = announceRunning(daemon);
        await runtime.run(controller.signal);
        await monitor.stop();
        // Unprefixed, as scripts and tests have always read it.
        console.error(`intercept: stopped; ${runtime.summary()}`);
        return 0;
      } finally {
        runtime.close();
        await monitor?.stop();
        removePidFile();
        stopReopening();
        Deno.removeSignalListener("SIGINT", stop);
        Deno.removeSignalListener("SIGTERM", stop);
      }
    });
  },
};

/** `--bind`: an IPv4 or IPv6 address, in canonical form. */
function bindAddress(text: string): string {
  return formatAddress(addressValue("--bind", text));
}

/** `-D dockerIP-origIP`: replies to the first address count as replies to the second. */
function dockerValue(text: string): { from: number; to: number } {
  const [from, to, extra] = text.split("-");
  if (to === undefined || extra !== undefined) {
    throw new UsageError(`--docker: "${text}" is not dockerIP-origIP (like 172.17.0.1-198.19.0.1)`);
  }
  return { from: ipv4Value("--docker", from), to: ipv4Value("--docker", to) };
}

function optionalInt(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  return text === undefined ? fallback : intValue(flag, text, min, max);
}
