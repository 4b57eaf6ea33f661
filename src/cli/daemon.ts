/**
 * TCPCopy's `-d` (run as a daemon) and `-P FILE` (pid file) for `copy` and `intercept`.
 *
 * Deno cannot fork, so `-d` starts the same command line again as a child in a session of its own
 * (`setsid`), with its standard input, output and error on /dev/null (the log goes to `-l/--log-file`),
 * and waits: once the child runs (capturing, listening) it says so in a file only the two of them know,
 * and the parent exits 0; if the child fails while starting, the parent prints the child's one-line
 * error and exits 2, so a start-up mistake still reaches the terminal.
 */
import { errorMessage, FatalError } from "../errors.ts";
import { sleep } from "../sleep.ts";

/** The parseArgs specs of the daemon flags, to spread into a command's own. */
export const DAEMON_FLAGS = {
  daemon: { type: "boolean", short: "d" },
  "pid-file": { type: "string", short: "P" },
} as const;

/** Help lines of the daemon flags, aligned like the commands' own. */
export const DAEMON_HELP =
  `  -d, --daemon             run in the background: returns once running (exit 0), or prints why it
                           could not start (exit 2); output goes to --log-file, else nowhere
  -P, --pid-file FILE      write the process id to FILE once running, removed at a clean exit`;

/** What the daemon flags asked for. */
export interface DaemonOptions {
  readonly daemon: boolean;
  readonly pidFile: string | undefined;
}

/** The daemon flags' values. */
export function daemonOptions(values: { daemon?: boolean; "pid-file"?: string }): DaemonOptions {
  return { daemon: values.daemon ?? false, pidFile: values["pid-file"] };
}

/** Set in the child's environment: where it reports that it runs, or why it could not start. */
const READY_FILE_ENV = "TCPSHADOW_DAEMON_READY_FILE";
const READY = "ready";
const FAILED = "failed: ";
/** How long the parent waits for the child to run (opening captures, connecting to intercept). */
const START_TIMEOUT_MS = 30_000;
const POLL_MS = 50;

/** Whether this process is the child a `-d` parent started. */
export function isDaemonChild(): boolean {
  return Deno.env.get(READY_FILE_ENV) !== undefined;
}

/** Whether `run` should detach: `-d` given, and this is not already the detached child. */
export function shouldDetach(options: DaemonOptions): boolean {
  return options.daemon && !isDaemonChild();
}

/**
 * The parent's side of `-d`: starts the detached child and resolves to the exit code (0 once it runs);
 * a child that fails to start becomes a `FatalError` with its message, which `main` reports.
 */
export async function detach(): Promise<number> {
  const readyFile = await Deno.makeTempFile({ prefix: "tcpshadow-daemon-" });
  try {
    const [command, ...args] = ownCommandLine();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("setsid", {
        args: [command, ...args],
        env: { [READY_FILE_ENV]: readyFile },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (error) {
      throw new DaemonStartError(`-d: cannot start the background process: ${errorMessage(error)}`);
    }
    child.unref();
    let exited: Deno.CommandStatus | undefined;
    child.status.then((status) => exited = status);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const report = await Deno.readTextFile(readyFile).catch(() => "");
      if (report.startsWith(READY)) return 0;
      if (report.startsWith(FAILED)) throw new DaemonStartError(report.slice(FAILED.length).trim());
      if (exited !== undefined) {
        throw new DaemonStartError(`the background process exited with ${exited.code} before it ran`);
      }
      if (Date.now() > deadline) {
        throw new DaemonStartError(
          `the background process did not start within ${START_TIMEOUT_MS / 1000} s`,
        );
      }
      await sleep(POLL_MS);
    }
  } finally {
    await Deno.remove(readyFile).catch(() => {});
  }
}

/** A `-d` child that could not start: `main` exits 2 for it, as TCPCopy does for start-up errors. */
export class DaemonStartError extends FatalError {}

/**
 * Called once the command runs: writes the pid file if asked, and in a `-d` child tells the parent.
 * Returns a function that removes the pid file (at a clean exit).
 */
export function announceRunning(options: DaemonOptions): () => void {
  if (options.pidFile !== undefined) {
    try {
      Deno.writeTextFileSync(options.pidFile, `${Deno.pid}\n`);
    } catch (error) {
      throw new FatalError(`--pid-file: cannot write ${options.pidFile}: ${errorMessage(error)}`);
    }
  }
  tellParent(READY);
  const pidFile = options.pidFile;
  return () => {
    if (pidFile !== undefined) {
      try {
        Deno.removeSync(pidFile);
      } catch { /* gone already */ }
    }
  };
}

/** In a `-d` child that did not get to run: hands its one-line error to the waiting parent. */
export function reportStartFailure(message: string): void {
  tellParent(`${FAILED}${message}`);
}

function tellParent(text: string): void {
  const path = Deno.env.get(READY_FILE_ENV);
  if (path === undefined) return;
  Deno.env.delete(READY_FILE_ENV);
  try {
    Deno.writeTextFileSync(path, `${text}\n`);
  } catch { /* the parent gave up waiting and removed it */ }
}

/**
 * The command line that started this process: a compiled tcpshadow binary with its arguments, or
 * `deno run` with the permissions this process has, the main module and its arguments.
 */
function ownCommandLine(): string[] {
  const executable = Deno.execPath();
  if (!/(^|\/)deno$/.test(executable)) return [executable, ...Deno.args];
  const names = ["ffi", "net", "read", "write", "env", "sys", "run"] as const;
  const granted = names.filter((name) => Deno.permissions.querySync({ name }).state === "granted");
  return [
    executable,
    "run",
    "--quiet",
    ...granted.map((name) => `--allow-${name}`),
    Deno.mainModule,
    ...Deno.args,
  ];
}
