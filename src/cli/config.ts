/**
 * `--config FILE`: a YAML file with one section per subcommand (`copy:`, `intercept:`, `route:`) whose
 * keys are that command's long flag names. A section becomes command-line arguments put before the
 * real ones, so the command's own parser checks every value and the command line wins.
 *
 * @example
 * ```yaml
 * copy:
 *   target: 80-198.18.0.3:8080
 *   intercept: [198.18.0.4]
 *   rate: 20
 *   quiet: true
 * ```
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Scalar } from "yaml";
import { UsageError } from "../errors.ts";

/** The sections a config file may have: the subcommands. */
const SECTIONS = ["copy", "intercept", "route"];

/** What a config file needs to know about one flag. */
export interface ConfigFlag {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
}

/**
 * The arguments section `section` of config file `path` (text `text`) stands for, leaving out flags in
 * `given` (already on the command line). Unknown sections and keys, and values of the wrong shape, are
 * `UsageError`s naming the file and line.
 */
export function configArguments(
  path: string,
  text: string,
  section: string,
  flags: Readonly<Record<string, ConfigFlag>>,
  given: ReadonlySet<string>,
): string[] {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const where = (offset: number | undefined) =>
    `${path}:${offset === undefined ? 1 : lines.linePos(offset).line}`;
  const problem = document.errors[0];
  if (problem !== undefined) {
    throw new UsageError(`${where(problem.pos[0])}: ${problem.message.split("\n")[0]}`);
  }
  const root = document.contents;
  if (root === null || (isScalar(root) && root.value === null)) return [];
  if (!isMap(root)) throw new UsageError(`${where(root.range?.[0])}: expected sections like "copy:"`);
  const args: string[] = [];
  for (const pair of root.items) {
    const key = pair.key as Scalar | null;
    const name = String(key?.value);
    if (!SECTIONS.includes(name)) {
      throw new UsageError(
        `${where(key?.range?.[0])}: unknown section "${name}" (expected ${SECTIONS.join(", ")})`,
      );
    }
    if (name !== section) continue;
    const body = pair.value;
    if (body === null || (isScalar(body) && body.value === null)) continue;
    if (!isMap(body)) {
      throw new UsageError(`${where(key?.range?.[0])}: section "${name}" must hold flag: value lines`);
    }
    for (const entry of body.items) {
      const flagKey = entry.key as Scalar | null;
      const flagName = String(flagKey?.value);
      const at = where(flagKey?.range?.[0]);
      const flag = Object.hasOwn(flags, flagName) ? flags[flagName] : undefined;
      if (flag === undefined) throw new UsageError(`${at}: unknown key "${flagName}" in ${section}`);
      if (given.has(flagName)) continue;
      args.push(...flagArguments(at, flagName, flag, entry.value));
    }
  }
  return args;
}

function flagArguments(at: string, name: string, flag: ConfigFlag, node: unknown): string[] {
  if (isSeq(node)) {
    if (!flag.multiple) throw new UsageError(`${at}: "${name}" takes one value, not a list`);
    return node.items.map((item) => {
      if (isSeq(item) || isMap(item)) {
        throw new UsageError(
          `${at}: "${name}" is a list of plain values; a list or mapping inside it is not`,
        );
      }
      return flagArgument(at, name, flag, item);
    }).flat();
  }
  return flagArgument(at, name, flag, node);
}

/** The argument one plain value stands for (none for a boolean flag set to false). */
function flagArgument(at: string, name: string, flag: ConfigFlag, node: unknown): string[] {
  if (isMap(node)) throw new UsageError(`${at}: "${name}" takes a value, not a mapping`);
  const value = isScalar(node) ? node.value : undefined;
  if (flag.type === "boolean") {
    if (typeof value !== "boolean") throw new UsageError(`${at}: "${name}" must be true or false`);
    return value ? [`--${name}`] : [];
  }
  if (typeof value === "boolean") throw new UsageError(`${at}: "${name}" takes a value, not ${value}`);
  if (typeof value !== "string" && typeof value !== "number") {
    throw new UsageError(`${at}: "${name}" needs a value`);
  }
  if (typeof value === "string" && /[\r\n]/.test(value)) {
    throw new UsageError(`${at}: "${name}" must be one line`);
  }
  return [`--${name}=${value}`];
}
