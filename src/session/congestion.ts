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
  /** The handshake is done: segments carry up to `mss` bytes from now on. */
  onEstablished(mss: number): void;
  /**
   * Data was newly acknowledged, up to offset `acked` (`newlyAcked` bytes of it). Returns whether the
   * segment at `acked` is lost too and is to be sent again now (a partial ack during recovery).
   */
  onAck(acked: number, newlyAcked: number): boolean;
  /**
   * A duplicate ack came while data was unacknowledged from `unacked` up to `sent` (the furthest sent).
   * Returns whether the segment at `unacked` is to be sent again now (fast retransmit).
   */
  onDuplicateAck(unacked: number, sent: number): boolean;
  /** The retransmission timer fired while data was unacknowledged from `unacked` up to `sent`. */
  onTimeout(unacked: number, sent: number): void;
}

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
  #mss = 0;
  #cwnd = 0;
  #ssthresh = Number.MAX_SAFE_INTEGER;
  /** The furthest offset sent when the last recovery began: acks below it are partial. */
  #recover = 0;
  #duplicateAcks = 0;
  /** After a timeout, until the next ack: where the go-back began, and the window state before it. */
  #timedOutAt: { unacked: number; before: [number, number, number] } | undefined;
  /** Recovering from a timeout (until `recover` is acknowledged): partial acks ask for nothing. */
  #afterTimeout = false;

  get window(): number {
    return this.#cwnd;
  }

  onEstablished(mss: number): void {
    this.#mss = mss;
    this.#cwnd = INITIAL_WINDOW_SEGMENTS * mss;
  }

  onAck(acked: number, newlyAcked: number): boolean {
    this.#duplicateAcks = 0;
    if (this.#timedOutAt !== undefined) {
      // The go-back after a timeout resent one segment; an ack beyond it acknowledges the original
      // transmission, which got through: the timeout was spurious (late acks, not a loss), and the
      // window and threshold it cut are put back (RFC 4015's response).
      const spurious = acked > this.#timedOutAt.unacked + this.#mss;
      if (spurious) [this.#cwnd, this.#ssthresh, this.#recover] = this.#timedOutAt.before;
      this.#timedOutAt = undefined;
      if (spurious) {
        this.#afterTimeout = false;
        return false;
      }
    }
    // After a timeout the go-back resends in order, in slow start: only fast recovery's partial acks
    // ask for the next hole again.
    if (acked < this.#recover && !this.#afterTimeout) return true;
    if (acked >= this.#recover) this.#afterTimeout = false;
    // Byte counting (RFC 3465, as Linux): a stretch ack (GRO on the target acks tens of segments at
    // once) opens the window by all it acknowledges, not by one segment.
    if (this.#cwnd < this.#ssthresh) this.#cwnd = Math.min(this.#cwnd + newlyAcked, this.#ssthresh);
    else this.#cwnd += Math.max(1, Math.floor(this.#mss * newlyAcked / this.#cwnd));
    return false;
  }

  onDuplicateAck(unacked: number, sent: number): boolean {
    // One fast retransmit per recovery: duplicates of a hole found earlier wait for partial acks.
    if (++this.#duplicateAcks !== DUPLICATE_ACK_THRESHOLD || unacked < this.#recover) return false;
    this.#halve(unacked, sent);
    this.#cwnd = this.#ssthresh;
    return true;
  }

  onTimeout(unacked: number, sent: number): void {
    // Consecutive timeouts keep what was there before the first: that is what a spurious one restores.
    const before = this.#timedOutAt?.before ?? [this.#cwnd, this.#ssthresh, this.#recover];
    this.#timedOutAt = { unacked, before };
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
