/**
 * The TCP session engine: pure state machines that replay a client's side of each captured
 * conversation against the target. No I/O and no timers of their own: the caller passes packets
 * and the clock in and sends what comes out.
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
