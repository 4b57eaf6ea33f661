/**
 * Sequence numbers: the wire has 32-bit values that wrap; the engine counts in plain offsets from the
 * initial sequence number (the SYN is offset 0, the first data byte offset 1), which never wrap in
 * practice and compare with `<`.
 *
 * A wire value the engine keeps or passes on is its 32 bits as a signed number (`| 0`): V8's small
 * integers are signed 32-bit, so an unsigned value above 2**31 is a heap number, made anew each time
 * it crosses a call or is stored, half of all sequence numbers and timestamps. The segments a session
 * emits carry them so too (`TcpRepr` takes either; `>>> 0` reads the unsigned one).
 */

/** The 32-bit wire value of `offset` in a space that starts at `isn`, as a signed number. */
export function wireSeq(isn: number, offset: number): number {
  return (isn + offset) | 0;
}

/**
 * The offset of wire value `seq` in a space that starts at `isn`, taken as the one nearest to `near`
 * (an offset known to be close, such as the next expected one), so streams longer than 4 GiB still work.
 */
export function seqOffset(isn: number, seq: number, near: number): number {
  const delta = (seq - wireSeq(isn, near)) << 0; // signed 32-bit distance from `near`
  return near + delta;
}

/** Whether wire value `a` comes after `b` (RFC 1982 serial arithmetic). */
export function seqAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
