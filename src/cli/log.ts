/** One line per event worth knowing, on stderr, prefixed with the time and the command. */

/** A command's log: `info` can be silenced with `--quiet`, `warn` cannot. */
export interface Logger {
  info(line: string): void;
  warn(line: string): void;
}

/** The log of command `name`. */
export function createLogger(name: string, quiet: boolean): Logger {
  const write = (line: string) => console.error(`${new Date().toISOString()} ${name}: ${line}`);
  return { info: quiet ? () => {} : write, warn: write };
}
