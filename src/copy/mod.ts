/**
 * The `copy` subcommand: captures the sessions clients open with this (online) host and replays each,
 * as a real TCP session of its own, against the target; the target's replies come back from intercept.
 */
import { Capture, compileFilter } from "../../ffi/mod.ts";
import type { Command } from "../cli/flags.ts";
import { createLogger, type Logger } from "../cli/log.ts";
import { UsageError } from "../errors.ts";
import { SessionTable } from "../session/mod.ts";
import { decodeTcpPacket, formatIpv4, Ipv4View, isWireError, LinkType, TcpView } from "../wire/mod.ts";
import { InterceptLinks } from "./intercept_link.ts";
import { copyHelp, type CopyOptions, parseCopyOptions } from "./options.ts";
import { PacketSender } from "./sender.ts";

const POLL_MS = 10;
const SHUTDOWN_GRACE_MS = 2000;

/** `tcpshadow copy`. */
export const copyCommand: Command = {
  name: "copy",
  summary: "copy live TCP sessions from this (online) host to a target server",
  help: copyHelp,
  run: (argv) => runCopy(parseCopyOptions(argv)),
};

/** The BPF program that selects what clients send to the copied ports. */
export function captureFilter(options: CopyOptions): string {
  const ports = options.mappings.map((mapping) =>
    mapping.onlineAddress === undefined
      ? `dst port ${mapping.onlinePort}`
      : `(dst host ${formatIpv4(mapping.onlineAddress)} and dst port ${mapping.onlinePort})`
  );
  const base = `tcp and (${ports.join(" or ")})`;
  return options.filter === undefined ? base : `${base} and (${options.filter})`;
}

async function runCopy(options: CopyOptions): Promise<number> {
  const log = createLogger("copy", options.quiet);
  const filter = captureFilter(options);
  const filterError = compileFilter(LinkType.ETHERNET, filter);
  if (filterError !== undefined) throw new UsageError(`--filter: ${filterError}`);

  const sender = new PacketSender();
  const links: InterceptLinks = new InterceptLinks(
    options.intercepts,
    options.connections,
    (record) => {
      const reply = parseReplyRecord(record);
      if (reply !== undefined) table.onReply(reply.ip.dst, reply.tcp, performance.now());
    },
    () => table.registrations(),
    log,
  );
  const table = new SessionTable(options, {
    segment: (session, tcp) =>
      sender.send(session.endpoints.clientAddress, session.endpoints.targetAddress, tcp),
    registration: (registration) => links.register(registration),
  });
  await links.connect();
  const captures = options.interfaces.map((device) => Capture.openLive({ device, direction: "in", filter }));
  for (const capture of captures) if (capture.warning) log.warn(capture.warning);
  log.info(
    `copying ${options.mappings.length} port mapping(s) on ${
      options.interfaces.join(",")
    } (filter: ${filter})`,
  );

  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  let malformed = 0;
  const drain = (capture: Capture) => {
    const now = performance.now();
    for (let packet = capture.next(); packet; packet = capture.next()) {
      const decoded = decodeTcpPacket(capture.linkType, packet.data);
      if (decoded === undefined) continue;
      if (isWireError(decoded)) {
        malformed++;
        continue;
      }
      if (decoded.outgoing || !(decoded.ip instanceof Ipv4View)) continue;
      table.onCapture(decoded.ip.src, decoded.ip.dst, decoded.tcp, now);
    }
    table.tick(now);
  };
  const loops = captures.map(async (capture) => {
    while (!stopping) {
      await capture.waitReadable(POLL_MS);
      drain(capture);
    }
    drain(capture); // what the kernel already holds belongs to sessions that may still finish
  });
  // Timers run even when no packet comes.
  const ticker = setInterval(() => table.tick(performance.now()), POLL_MS);
  await Promise.all(loops);

  const kernel = captures.map((capture) => capture.stats());
  for (const capture of captures) capture.close();
  log.info(`stopping: waiting up to ${SHUTDOWN_GRACE_MS} ms for ${table.active} open session(s)`);
  const deadline = performance.now() + SHUTDOWN_GRACE_MS;
  while (table.active > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  table.abandonAll(performance.now());
  clearInterval(ticker);
  await links.drain();
  links.close();
  sender.close();
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  printSummary(log, table, sender, kernel, malformed);
  return 0;
}

/** The IPv4 and TCP headers of what the target sent, from one reply record. */
function parseReplyRecord(record: Uint8Array): { ip: Ipv4View; tcp: TcpView } | undefined {
  const ip = Ipv4View.check(record, 0);
  if (isWireError(ip)) return undefined;
  const tcp = TcpView.check(record, ip.payloadOffset, ip.payloadLength);
  return isWireError(tcp) ? undefined : { ip, tcp };
}

function printSummary(
  log: Logger,
  table: SessionTable,
  sender: PacketSender,
  kernel: Array<{ received: number; dropped: number }>,
  malformed: number,
): void {
  const c = table.counters;
  const o = c.outcomes;
  const failed = o["refused"] + o["no-answer"] + o["reset-by-target"] + o["buffer-full"];
  const fields = {
    sessions: c.sessionsCopied,
    completed: o["completed"],
    "reset-by-client": o["reset-by-client"],
    failed,
    refused: o["refused"],
    "no-answer": o["no-answer"],
    "reset-by-target": o["reset-by-target"],
    "timed-out": o["timed-out"],
    abandoned: o["abandoned"],
    "skipped-by-rate": c.sessionsSkippedByRate,
    "refused-at-cap": c.sessionsRefusedAtCap,
    captured: c.packetsSeen,
    "kernel-dropped": kernel.reduce((sum, stats) => sum + stats.dropped, 0),
    malformed,
    sent: sender.sent,
    "send-dropped": sender.dropped,
    retransmissions: c.retransmissions,
    replies: c.repliesReceived,
    "replies-unmatched": c.repliesUnmatched,
  };
  log.warn(`summary ${Object.entries(fields).map(([key, value]) => `${key}=${value}`).join(" ")}`);
}
