/**
 * Lab agent: a line-echo TCP server. Every line received is answered with `echo <line>` and logged.
 *
 * Usage: deno run -A tcp_echo.ts --port P [--log FILE] [--answer-delay-ms MS] [--banner TEXT]
 *          [--banner-delay-ms MS]
 *
 * Appends one JSON line per line received to FILE, as it arrives: { connection, remote, index, line, at }
 * (`connection` counts accepted connections from 0, `index` counts lines within one, `at` is the
 * arrival in ms since the epoch). With --answer-delay-ms, a slow server: each answer takes that long,
 * one after the other, while lines that come meanwhile are read (and logged) at once. With --banner,
 * the server speaks first (as SMTP or FTP do): `<TEXT>` and a newline, --banner-delay-ms after the
 * accept; a line that arrives before the banner went is logged with `early: true`. Prints "listening"
 * once it accepts connections.
 */
import { parseArgs } from "node:util";
import { ConnReader, JsonLog, sleep, writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    log: { type: "string" },
    "answer-delay-ms": { type: "string", default: "0" },
    banner: { type: "string" },
    "banner-delay-ms": { type: "string", default: "0" },
  },
  strict: true,
}).values;
if (flags.port === undefined) throw new Error("--port is required");
const log = new JsonLog(flags.log);
const answerDelayMs = Number(flags["answer-delay-ms"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NEWLINE = encoder.encode("\n");

async function serve(conn: Deno.Conn, connection: number): Promise<void> {
  const reader = new ConnReader(conn);
  const remoteAddr = conn.remoteAddr as Deno.NetAddr;
  const remote = `${remoteAddr.hostname}:${remoteAddr.port}`;
  let bannerSent = flags.banner === undefined;
  const banner = encoder.encode(`${flags.banner}\n`);
  const bannerDone = bannerSent
    ? Promise.resolve()
    : sleep(Number(flags["banner-delay-ms"])).then(() => writeAll(conn, banner)).then(() => {
      bannerSent = true;
    });
  let answers = bannerDone;
  try {
    for (let index = 0;; index++) {
      const bytes = await reader.readUntil(NEWLINE);
      if (bytes === undefined) break;
      const line = decoder.decode(bytes).replace(/\r?\n$/, "");
      log.write({ connection, remote, index, line, at: Date.now(), ...(bannerSent ? {} : { early: true }) });
      const answer = encoder.encode(`echo ${line}\n`);
      if (answerDelayMs === 0) await bannerDone.then(() => writeAll(conn, answer));
      else answers = answers.then(() => sleep(answerDelayMs)).then(() => writeAll(conn, answer));
    }
    await answers;
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
