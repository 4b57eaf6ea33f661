/**
 * Every counter `intercept` reports, in one list: the stats lines and JSON and the Prometheus metrics
 * (`tcpshadow_intercept_` + the name in snake_case) take their names from it.
 */
import { counter, type CounterName, gauge } from "../ops/mod.ts";

/** `intercept`'s counters and gauges. Renaming one renames it in every output: tests/intercept/counters_test.ts. */
export const INTERCEPT_COUNTERS = [
  counter("replies-captured", "Packets captured by the reply filter."),
  counter("replies-forwarded", "Replies queued for the copy that registered their client."),
  counter("replies-held", "Replies that had to wait for their registration."),
  counter("replies-released", "Held replies forwarded once registered."),
  counter("replies-dropped", "Replies not forwarded: the sum of the three below."),
  counter("replies-expired", "Replies dropped: their client's registration never came."),
  counter("replies-hold-full", "Replies dropped: too many were waiting for their registration."),
  counter("replies-copy-too-slow", "Replies dropped: their copy connection was too far behind."),
  counter("replies-kernel-dropped", "Replies the kernel dropped before the captures read them."),
  counter("packets-not-tcp", "Captured packets that are no TCP reply over IPv4 or IPv6."),
  counter("packets-malformed", "Captured packets too broken to read."),
  gauge("copy-connections", "Copy connections now."),
  counter("copy-connections-accepted", "Copy connections accepted."),
  counter("copy-connections-garbage", "Copy connections closed for sending garbage."),
  counter("copy-connections-not-allowed", "Copy connections from hosts outside --allow, closed at accept."),
  counter("copy-connections-auth-failed", "Copy connections that did not prove the shared secret."),
  counter(
    "copy-connections-no-hello",
    "Copy connections closed for no hello (and auth) within --hello-timeout.",
  ),
  counter("copy-connections-over-cap", "Copy connections closed at accept: --max-connections reached."),
  counter("copy-connections-registration-cap", "Copy connections closed for passing a registration cap."),
  counter(
    "copy-connections-accept-errors",
    "Accepts that failed (out of file descriptors, ...) and were retried.",
  ),
  gauge("clients-registered", "Client addresses and ports registered now."),
  counter("clients-takeovers-refused", "Registrations of a client another copy connection holds, refused."),
  counter(
    "clients-aged-out",
    "Client registrations forgotten after going unused for --registration-timeout.",
  ),
  gauge("replies-waiting", "Replies waiting for their registration now."),
  counter("lines-dropped", "Log and stats lines dropped: their file took no writes."),
] as const;

/** Each copy connection's, labelled `copy="host:port"` in the metrics. */
export const PEER_COUNTERS = [
  counter("replies-forwarded", "Replies queued for one copy connection."),
  counter("replies-dropped", "Replies one copy connection was too slow for."),
] as const;

/** The name of one of `intercept`'s counters. */
export type InterceptCounterName = CounterName<typeof INTERCEPT_COUNTERS>;

/** Counters an `intercept` stats line shows, in order (the JSON has them all). */
export const INTERCEPT_STATS_LINE: readonly InterceptCounterName[] = [
  "replies-captured",
  "replies-forwarded",
  "replies-held",
  "replies-dropped",
  "replies-kernel-dropped",
  "copy-connections",
  "clients-registered",
];

/** Counters an `intercept` stats line gives a per-second rate. */
export const INTERCEPT_RATES: readonly InterceptCounterName[] = ["replies-captured", "replies-forwarded"];

/** Prefix of `intercept`'s Prometheus metrics; each copy connection's add `copy_`. */
export const INTERCEPT_METRICS_PREFIX = "tcpshadow_intercept_";
