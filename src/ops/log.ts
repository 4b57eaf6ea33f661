/**
 * One line per event worth knowing, prefixed with the time and the command: on stderr, or appended to
 * `--log-file`. Never one line per packet; `--log-level debug` adds one per copied session.
 */
import { errorMessage, UsageError } from "../errors.ts";
import { LineFile } from "./line_file.ts";

/** How much a command logs, least first; each level includes those before it. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

/** One of `LOG_LEVELS`. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Where and how much a command logs. */
export interface LogOptions {
  readonly level: LogLevel;
  /** Append here instead of writing to stderr. */
  readonly file?: string;
}

/** A command's log. */
export interface Logger {
  error(line: string): void;
  warn(line: string): void;
  info(line: string): void;
  /** Dropped unless the level is `debug`; check `debugEnabled` before building costly lines. */
  debug(line: string): void;
  readonly debugEnabled: boolean;
  /** Written whatever the level, to stderr and to the log file: a run's final summary. */
  always(line: string): void;
  /** Closes the log file, if any. */
  close(): void;
}

const LABELS: Record<LogLevel, string> = { error: "error: ", warn: "warning: ", info: "", debug: "debug: " };

/**
 * Runs `body` with the log of command `name`, and closes the log after. An error that ends the run also
 * goes into the log file, so that the file tells why the run stopped (`main` prints it on stderr).
 */
export async function withLogger<T>(
  name: string,
  options: LogOptions,
  body: (log: Logger) => Promise<T>,
): Promise<T> {
  const log = createLogger(name, options);
  try {
    return await body(log);
  } catch (error) {
    if (options.file !== undefined && !(error instanceof UsageError)) {
      log.error(errorMessage(error));
    }
    throw error;
  } finally {
    log.close();
  }
}

/** The log of command `name`; a log file that cannot be opened is a `FatalError`. */
export function createLogger(name: string, options: LogOptions): Logger {
  const format = (level: LogLevel | undefined, line: string) =>
    `${new Date().toISOString()} ${name}: ${level === undefined ? "" : LABELS[level]}${line}`;
  // Trouble writing the log file can only be told on stderr.
  let file = options.file === undefined
    ? undefined
    : new LineFile(options.file, "log file", (line) => console.error(format("warn", line)));
  const write = (text: string) => file === undefined ? console.error(text) : file.writeLine(text);
  const rank = LOG_LEVELS.indexOf(options.level);
  const at = (level: LogLevel) =>
    LOG_LEVELS.indexOf(level) <= rank ? (line: string) => write(format(level, line)) : () => {};
  return {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    debugEnabled: rank >= LOG_LEVELS.indexOf("debug"),
    always(line) {
      const text = format(undefined, line);
      console.error(text);
      file?.writeLine(text);
    },
    close() {
      file?.close();
      file = undefined;
    },
  };
}
