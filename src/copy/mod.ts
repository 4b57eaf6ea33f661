/** The `copy` subcommand (being built: issue 3). */
import type { Command } from "../cli/flags.ts";
import { FatalError } from "../errors.ts";

/** `tcpshadow copy`. */
export const copyCommand: Command = {
  name: "copy",
  summary: "copy",
  help: "tcpshadow copy",
  run() {
    return Promise.reject(new FatalError("copy is not built yet"));
  },
};
