/**
 * The command line: flag parsing over `node:util` parseArgs with errors that name the flag, value
 * checks, `--config FILE` (YAML, loaded only when named), and the operation flags every long-running
 * command shares (`--log-level`, `--stats`, `--metrics`, ...). What those flags drive is in `src/ops/`.
 * TCPCopy's `-d` and `-P` (`daemon.ts`) and the TCPCopy flags accepted with a notice (`compat.ts`).
 *
 * @example
 * ```ts
 * import { intValue, parseFlags } from "./mod.ts";
 *
 * const flags = parseFlags("route", ["--rate", "20"], { rate: { type: "string" } });
 * const rate = intValue("--rate", flags.rate ?? "100", 1, 100);
 * ```
 *
 * @module
 */
export {
  addressValue,
  captureBufferValue,
  cidrListValue,
  type Command,
  DEFAULT_CAPTURE_BUFFER_MB,
  intValue,
  ipv4Value,
  listValue,
  parseFlags,
  portValue,
  positiveNumberValue,
  prepareConfig,
} from "./flags.ts";
export {
  listenAddressValue,
  OPERATION_FLAGS,
  OPERATION_HELP,
  type OperationOptions,
  operationOptions,
} from "./ops_flags.ts";
export { type AcceptedFlag, acceptedFlagNotices, acceptedFlagSpecs } from "./compat.ts";
export {
  announceRunning,
  DAEMON_FLAGS,
  DAEMON_HELP,
  type DaemonOptions,
  daemonOptions,
  DaemonStartError,
  detach,
  reportStartFailure,
  shouldDetach,
} from "./daemon.ts";
export { readSecretFile } from "./secret_file.ts";
