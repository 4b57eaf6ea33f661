/**
 * Retransmission timeout from measured round trips (RFC 6298), with Linux's 200 ms floor rather than
 * the RFC's 1 s: a test target usually sits one switch away, and a long floor would stall copies.
 */

const INITIAL_RTO_MS = 1000;
const MIN_RTO_MS = 200;
const MAX_RTO_MS = 60_000;

/** Smoothed round-trip time and the timeout derived from it. */
export class RtoEstimator {
  #srtt: number | undefined;
  // Set again by `restart`; numbers from the start, so that V8 keeps them in place (see Session).
  #rttvar = 0;
  #rto = INITIAL_RTO_MS;
  #backoff = 0;

  constructor() {
    this.restart();
  }

  /** Forgets every sample and backoff: a new session's estimator. */
  restart(): void {
    this.#srtt = undefined;
    this.#rttvar = 0;
    this.#rto = INITIAL_RTO_MS;
    this.#backoff = 0;
  }

  /** The current timeout in milliseconds, backoff included. */
  get timeout(): number {
    return Math.min(this.#rto * 2 ** this.#backoff, MAX_RTO_MS);
  }

  /** Consecutive timeouts since the last new acknowledgement. */
  get backoffs(): number {
    return this.#backoff;
  }

  /** The smoothed round-trip time, `undefined` before the first sample. */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /** Takes one round-trip sample (never from a retransmitted segment: Karn's rule). */
  sample(rttMs: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = rttMs;
      this.#rttvar = rttMs / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rttMs);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rttMs;
    }
    this.#rto = Math.min(Math.max(this.#srtt + Math.max(4 * this.#rttvar, 1), MIN_RTO_MS), MAX_RTO_MS);
  }

  /** Doubles the timeout after it expired. */
  backOff(): void {
    this.#backoff++;
  }

  /** Forgets the backoff once new data is acknowledged. */
  resetBackoff(): void {
    this.#backoff = 0;
  }
}
