/**
 * copy's counter list pinned: renaming a counter renames it in the summary, the stats lines and JSON
 * and the Prometheus metrics at once, so it must be a visible change here (and in CHANGELOG.md).
 */
import assert from "node:assert/strict";
import {
  COPY_COUNTERS,
  COPY_METRICS_PREFIX,
  COPY_RATES,
  COPY_STATS_LINE,
  COPY_UDP_RATES,
  COPY_UDP_STATS_LINE,
} from "../../src/copy/counters.ts";
import { metricName } from "../../src/ops/mod.ts";
import { SESSION_OUTCOMES, SessionTable } from "../../src/session/mod.ts";
import { port80Plan } from "../session/_plan.ts";

Deno.test("copy's counters, their kinds and their Prometheus names", () => {
  assert.deepEqual(
    COPY_COUNTERS.map((spec) => `${spec.kind} ${spec.name} ${metricName(COPY_METRICS_PREFIX, spec)}`),
    [
      "counter sessions-copied tcpshadow_sessions_copied_total",
      "gauge sessions-active tcpshadow_sessions_active",
      "gauge sessions-lingering tcpshadow_sessions_lingering",
      "counter sessions-completed tcpshadow_sessions_completed_total",
      "counter sessions-reset-by-client tcpshadow_sessions_reset_by_client_total",
      "counter sessions-failed tcpshadow_sessions_failed_total",
      "counter sessions-refused tcpshadow_sessions_refused_total",
      "counter sessions-no-answer tcpshadow_sessions_no_answer_total",
      "counter sessions-reset-by-target tcpshadow_sessions_reset_by_target_total",
      "counter sessions-closed-by-target tcpshadow_sessions_closed_by_target_total",
      "counter sessions-buffer-full tcpshadow_sessions_buffer_full_total",
      "counter sessions-too-fragmented tcpshadow_sessions_too_fragmented_total",
      "counter sessions-capture-cut tcpshadow_sessions_capture_cut_total",
      "counter sessions-timed-out tcpshadow_sessions_timed_out_total",
      "counter sessions-abandoned tcpshadow_sessions_abandoned_total",
      "counter sessions-half-open tcpshadow_sessions_half_open_total",
      "counter sessions-skipped-by-rate tcpshadow_sessions_skipped_by_rate_total",
      "counter sessions-refused-at-cap tcpshadow_sessions_refused_at_cap_total",
      "counter sessions-refused-while-paused tcpshadow_sessions_refused_while_paused_total",
      "counter sessions-half-open-evicted tcpshadow_sessions_half_open_evicted_total",
      "counter sessions-without-address tcpshadow_sessions_without_address_total",
      "counter sessions-family-unreachable tcpshadow_sessions_family_unreachable_total",
      "counter sessions-without-ipv6-intercept tcpshadow_sessions_without_ipv6_intercept_total",
      "counter packets-captured tcpshadow_packets_captured_total",
      "counter packets-malformed tcpshadow_packets_malformed_total",
      "counter replies-malformed tcpshadow_replies_malformed_total",
      "counter packets-kernel-dropped tcpshadow_packets_kernel_dropped_total",
      "counter retransmissions tcpshadow_retransmissions_total",
      "counter packets-sent tcpshadow_packets_sent_total",
      "counter packets-send-dropped tcpshadow_packets_send_dropped_total",
      "counter replies-received tcpshadow_replies_received_total",
      "counter replies-unmatched tcpshadow_replies_unmatched_total",
      "counter registrations-lost tcpshadow_registrations_lost_total",
      "gauge connections-open tcpshadow_connections_open",
      "counter answer-bytes tcpshadow_answer_bytes_total",
      "counter turns-answered tcpshadow_turns_answered_total",
      "counter turns-short tcpshadow_turns_short_total",
      "counter turns-lagged tcpshadow_turns_lagged_total",
      "counter bind-failures tcpshadow_bind_failures_total",
      "counter h2-sessions tcpshadow_h2_sessions_total",
      "counter h2-streams-opened tcpshadow_h2_streams_opened_total",
      "counter h2-streams-held tcpshadow_h2_streams_held_total",
      "counter h2-streams-refused tcpshadow_h2_streams_refused_total",
      "counter h2-streams-reset tcpshadow_h2_streams_reset_total",
      "counter h2-streams-unsent tcpshadow_h2_streams_unsent_total",
      "counter turns-compared tcpshadow_turns_compared_total",
      "counter turns-same tcpshadow_turns_same_total",
      "counter turns-different tcpshadow_turns_different_total",
      "counter turns-noise tcpshadow_turns_noise_total",
      "counter turns-no-answer tcpshadow_turns_no_answer_total",
      "counter turns-extra-answer tcpshadow_turns_extra_answer_total",
      "counter turns-uncompared tcpshadow_turns_uncompared_total",
      "gauge intercept-connected tcpshadow_intercept_connected",
      "counter lines-dropped tcpshadow_lines_dropped_total",
      "counter datagrams-captured tcpshadow_datagrams_captured_total",
      "counter datagrams-copied tcpshadow_datagrams_copied_total",
      "counter datagrams-skipped-by-rate tcpshadow_datagrams_skipped_by_rate_total",
      "counter datagrams-family-unreachable tcpshadow_datagrams_family_unreachable_total",
      "gauge resident-memory-bytes tcpshadow_resident_memory_bytes",
      "gauge heap-bytes tcpshadow_heap_bytes",
      "gauge heap-used-bytes tcpshadow_heap_used_bytes",
      "gauge external-bytes tcpshadow_external_bytes",
      "gauge memory-paused tcpshadow_memory_paused",
      "counter memory-pauses tcpshadow_memory_pauses_total",
      "counter memory-collections tcpshadow_memory_collections_total",
      "counter file-sessions tcpshadow_file_sessions_total",
      "counter file-packets tcpshadow_file_packets_total",
      "gauge file-duration-ms tcpshadow_file_duration_ms",
      "counter file-cut-packets tcpshadow_file_cut_packets_total",
      "counter file-outgoing tcpshadow_file_outgoing_total",
      "gauge file-damaged tcpshadow_file_damaged",
      "counter replay-passes tcpshadow_replay_passes_total",
      "counter sessions-replayed tcpshadow_sessions_replayed_total",
      "gauge replay-ms tcpshadow_replay_ms",
    ],
  );
});

