/**
 * JSON values compared by meaning: key order ignored, numbers by value; each difference named by its
 * path (`$.user.name`, `$.items[2]`).
 */

/** One place where two JSON values differ. */
export interface JsonDifference {
  /** Where: `$` for the whole value, `$.a.b`, `$.list[3]`. */
  readonly path: string;
  /** The values there, as JSON text (`undefined` where one side has nothing). */
  readonly online: string | undefined;
  readonly target: string | undefined;
}

/** The differences between `online` and `target`, skipping paths that `ignored` says to. */
export function diffJson(
  online: unknown,
  target: unknown,
  ignored: (path: string) => boolean = () => false,
  path = "$",
  out: JsonDifference[] = [],
): JsonDifference[] {
  if (ignored(path)) return out;
  if (isObject(online) && isObject(target)) {
    const keys = [...new Set([...Object.keys(online), ...Object.keys(target)])].sort();
    for (const key of keys) diffJson(online[key], target[key], ignored, childPath(path, key), out);
  } else if (Array.isArray(online) && Array.isArray(target)) {
    for (let i = 0; i < Math.max(online.length, target.length); i++) {
      diffJson(online[i], target[i], ignored, `${path}[${i}]`, out);
    }
  } else if (!sameScalar(online, target)) {
    out.push({ path, online: text(online), target: text(target) });
  }
  return out;
}

/** `path` with array indexes made `[*]`: one name for a field of every element. */
export function generalPath(path: string): string {
  return path.replace(/\[\d+\]/g, "[*]");
}

/**
 * A test for paths given with `--ignore-json-path`: a path is ignored when it, or its general form, is one
 * of them or lies inside one. `[*]` in a given path matches every index.
 */
export function ignoredPaths(paths: readonly string[]): (path: string) => boolean {
  if (paths.length === 0) return () => false;
  return (path) => {
    const general = generalPath(path);
    return paths.some((given) => inside(path, given) || inside(general, given));
  };
}

function inside(path: string, prefix: string): boolean {
  return path === prefix ||
    (path.startsWith(prefix) && (path[prefix.length] === "." || path[prefix.length] === "["));
}

function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sameScalar(a: unknown, b: unknown): boolean {
  if (isObject(a) || isObject(b) || Array.isArray(a) || Array.isArray(b)) return false;
  return a === b;
}

function text(value: unknown): string | undefined {
  return value === undefined ? undefined : JSON.stringify(value);
}
