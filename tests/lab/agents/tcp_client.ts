/**
 * Lab agent: a line client for `tcp_echo.ts`. Opens one connection, sends lines one at a time and
 * waits for each `echo <line>` answer, then may keep the connection open before closing it.
 *
 * Usage: deno run -A tcp_client.ts --to HOST:PORT [--lines N] [--text PREFIX] [--pause-ms MS]
 *          [--hold-ms MS] [--banner] [--pipeline K] [--log FILE]
 *
 * Line i is `<PREFIX> <i>`. With --banner the server speaks first: its line is read before any is
 * sent. With --pipeline K, lines go K at a time in one write (as a Redis client pipelines), and then
 * their K answers are read. One JSON line per line sent goes to FILE: { index, line, reply, ok }.
 * Prints "connected" once connected and "done <ok>/<N>" at the end; exits 1 if any reply was wrong
 * or missing.
 */
import { parseArgs } from "node:util";
import { ConnReader, JsonLog, sleep, writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    to: { type: "string" },
    lines: { type: "string", default: "1" },
    text: { type: "string", default: "line" },
    "pause-ms": { type: "string", default: "0" },
    "hold-ms": { type: "string", default: "0" },
    banner: { type: "boolean" },
    pipeline: { type: "string", default: "1" },
    log: { type: "string" },
  },
  strict: true,
}).values;
const [hostname, port] = (flags.to ?? "").split(":");
if (!hostname || !port) throw new Error("--to HOST:PORT is required");
const lineCount = Number(flags.lines);
const log = new JsonLog(flags.log);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const conn = await Deno.connect({ hostname, port: Number(port) });
console.log("connected");
const reader = new ConnReader(conn);
if (flags.banner && await reader.readUntil(encoder.encode("\n")) === undefined) {
  throw new Error("closed before the banner");
}
const pipeline = Number(flags.pipeline);
let okCount = 0;
read: for (let first = 0; first < lineCount; first += pipeline) {
  if (first > 0) await sleep(Number(flags["pause-ms"]));
  const lines = [];
  for (let index = first; index < Math.min(first + pipeline, lineCount); index++) {
    lines.push(`${flags.text} ${index}`);
  }
  await writeAll(conn, encoder.encode(lines.map((line) => `${line}\n`).join("")));
  for (const [i, line] of lines.entries()) {
    const answer = await reader.readUntil(encoder.encode("\n"));
    const reply = answer === undefined ? null : decoder.decode(answer).trimEnd();
    const ok = reply === `echo ${line}`;
    if (ok) okCount++;
    log.write({ index: first + i, line, reply, ok });
    if (answer === undefined) break read;
  }
}
await sleep(Number(flags["hold-ms"]));
conn.close();
console.log(`done ${okCount}/${lineCount}`);
Deno.exit(okCount === lineCount ? 0 : 1);
