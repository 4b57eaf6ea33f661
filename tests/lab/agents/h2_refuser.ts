/**
 * Lab agent: an HTTP/2 server (h2c, prior knowledge) that refuses streams on purpose. Each request's
 * stream is answered `:status 200` with no body, except every `--refuse-every`th stream of a connection,
 * which gets RST_STREAM REFUSED_STREAM, as a server past its limits would. Header blocks are not decoded
 * (the answer is one indexed field of HPACK's static table), which is all a refusing target needs.
 *
 * Usage: deno run -A h2_refuser.ts --port P --log FILE [--refuse-every N] [--max-streams N]
 *
 * Appends one JSON line per stream opened to FILE: { connection, stream, refused }. Prints "listening"
 * once it accepts connections.
 */
import { parseArgs } from "node:util";
import { ConnReader, JsonLog, writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string" },
    log: { type: "string" },
    "refuse-every": { type: "string", default: "4" },
    "max-streams": { type: "string", default: "100" },
  },
  strict: true,
}).values;
if (flags.port === undefined) throw new Error("--port is required");
const log = new JsonLog(flags.log);
const refuseEvery = Number(flags["refuse-every"]);
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
const REFUSED_STREAM = 0x7;
const STATUS_200 = new Uint8Array([0x88]); // HPACK: static table entry 8, ":status: 200"

function frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array()) {
  const bytes = new Uint8Array(9 + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, payload.length << 8 | type);
  bytes[4] = flags;
  view.setUint32(5, streamId);
  bytes.set(payload, 9);
  return bytes;
}

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

async function serve(conn: Deno.Conn, connection: number): Promise<void> {
  const reader = new ConnReader(conn);
  try {
    const preface = await reader.readExactly(PREFACE.length);
    if (preface === undefined || !preface.every((byte, i) => byte === PREFACE[i])) return;
    const settings = new Uint8Array(6);
    new DataView(settings.buffer).setUint16(0, 0x3); // SETTINGS_MAX_CONCURRENT_STREAMS
    new DataView(settings.buffer).setUint32(2, Number(flags["max-streams"]));
    await writeAll(conn, frame(SETTINGS, 0, 0, settings));
    let streams = 0;
    for (;;) {
      const header = await reader.readExactly(9);
      if (header === undefined) return;
      const view = new DataView(header.buffer, header.byteOffset);
      const length = view.getUint32(0) >>> 8;
      const [type, frameFlags] = [header[3], header[4]];
      const streamId = view.getUint32(5) & 0x7fffffff;
      const payload = length === 0 ? new Uint8Array() : await reader.readExactly(length);
      if (payload === undefined) return;
      if (type === SETTINGS && !(frameFlags & ACK)) await writeAll(conn, frame(SETTINGS, ACK, 0));
      else if (type === PING && !(frameFlags & ACK)) await writeAll(conn, frame(PING, ACK, 0, payload));
      else if (type === HEADERS) {
        const refused = ++streams % refuseEvery === 0;
        log.write({ connection, stream: streamId, refused });
        await writeAll(
          conn,
          refused
            ? frame(RST_STREAM, 0, streamId, u32(REFUSED_STREAM))
            : frame(HEADERS, END_HEADERS | END_STREAM, streamId, STATUS_200),
        );
      }
    }
  } catch {
    // A reset connection ends like a closed one.
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
let connections = 0;
for await (const conn of listener) serve(conn, connections++);
