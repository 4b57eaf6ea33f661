/**
 * tcpshadow: copies live TCP traffic from a production server to a test server.
 *
 * `main.ts` only dispatches: each subcommand lives in `src/<name>/` and reports failures as
 * `UsageError` (exit 2) or `FatalError` (exit 1), which become one line on stderr, never a stack trace.
 */
import denoJson from "./deno.json" with { type: "json" };
import { type Command, prepareConfig } from "./src/cli/mod.ts";
import { errorMessage, FatalError, UsageError } from "./src/errors.ts";
import { DaemonStartError, reportStartFailure } from "./src/cli/mod.ts";
import { copyCommand } from "./src/copy/mod.ts";
import { interceptCommand } from "./src/intercept/mod.ts";
import { routeCommand } from "./src/route/mod.ts";

const commands: readonly Command[] = [copyCommand, interceptCommand, routeCommand];

const usage = `tcpshadow ${denoJson.version}: copy live TCP traffic from a production server to a test server

Usage: tcpshadow <command> [flags]

Commands:
${commands.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`).join("\n")}

Run 'tcpshadow <command> --help' for a command's flags, 'tcpshadow --version' for the version.
`;

/** Runs one command line and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    console.log(`tcpshadow ${denoJson.version}`);
    return 0;
  }
  const command = commands.find((candidate) => candidate.name === name);
  try {
    if (command === undefined) throw new UsageError(`unknown command "${name}"`);
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(command.help);
      return 0;
    }
    // TCPCopy's and intercept's -v.
    if (rest.includes("--version") || rest.includes("-v")) {
      console.log(`tcpshadow ${denoJson.version}`);
      return 0;
    }
    await prepareConfig(rest);
    return await command.run(rest);
  } catch (error) {
    return report(error, command);
  }
}

function report(error: unknown, command: Command | undefined): number {
  // A `-d` child that fails before it runs: its parent prints this and exits 2 (a no-op otherwise).
  reportStartFailure(errorMessage(error));
  if (error instanceof DaemonStartError) {
    console.error(`tcpshadow: ${error.message}`);
    return 2;
  }
  if (error instanceof UsageError) {
    console.error(`tcpshadow: ${error.message}`);
    console.error(`Try 'tcpshadow ${command ? `${command.name} ` : ""}--help'.`);
    return 2;
  }
  if (error instanceof FatalError) {
    console.error(`tcpshadow: ${error.message}`);
    return 1;
  }
  // A bug of ours: still one line for the user, the stack only on request.
  console.error(`tcpshadow: internal error: ${errorMessage(error)}`);
  if (Deno.env.get("TCPSHADOW_DEBUG")) console.error(error);
  return 70;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
