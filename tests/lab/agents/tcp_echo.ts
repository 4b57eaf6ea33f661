/**
 * Lab agent: a line-echo TCP server. Every line received is answered with `echo <line>` and logged.
 *
 * Usage: deno run -A tcp_echo.ts --port P [--log FILE]
 *
 * Appends one JSON line per line received to FILE: { connection, remote, index, line }, where
 * `connection` counts accepted connections from 0 and `index` counts lines within one. Prints
 * "listening" once it accepts connections.
 */
import { parseArgs } from "node:util";
import { ConnReader, JsonLog, writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: { port: { type: "string" }, log: { type: "string" } },
  strict: true,
}).values;
if (flags.port === undefined) throw new Error("--port is required");
const log = new JsonLog(flags.log);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = encoder.encode("\n");

async function serve(conn: Deno.Conn, connection: number): Promise<void> {
  const reader = new ConnReader(conn);
  const remoteAddr = conn.remoteAddr as Deno.NetAddr;
  const remote = `${remoteAddr.hostname}:${remoteAddr.port}`;
  try {
    for (let index = 0;; index++) {
      const bytes = await reader.readUntil(NEWLINE);
      if (bytes === undefined) break;
      const line = decoder.decode(bytes).replace(/\r?\n$/, "");
      log.write({ connection, remote, index, line });
      await writeAll(conn, encoder.encode(`echo ${line}\n`));
    }
  } catch {
    // A reset connection ends like a closed one: what arrived is logged.
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

const listener = Deno.listen({ port: Number(flags.port), hostname: "0.0.0.0" });
console.log("listening");
let connections = 0;
for await (const conn of listener) serve(conn, connections++);
