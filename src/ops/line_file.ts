/**
 * Files a command appends lines to (its log, its stats records), reopened by path on SIGHUP: the usual
 * way to tell a long-running process that logrotate moved its files away.
 */
import { FatalError } from "../errors.ts";
import type { Logger } from "./log.ts";

const openFiles = new Set<LineFile>();

/** A file opened for appending, one line per write. */
export class LineFile {
  #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();

  /** Opens (creating) `path`; `what` names it in the `FatalError` when it cannot be opened. */
  constructor(readonly path: string, what: string) {
    try {
      this.#file = Deno.openSync(path, { append: true, create: true });
    } catch (error) {
      throw new FatalError(`cannot open ${what} ${path}: ${(error as Error).message}`);
    }
    openFiles.add(this);
  }

  writeLine(text: string): void {
    const bytes = this.#encoder.encode(`${text}\n`);
    for (let written = 0; written < bytes.length;) written += this.#file.writeSync(bytes.subarray(written));
  }

  /** Opens the path again; if that fails, writing goes on to the old file and the reason is returned. */
  reopen(): string | undefined {
    try {
      const next = Deno.openSync(this.path, { append: true, create: true });
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
export function reopenOnHangup(log: Pick<Logger, "info" | "warn">): () => void {
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
