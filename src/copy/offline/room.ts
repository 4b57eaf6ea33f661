/** Room for new sessions under `--speed max`, where nothing else would hold the replay back. */
import { sleep } from "../../sleep.ts";
import type { CopyRuntime } from "../runtime.ts";

/** `--speed max` stops opening sessions while this many are open... */
const MAX_OPEN_SESSIONS = 1000;
/** ...unless none has ended or left for this long past the linger time: they wait for later packets. */
const STALL_MS = 1000;
const ROOM_POLL_MS = 2;

/**
 * Holds back new sessions under `--speed max` while `MAX_OPEN_SESSIONS` are open (lingering ones left
 * out), while the table has no room under `--max-sessions`, or while the memory guard has paused it:
 * the replay goes as fast as the target finishes sessions, and none is refused. When no session has
 * ended or left for `STALL_MS` past the linger time (ended sessions leave only after it), the open
 * ones wait for packets further on in the file: it lets sessions in.
 */
export class RoomGate {
  readonly #runtime: CopyRuntime;
  /** Sessions ended plus sessions gone, as last seen: it changes whenever a session makes way. */
  #moves = 0;
  #movedAt = performance.now();

  constructor(runtime: CopyRuntime) {
    this.#runtime = runtime;
  }

  /** Resolves once a new session (all its `--multiply` copies) may open, or `signal` aborts. */
  async wait(signal: AbortSignal): Promise<void> {
    const { table, options } = this.#runtime;
    const full = () =>
      table.active + options.multiply > MAX_OPEN_SESSIONS || !table.hasRoomFor(options.multiply) ||
      table.paused;
    while (!signal.aborted && full()) {
      const ended = table.counters.sessionsCopied - table.active;
      const gone = ended - table.lingering;
      const moves = ended + gone;
      if (moves !== this.#moves) {
        this.#moves = moves;
        this.#movedAt = performance.now();
      } else if (performance.now() - this.#movedAt > STALL_MS + options.session.lingerMs) {
        return;
      }
      await sleep(ROOM_POLL_MS);
    }
  }
}
