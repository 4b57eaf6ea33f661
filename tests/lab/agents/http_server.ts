/**
 * Lab agent: an HTTP/1.1 server whose every answer is derived from the request alone, so two servers
 * given the same requests (the online host and the target) answer and log the same.
 *
 * Usage: deno run -A http_server.ts --port P [--log FILE] [--tag TEXT]
 *
 * Answers `ok <method> <path> <bodyLength> <bodySha256>` (after `TEXT ` when tagged, so a client that
 * gets a tagged answer knows it came from the wrong server); appends one JSON line per request to FILE
 * before answering: { method, path, bodyLength, bodySha256, requestId, remote }. Prints "listening"
 * once it accepts connections. A request whose body cannot be read (the connection closed or reset
 * before its end) is not logged there but named on stderr, which the lab shows when a test fails.
 */
import { parseArgs } from "node:util";
import { JsonLog, sha256Hex } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "80" },
    // "::" takes IPv6 and IPv4 clients alike.
    hostname: { type: "string", default: "0.0.0.0" },
    log: { type: "string" },
    tag: { type: "string" },
  },
  strict: true,
}).values;
const log = new JsonLog(flags.log);

Deno.serve({
  port: Number(flags.port),
  hostname: flags.hostname,
  onListen: () => console.log("listening"),
}, async (request, info) => {
  const url = new URL(request.url);
  const path = url.pathname + url.search;
  const requestId = request.headers.get("x-request-id");
  const remote = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
  let body: Uint8Array;
  try {
    body = new Uint8Array(await request.arrayBuffer());
  } catch (error) {
    console.error(`request ${requestId} ${request.method} ${path} from ${remote} unread: ${error}`);
    return new Response(null, { status: 400 });
  }
  const bodySha256 = await sha256Hex(body);
  log.write({
    method: request.method,
    path,
    bodyLength: body.length,
    bodySha256,
    requestId,
    remote,
  });
  const tag = flags.tag === undefined ? "" : `${flags.tag} `;
  return new Response(`${tag}ok ${request.method} ${path} ${body.length} ${bodySha256}`);
});
