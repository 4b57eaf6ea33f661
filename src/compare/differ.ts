/**
 * How two answers to the same turn differ, field by field: the whole byte stream for `bytes`; for `http`
 * each response's status, headers (volatile ones left out) and body, a JSON body by meaning.
 */
import type { Answer } from "./answer.ts";
import { header, type HttpMessage, parseResponses, requestMethods } from "./http.ts";
import { diffJson, ignoredPaths } from "./json_diff.ts";

/** What `--compare` compares. */
export type CompareMode = "bytes" | "http";

/** One field in which the target's answer differs from the online server's. */
export interface Difference {
  /** `bytes`, `responses`, `status`, `header:<name>`, `body`, or `json:<path>`; with `#n` for the nth response. */
  readonly field: string;
  /** Short, printable forms of each side's value there. */
  readonly online: string;
  readonly target: string;
}

/**
 * Headers whose values change from answer to answer whatever the build: left out of every comparison
 * (`--ignore-header` adds more). Content-Length and Transfer-Encoding follow the body, which is compared
 * decoded.
 */
export const VOLATILE_HEADERS: readonly string[] = [
  "date",
  "age",
  "expires",
  "last-modified",
  "etag",
  "content-length",
  "transfer-encoding",
  "x-request-id",
  "request-id",
  "x-correlation-id",
  "x-amzn-requestid",
  "x-amz-request-id",
  "x-trace-id",
  "traceparent",
  "tracestate",
  "x-runtime",
  "server-timing",
];

/** Set-Cookie's values are session ids: only which cookies are set is compared. */
const COOKIE_NAMES_ONLY = "set-cookie";
const SHOWN = 120;

/** What a `Differ` is told. */
export interface DifferOptions {
  readonly mode: CompareMode;
  /** More header names to leave out (any case). */
  readonly ignoreHeaders?: readonly string[];
  /** JSON paths to leave out (`$.a.b`, `$.items[*].id`). */
  readonly ignoreJsonPaths?: readonly string[];
}

/** Compares answers the way its options say. */
export class Differ {
  readonly #ignoredHeaders: Set<string>;
  readonly #ignoredJson: (path: string) => boolean;

  constructor(readonly options: DifferOptions) {
    this.#ignoredHeaders = new Set(
      [...VOLATILE_HEADERS, ...(options.ignoreHeaders ?? [])].map((name) => name.toLowerCase()),
    );
    this.#ignoredJson = ignoredPaths(options.ignoreJsonPaths ?? []);
  }

  /** How `target` differs from `online` as answers to `request`; empty when they are the same. */
  diff(request: Uint8Array, online: Answer, target: Answer): Difference[] {
    if (this.options.mode === "http") {
      const methods = requestMethods(request);
      const onlineResponses = parseResponses(online.bytes, methods, online.whole);
      const targetResponses = parseResponses(target.bytes, methods, target.whole);
      if (onlineResponses.length > 0 || targetResponses.length > 0) {
        return this.#diffHttp(onlineResponses, targetResponses, online, target);
      }
    }
    return diffBytes(online, target);
  }

  #diffHttp(
    online: HttpMessage[],
    target: HttpMessage[],
    onlineAnswer: Answer,
    targetAnswer: Answer,
  ): Difference[] {
    const out: Difference[] = [];
    if (online.length !== target.length) {
      out.push({ field: "responses", online: String(online.length), target: String(target.length) });
    }
    for (let i = 0; i < Math.min(online.length, target.length); i++) {
      const tag = i === 0 ? "" : `#${i + 1}`;
      const a = online[i];
      const b = target[i];
      if (a.status !== b.status) {
        out.push({ field: `status${tag}`, online: String(a.status), target: String(b.status) });
      }
      this.#diffHeaders(a, b, tag, out);
      this.#diffBody(a, b, tag, out);
    }
    // Bodies cut by the answer limit are compared by the hash of everything instead.
    const cut = online.some((m) => !m.complete) || target.some((m) => !m.complete) ||
      !onlineAnswer.whole || !targetAnswer.whole;
    if (out.length === 0 && cut && onlineAnswer.digest !== targetAnswer.digest) {
      out.push({
        field: "body",
        online: `sha256 ${onlineAnswer.digest.slice(0, 16)}`,
        target: `sha256 ${targetAnswer.digest.slice(0, 16)}`,
      });
    }
    return out;
  }

  #diffHeaders(a: HttpMessage, b: HttpMessage, tag: string, out: Difference[]): void {
    const names = [...new Set([...a.headers, ...b.headers].map(([name]) => name))].sort();
    for (const name of names) {
      if (this.#ignoredHeaders.has(name)) continue;
      const valuesA = headerValues(a, name);
      const valuesB = headerValues(b, name);
      if (valuesA !== valuesB) out.push({ field: `header:${name}${tag}`, online: valuesA, target: valuesB });
    }
  }

  #diffBody(a: HttpMessage, b: HttpMessage, tag: string, out: Difference[]): void {
    if (equalBytes(a.body, b.body)) return;
    const jsonA = isJson(a) ? parseJson(a.body) : undefined;
    const jsonB = isJson(b) ? parseJson(b.body) : undefined;
    if (jsonA !== undefined && jsonB !== undefined) {
      for (const d of diffJson(jsonA.value, jsonB.value, this.#ignoredJson)) {
        out.push({
          field: `json:${d.path}${tag}`,
          online: shorten(d.online ?? "(absent)"),
          target: shorten(d.target ?? "(absent)"),
        });
      }
      return;
    }
    out.push({ field: `body${tag}`, online: preview(a.body), target: preview(b.body) });
  }
}

function diffBytes(online: Answer, target: Answer): Difference[] {
  if (online.length === target.length && online.digest === target.digest) return [];
  const a = online.bytes;
  const b = target.bytes;
  let at = 0;
  while (at < a.length && at < b.length && a[at] === b[at]) at++;
  const from = Math.max(0, at - 16);
  return [{
    field: "bytes",
    online: `${online.length} bytes; at ${at}: ${preview(a.subarray(from, from + 64))}`,
    target: `${target.length} bytes; at ${at}: ${preview(b.subarray(from, from + 64))}`,
  }];
}

function headerValues(message: HttpMessage, name: string): string {
  const values = message.headers.filter(([key]) => key === name).map(([, value]) =>
    name === COOKIE_NAMES_ONLY ? value.split("=")[0] : value
  );
  return values.length === 0 ? "(absent)" : shorten(values.join(", "));
}

function isJson(message: HttpMessage): boolean {
  return /[/+]json\b/i.test(header(message.headers, "content-type") ?? "");
}

function parseJson(body: Uint8Array): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(new TextDecoder().decode(body)) };
  } catch {
    return undefined;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `bytes` as text to read: UTF-8, line breaks kept, other control bytes as `\xNN`. */
export function readable(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes).replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** Up to `SHOWN` characters of `bytes` as one line of text, escapes for what is not printable. */
export function preview(bytes: Uint8Array): string {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, SHOWN * 4));
  return shorten(JSON.stringify(text).slice(1, -1));
}

function shorten(text: string): string {
  return text.length <= SHOWN ? text : `${text.slice(0, SHOWN)}…`;
}
