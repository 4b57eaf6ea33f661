/** HTTP answers for the comparison tests. */
import { gzipSync } from "node:zlib";

const encoder = new TextEncoder();

/** Bytes of `text`. */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A response with `body` and the given headers (Content-Length added unless chunked). */
export function response(
  status: number,
  headers: Record<string, string>,
  body: string | Uint8Array,
): Uint8Array {
  const payload = typeof body === "string" ? bytes(body) : body;
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (!Object.keys(headers).some((k) => k.toLowerCase() === "transfer-encoding")) {
    lines.push(`Content-Length: ${payload.length}`);
  }
  return concat([bytes(lines.join("\r\n") + "\r\n\r\n"), payload]);
}

/** `body` in chunks of `size` bytes, chunked-coded. */
export function chunked(body: Uint8Array, size: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += size) {
    const chunk = body.subarray(at, at + size);
    parts.push(bytes(`${chunk.length.toString(16)}\r\n`), chunk, bytes("\r\n"));
  }
  parts.push(bytes("0\r\n\r\n"));
  return concat(parts);
}

/** `text` gzipped. */
export function gzip(text: string): Uint8Array {
  return new Uint8Array(gzipSync(bytes(text)));
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
