/**
 * One copied session over an ordinary TCP connection (`copy --connect`): the client's byte stream as
 * reassembled from the capture (`ClientStream`: retransmissions, overlaps and reordering resolved), written
 * to a connection of the copy host's own, request by request in the conversation's turns (`AnswerTurns`).
 * Pure: captured packets, the connection's events and the clock come in; what to do with the connection
 * goes out through a `ConnectionSink`. The kernel does the TCP; the session never sees a segment of the
 * target's, only how many bytes it answered.
 */
import {
  addPayload,
  ClientStream,
  type SegmentIn,
  seqOffset,
  sessionIsn,
  StreamPool,
} from "../session/mod.ts";
import type { CopiedSession, SessionConfig, SessionEndpoints, SessionOutcome } from "../session/mod.ts";
import { TcpFlag } from "../wire/mod.ts";
import { AnswerTurns, type TurnEnd } from "./turns.ts";

/** What a session asks of its connection; the transport does it. */
export interface ConnectionSink {
  /** Opens a connection to `session.endpoints`' target; its news comes back through the session's `on*`. */
  connect(session: ConnectSession): void;
  /**
   * Writes `bytes` after what was written before. They are the sink's during the call only (the stream
   * they come from reuses its buffers): a sink that keeps them copies them.
   */
  write(session: ConnectSession, bytes: Uint8Array): void;
  /** Shuts the connection's writing side (FIN): the client closed. */
  shutdown(session: ConnectSession): void;
  /**
   * Bytes written that the target has not acknowledged yet (still in the copy's or the kernel's send
   * queue): a close waits until there are none.
   */
  unacknowledged(session: ConnectSession): number;
  /** Closes abortively (RST, linger 0): the client reset, or the copy gives up. */
  reset(session: ConnectSession): void;
  /** The session is over: closes the connection if still open. */
  close(session: ConnectSession): void;
  /** Turn `turn` of `session` is over (the next request goes, or the client closes), and why. */
  turnOver?(session: ConnectSession, turn: number, end: TurnEnd): void;
  /**
   * Turn `turn` of `session` is over, whether or not the online server said something in it; `expected`
   * is the online server's bytes (its FIN counting one) from the start to the end of that turn.
   */
  turnEnded?(session: ConnectSession, turn: number, expected: number): void;
}

/** The session's timings: the engine's, with the gap that ends a shorter answer. */
export interface ConnectConfig extends SessionConfig {
  readonly answerGapMs: number;
}

/** How long a connection may take to open before the target counts as not answering. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** The errno of a connection the target refused (a RST to its SYN). */
export const ECONNREFUSED = 111;
/** How often a close that waits for the target to acknowledge what was written asks the connection. */
const DELIVERY_CHECK_MS = 10;
/** How long a session whose target closed, with everything delivered, waits for the client's FIN. */
const HALF_CLOSED_TIMEOUT_MS = 10_000;
/** Idle bytes the sessions' shared `StreamPool` keeps for the next requests: a burst's worth, as the packet engine's. */
const STREAM_POOL_IDLE_BYTES = 2 << 20;
/**
 * Every session's stream takes its pieces from this pool and gives them back once written: the sink is
 * done with what `write` handed it when the call returns (`ConnectionSink.write`).
 */
const streamPool = new StreamPool(STREAM_POOL_IDLE_BYTES);

/** Where the session is. */
export type ConnectPhase = "connecting" | "open" | "over";

/** A copied session carried by a connection of its own. */
export class ConnectSession implements CopiedSession {
  phase: ConnectPhase = "connecting";
  outcome: SessionOutcome | undefined;
  readonly retransmissions = 0;
  /** Bytes the target sent. */
  answerBytes = 0;
  /** When the connection opened and when the target's first byte came, if they did. */
  connectedAt: number | undefined;
  firstByteAt: number | undefined;
  /** Why the connection could not be opened (errno), for the session's debug line; 0 if it was not refused. */
  connectErrno = 0;

