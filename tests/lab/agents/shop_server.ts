/**
 * Lab agent: a small JSON "shop" over HTTP/1.1, for response comparison. Every answer but one derives from
 * the request, so two instances answer alike; `--change` makes one endpoint answer differently (a new
 * build with a regression), and `/token` answers a fresh random id every time (noise).
 *
 * Usage: deno run -A shop_server.ts --port P [--change price] [--log FILE]
 *
 * Endpoints: `GET /users/N` (JSON), `GET /price/N` (JSON; +1 with `--change price`), `GET /token` (JSON with
 * a random id), `GET /gzip/N` (a gzip-coded text), `GET /chunked/N` (a chunked JSON body, sent in parts),
 * anything else 404. Appends one JSON line per request to FILE. Prints "listening" once it accepts.
 */
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { JsonLog } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: { port: { type: "string", default: "80" }, change: { type: "string" }, log: { type: "string" } },
  strict: true,
}).values;
const log = new JsonLog(flags.log);
const encoder = new TextEncoder();

function json(body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { headers: { "content-type": "application/json", ...headers } });
}

Deno.serve(
  { port: Number(flags.port), hostname: "::", onListen: () => console.log("listening") },
  (request) => {
    const url = new URL(request.url);
    log.write({ method: request.method, path: url.pathname });
    const [, kind, id] = url.pathname.split("/");
    const n = Number(id);
    switch (kind) {
      case "users":
        return json({ id: n, name: `user ${n}`, tags: ["a", "b"] }, { "x-request-id": crypto.randomUUID() });
      case "price":
        return json({ item: n, price: n * 10 + (flags.change === "price" ? 1 : 0), currency: "EUR" });
      case "token":
        return json({ token: crypto.randomUUID(), ok: true });
      case "gzip":
        return new Response(new Uint8Array(gzipSync(encoder.encode(`line ${n}\n`.repeat(200)))), {
          headers: { "content-type": "text/plain", "content-encoding": "gzip" },
        });
      case "chunked": {
        // A stream has no length: Deno sends it chunked, each enqueue a chunk.
        const parts = [
          `{"n":${n},`,
          `"items":[`,
          Array.from({ length: 50 }, (_, i) => i * n).join(","),
          "]}",
        ];
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const part = parts.shift();
            if (part === undefined) return controller.close();
            await new Promise((resolve) => setTimeout(resolve, 1));
            controller.enqueue(encoder.encode(part));
          },
        });
        return new Response(body, { headers: { "content-type": "application/json" } });
      }
      default:
        return new Response("not found\n", { status: 404 });
    }
  },
);
