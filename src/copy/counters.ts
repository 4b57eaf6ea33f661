/**
 * Every counter `copy` reports, in one list: the summary line, the stats lines and JSON, and the
 * Prometheus metrics (`tcpshadow_` + the name in snake_case) all take their names from it, in its
 * order. The session table's counters are the same names in camelCase (`sessionsRefusedAtCap`).
 */
import { counter, type CounterName, gauge } from "../ops/mod.ts";

/**
 * The transport's own (`Transport.stats()`): each transport gives them all, 0 where it has none. With
 * `--connect`, `packets-sent` counts writes to the connections and `replies-received` reads from them.
 */
export const TRANSPORT_COUNTERS = [
  counter("packets-sent", "Packets sent to the target (--connect: writes to its connections)."),
  counter(
    "packets-send-dropped",
    "Packets not sent: no room in the kernel, or this host's firewall dropped them.",
  ),
  counter("replies-received", "Target reply headers received from intercept (--connect: reads)."),
  counter("replies-unmatched", "Reply headers for no session of ours."),
  counter("registrations-lost", "Registrations not sent: intercept was down."),
  gauge("connections-open", "Connections to the target open now (--connect)."),
  counter("answer-bytes", "Bytes the target answered (--connect)."),
  counter("turns-answered", "Turns the target answered with as many bytes as the online server (--connect)."),
  counter("turns-short", "Turns over after the target went quiet, its answer shorter (--connect)."),
  counter("turns-lagged", "Turns over because the next request was --max-lag behind (--connect)."),
  counter("bind-failures", "Connections not opened from a --bind address (--connect)."),
  counter("h2-sessions", "Copied sessions that began with the HTTP/2 preface (h2c)."),
  counter("h2-streams-opened", "HTTP/2 streams opened on the target (--connect)."),
  counter(
    "h2-streams-held",
    "HTTP/2 streams that waited to open: the target's concurrent-stream limit, or its SETTINGS (--connect).",
  ),
  counter(
    "h2-streams-refused",
    "HTTP/2 requests the target refused: RST_STREAM REFUSED_STREAM, or past a GOAWAY (--connect).",
  ),
  counter(
    "h2-streams-reset",
    "HTTP/2 requests the target reset with an error other than refusal (--connect).",
  ),
  counter(
    "h2-streams-unsent",
    "HTTP/2 requests still waiting to open when the target closed or reset the connection (--connect).",
  ),
  counter("turns-compared", "Turns whose answers --compare judged."),
  counter("turns-same", "Compared turns the target answered as the online server did."),
  counter("turns-different", "Compared turns the target answered differently: regressions to look at."),
  counter("turns-noise", "Compared turns that differed only where a --baseline differed too."),
  counter("turns-no-answer", "Compared turns the online server answered and the target did not."),
  counter("turns-extra-answer", "Compared turns the target answered and the online server did not."),
  counter("turns-uncompared", "Turns --compare could not judge: the online answer was not all captured."),
] as const;

/** The counters of the run's engine and I/O: `CopyRuntime.stats()`. */
export const RUNTIME_COUNTERS = [
  counter("sessions-copied", "Copied sessions opened toward the target."),
  gauge("sessions-active", "Copied sessions open now."),
  gauge("sessions-lingering", "Copied sessions over, holding their client port for 2 s."),
  counter("sessions-completed", "Copied sessions that delivered all the client sent and closed."),
  counter("sessions-reset-by-client", "Copied sessions the client reset, passed on to the target."),
  counter("sessions-failed", "Copied sessions that failed: the sum of the six outcomes below."),
  counter("sessions-refused", "Copied sessions the target refused (a RST to the SYN)."),
  counter("sessions-no-answer", "Copied sessions whose SYN the target never answered."),
  counter("sessions-reset-by-target", "Copied sessions the target reset before all was delivered."),
  counter("sessions-closed-by-target", "Copied sessions (--connect) the target closed with requests to go."),
  counter("sessions-buffer-full", "Copied sessions given up: too much client data waited for the target."),
  counter(
    "sessions-too-fragmented",
    "Copied sessions given up: too many pieces of client data out of order.",
  ),
  counter("sessions-capture-cut", "Copied sessions ended where the capture had cut a packet short."),
  counter("sessions-timed-out", "Copied sessions reset on the target after silence or lost retransmissions."),
  counter("sessions-abandoned", "Copied sessions reset on the target when copy stopped."),
  counter("sessions-half-open", "Copies ended before their client completed its handshake online."),
  counter("sessions-skipped-by-rate", "New client sessions not copied: --rate left them out."),
  counter("sessions-refused-at-cap", "New client sessions not copied: --max-sessions were held."),
  counter("sessions-refused-while-paused", "New client sessions not copied: --max-memory had paused copy."),
  counter(
    "sessions-half-open-evicted",
    "Copies of unfinished handshakes ended at --max-sessions for new ones.",
  ),
  counter("sessions-without-address", "Copies not made: no free client address and port."),
  counter(
    "sessions-family-unreachable",
    "New client sessions not copied: no -c range of the target's address family for the client.",
  ),
  counter(
    "sessions-without-ipv6-intercept",
    "New client sessions toward an IPv6 target not copied: no intercept granted IPv6.",
  ),
  counter("packets-captured", "Packets captured on the copied ports."),
  counter("packets-malformed", "Captured frames that are no TCP packet copy can read."),
  counter("replies-malformed", "Reply records from intercept that are no IPv4 (or IPv6) and TCP headers."),
  counter("packets-kernel-dropped", "Packets the kernel dropped before the capture read them."),
  counter("retransmissions", "Segments sent to the target again after a loss."),
  ...TRANSPORT_COUNTERS,
  gauge("intercept-connected", "Intercepts with a connection up now (0 while sessions wait: copy is blind)."),
  counter("lines-dropped", "Log and stats lines dropped: their file took no writes."),
  counter("datagrams-captured", "UDP datagrams captured on the copied udp: ports."),
  counter("datagrams-copied", "UDP datagrams sent to the targets, each copy counted."),
  counter("datagrams-skipped-by-rate", "UDP datagrams not copied: --rate left their client out."),
  counter(
    "datagrams-family-unreachable",
    "UDP datagrams not copied: their client's family is not the target's, and -c has no range of it.",
  ),
] as const;

