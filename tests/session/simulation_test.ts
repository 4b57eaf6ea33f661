import assert from "node:assert/strict";
import { simulate } from "./sim.ts";

const calm = { loss: 0, duplicate: 0, jitterMs: 0, captureDuplicate: 0, captureReorder: 0 };
const rough = { loss: 0.05, duplicate: 0.03, jitterMs: 8, captureDuplicate: 0.05, captureReorder: 0.05 };

for (
  const [name, faults] of [["a perfect network", calm], [
    "loss, duplication, reordering and delay",
    rough,
  ]] as const
) {
  for (const seed of [1, 2, 3]) {
    Deno.test(`every copied session delivers the client's bytes exactly once, in order, over ${name} (seed ${seed})`, () => {
      const report = simulate(seed, 1000, faults);
      assert.deepEqual(report.violations.slice(0, 10), []);
      assert.equal(report.undelivered, 0);
      assert.deepEqual(report.outcomes, { completed: report.sessions });
    });
  }
}
