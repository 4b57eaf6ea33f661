/**
 * The `intercept` subcommand: runs on the assistant host the target's replies are routed to, captures
 * them and streams their IP and TCP headers to the `copy` processes that registered their clients
 * (`registry.ts` keeps who registered which client; `server.ts` does the I/O).
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
  captureBufferValue,
  type Command,
  DEFAULT_CAPTURE_BUFFER_MB,
  ipv4Value,
  listValue,
  OPERATION_FLAGS,
  OPERATION_HELP,
  operationOptions,
  parseFlags,
  portValue,
} from "../cli/mod.ts";
import { reopenOnHangup, withLogger } from "../ops/mod.ts";
import { UsageError } from "../errors.ts";
import { formatIpv4, formatIpv6, LinkType, parseIpv6 } from "../wire/mod.ts";
import { DEFAULT_INTERCEPT_PORT } from "../protocol/mod.ts";
import { InterceptMonitor } from "./monitor.ts";
import { runIntercept } from "./server.ts";

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
  -q, --quiet               log only problems, not copy connections coming and going
${OPERATION_HELP}
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
      quiet: { type: "boolean", short: "q" },
      ...OPERATION_FLAGS,
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
    };
    const operation = operationOptions(flags, flags.quiet ?? false);
    return withLogger("intercept", operation.log, async (log) => {
      const controller = new AbortController();
      const stop = () => controller.abort();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      const stopReopening = reopenOnHangup(log);
      let monitor: InterceptMonitor | undefined;
      try {
        const summary = await runIntercept(options, controller.signal, log, (view) => {
          monitor = new InterceptMonitor(view, operation, log);
        });
        await monitor?.stop();
        // Unprefixed, as scripts and tests have always read it.
        console.error(`intercept: stopped; ${summary}`);
        return 0;
      } finally {
        await monitor?.stop();
        stopReopening();
        Deno.removeSignalListener("SIGINT", stop);
        Deno.removeSignalListener("SIGTERM", stop);
      }
    });
  },
};

/** `--bind`: an IPv4 or IPv6 address, in canonical form. */
function bindAddress(text: string): string {
  const bytes = parseIpv6(text);
  return bytes === undefined ? formatIpv4(ipv4Value("--bind", text)) : formatIpv6(bytes);
}
