/** What a test's sink keeps of the engine's segments. */
import type { TcpRepr } from "../../src/wire/mod.ts";

/**
 * A copy of `tcp`, for a sink that keeps what the engine sent: the engine makes its next segment in the
 * same object (`SegmentSink`). The payload stays a view: the stream's bytes never change once captured.
 */
export function keptSegment(tcp: TcpRepr): TcpRepr {
  const options = tcp.options;
  return {
    ...tcp,
    options: options && { ...options, timestamp: options.timestamp && { ...options.timestamp } },
  };
}
