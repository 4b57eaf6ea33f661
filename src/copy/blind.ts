/**
 * A `copy` that has lost every intercept copies nothing (the target's replies never come back, so no
 * session gets past its handshake), though it goes on capturing. It says so, every few seconds, while
 * sessions wait; `-L` (`--lonely`, TCPCopy's flag) keeps it quiet for runs meant to go without one.
 */
import type { Logger } from "../ops/mod.ts";

/** How often the warning comes again while copy stays blind. */
export const BLIND_REPEAT_MS = 5000;

/** Warns while no intercept is connected and sessions wait for replies. */
export class BlindAlarm {
  #warnedAt = -Infinity;

  /** @param lonely `-L`: never warn */
  constructor(readonly lonely: boolean) {}

  /**
   * One check at `now` (ms): `connected` intercepts are up, `waiting` sessions are open. Returns
   * whether copy is blind now, warned or not.
   */
  check(connected: number, waiting: number, now: number, log: Pick<Logger, "warn">): boolean {
    const blind = connected === 0 && waiting > 0;
    if (!blind) {
      this.#warnedAt = -Infinity;
      return false;
    }
    if (this.lonely || now - this.#warnedAt < BLIND_REPEAT_MS) return true;
    this.#warnedAt = now;
    log.warn(
      `no intercept connected: ${waiting} session(s) wait for the target's replies, which cannot come, ` +
        `so nothing is copied (reconnecting; -L/--lonely silences this)`,
    );
    return true;
  }
}
