/**
 * Lab agent: a line client for `tcp_echo.ts`. Opens one connection, sends lines one at a time and
 * waits for each `echo <line>` answer, then may keep the connection open before closing it.
 *
 * Usage: deno run -A tcp_client.ts --to HOST:PORT [--lines N] [--text PREFIX] [--pause-ms MS]
 *          [--hold-ms MS] [--log FILE]
 *
 * Line i is `<PREFIX> <i>`. One JSON line per line sent goes to FILE: { index, line, reply, ok }.
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
let okCount = 0;
for (let index = 0; index < lineCount; index++) {
  if (index > 0) await sleep(Number(flags["pause-ms"]));
  const line = `${flags.text} ${index}`;
  await writeAll(conn, encoder.encode(`${line}\n`));
  const answer = await reader.readUntil(encoder.encode("\n"));
  const reply = answer === undefined ? null : decoder.decode(answer).trimEnd();
  const ok = reply === `echo ${line}`;
  if (ok) okCount++;
  log.write({ index, line, reply, ok });
  if (answer === undefined) break;
}
await sleep(Number(flags["hold-ms"]));
conn.close();
console.log(`done ${okCount}/${lineCount}`);
Deno.exit(okCount === lineCount ? 0 : 1);
