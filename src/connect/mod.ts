/**
 * `copy --connect`: copied sessions replayed over ordinary TCP connections from this host to the
 * target, in the conversation's turns, with the target's answers read and counted; HTTP/2 (h2c)
 * connections kept within the target's concurrent-stream limit, its refusals counted. No raw socket, no
 * intercept, no route; no root for a file replay.
 *
 * @module
 */
export {
  CONNECT_TIMEOUT_MS,
  type ConnectConfig,
  type ConnectionSink,
  type ConnectPhase,
  ConnectSession,
} from "./session.ts";
export {
  beginsWithHttp2Preface,
  type GateOutput,
  HTTP2_PREFACE,
  type Http2Counts,
  Http2Gate,
  Http2Sink,
  noHttp2Counts,
} from "./http2.ts";
export { type AnswerListener, ConnectTransport } from "./transport.ts";
export { AnswerTurns, type TurnEnd, type TurnTimings } from "./turns.ts";
