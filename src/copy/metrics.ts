/** `copy`'s counters as stats lines and Prometheus metrics. */
import { metricFamilies, type MetricSample, type MetricTable, tableSamples } from "../cli/metrics.ts";
import type { Counters } from "../cli/stats.ts";
import { SESSION_OUTCOMES } from "../session/mod.ts";

/** Counters a `copy` stats line shows, in order. */
export const COPY_STATS_LINE_KEYS = [
  "captured",
  "sent",
  "kernel-dropped",
  "sessions",
  "active",
  "completed",
  "failed",
  "timed-out",
  "retransmissions",
  "replies",
] as const;

/** Counters a `copy` stats line gives a per-second rate. */
export const COPY_RATE_KEYS = ["captured", "sent", "sessions", "replies"] as const;

const { counter, gauge } = metricFamilies("tcpshadow_");

const DROPPED = counter("packets_dropped_total", "Packets lost on the way, by where.");
const IGNORED = counter("packets_ignored_total", "Captured packets that cannot be copied, by why.");
const SESSIONS_ENDED = counter("sessions_ended_total", "Copied sessions ended, by outcome.");
const SESSIONS_REFUSED = counter("sessions_refused_total", "New client sessions not copied, by reason.");

/** Which counter of `CopyRuntime.stats()` feeds which metric. */
const METRICS: MetricTable = [
  ["captured", counter("packets_captured_total", "Packets captured on the copied ports.")],
  ["sent", counter("packets_sent_total", "Packets sent to the target.")],
  ["kernel-dropped", DROPPED, { where: "capture" }],
  ["send-dropped", DROPPED, { where: "send" }],
  ["malformed", IGNORED, { reason: "malformed" }],
  ["sessions", counter("sessions_copied_total", "Copied sessions opened toward the target.")],
  ["active", gauge("sessions_active", "Copied sessions open now.")],
  ["lingering", gauge("sessions_lingering", "Copied sessions over, holding their client port for 2 s.")],
  ...SESSION_OUTCOMES.map((outcome) => [outcome, SESSIONS_ENDED, { outcome }] as const),
  ["skipped-by-rate", SESSIONS_REFUSED, { reason: "rate" }],
  ["refused-at-cap", SESSIONS_REFUSED, { reason: "max-sessions" }],
  ["refused-by-memory", SESSIONS_REFUSED, { reason: "max-memory" }],
  ["no-free-address", SESSIONS_REFUSED, { reason: "no-free-address" }],
  ["family-unreachable", SESSIONS_REFUSED, { reason: "family-unreachable" }],
  ["no-ipv6-intercept", SESSIONS_REFUSED, { reason: "no-ipv6-intercept" }],
  ["retransmissions", counter("retransmissions_total", "Segments sent to the target again after a loss.")],
  ["replies", counter("replies_total", "Target reply headers received from intercept.")],
  ["replies-unmatched", counter("replies_unmatched_total", "Reply headers for no session of ours.")],
  ["registrations-lost", counter("registrations_lost_total", "Registrations not sent: intercept was down.")],
  ["rss", gauge("resident_memory_bytes", "Resident memory of the copy process.")],
  ["memory-paused", gauge("memory_paused", "1 while --max-memory keeps new sessions out.")],
  ["memory-pauses", counter("memory_pauses_total", "Times --max-memory started keeping new sessions out.")],
  [
    "memory-collections",
    counter("memory_collections_total", "Full garbage collections --max-memory asked for before refusing."),
  ],
];

/** `copy`'s counters (`CopyRuntime.stats()` and the monitor's) as metric samples. */
export function copyMetrics(stats: Counters): MetricSample[] {
  return tableSamples(METRICS, stats);
}
