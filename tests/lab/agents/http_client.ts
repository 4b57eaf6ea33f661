/**
 * Lab agent: an HTTP/1.1 client over raw TCP, so whether requests share a connection is exact.
 *
 * Usage: deno run -A http_client.ts --url http://198.18.0.2:80 [--requests N] [--connections C]
 *          [--keep-alive | --close] [--body-sizes 0,100,65536] [--think-ms MS] [--timeout-ms MS]
 *          [--id-prefix TEXT] [--log FILE]
 *
 * Sends N requests over C concurrent connections (request i goes to connection i mod C). A request
 * whose body size is 0 is a GET, others are POSTs with deterministic bytes derived from the request
 * id, which travels in `x-request-id`. With --keep-alive (the default) each connection carries its
 * requests in turn; with --close every request opens a connection of its own. Every response is read
 * in full and checked against `ok <method> <path> <bodyLength> <bodySha256>`. One JSON line per
 * request goes to FILE: { id, method, path, bodyLength, bodySha256, status, responseBody, ok, error? }.
 * Prints "done <ok>/<total>" and exits 1 if any request failed.
 */
import { parseArgs } from "node:util";
import { ConnReader, deterministicBytes, JsonLog, sha256Hex, sleep, writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string" },
    requests: { type: "string", default: "10" },
    connections: { type: "string", default: "1" },
    "keep-alive": { type: "boolean" },
    close: { type: "boolean" },
    "body-sizes": { type: "string", default: "0" },
    "think-ms": { type: "string", default: "0" },
    "timeout-ms": { type: "string", default: "10000" },
    "id-prefix": { type: "string", default: "req" },
    log: { type: "string" },
  },
  strict: true,
}).values;
if (flags.url === undefined) throw new Error("--url is required");
const target = new URL(flags.url);
/** The host to connect to: an IPv6 URL's host is in brackets. */
const hostname = target.hostname.replace(/^\[(.*)\]$/, "$1");
const requestCount = Number(flags.requests);
const connectionCount = Math.min(Number(flags.connections), requestCount);
const keepAlive = !flags.close;
const bodySizes = flags["body-sizes"].split(",").map(Number);
const thinkMs = Number(flags["think-ms"]);
const timeoutMs = Number(flags["timeout-ms"]);
const log = new JsonLog(flags.log);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEADER_END = encoder.encode("\r\n\r\n");

interface Exchange {
  readonly status: number;
  readonly body: string;
  readonly serverCloses: boolean;
}

async function exchange(reader: ConnReader, head: string, body: Uint8Array): Promise<Exchange> {
  await writeAll(reader.conn, encoder.encode(head));
  if (body.length > 0) await writeAll(reader.conn, body);
  const headBytes = await reader.readUntil(HEADER_END);
  if (headBytes === undefined) throw new Error("connection closed before the response head");
  const [statusLine, ...headerLines] = decoder.decode(headBytes).trimEnd().split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!status) throw new Error(`bad status line "${statusLine}"`);
  const headers = new Map(headerLines.map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
  }));
  const length = headers.get("content-length");
  if (length === undefined) throw new Error("response has no content-length");
  const responseBody = await reader.readExactly(Number(length));
  if (responseBody === undefined) throw new Error("connection closed inside the response body");
  return {
    status,
    body: decoder.decode(responseBody),
    serverCloses: headers.get("connection")?.toLowerCase() === "close",
  };
}

function withTimeout<T>(promise: Promise<T>, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let okCount = 0;

/** Sends requests connection, connection + C, ... in turn; reconnects after a failure or a close. */
async function runConnection(connection: number): Promise<void> {
  let reader: ConnReader | undefined;
  const hangUp = () => {
    try {
      reader?.conn.close();
    } catch { /* already closed */ }
    reader = undefined;
  };
  for (let index = connection; index < requestCount; index += connectionCount) {
    if (index !== connection && thinkMs > 0) await sleep(thinkMs);
    const id = `${flags["id-prefix"]}-${index}`;
    const size = bodySizes[index % bodySizes.length];
    const method = size === 0 ? "GET" : "POST";
    const path = `/item/${index}?size=${size}`;
    const body = deterministicBytes(id, size);
    const bodySha256 = await sha256Hex(body);
    const head = [
      `${method} ${path} HTTP/1.1`,
      `Host: ${target.host}`,
      `X-Request-Id: ${id}`,
      ...(method === "POST" ? [`Content-Length: ${size}`, "Content-Type: application/octet-stream"] : []),
      `Connection: ${keepAlive ? "keep-alive" : "close"}`,
      "",
      "",
    ].join("\r\n");
    const record: Record<string, unknown> = { id, method, path, bodyLength: size, bodySha256 };
    try {
      reader ??= new ConnReader(
        await Deno.connect({ hostname: hostname, port: Number(target.port || 80) }),
      );
      const result = await withTimeout(exchange(reader, head, body), hangUp);
      const expected = `ok ${method} ${path} ${size} ${bodySha256}`;
      Object.assign(record, {
        status: result.status,
        responseBody: result.body,
        ok: result.status === 200 && result.body === expected,
      });
      if (!keepAlive || result.serverCloses) {
        // The server closes first, as HTTP servers do: the client's port is free again at once, not
        // held in TIME_WAIT.
        await withTimeout(reader.untilEnd(), hangUp);
        hangUp();
      }
    } catch (error) {
      Object.assign(record, { ok: false, error: error instanceof Error ? error.message : String(error) });
      hangUp();
    }
    if (record.ok) okCount++;
    log.write(record);
  }
  hangUp();
}

await Promise.all([...Array(connectionCount).keys()].map(runConnection));
log.close();
console.log(`done ${okCount}/${requestCount}`);
Deno.exit(okCount === requestCount ? 0 : 1);
