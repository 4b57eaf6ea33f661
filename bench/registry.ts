/**
 * intercept's client registry at scale: heap per registration, registration time, and the scan a
 * disconnecting copy costs, for N registrations spread over 4 copy connections.
 *
 * Run: deno run -A --v8-flags=--expose-gc bench/registry.ts [N]   (default 5,000,000)
 */
import v8 from "node:v8";
import { clientKey, ClientRegistry, type ReplySink } from "../src/intercept/registry.ts";

const count = Number(Deno.args[0] ?? 5_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
const heap = () => v8.getHeapStatistics().used_heap_size;
const MIB = 1 << 20;

const peers: ReplySink[] = Array.from({ length: 4 }, () => ({ add: () => true }));
const registry = new ClientRegistry({ maxRegistrations: count, maxRegistrationsPerPeer: count });
gc();
const heapBefore = heap(), rssBefore = Deno.memoryUsage().rss;
const started = performance.now();
// Clients from 198.19.0.0 up, 65,536 ports each, as copy's -c range would give them.
for (let i = 0; i < count; i++) {
  registry.register(peers[i % 4], clientKey(0xc6130000 + (i >>> 16), i & 0xffff));
}
const registered = performance.now();
gc();
const heapBytes = heap() - heapBefore;
console.log(
  `${count} registrations: heap +${(heapBytes / MIB).toFixed(0)} MiB (${
    (heapBytes / count).toFixed(0)
  } B each), ` +
    `RSS +${((Deno.memoryUsage().rss - rssBefore) / MIB).toFixed(0)} MiB, ` +
    `${((registered - started) / 1000).toFixed(1)} s to register`,
);
const dropping = performance.now();
const dropped = registry.dropPeer(peers[0]);
console.log(
  `a copy connection holding ${dropped} disconnects: ${(performance.now() - dropping).toFixed(0)} ms`,
);
