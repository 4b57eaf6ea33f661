/**
 * The turns of a copied conversation: when the client's next request may go to the target. Online,
 * the client sent its next request once the server had answered the last one; the copy keeps those
 * turns, so the target sees the conversation as it went. Two things bend them: a target that stays
 * silent (`responseWaitMs`) and a copy that fell `maxLagMs` behind its client, which then pipelines
 * (sends the request without waiting) rather than lag further and further. A close (the client's FIN
 * or RST) always keeps its turn, and after pipelining waits for the target to pause, since servers
 * drop requests they still work on when the client goes.
 *
 * Pure and transport-free: it is told what the target has and says, and the clock; it reads the
 * requests from a `RequestQueue` (`ClientStream` is one) and releases them in their turn. Offsets
 * count the client's bytes from 1.
 */

/** The turn timings; `SessionConfig` has them. */
export interface TurnsConfig {
  /** How long the next request waits for the target's answer to the previous one before it goes anyway. */
  readonly responseWaitMs: number;
  /** How far behind the client the copy may fall: a request captured this long ago goes at once. */
  readonly maxLagMs: number;
}

/**
 * The client's requests in order, not yet released (`ClientStream` cuts its byte stream into them: a
 * request starts where the client had heard from the server before it sent more).
 */
export interface RequestQueue {
  /** Where the oldest request not yet released starts, if any. */
  readonly nextRequestStart: number | undefined;
  /** When that request was captured. */
  readonly nextRequestCapturedAt: number;
  /** Where the client's FIN is, once known: a request starting there is a close. */
  readonly finOffset: number | undefined;
  /** Whether the first request waits for the target to speak first (the server spoke first online). */
  readonly firstRequestWaits: boolean;
  /** Releases the oldest request: its bytes may go. */
  takeRequest(): void;
}

/**
 * How long a target that had pipelined requests stays silent before the client's FIN or RST goes: at
 * least this, and twice the longest silence between its answers since the pipelining began.
 */
const PIPELINED_CLOSE_PAUSE_MS = 200;

/**
 * One conversation's turns.
 *
 * @example
 * ```ts
 * const turns = new Turns({ responseWaitMs: 3000, maxLagMs: 200 });
 * turns.sent(now); // the handshake is done: what the target says from now on answers the client
 * turns.release(stream, now); // the first request goes (the client spoke first)
 * // ... its bytes go out: turns.sent(now); the target acknowledges them: turns.delivered(offset, now);
 * turns.answered(now); // the target answered: the next request may go
 * const wakeAt = turns.nextRelease(stream); // or at the latest then
 * ```
 */
export class Turns {
  config!: TurnsConfig;
  // Set again by `restart`; numbers from the start, so that V8 keeps the times in place (see Session).
  // Times are kept in whole milliseconds, rounded up: every turn time made of them is then a small
  // integer, where a fractional one (the clock is `performance.now()`) was a new heap number each time
  // it was returned, twice a request on the keep-alive path.
  /** The target has the client's bytes before this offset. */
  #delivered = 0;
  /**
   * When the target acknowledged more than before: a target silent since it had the request, not since
   * the request first went, is one that does not answer (a lossy way may deliver it seconds later).
   */
  #deliveredAt = 0;
  /** When the furthest of the client's bytes went out. */
  #sentAt = 0;
  /** Whether the target said anything since then. */
  #answered = false;
  /** When the target last said something. */
  #answeredAt = 0;
  /** Whether a request went before the target answered the one before it. */
  #pipelined = false;
  #pipelinedAt = 0;
  /** The longest the target was silent between two answers since the conversation pipelined. */
  #longestAnswerGap = 0;

  constructor(config: TurnsConfig) {
    this.restart(config);
  }

  /** Makes these the turns of a new conversation, timed by `config`. */
  restart(config: TurnsConfig): void {
    this.config = config;
    this.#delivered = 0;
    this.#deliveredAt = 0;
    this.#sentAt = 0;
    this.#answered = false;
    this.#answeredAt = 0;
    this.#pipelined = false;
    this.#pipelinedAt = 0;
    this.#longestAnswerGap = 0;
  }

  /** The target has (acknowledged) the client's bytes before `offset`, at `now`. */
  delivered(offset: number, now: number): void {
    if (offset > this.#delivered) this.#deliveredAt = Math.ceil(now);
    this.#delivered = offset;
  }

  /** The client's bytes went out further than ever before at `now`: what the target says next answers them. */
  sent(now: number): void {
    this.#sentAt = Math.ceil(now);
    this.#answered = false;
  }

  /** The target said something (bytes or its FIN) at `now`. */
  answered(now: number): void {
    const at = Math.ceil(now);
    if (this.#pipelined) {
      const since = Math.max(this.#answeredAt, this.#pipelinedAt);
      this.#longestAnswerGap = Math.max(this.#longestAnswerGap, at - since);
    }
    this.#answeredAt = at;
    this.#answered = true;
  }

  /** When the next request in `requests` may go (a time already past: now); `Infinity` while none waits. */
  nextRelease(requests: RequestQueue): number {
    const start = requests.nextRequestStart;
    if (start === undefined) return Infinity;
    if (start === 1 && !requests.firstRequestWaits) return -Infinity; // the client speaks first
    return start === requests.finOffset
      ? this.closeDueAt(start)
      : this.#turnTime(start, requests.nextRequestCapturedAt + this.config.maxLagMs, false);
  }

  /** Releases every request in `requests` whose turn came by `now`. */
  release(requests: RequestQueue, now: number): void {
    for (let time = this.nextRelease(requests); time <= now; time = this.nextRelease(requests)) {
      // Released by a time limit rather than by an answer: from now on the conversation pipelines.
      if (time > -Infinity && !this.#pipelined) {
        this.#pipelined = true;
        this.#pipelinedAt = Math.ceil(now);
      }
      requests.takeRequest();
    }
  }

  /**
   * When a close (the client's FIN or RST) starting at `start` may go: in its turn, however far behind
   * the copy is, since servers drop requests they still work on at a close.
   */
  closeDueAt(start: number): number {
    return this.#turnTime(start, Infinity, true);
  }

  /**
   * When the turn starting at `start` comes: once the target has everything before it and answered,
   * or anyway when the target stays silent (`responseWaitMs`) or at `lagLimit`: then it pipelines.
   */
  #turnTime(start: number, lagLimit: number, close: boolean): number {
    if (this.#delivered < start) return lagLimit;
    const silenceLimit = Math.min(
      lagLimit,
      Math.max(this.#sentAt, this.#deliveredAt) + this.config.responseWaitMs,
    );
    if (!this.#answered) return silenceLimit;
    // An answer from before the target had the whole request answered an earlier one (its tail, lost and
    // sent again, comes late): a close that takes it reaches a server still reading, which drops it.
    if (close && this.#answeredAt < this.#deliveredAt) return silenceLimit;
    // After pipelined requests the first answer need not be the last: a close waits for a pause.
    return close && this.#pipelined
      ? Math.min(
        silenceLimit,
        this.#answeredAt + Math.max(PIPELINED_CLOSE_PAUSE_MS, 2 * this.#longestAnswerGap),
      )
      : -Infinity;
  }
}