/** The memory guard's (`--max-memory`) and the process's: `CopyMonitor.stats()` adds them. */
export const MEMORY_COUNTERS = [
  gauge("resident-memory-bytes", "Resident memory of the copy process."),
  gauge("heap-bytes", "V8's heap as the process holds it now, a part of its resident memory."),
  gauge("heap-used-bytes", "Of V8's heap, what objects take now, live or not yet collected."),
  gauge("external-bytes", "Memory outside V8's heap held by JavaScript objects: packet buffers."),
  gauge("memory-paused", "1 while --max-memory keeps new sessions out."),
  counter("memory-pauses", "Times --max-memory started keeping new sessions out."),
  counter("memory-collections", "Full garbage collections --max-memory asked for before refusing."),
] as const;

/** An offline replay's (`--input`), in its summary only: `copyOffline` returns them. */
export const REPLAY_COUNTERS = [
  counter("file-sessions", "Sessions in the --input file, per pass."),
  counter("file-packets", "Packets of the --input file the filter selects, per pass."),
  gauge("file-duration-ms", "Recorded time from the file's first selected packet to its last."),
  counter("file-cut-packets", "Packets of the file the capture's snapshot length cut short."),
  counter("file-outgoing", "Packets of the file the capturing host sent itself (skipped)."),
  gauge("file-damaged", "1 if the file breaks off before its end."),
  counter("replay-passes", "Passes over the --input file completed."),
  counter("sessions-replayed", "Sessions of the file fed to the session table, over all passes."),
  gauge("replay-ms", "How long the replay took."),
] as const;

/** `copy`'s counters and gauges. Renaming one renames it in every output: tests/copy/counters_test.ts. */
export const COPY_COUNTERS = [...RUNTIME_COUNTERS, ...MEMORY_COUNTERS, ...REPLAY_COUNTERS] as const;

/** The name of one of `copy`'s counters. */
export type CopyCounterName = CounterName<typeof COPY_COUNTERS>;

/** Counters a `copy` stats line shows, in order (the JSON has them all). */
export const COPY_STATS_LINE: readonly CopyCounterName[] = [
  "packets-captured",
  "packets-sent",
  "packets-kernel-dropped",
  "sessions-copied",
  "sessions-active",
  "sessions-completed",
  "sessions-failed",
  "sessions-timed-out",
  "retransmissions",
  "replies-received",
];

/** Counters a `copy` stats line gives a per-second rate. */
export const COPY_RATES: readonly CopyCounterName[] = [
  "packets-captured",
  "packets-sent",
  "sessions-copied",
  "replies-received",
];

/** What the stats line adds when some target is `udp:`. */
export const COPY_UDP_STATS_LINE: readonly CopyCounterName[] = ["datagrams-captured", "datagrams-copied"];

/** What the stats line gives a rate when some target is `udp:`. */
export const COPY_UDP_RATES: readonly CopyCounterName[] = ["datagrams-copied"];

/** Prefix of `copy`'s Prometheus metrics. */
export const COPY_METRICS_PREFIX = "tcpshadow_";
