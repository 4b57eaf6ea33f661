/**
 * Micro-benchmark of one session's reassembly (`ClientStream`) under hostile segment orders: one-byte
 * segments after a hole, in order, in reverse and shuffled, then the hole filled. Prints, per order, the
 * time per segment, the longest single `add` (how long one packet can hold copy's event loop) and the
 * tree nodes visited per segment.
 *
 * Run: deno run -A bench/reassembly.ts [--segments N]
 */
import { parseArgs } from "node:util";
import { ClientStream, MAX_OUT_OF_ORDER_PIECES } from "../src/session/stream.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { segments: { type: "string", default: "100000" } },
});
const segments = Number(values.segments);

function order(kind: string): number[] {
  const offsets = Array.from({ length: segments }, (_, i) => i + 2); // offset 1 is the hole
  if (kind === "reverse") offsets.reverse();
  if (kind === "shuffled") {
    let x = 0x2545f491;
    for (let i = offsets.length - 1; i > 0; i--) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const j = (x >>> 0) % (i + 1);
      [offsets[i], offsets[j]] = [offsets[j], offsets[i]];
    }
  }
  return offsets;
}

const byte = new Uint8Array([0x41]);
console.log(`${segments} one-byte segments after a hole; piece cap ${MAX_OUT_OF_ORDER_PIECES} unless lifted`);
console.log("order      cap     taken  µs/segment  longest add ms  fill ms  visits/segment  outcome");
for (const kind of ["in-order", "reverse", "shuffled"]) {
  for (const lifted of [false, true]) {
    const stream = new ClientStream(1 << 30, lifted ? segments : MAX_OUT_OF_ORDER_PIECES);
    let longest = 0;
    let taken = 0;
    let outcome = "ok";
    const started = performance.now();
    // Distinct acks keep pieces apart (the worst case); in order, one ack lets them share pieces.
    for (const offset of order(kind)) {
      const before = performance.now();
      const refused = stream.add(offset, byte, kind === "in-order" ? 1 : offset, 0);
      longest = Math.max(longest, performance.now() - before);
      if (refused !== undefined) {
        outcome = refused;
        break;
      }
      taken++;
    }
    const added = performance.now();
    if (outcome === "ok") stream.add(1, byte, 1, 0);
    const filled = performance.now();
    console.log(
      [
        kind.padEnd(9),
        (lifted ? "lifted" : "4096").padEnd(6),
        String(taken).padStart(7),
        ((added - started) * 1000 / Math.max(taken, 1)).toFixed(2).padStart(10),
        longest.toFixed(3).padStart(14),
        (filled - added).toFixed(1).padStart(8),
        (stream.visits / Math.max(taken, 1)).toFixed(1).padStart(14),
        ` ${outcome}`,
      ].join("  "),
    );
  }
}
