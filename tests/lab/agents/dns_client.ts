/**
 * Lab agent: a DNS client. Sends `--queries` A queries for `q<i>.<zone>` (ids 1..N) over UDP to
 * `--to HOST:PORT`, a few at a time, and waits for each answer (one retry after a second).
 *
 * Usage: deno run -A dns_client.ts --to HOST:PORT (IPv6: [HOST]:PORT) [--queries N] [--zone lab.test] [--log FILE]
 *
 * One JSON line per query sent goes to FILE: { id, name, query (hex of the datagram), answered }.
 * Prints "done <answered>/<N>" and exits 1 if any query went unanswered.
 */
import { createSocket } from "node:dgram";
import { parseArgs } from "node:util";
import { JsonLog } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    to: { type: "string" },
    queries: { type: "string", default: "100" },
    zone: { type: "string", default: "lab.test" },
    log: { type: "string" },
  },
  strict: true,
}).values;
const to = flags.to ?? "";
const colon = to.lastIndexOf(":");
const host = to.slice(0, Math.max(colon, 0)).replace(/^\[(.*)\]$/, "$1");
const port = to.slice(colon + 1);
if (!host || colon < 0 || !port) throw new Error("--to HOST:PORT is required");
const count = Number(flags.queries);
const log = new JsonLog(flags.log);
const IN_FLIGHT = 8;
const RETRY_MS = 1000;

/** A standard query (RD set) for the A record of `name`. */
function query(id: number, name: string): Uint8Array {
  const labels = name.split(".").flatMap((label) => [label.length, ...new TextEncoder().encode(label)]);
  return new Uint8Array([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
const waiting = new Map<number, () => void>();
socket.on("message", (message: Uint8Array) => {
  const id = (message[0] << 8) | message[1];
  waiting.get(id)?.();
});
await new Promise<void>((resolve) => socket.bind(0, resolve));

async function ask(id: number): Promise<void> {
  const name = `q${id}.${flags.zone}`;
  const bytes = query(id, name);
  let answered = false;
  for (let attempt = 0; attempt < 2 && !answered; attempt++) {
    answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), RETRY_MS);
      waiting.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.send(bytes, Number(port), host);
    });
    log.write({ id, name, query: [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""), answered });
  }
  waiting.delete(id);
  if (answered) done++;
}

let done = 0;
let next = 1;
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next <= count) await ask(next++);
}));
socket.close();
log.close();
console.log(`done ${done}/${count}`);
Deno.exit(done === count ? 0 : 1);
