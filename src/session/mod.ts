/**
 * The TCP session engine: pure state machines that replay a client's side of each captured
 * conversation against the target. No I/O and no timers of their own: the caller passes packets
 * and the clock in and sends what comes out. No command's wire protocol either: the table says
 * which client addresses and ports its copies hold as events, and `copy` tells intercept.
 *
 * - `SessionTable` (table.ts): every copy of one `copy` run: sampling, multiplying, the client
 *   address and port each copy takes, the timers, the counters. It finds sessions by address and port
 *   in maps over typed arrays (endpoint_map.ts), keeps the half-open ones in order (half_open.ts), and
 *   what lingers of copies over as slots of typed arrays (lingering.ts).
 * - `Session` (session.ts): one copy's TCP toward the target, its `phase` explicit (`SessionPhase`).
 *   It leans on small parts with state of their own: the client's byte stream cut into requests
 *   (stream.ts), the request `Turns` (turns.ts), congestion control (congestion.ts, NewReno) and
 *   the retransmission timeout (rto.ts).
 *
 * @example
 * ```ts
 * import { SessionTable } from "./mod.ts";
 *
 * const table = new SessionTable(plan, {
 *   segment: send, // a segment for the target
 *   clientOpened: register, // a copy holds a client address and port: tell intercept
 *   clientClosed: unregister,
 * });
 * table.onCapture(ip.src, ip.dst, tcp, performance.now()); // a client's packet, captured
 * table.onReply(reply.ip.dst, reply.tcp, performance.now()); // the target's answer, via intercept
 * table.tick(performance.now()); // at table.nextDeadline
 * ```
 *
 * @module
 */
export { ClientStream, StreamPool } from "./stream.ts";
export { seqOffset } from "./seq.ts";
export {
  addPayload,
  defaultSessionConfig,
  type SegmentIn,
  type SegmentSink,
  Session,
  SESSION_OUTCOMES,
  type SessionConfig,
  type SessionEndpoints,
  sessionIsn,
  type SessionOutcome,
  type SessionPhase,
  startsSession,
} from "./session.ts";
export {
  type AddressRange,
  type CopiedSession,
  type CopyPlan,
  copyPort,
  rangeAddress,
  sampled,
  SessionTable,
  type TableCounters,
  type TableSink,
  type TargetMapping,
} from "./table.ts";
export { type RequestQueue, Turns, type TurnsConfig } from "./turns.ts";