  readonly #stream: ClientStream;
  readonly #clientIsn: number;
  readonly #turns: AnswerTurns;
  readonly #openedAt: number;
  /** Client offset up to which bytes were handed to the connection. */
  #written = 1;
  #shutdown = false;
  #targetClosed = false;
  #lastActivity: number;
  /** The client's first ack: where the online server's bytes start (its SYN-ACK's, or taken over). */
  #ackBase: number | undefined;
  #clientAcked = false;
  /** The client's latest ack. */
  #lastAck: number | undefined;
  #resetOffset = Infinity;
  #resetAt = 0;
  #resetAck: number | undefined;
  /** While a close waits for the target to acknowledge what was written: when to ask the connection again. */
  #deliveryCheckAt = -Infinity;

  constructor(
    readonly endpoints: SessionEndpoints,
    readonly config: ConnectConfig,
    readonly sink: ConnectionSink,
    first: SegmentIn,
    takeOver: boolean,
    now: number,
  ) {
    this.#stream = new ClientStream(config.maxBuffered, undefined, streamPool);
    this.#clientIsn = sessionIsn(first);
    this.#turns = new AnswerTurns(config, now);
    this.#openedAt = now;
    this.#lastActivity = now;
    sink.connect(this);
    if (takeOver) this.onClient(first, now);
  }

  /** Whether the table may forget the session: nothing of it lingers, the kernel keeps TIME-WAIT. */
  get finished(): boolean {
    return this.outcome !== undefined;
  }

  /** Client bytes held, not yet written. */
  get buffered(): number {
    return this.#stream.buffered;
  }

  /**
   * The online server's sequence number of its first byte as the client's first ack gave it, once seen:
   * where `expected` counts from.
   */
  get ackBase(): number | undefined {
    return this.#ackBase;
  }

  /** The current turn (0: before the first request), to which the target's bytes now count. */
  get turn(): number {
    return this.#turns.turn;
  }

  /** Turns over in which the online server had answered something. */
  get turnsExpected(): number {
    return this.#turns.turnsExpected;
  }

  /** Of those, the turns the target answered with as many bytes as the online server. */
  get turnsAnswered(): number {
    return this.#turns.turnsAnswered;
  }

