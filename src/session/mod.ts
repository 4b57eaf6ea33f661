/**
 * The TCP session engine: pure state machines that replay a client's side of each captured
 * conversation against the target. No I/O and no timers of their own: the caller passes packets
 * and the clock in and sends what comes out. `SessionTable` holds every session of a `copy` run.
 *
 * @example
 * ```ts
 * import { SessionTable } from "./mod.ts";
 *
 * const table = new SessionTable(plan, { segment: send, registration: tellIntercept });
 * table.onCapture(ip.src, ip.dst, tcp, performance.now()); // a client's packet, captured
 * table.onReply(reply.ip.dst, reply.tcp, performance.now()); // the target's answer, via intercept
 * table.tick(performance.now()); // at table.nextDeadline
 * ```
 *
 * @module
 */
export {
  defaultSessionConfig,
  type SegmentIn,
  type SegmentSink,
  Session,
  SESSION_OUTCOMES,
  type SessionConfig,
  type SessionEndpoints,
  sessionIsn,
  type SessionOutcome,
  startsSession,
} from "./session.ts";
export {
  type AddressRange,
  type ClientRegistration,
  type CopyPlan,
  SessionTable,
  type TableCounters,
  type TableSink,
  type TargetMapping,
} from "./table.ts";
