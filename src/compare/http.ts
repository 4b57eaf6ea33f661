/**
 * HTTP/1.x messages read out of a turn's bytes: requests (for the endpoint a turn belongs to) and
 * responses (to compare), with chunked transfer coding and gzip, deflate and br content coding undone.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { concatBytes } from "../wire/mod.ts";

/** One parsed HTTP/1.x message. */
export interface HttpMessage {
  /** Request method, for a request. */
  readonly method?: string;
  /** Request target (path and query), for a request. */
  readonly target?: string;
  /** Status code, for a response. */
  readonly status?: number;
  /** Header fields in order, names lower-cased. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The body with transfer and content coding undone (as sent when the coding is unknown or broken). */
  readonly body: Uint8Array;
  /** Whether the whole body was in the bytes given. */
  readonly complete: boolean;
  /** Where the message starts and ends in the bytes given. */
  readonly start: number;
  readonly end: number;
}

/** The most decoded body bytes kept: a decompression bomb stops here. */
const MAX_DECODED_BODY = 8 * 1024 * 1024;
const decoder = new TextDecoder("latin1");
const CRLF_CRLF = [13, 10, 13, 10];
/** The body of a message read for its framing only. */
const NO_BODY = new Uint8Array(0);

/** The requests in `bytes` (a client's turn), as far as they are whole. */
export function parseRequests(bytes: Uint8Array): HttpMessage[] {
  return readRequests(bytes, true);
}

/** The methods of the requests in `bytes`, to match responses to (no body is read for them). */
export function requestMethods(bytes: Uint8Array): string[] {
  return readRequests(bytes, false).map((message) => message.method ?? "GET");
}

/** `parseRequests`, with the bodies decoded when `decode` and left out (empty) when not. */
function readRequests(bytes: Uint8Array, decode: boolean): HttpMessage[] {
  const messages: HttpMessage[] = [];
  let at = 0;
  while (at < bytes.length) {
    const head = readHead(bytes, at);
    if (head === undefined) break;
    const [method, target, version] = head.startLine.split(" ");
    if (method === undefined || target === undefined || !version?.startsWith("HTTP/1.")) break;
    const length = Number(header(head.headers, "content-length") ?? "0");
    const body = readBody(bytes, head.end, head.headers, Number.isFinite(length) ? length : 0, false, decode);
    messages.push({
      method,
      target,
      headers: head.headers,
      body: body.body,
      complete: body.complete,
      start: at,
      end: body.end,
    });
    if (!body.complete) break;
    at = body.end;
  }
  return messages;
}

/**
 * The responses in `bytes` (a server's answer to a turn), matched to `methods` (a HEAD's response has no
 * body); interim 1xx responses are left out. `closed`: the server closed after these bytes, so a body
 * without a length runs to the end.
 */
export function parseResponses(bytes: Uint8Array, methods: readonly string[], closed = true): HttpMessage[] {
  const messages: HttpMessage[] = [];
  let at = 0;
  while (at < bytes.length) {
    const message = readResponse(bytes, at, methods[messages.length] ?? "GET", closed, true);
    if (message === undefined) break;
    messages.push(message);
    if (!message.complete) break;
    at = message.end;
  }
  return messages;
}

/**
 * Whether `answer`, a server's bytes so far in a turn whose client said `request`, stops inside the
 * responses to its HTTP requests: fewer whole final responses than requests (a body without a length
 * counts as unfinished, since only the server's close ends it). False when `request` holds no request.
 */
export function responsesUnfinished(request: Uint8Array, answer: Uint8Array): boolean {
  return new ResponseFraming().unfinished(request, answer);
}

/**
 * `responsesUnfinished` for an answer that grows as it arrives, asked after every read: the responses
 * already whole are not read again, and no body is decoded, so a turn's answer costs its length once,
 * not once per read.
 */
export class ResponseFraming {
  /** Where the answer's whole final responses end, and how many there are. */
  #end = 0;
  #whole = 0;
  /**
   * The request's methods, read again only when it grew. A method learnt late can change where a response
   * ends (a HEAD's has no body), so then the answer is read again from its start.
   */
  #methods: string[] = [];
  #requestLength = -1;