  get nextDeadline(): number {
    if (this.outcome !== undefined) return Infinity;
    if (this.phase === "connecting") return this.#openedAt + CONNECT_TIMEOUT_MS;
    return Math.min(this.#lastActivity + this.#idleLimitMs(), this.#requestReadyAt(), this.#resetReadyAt());
  }

  /** A packet the client sent the online server. */
  onClient(segment: SegmentIn, now: number): void {
    if (this.outcome !== undefined) return;
    this.#lastActivity = now;
    const flags = segment.flags;
    const start = seqOffset(this.#clientIsn, segment.seq, this.#stream.end);
    // Signed, as the packet engine keeps acks (seq.ts): an unsigned one above 2**31 is a heap number.
    const ack = flags & TcpFlag.ACK ? segment.ack | 0 : undefined;
    if (flags & TcpFlag.RST) {
      // As in the packet engine: before its handshake ACK only a reset right after the SYN is the client's.
      if (!this.#clientAcked && start !== this.#stream.end) return;
      if (this.#resetOffset === Infinity) {
        const plausible = start >= this.#stream.end && start <= this.#stream.end + this.config.maxBuffered;
        this.#resetOffset = plausible ? start : this.#stream.end;
        this.#resetAt = now;
        this.#resetAck = ack;
      }
      this.#advance(now);
      return;
    }
    if (start >= this.#resetOffset || flags & TcpFlag.SYN) return;
    if (ack !== undefined) {
      this.#lastAck = ack;
      this.#clientAcked = true;
      this.#ackBase ??= ack;
    }
    const length = segment.payloadLength;
    if (length > 0) {
      const refused = addPayload(this.#stream, segment, start, ack, now);
      if (refused !== undefined) return this.#end(refused, now);
    } else if (ack !== undefined && !(flags & TcpFlag.FIN)) {
      this.#stream.noteHandshakeAck(ack);
    }
    if (flags & TcpFlag.FIN) this.#stream.addFin(start + length, ack, now);
    this.#advance(now);
  }

  /** The packet transport's reply headers: an ordinary connection has none. */
  onTarget(): void {}

  onTick(now: number): void {
    if (this.outcome !== undefined) return;
    if (this.phase === "connecting") {
      if (now >= this.#openedAt + CONNECT_TIMEOUT_MS) this.#end("no-answer", now);
      return;
    }
    if (now >= this.#lastActivity + this.#idleLimitMs()) return this.#end("timed-out", now);
    this.#advance(now);
  }

  /** Shutdown, or the client's port came back for a new connection: the connection is reset. */
  abandon(now: number): void {
    if (this.outcome === undefined) this.#end("abandoned", now);
  }

  /** The connection is open. */
  onConnected(now: number): void {
    if (this.outcome !== undefined) return;
    this.phase = "open";
    this.connectedAt = now;
    this.#lastActivity = now;
    this.#turns.opened(now); // nothing of the turns happened before: the client's bytes waited for this
    this.#advance(now);
  }

  /** The connection could not be opened, `errno` says why: refused by a RST, else no answer or no route. */
  onConnectFailed(errno: number, now: number): void {
    if (this.outcome !== undefined) return;
    this.connectErrno = errno;
    this.#end(errno === ECONNREFUSED ? "refused" : "no-answer", now);
  }

  /** The target sent `length` bytes. */
  onAnswer(length: number, now: number): void {
    if (this.outcome !== undefined) return;
    this.answerBytes += length;
    this.firstByteAt ??= now;
    this.#lastActivity = now;
    this.#turns.answer(length, now);
    this.#advance(now);
  }

  /**
   * Whoever reads the target's bytes says whether what it said this turn stops inside a message (an HTTP
   * response cut short): then a pause does not end the turn, only the response wait does.
   */
  answerUnfinished(unfinished: boolean): void {
    this.#turns.unfinished = unfinished;
  }

  /** The target closed its side (FIN). */
  onTargetClosed(now: number): void {
    if (this.outcome !== undefined) return;
    this.#targetClosed = true;
    this.#lastActivity = now;
    this.#turns.answer(1, now); // its FIN takes a sequence number, as the online server's did in the acks
    this.#advance(now);
  }

  /** The connection was reset (or broke) under the session. */
  onTargetReset(now: number): void {
    if (this.outcome !== undefined) return;
    const delivered = this.#shutdown && this.#written === this.#stream.finOffset;
    this.#end(delivered ? "completed" : "reset-by-target", now);
  }

  /** Writes what may go, lets requests go in their turn, then the client's FIN or RST in theirs. */
  #advance(now: number): void {
    if (this.phase !== "open" || this.outcome !== undefined) return;
    const stream = this.#stream;
    for (;;) {
      const limit = stream.nextRequestStart ?? stream.end;
      if (this.#written < limit) {
        // A target that closed gets no more requests: the online server took them.
        if (this.#targetClosed) return this.#end("closed-by-target", now);
        this.#write(limit);
      }
      if (stream.nextRequestStart === undefined || this.#requestReadyAt() > now) break;
      if (stream.nextRequestStart === stream.finOffset && !this.#deliveredForClose(now)) break;
      const expected = this.#expected(stream.nextRequestAck);
      this.#endTurn(expected, this.#turns.endOf(expected, now), now);
      stream.takeRequest();
    }
    const fin = stream.finOffset;
    if (
      !this.#shutdown && fin !== undefined && this.#written === fin && stream.nextRequestStart === undefined
    ) {
      this.#shutdown = true;
      this.sink.shutdown(this);
    }
    if (this.#shutdown && this.#targetClosed) return this.#end("completed", now);
    if (this.#resetReadyAt() <= now && this.#deliveredForClose(now)) {
      this.#end("reset-by-client", now);
    }
  }

  /**
   * Whether a close whose turn came finds the target holding everything written. A turn can be over
   * while the request is still being resent (a lossy way): ended by a pause, or by a count the late
   * tail of an earlier answer made up. A server drops a request it has not read in full when the client
   * goes, and a reset even discards what the kernel has not sent. Then the close waits, asking the
   * connection every `DELIVERY_CHECK_MS`, and once the target has it all, the answer gap more. A target
   * that answered for real had the request, so the kernel's count is 0 then and the close goes at once;
   * one that closed wants nothing more.
   */
  #deliveredForClose(now: number): boolean {
    if (this.#targetClosed) return true;
    if (this.sink.unacknowledged(this) > 0) {
      this.#deliveryCheckAt = now + DELIVERY_CHECK_MS;
      return false;
    }
    if (this.#deliveryCheckAt === -Infinity) return true;
    this.#deliveryCheckAt = -Infinity;
    this.#turns.delivered(now);
    return false;
  }

  /** The current turn is over: told when the online server had said something in it. */
  #endTurn(expected: number, end: TurnEnd, now: number): void {
    const turn = this.#turns.turn;
    this.sink.turnEnded?.(this, turn, expected);
    if (this.#turns.begin(expected, end, now)) this.sink.turnOver?.(this, turn, end);
  }

  #write(limit: number): void {
    while (this.#written < limit) {
      // From the buffer all streams share (no view per write): the sink copies what it keeps.
      const bytes = this.#stream.readShared(this.#written, limit - this.#written);
      this.sink.write(this, bytes);
      this.#written += bytes.length;
    }
    this.#stream.release(this.#written);
  }

  /** The online server's bytes the client had received when it sent a packet with ack `ack`. */
  #expected(ack: number | undefined): number {
    if (ack === undefined || this.#ackBase === undefined) return 0;
    return Math.max(0, (ack - this.#ackBase) | 0);
  }

  /** When the next request may go; `Infinity` while none waits. */
  #requestReadyAt(): number {
    const stream = this.#stream;
    const start = stream.nextRequestStart;
    if (start === undefined) return Infinity;
    if (this.#targetClosed) return -Infinity; // the answer is over; what follows ends the session
    if (start === 1 && !stream.firstRequestWaits) return -Infinity;
    const close = start === stream.finOffset;
    const readyAt = this.#turns.readyAt(
      this.#expected(stream.nextRequestAck),
      stream.nextRequestCapturedAt,
      close,
    );
    return close ? Math.max(readyAt, this.#deliveryCheckAt) : readyAt;
  }

  /** When the client's reset may go: after what it sent before, in its turn. */
  #resetReadyAt(): number {
    if (this.#resetOffset === Infinity) return Infinity;
    if (this.#resetOffset <= 1 || this.#targetClosed) return -Infinity;
    const stream = this.#stream;
    // The client's FIN takes a sequence number: a RST after it starts just past it.
    const sent = stream.finOffset === undefined ? stream.end : stream.finOffset + 1;
    // Bytes from before the reset still missing: captured late, or lost by the capture (then wait no more).
    if (sent < this.#resetOffset) return this.#resetAt + this.config.responseWaitMs;
    if (stream.nextRequestStart !== undefined) return Infinity;
    return Math.max(
      this.#turns.readyAt(this.#expected(this.#resetAck), this.#resetAt, true),
      this.#deliveryCheckAt,
    );
  }

  /** Once the target closed and has everything, only the client's FIN is missing: wait for it less long. */
  #idleLimitMs(): number {
    const closedByTarget = this.#targetClosed && this.#written >= this.#stream.end;
    return closedByTarget
      ? Math.min(this.config.idleTimeoutMs, HALF_CLOSED_TIMEOUT_MS)
      : this.config.idleTimeoutMs;
  }

  #end(outcome: SessionOutcome, now: number): void {
    this.outcome = outcome;
    this.phase = "over";
    this.#lastActivity = now;
    if (this.connectedAt !== undefined) {
      // The last turn: the client's last ack says how much of the online server's answer it had.
      const expected = this.#expected(this.#lastAck);
      const end = this.#turns.endOf(expected, now) === "answered" ? "answered" : "session-over";
      this.#endTurn(expected, end, now);
    }
    // The connection is over on the target's side, or it never opened: closed. Else the copy gives up on it.
    const graceful = outcome === "completed" || outcome === "closed-by-target" || outcome === "refused" ||
      outcome === "reset-by-target";
    if (graceful) this.sink.close(this);
    else this.sink.reset(this);
    this.#stream.dispose(); // what it still held goes back to the pool: nothing of it is written now
  }
}
