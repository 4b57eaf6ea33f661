/**
 * Lab agent: GETs a list of paths from an HTTP server, on one keep-alive connection, a connection each, or
 * all pipelined in one write on one connection.
 *
 * Usage: deno run -A http_paths.ts --to HOST:PORT (IPv6: [HOST]:PORT) --paths P,P,.. [--mode keepalive|close|pipeline]
 *
 * Prints "done N" with the number of answers read.
 */
import { parseArgs } from "node:util";
import { writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    to: { type: "string" },
    paths: { type: "string" },
    mode: { type: "string", default: "keepalive" },
  },
  strict: true,
}).values;
if (flags.to === undefined || flags.paths === undefined) throw new Error("--to and --paths are required");
const colon = flags.to.lastIndexOf(":");
const host = flags.to.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
const port = flags.to.slice(colon + 1);
const paths = flags.paths.split(",");

let answers = 0;
if (flags.mode === "pipeline") {
  const connection = await Deno.connect({ hostname: host, port: Number(port) });
  const text = paths.map((path, i) =>
    `GET ${path} HTTP/1.1\r\nHost: shop\r\n${i === paths.length - 1 ? "Connection: close\r\n" : ""}\r\n`
  ).join("");
  await writeAll(connection, new TextEncoder().encode(text));
  const buffer = new Uint8Array(64 * 1024);
  let received = "";
  for (let count; (count = await connection.read(buffer)) !== null;) {
    received += new TextDecoder("latin1").decode(buffer.subarray(0, count));
  }
  connection.close();
  answers = received.split("HTTP/1.1 ").length - 1;
} else {
  for (const path of paths) {
    const headers: Record<string, string> = flags.mode === "close" ? { connection: "close" } : {};
    const response = await fetch(`http://${flags.to}${path}`, { headers });
    await response.arrayBuffer();
    answers++;
  }
}
console.log(`done ${answers}`);
