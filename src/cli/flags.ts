/**
 * Command-line plumbing shared by the subcommands: flag parsing over `node:util` parseArgs, value
 * checks that name the flag at fault.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { type Address, type Cidr, ipv6Address, parseCidr, parseIpv4, parseIpv6 } from "../wire/mod.ts";
import { errorMessage, UsageError } from "../errors.ts";
import type { configArguments } from "./config.ts";

/** A subcommand as `main.ts` dispatches it. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  /** Runs the command; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * The config-file reader, loaded only for a command line that names `--config` (`prepareConfig`): the
 * YAML parser it brings costs a process about 11 MB of resident memory.
 */
let readConfig: typeof configArguments | undefined;

/** Loads what `--config` needs when `argv` names it; `main` calls this before a command parses `argv`. */
export async function prepareConfig(argv: readonly string[]): Promise<void> {
  if (readConfig !== undefined) return;
  if (argv.some((arg) => arg === "--config" || arg.startsWith("--config="))) {
    readConfig = (await import("./config.ts")).configArguments;
  }
}

/**
 * Parses `argv` against `options` (always with `--help` and `--config FILE`), turning parseArgs' errors
 * into `UsageError`s that name the flag. Positionals are refused. With `--config`, the file's `command`
 * section supplies the flags the command line does not give (see `config.ts`).
 */
export function parseFlags<T extends Options>(command: string, argv: string[], options: T) {
  const all = {
    ...options,
    help: { type: "boolean", short: "h" },
    config: { type: "string" },
  } as const satisfies Options;
  const values = parse(argv, all);
  const path = (values as { config?: string }).config;
  if (path === undefined) return values;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new UsageError(`--config: cannot read ${path}: ${errorMessage(error)}`);
  }
  const configFlags = Object.fromEntries(
    Object.entries(options).map(([name, flag]) => [name, { type: flag.type, multiple: flag.multiple }]),
  );
  const given = new Set(Object.keys(values));
  if (readConfig === undefined) throw new Error("--config given but prepareConfig was not called");
  return parse([...readConfig(path, text, command, configFlags, given), ...argv], all);
}

function parse<T extends Options>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(describeParseError(error));
  }
}

function describeParseError(error: unknown): string {
  const message = errorMessage(error);
  const code = (error as { code?: string }).code;
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${quoted}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${quoted}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
      if (message.includes("argument missing")) return `${flag} needs a value`;
      if (message.includes("ambiguous")) {
        return `${flag} needs a value (one that starts with a dash: ${flag}=VALUE)`;
      }
      return `${flag} takes no value`;
    }
    default:
      return message.split("\n")[0];
  }
}

/** A whole number in `[min, max]`, or a `UsageError` naming `flag`. */
export function intValue(flag: string, text: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${text}"`);
  }
  return Number(text);
}

/** A positive number (fractions allowed), or a `UsageError` naming `flag`. */
export function positiveNumberValue(flag: string, text: string): number {
  const value = Number(text);
  if (!/^[0-9]*\.?[0-9]+$/.test(text) || !(value > 0)) {
    throw new UsageError(`${flag} must be a positive number, not "${text}"`);
  }
  return value;
}

/** A TCP port 1..65535, or a `UsageError` naming `flag`. */
export function portValue(flag: string, text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new UsageError(`${flag}: "${text}" is not a port (1-65535)`);
  }
  return Number(text);
}

/** A dotted-quad IPv4 address, or a `UsageError` naming `flag`. */
export function ipv4Value(flag: string, text: string): number {
  const address = parseIpv4(text);
  if (address === undefined) throw new UsageError(`${flag}: "${text}" is not an IPv4 address`);
  return address;
}

/**
 * An IPv4 (dotted quad) or IPv6 address, the latter bare or in brackets, as an `Address` (IPv4 a number,
 * IPv6 a group string), or a `UsageError` naming `flag`.
 */
export function addressValue(flag: string, text: string): Address {
  const ipv4 = parseIpv4(text);
  if (ipv4 !== undefined) return ipv4;
  const ipv6 = parseIpv6(text.replace(/^\[(.*)\]$/, "$1"));
  if (ipv6 === undefined) throw new UsageError(`${flag}: "${text}" is not an IPv4 or IPv6 address`);
  return ipv6Address(ipv6);
}

/** A comma-separated list of ranges (`1.1.1.0/24`, `62.135.200.x`, `2001:db8::/64`). */
export function cidrListValue(flag: string, text: string): Cidr[] {
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  if (items.length === 0) throw new UsageError(`${flag} needs at least one address range`);
  return items.map((item) => {
    const cidr = parseCidr(item);
    if (cidr === undefined) {
      throw new UsageError(`${flag}: "${item}" is not an address range (like 1.1.1.0/24)`);
    }
    return cidr;
  });
}

/** Flags given one or more times, each possibly a comma list, flattened. */
export function listValue(value: string | string[] | undefined): string[] {
  const all = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return all.flatMap((item) => item.split(",")).map((item) => item.trim()).filter((item) => item !== "");
}

/** The kernel buffer of a live capture when `--capture-buffer` does not say (MiB). */
export const DEFAULT_CAPTURE_BUFFER_MB = 16;

/**
 * `--capture-buffer MB` in bytes. The buffer is resident memory from the start (the kernel maps it
 * whole), and holds the packets the process has not read yet; past it the kernel drops (counted).
 */
export function captureBufferValue(text: string | undefined): number {
  return (text === undefined ? DEFAULT_CAPTURE_BUFFER_MB : intValue("--capture-buffer", text, 1, 4096)) << 20;
}