Deno.test("every counter name is lowercase words joined by dashes, each once, with help text", () => {
  const names = COPY_COUNTERS.map((spec) => spec.name);
  assert.equal(new Set(names).size, names.length);
  for (const spec of COPY_COUNTERS) {
    assert.match(spec.name, /^[a-z0-9]+(-[a-z0-9]+)*$/);
    assert.match(spec.help, /^[A-Z0-9-].*\.$/, spec.name);
  }
  const lines = [...COPY_STATS_LINE, ...COPY_RATES, ...COPY_UDP_STATS_LINE, ...COPY_UDP_RATES];
  for (const name of lines) assert.ok(names.includes(name), name);
});

Deno.test("the session table's counters are the list's names in camelCase, each outcome sessions-<outcome>", () => {
  const table = new SessionTable(port80Plan(0xc6120002), {
    segment() {},
    clientOpened() {},
    clientClosed() {},
  });
  const names: string[] = COPY_COUNTERS.map((spec) => spec.name);
  const { outcomes, ...counters } = table.counters;
  for (const field of Object.keys(counters)) {
    const kebab = field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
    assert.ok(names.includes(kebab), `${field} is ${kebab} in the list`);
  }
  for (const outcome of Object.keys(outcomes)) assert.ok(names.includes(`sessions-${outcome}`), outcome);
  for (const outcome of SESSION_OUTCOMES) assert.ok(names.includes(`sessions-${outcome}`), outcome);
});
