/**
 * Files a command appends lines to (its log, its stats records), reopened by path on SIGHUP: the usual
 * way to tell a long-running process that logrotate moved its files away. A line that cannot be written
 * (a full disk, a file that takes no writes) is dropped and counted, never an error that stops the
 * command: copying matters more than its log.
 */
import { errorMessage, FatalError } from "../errors.ts";

const openFiles = new Set<LineFile>();
let droppedTotal = 0;

/** Lines every `LineFile` of this process dropped because writing them failed. */
export function linesDropped(): number {
  return droppedTotal;
}

/** What a `LineFile` writes to: an open file, or a stand-in in tests. */
export type LineSink = Pick<Deno.FsFile, "writeSync" | "close">;

/** Opens `path` for appending, creating it. */
function openForAppend(path: string): LineSink {
  return Deno.openSync(path, { append: true, create: true });
}

/** A file opened for appending, one line per write. */
export class LineFile {
  /** Lines this file dropped because writing them failed. */
  dropped = 0;
  #file: LineSink;
  readonly #encoder = new TextEncoder();
  /** Whether lines are being dropped now (the trouble was reported and is not over). */
  #failing = false;
  /** Whether the last line failed halfway: the next one starts on a line of its own. */
  #cut = false;

  /**
   * Opens (creating) `path`; `what` names it in the `FatalError` when it cannot be opened, and in the
   * warning when writing it fails.
   * @param warn where write trouble and its end are reported, once each (stderr: the log itself may be
   *   the file that fails)
   * @param open opens the path, at first and on `reopen` (tests pass files that fail)
   */
  constructor(
    readonly path: string,
    readonly what: string,
    readonly warn: (line: string) => void = (line) => console.error(`tcpshadow: warning: ${line}`),
    readonly open: (path: string) => LineSink = openForAppend,
  ) {
    try {
      this.#file = open(path);
    } catch (error) {
      throw new FatalError(`cannot open ${what} ${path}: ${(error as Error).message}`);
    }
    openFiles.add(this);
  }

  /**
   * Appends `text` and a newline. When that fails the line is dropped and counted; the first failure
   * is reported, and so is the first line written again after it.
   */
  writeLine(text: string): void {
    const ending = this.#cut ? "\n" : ""; // ends the line the last failure cut
    const bytes = this.#encoder.encode(`${ending}${text}\n`);
    let written = 0;
    try {
      while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
    } catch (error) {
      this.dropped++;
      droppedTotal++;
      if (written > 0) this.#cut = written > ending.length;
      if (this.#failing) return;
      this.#failing = true;
      this.warn(
        `cannot write ${this.what} ${this.path} (${errorMessage(error)}): dropping its lines until it can`,
      );
      return;
    }
    this.#cut = false;
    if (!this.#failing) return;
    this.#failing = false;
    this.warn(`writing ${this.what} ${this.path} again; ${this.dropped} line(s) dropped so far`);
  }

  /** Opens the path again; if that fails, writing goes on to the old file and the reason is returned. */
  reopen(): string | undefined {
    try {
      const next = this.open(this.path);
      this.#file.close();
      this.#file = next;
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  close(): void {
    if (!openFiles.delete(this)) return;
    this.#file.close();
  }
}

/** Reopens every open `LineFile` on SIGHUP, and logs it, until the returned function is called. */
export function reopenOnHangup(log: { info(line: string): void; warn(line: string): void }): () => void {
  const reopenAll = () => {
    for (const file of openFiles) {
      const problem = file.reopen();
      if (problem === undefined) log.info(`SIGHUP: reopened ${file.path}`);
      else log.warn(`SIGHUP: cannot reopen ${file.path} (${problem}); writing on to the file it had`);
    }
  };
  Deno.addSignalListener("SIGHUP", reopenAll);
  return () => Deno.removeSignalListener("SIGHUP", reopenAll);
}
