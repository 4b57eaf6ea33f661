/** What a test's sink keeps of the engine's segments. */
import type { TcpRepr } from "../../src/wire/mod.ts";

/**
 * A copy of `tcp`, for a sink that keeps what the engine sent: the engine makes its next segment in the
 * same object (`SegmentSink`), and the payload's bytes go back to the sessions' pool once the target has
 * them. Its 32-bit numbers are read unsigned, as from the packet on the wire: the engine gives them signed
 * (`src/session/seq.ts`).
 */
export function keptSegment(tcp: TcpRepr): TcpRepr {
  const options = tcp.options;
  const timestamp = options?.timestamp;
  return {
    ...tcp,
    seq: tcp.seq >>> 0,
    ack: tcp.ack >>> 0,
    payload: tcp.payload?.slice(),
    options: options && {
      ...options,
      timestamp: timestamp && { value: timestamp.value >>> 0, echo: timestamp.echo >>> 0 },
    },
  };
}
