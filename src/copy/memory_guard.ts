/**
 * `--max-memory` (TCPCopy's `-m`): above the limit copy takes no new sessions, and takes them again
 * below 90% of it. V8 collects its old generation late: under many new connections copy's resident
 * memory grows to several times its live heap and falls back only when V8 gets round to it, so a guard
 * that only read the resident size would keep sessions out for garbage. It collects first.
 */
import type { Logger } from "../ops/mod.ts";

/** The guard lets sessions in again below this share of the limit. */
const RESUME_SHARE = 0.9;
/**
 * The guard collects at most once a second and spends at most a tenth of the time collecting; it backs
 * off up to `COLLECT_MAX_MS` while collections free little.
 */
const COLLECT_MIN_MS = 1000;
const COLLECT_SPACING = 10;
const COLLECT_MAX_MS = 32_000;
const MEBIBYTE = 1 << 20;

/** What the guard reads of the process and does to it; replaceable in tests. */
export interface ProcessMemory {
  /** Resident bytes. */
  readonly rss: () => number;
  /** A full garbage collection; how long it stopped the process, ms. */
  readonly collect: () => number;
}

/** The part of the session table the guard switches. */
export interface GuardedTable {
  paused: boolean;
  readonly counters: { readonly sessionsRefusedWhilePaused: number };
}

/** This process's resident bytes. */
function residentBytes(): number {
  return Deno.memoryUsage().rss;
}

/**
 * This process: its resident size and V8's own collector. `node:v8` and `node:vm` add 3 MB to copy's
 * memory, so only a guard loads them.
 */
export async function processMemory(): Promise<ProcessMemory> {
  const [{ default: v8 }, { default: vm }] = await Promise.all([import("node:v8"), import("node:vm")]);
  // V8 installs `gc` in contexts made after the flag is set; this one shares the heap.
  v8.setFlagsFromString("--expose-gc");
  const collect = vm.runInNewContext("gc") as () => void;
  return {
    rss: residentBytes,
    collect: () => {
      const start = performance.now();
      collect();
      return performance.now() - start;
    },
  };
}

/** Keeps a table's new sessions out while memory is above a limit. */
export class MemoryGuard {
  /** Times the guard started refusing sessions. */
  pauses = 0;
  /** Garbage collections the guard asked for. */
  collections = 0;

  readonly #limit: number;
  readonly #memory: ProcessMemory;
  readonly #log: Pick<Logger, "warn">;
  #collectedAt = -Infinity;
  #collectEveryMs = COLLECT_MIN_MS;

  constructor(limitBytes: number, memory: ProcessMemory, log: Pick<Logger, "warn">) {
    this.#limit = limitBytes;
    this.#memory = memory;
    this.#log = log;
  }

  /**
   * One look at resident memory `rss`: collects garbage if it stands in the way, then pauses or
   * resumes `table`. Returns the resident bytes after any collection.
   */
  check(table: GuardedTable, rss: number, now: number): number {
    const limit = this.#limit;
    const line = table.paused ? limit * RESUME_SHARE : limit;
    if (rss > line && now - this.#collectedAt >= this.#collectEveryMs) rss = this.#collect(rss, now);
    if (!table.paused && rss > limit) {
      table.paused = true;
      this.pauses++;
      this.#log.warn(
        `resident memory ${megabytes(rss)} is above --max-memory ${megabytes(limit)} after a garbage ` +
          `collection: taking no new sessions until it is below ${megabytes(limit * RESUME_SHARE)}`,
      );
    } else if (table.paused && rss < limit * RESUME_SHARE) {
      table.paused = false;
      this.#log.warn(
        `resident memory ${megabytes(rss)} is back below ${megabytes(limit * RESUME_SHARE)}: ` +
          `taking new sessions again (${table.counters.sessionsRefusedWhilePaused} refused meanwhile)`,
      );
    }
    return rss;
  }

  /**
   * A collection stops the event loop (100-200 ms under 5,000-12,000 new connections/s, while the
   * kernel buffers what is captured meanwhile) and cannot help when the memory is live: the next waits
   * ten times as long as this one took, twice as long as the last wait if this one freed under a tenth
   * of the limit.
   */
  #collect(rss: number, now: number): number {
    const tookMs = this.#memory.collect();
    this.collections++;
    const after = this.#memory.rss();
    const spacing = Math.max(COLLECT_MIN_MS, tookMs * COLLECT_SPACING);
    this.#collectedAt = now;
    this.#collectEveryMs = Math.min(
      rss - after < this.#limit / 10 ? Math.max(this.#collectEveryMs * 2, spacing) : spacing,
      COLLECT_MAX_MS,
    );
    return after;
  }
}

function megabytes(bytes: number): string {
  return `${Math.round(bytes / MEBIBYTE)} MB`;
}
