/**
 * Congestion control of a copied session toward the target: how many bytes may be unacknowledged at
 * once, and when the target's acks say a segment was lost. The session asks through the narrow
 * interface smoltcp's `Controller` has, so the algorithm is one small piece of its own; `NewReno`
 * (RFC 5681 and RFC 6582, without the window inflation during recovery) is the one used.
 *
 * Offsets are the session's: client stream offsets, the SYN at 0.
 */

/** What a session asks of its congestion control. */
export interface CongestionControl {
  /** Bytes that may be unacknowledged at once (the session also keeps to the target's window). */
  readonly window: number;
  /** Forgets everything: the control of a new session, not yet established. */
  restart(): void;
  /** The handshake is done: segments carry up to `mss` bytes from now on. */
  onEstablished(mss: number): void;
  /**
   * Data was newly acknowledged, up to offset `acked` (`newlyAcked` bytes of it); `echo` is the ack's
   * timestamp echo, when the session uses timestamps. Returns `retransmit` when the segment at `acked`
   * is lost too and is to be sent again now (a partial ack during recovery), `resume` when the ack
   * shows the last timeout spurious: sending resumes where it had reached, nothing goes back.
   */
  onAck(acked: number, newlyAcked: number, echo?: number): AckVerdict;
  /**
   * A duplicate ack came while data was unacknowledged from `unacked` up to `sent` (the furthest sent).
   * Returns whether the segment at `unacked` is to be sent again now (fast retransmit).
   */
  onDuplicateAck(unacked: number, sent: number): boolean;
  /**
   * The retransmission timer fired while data was unacknowledged from `unacked` up to `sent`; `stamp`
   * is the timestamp value the retransmission carries, when the session uses timestamps.
   */
  onTimeout(unacked: number, sent: number, stamp?: number): void;
}

/** What an ack asks of the session beyond sending what the window allows. */
export type AckVerdict = "retransmit" | "resume" | undefined;

/** Segments in the first window (RFC 6928, as Linux). */
const INITIAL_WINDOW_SEGMENTS = 10;
/** Duplicate acks that mean a loss (RFC 5681). */
const DUPLICATE_ACK_THRESHOLD = 3;

/**
 * NewReno: slow start up to `ssthresh`, then about one segment more per window, both counting the
 * bytes each ack acknowledges; three duplicate acks halve the window and start a recovery that lasts
 * until everything sent before it is acknowledged, each partial ack in it sending the next hole again;
 * a timeout shrinks the window to one segment, and is undone when the first ack after it shows that
 * the original transmission got through.
 *
 * @example
 * ```ts
 * const congestion = new NewReno();
 * congestion.onEstablished(1460); // window: 14,600 bytes
 * if (congestion.onDuplicateAck(unacked, sent)) retransmitFirst();
 * ```
 */
export class NewReno implements CongestionControl {
  // Set again by `restart`; numbers from the start, so that V8 keeps them in place (see Session).
  #mss = 0;
  #cwnd = 0;
  #ssthresh = Number.MAX_SAFE_INTEGER;
  /** The furthest offset sent when the last recovery began: acks below it are partial. */
  #recover = 0;
  #duplicateAcks = 0;
  /** After a timeout, until the next ack: where the go-back began, and the window state before it. */
  #timedOutAt: { unacked: number; before: [number, number, number]; stamp?: number } | undefined;
  /** Recovering from a timeout (until `recover` is acknowledged): partial acks ask for nothing. */
  #afterTimeout = false;

  constructor() {
    this.restart();
  }

  restart(): void {
    this.#mss = 0;
    this.#cwnd = 0;
    this.#ssthresh = Number.MAX_SAFE_INTEGER;
    this.#recover = 0;
    this.#duplicateAcks = 0;
    this.#timedOutAt = undefined;
    this.#afterTimeout = false;
  }

  get window(): number {
    return this.#cwnd;
  }

  onEstablished(mss: number): void {
    this.#mss = mss;
    this.#cwnd = INITIAL_WINDOW_SEGMENTS * mss;
  }

  onAck(acked: number, newlyAcked: number, echo?: number): AckVerdict {
    this.#duplicateAcks = 0;
    const timedOut = this.#timedOutAt;
    if (timedOut !== undefined) {
      this.#timedOutAt = undefined;
      // The first ack after a timeout acknowledges the original transmission, which got through (late
      // acks through intercept, not a loss), when it echoes a timestamp older than the retransmission's
      // (Eifel, RFC 3522), or, without timestamps, acknowledges more than the one segment resent. Then
      // the window and threshold the timeout cut are put back (RFC 4015's response).
      const spurious = echo !== undefined && timedOut.stamp !== undefined
        ? ((echo - timedOut.stamp) | 0) < 0
        : acked > timedOut.unacked + this.#mss;
      if (spurious) {
        [this.#cwnd, this.#ssthresh, this.#recover] = timedOut.before;
        this.#afterTimeout = false;
        return "resume";
      }
    }
    // After a timeout the go-back resends in order, in slow start: only fast recovery's partial acks
    // ask for the next hole again.
    if (acked < this.#recover && !this.#afterTimeout) return "retransmit";
    if (acked >= this.#recover) this.#afterTimeout = false;
    // Byte counting (RFC 3465, as Linux): a stretch ack (GRO on the target acks tens of segments at
    // once) opens the window by all it acknowledges, not by one segment.
    if (this.#cwnd < this.#ssthresh) this.#cwnd = Math.min(this.#cwnd + newlyAcked, this.#ssthresh);
    else this.#cwnd += Math.max(1, Math.floor(this.#mss * newlyAcked / this.#cwnd));
    return undefined;
  }

  onDuplicateAck(unacked: number, sent: number): boolean {
    // One fast retransmit per recovery: duplicates of a hole found earlier wait for partial acks.
    if (++this.#duplicateAcks !== DUPLICATE_ACK_THRESHOLD || unacked < this.#recover) return false;
    this.#halve(unacked, sent);
    this.#cwnd = this.#ssthresh;
    return true;
  }

  onTimeout(unacked: number, sent: number, stamp?: number): void {
    // Consecutive timeouts keep what was there before the first: that is what a spurious one restores;
    // the first retransmission's stamp, the oldest, decides.
    const before = this.#timedOutAt?.before ?? [this.#cwnd, this.#ssthresh, this.#recover];
    this.#timedOutAt = { unacked, before, stamp: this.#timedOutAt?.stamp ?? stamp };
    this.#afterTimeout = true;
    this.#halve(unacked, sent);
    this.#cwnd = this.#mss;
    this.#duplicateAcks = 0;
  }

  /** A loss: half of what was in flight is the new threshold, and recovery lasts until `sent` is acked. */
  #halve(unacked: number, sent: number): void {
    this.#ssthresh = Math.max((sent - unacked) >> 1, 2 * this.#mss);
    this.#recover = sent;
  }
}