  /** `responsesUnfinished(request, answer)`; each call's bytes begin with the previous call's. */
  unfinished(request: Uint8Array, answer: Uint8Array): boolean {
    if (request.length !== this.#requestLength) {
      this.#methods = requestMethods(request);
      this.#requestLength = request.length;
      this.#end = 0;
      this.#whole = 0;
    }
    if (this.#methods.length === 0) return false;
    while (this.#end < answer.length) {
      const message = readResponse(answer, this.#end, this.#methods[this.#whole] ?? "GET", false, false);
      if (message === undefined) break;
      if (!message.complete) return true;
      this.#end = message.end;
      this.#whole++;
    }
    return this.#whole < this.#methods.length;
  }
}

/**
 * The final response to `method` in `bytes` from `at`, interim 1xx ones before it skipped, its body
 * decoded when `decode` (else left out, empty); undefined without a whole HTTP head there. `closed`: the server closed after
 * these bytes, so a body without a length runs to the end.
 */
function readResponse(
  bytes: Uint8Array,
  at: number,
  method: string,
  closed: boolean,
  decode: boolean,
): HttpMessage | undefined {
  /** Where the interim responses before the final one began, if there were any. */
  let interimFrom: number | undefined;
  while (at < bytes.length) {
    const head = readHead(bytes, at);
    if (head === undefined) return undefined;
    const match = /^HTTP\/1\.\d (\d{3})/.exec(head.startLine);
    if (match === null) return undefined;
    const status = Number(match[1]);
    if (status < 200 && status !== 101) {
      at = head.end;
      interimFrom ??= head.start;
      continue;
    }
    const bodyless = method === "HEAD" || status === 204 || status === 304 || status === 101;
    const length = header(head.headers, "content-length");
    const body = bodyless ? { body: new Uint8Array(0), complete: true, end: head.end } : readBody(
      bytes,
      head.end,
      head.headers,
      length === undefined ? undefined : Number(length),
      closed,
      decode,
    );
    return {
      status,
      headers: head.headers,
      body: body.body,
      complete: body.complete,
      start: interimFrom ?? head.start,
      end: body.end,
    };
  }
  return undefined;
}

/** The value of the first header `name` (lower case), if any. */
export function header(headers: HttpMessage["headers"], name: string): string | undefined {
  return headers.find(([key]) => key === name)?.[1];
}

interface Head {
  /** Where the head starts. */
  readonly start: number;
  readonly startLine: string;
  readonly headers: [string, string][];
  /** Offset just past the blank line. */
  readonly end: number;
}

function readHead(bytes: Uint8Array, from: number): Head | undefined {
  const end = indexOf(bytes, CRLF_CRLF, from);
  if (end < 0) return undefined;
  const lines = decoder.decode(bytes.subarray(from, end)).split("\r\n");
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { start: from, startLine: lines[0], headers, end: end + CRLF_CRLF.length };
}

function readBody(
  bytes: Uint8Array,
  from: number,
  headers: Head["headers"],
  length: number | undefined,
  toEnd: boolean,
  decode: boolean,
): { body: Uint8Array; complete: boolean; end: number } {
  let raw: Uint8Array;
  let complete: boolean;
  let end: number;
  if (/chunked/i.test(header(headers, "transfer-encoding") ?? "")) {
    ({ body: raw, complete, end } = readChunked(bytes, from, decode));
  } else if (length !== undefined && Number.isFinite(length)) {
    end = Math.min(from + length, bytes.length);
    raw = bytes.subarray(from, end);
    complete = from + length <= bytes.length;
  } else {
    end = bytes.length;
    raw = bytes.subarray(from);
    complete = toEnd;
  }
  if (!decode) return { body: NO_BODY, complete, end };
  return { body: complete ? decodeContent(raw, header(headers, "content-encoding")) : raw, complete, end };
}

/** A chunked body from `from`: where it ends, and its chunks joined when `keep` (else none are kept). */
function readChunked(
  bytes: Uint8Array,
  from: number,
  keep: boolean,
): { body: Uint8Array; complete: boolean; end: number } {
  const parts: Uint8Array[] = [];
  let at = from;
  for (;;) {
    const lineEnd = indexOf(bytes, [13, 10], at);
    if (lineEnd < 0) break;
    const size = parseInt(decoder.decode(bytes.subarray(at, lineEnd)).split(";")[0].trim(), 16);
    if (!Number.isFinite(size)) break;
    at = lineEnd + 2;
    if (size === 0) {
      // Trailer fields, then the blank line.
      const trailerEnd = bytes[at] === 13 && bytes[at + 1] === 10 ? at : indexOf(bytes, CRLF_CRLF, at);
      if (trailerEnd < 0) break;
      const end = trailerEnd === at ? at + 2 : trailerEnd + 4;
      return { body: concatBytes(parts), complete: true, end };
    }
    if (at + size + 2 > bytes.length) break;
    if (keep) parts.push(bytes.subarray(at, at + size));
    at += size + 2;
  }
  return { body: concatBytes(parts), complete: false, end: bytes.length };
}

/** `raw` with its content coding undone; as it is when the coding is unknown or the data broken. */
function decodeContent(raw: Uint8Array, coding: string | undefined): Uint8Array {
  const name = coding?.trim().toLowerCase();
  const options = { maxOutputLength: MAX_DECODED_BODY };
  try {
    if (name === "gzip" || name === "x-gzip") return new Uint8Array(gunzipSync(raw, options));
    if (name === "br") return new Uint8Array(brotliDecompressSync(raw, options));
    if (name === "deflate") {
      // RFC 9110's deflate is zlib-wrapped, but some servers send raw deflate.
      try {
        return new Uint8Array(inflateSync(raw, options));
      } catch {
        return new Uint8Array(inflateRawSync(raw, options));
      }
    }
  } catch {
    // Broken or too large: compared as sent.
  }
  return raw;
}

function indexOf(bytes: Uint8Array, pattern: readonly number[], from: number): number {
  const first = pattern[0];
  for (
    let i = bytes.indexOf(first, from);
    i >= 0 && i + pattern.length <= bytes.length;
    i = bytes.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < pattern.length && bytes[i + j] === pattern[j]) j++;
    if (j === pattern.length) return i;
  }
  return -1;
}
