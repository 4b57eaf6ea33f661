/**
 * Lab agent: a tiny server of the Redis protocol (RESP), for comparison in `bytes` mode: `SET key value`,
 * `GET key`, `INCR key`, `PING`, pipelined or not. `--change KEY` makes `GET KEY` answer a different value
 * (a build with a regression on one command).
 *
 * Usage: deno run -A resp_server.ts --port P [--change KEY]
 *
 * Prints "listening" once it accepts connections.
 */
import { parseArgs } from "node:util";
import { writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: { port: { type: "string" }, change: { type: "string" } },
  strict: true,
}).values;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The commands whole in `text` from `at`, and where the rest starts. */
function parse(text: string): { commands: string[][]; rest: string } {
  const commands: string[][] = [];
  let at = 0;
  for (;;) {
    const header = /^\*(\d+)\r\n/.exec(text.slice(at));
    if (header === null) break;
    let cursor = at + header[0].length;
    const args: string[] = [];
    for (let i = 0; i < Number(header[1]); i++) {
      const bulk = /^\$(\d+)\r\n/.exec(text.slice(cursor));
      if (bulk === null || text.length < cursor + bulk[0].length + Number(bulk[1]) + 2) {
        return { commands, rest: text.slice(at) };
      }
      cursor += bulk[0].length;
      args.push(text.slice(cursor, cursor + Number(bulk[1])));
      cursor += Number(bulk[1]) + 2;
    }
    commands.push(args);
    at = cursor;
  }
  return { commands, rest: text.slice(at) };
}

async function serve(conn: Deno.Conn): Promise<void> {
  // Each connection its own keys: two servers given the same sessions answer alike.
  const store = new Map<string, string>();
  const buffer = new Uint8Array(16 * 1024);
  let pending = "";
  try {
    for (;;) {
      const count = await conn.read(buffer);
      if (count === null) break;
      const { commands, rest } = parse(pending + decoder.decode(buffer.subarray(0, count)));
      pending = rest;
      let answer = "";
      for (const [name, key, value] of commands) {
        const command = name.toUpperCase();
        if (command === "PING") answer += "+PONG\r\n";
        else if (command === "SET") {
          store.set(key, value);
          answer += "+OK\r\n";
        } else if (command === "GET") {
          const found = store.get(key);
          const shown = found !== undefined && key === flags.change ? `${found}-changed` : found;
          answer += shown === undefined ? "$-1\r\n" : `$${shown.length}\r\n${shown}\r\n`;
        } else if (command === "INCR") {
          const next = Number(store.get(key) ?? "0") + 1;
          store.set(key, String(next));
          answer += `:${next}\r\n`;
        } else answer += `-ERR unknown command '${name}'\r\n`;
      }
      if (answer !== "") await writeAll(conn, encoder.encode(answer));
    }
  } catch {
    // the client went away
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

const listener = Deno.listen({ port: Number(flags.port), hostname: "0.0.0.0" });
console.log("listening");
for await (const conn of listener) serve(conn);
