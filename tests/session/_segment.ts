/** What a test's sink keeps of the engine's segments. */
import type { TcpRepr } from "../../src/wire/mod.ts";

/**
 * A copy of `tcp`, for a sink that keeps what the engine sent: the engine makes its next segment in the
 * same object (`SegmentSink`), and the payload's bytes go back to the sessions' pool once the target has
 * them.
 */
export function keptSegment(tcp: TcpRepr): TcpRepr {
  const options = tcp.options;
  return {
    ...tcp,
    payload: tcp.payload?.slice(),
    options: options && { ...options, timestamp: options.timestamp && { ...options.timestamp } },
  };
}
