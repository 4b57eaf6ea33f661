/**
 * The turns of a conversation replayed over an ordinary connection: when the client's next request may
 * go. Pure: the byte counts and the clock come in, a time comes out.
 *
 * The capture says how long each answer of the online server was: the client's ack on the packet that
 * began a request counts the server's bytes it had received by then, so the answer to the previous
 * request is the difference between the two requests' acks. The next request goes once the target has
 * said as much, or said something and then went quiet for `answerGapMs` (its answer was shorter), or
 * said nothing for `responseWaitMs`, or, but for a close, once the request was captured `maxLagMs` ago
 * (the copy must not fall further behind a busy connection: it pipelines).
 *
 * The core's request-turns policy (pacing, `--max-lag`) is what this needs of it: `begin` when a turn
 * starts, `answer` for the target's bytes, `readyAt` for the next request.
 */

/**
 * A close (FIN or RST) waits this many times `responseWaitMs` for an answer that has not begun: servers
 * drop a request they still work on when the client goes (a slow target, or a lossy way to it, would
 * lose the request), while a request that goes early costs only pacing.
 */
const CLOSE_PATIENCE = 3;

/** The timings of `AnswerTurns`. */
export interface TurnTimings {
  /** The target said something this turn and then nothing for this long: its answer is over. */
  readonly answerGapMs: number;
  /** The target said nothing for this long since the turn began: the next request goes anyway. */
  readonly responseWaitMs: number;
  /** A request captured this long ago goes without waiting (pipelined); a close always waits. */
  readonly maxLagMs: number;
}

/** Why a turn was over when the next request went. */
export type TurnEnd = "answered" | "quiet" | "no-answer" | "lag" | "session-over";

/**
 * The target's answers in the turns of one session, counted from the start of the connection, as the
 * client's acks count the online server's bytes: while requests are pipelined (`--max-lag`), the
 * answers to earlier turns arrive after later requests went, and still count where they belong.
 */
export class AnswerTurns {
  /** The current turn: 0 before the first request (a banner), then one more per request. */
  turn = 0;
  /** Turns over in which the online server had answered something. */
  turnsExpected = 0;
  /** Of those, the turns the target answered in full (as many bytes as the online server). */
  turnsAnswered = 0;
  /**
   * The target's bytes (its FIN counting one, as in the acks), set to the online server's count each
   * time a request goes in its turn: the target's answers may be longer or shorter than the online
   * server's, and what it said before a request went cannot be part of that request's answer.
   */
  #total = 0;
  /** The online server's bytes before the current turn. */
  #expectedBefore = 0;
  /** The answers owed when a request last went without waiting (lag): pipelined until they came. */
  #owedAtLag = 0;
  /** Whether a request went without waiting since the last one that waited for its turn. */
  #pipelined = false;
  #startedAt: number;
  #lastAnswerAt = -Infinity;
  /**
   * Whether the target said something since the current turn began. Not a comparison of times: a turn
   * often begins at the very moment the bytes that completed the previous answer came (same clock
   * reading), and those bytes are not this turn's.
   */
  #spoke = false;
  /**
   * Set by whoever reads the target's bytes (comparing HTTP): what it said this turn stops inside a
   * message. A pause is then a slow target, not an answer shorter than the online server's, and as many
   * bytes as the online server's are not the end of a longer answer: the turn goes on until the message
   * is whole or the target is silent for the response wait.
   */
  unfinished = false;
  /** When a close that waited for the target to have everything written found it had (`delivered`). */
  #deliveredAt = -Infinity;

  constructor(readonly timings: TurnTimings, now: number) {
    this.#startedAt = now;
  }

  /** The connection opened at `now`: turn 0 (a banner the target may send first) begins with it. */
  opened(now: number): void {
    this.#startedAt = now;
  }

  /** The target sent `length` bytes at `now`. */
  answer(length: number, now: number): void {
    this.#total += length;
    this.#lastAnswerAt = now;
    this.#spoke = true;
  }

  /**
   * When the next request may go (a time already past: now). `expected`: the online server's bytes
   * from the start until the client sent that request (the turn's and all before); `capturedAt`: when
   * the request was captured; `close`: a FIN or RST, which never pipelines.
   */
  readyAt(expected: number, capturedAt: number, close: boolean): number {
    if (close) return this.#closeReadyAt(expected);
    if (this.#answered(expected) && !this.unfinished) return -Infinity;
    const quiet = this.#spoke
      ? this.#lastAnswerAt + this.#gapMs()
      : this.#startedAt + this.timings.responseWaitMs;
    return Math.min(capturedAt + this.timings.maxLagMs, quiet);
  }

  /**
   * A close that was due found the target lacking bytes written (still resent), and at `now` it had them:
   * the close now waits the answer gap, as the target may only now be reading its request.
   */
  delivered(now: number): void {
    this.#deliveredAt = now;
  }

  #closeReadyAt(expected: number): number {
    // After pipelined requests the count may be reached early (answers longer than the online server's
    // add up), and servers drop requests they still work on when the client goes: a close waits for a pause.
    const readyAt = this.#pipelined
      ? Math.max(this.#lastAnswerAt, this.#startedAt) +
        (this.#answered(expected) ? this.timings.answerGapMs : this.timings.responseWaitMs)
      : this.#answered(expected) && !this.unfinished
      ? -Infinity
      : this.#spoke
      ? this.#lastAnswerAt + this.#gapMs()
      : this.#startedAt + this.timings.responseWaitMs * CLOSE_PATIENCE;
    return Math.max(readyAt, this.#deliveredAt + this.timings.answerGapMs);
  }

  /**
   * How long a pause ends a short answer. While requests are pipelined, what the target says may be an
   * earlier turn's answer and a pause may be it working on the next, and an answer known `unfinished` is
   * a slow target's: only a long silence ends the turn.
   */
  #gapMs(): number {
    return this.#answered(this.#owedAtLag) && !this.unfinished
      ? this.timings.answerGapMs
      : this.timings.responseWaitMs;
  }

  /** Why the turn is over at `now`, for the request with `expected` that `readyAt` let go. */
  endOf(expected: number, now: number): TurnEnd {
    if (this.#answered(expected) && !this.unfinished) return "answered";
    if (this.#spoke && now >= this.#lastAnswerAt + this.#gapMs()) {
      return "quiet";
    }
    if (now >= this.#startedAt + this.timings.responseWaitMs) return "no-answer";
    return "lag";
  }

  /**
   * The turn is over (`end`) and the next one begins at `now`, its request having `expected`. Returns
   * whether the online server had said something in the turn that ended.
   */
  begin(expected: number, end: TurnEnd, now: number): boolean {
    const counted = expected > this.#expectedBefore;
    if (counted) {
      this.turnsExpected++;
      if (end === "answered") this.turnsAnswered++;
    }
    // A request that goes without waiting (lag) leaves answers owed, which count as they come.
    this.#pipelined = end === "lag";
    if (end === "lag") this.#owedAtLag = Math.max(this.#owedAtLag, expected);
    else this.#total = expected;
    this.#expectedBefore = Math.max(this.#expectedBefore, expected);
    this.turn++;
    this.#startedAt = now;
    this.#spoke = false;
    this.unfinished = false;
    return counted;
  }

  #answered(expected: number): boolean {
    return this.#total >= expected;
  }
}
