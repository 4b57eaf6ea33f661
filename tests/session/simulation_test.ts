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
      // About 15% of the clients end with a RST, which the target gets after all they sent.
      const { completed = 0, "reset-by-client": reset = 0, ...others } = report.outcomes;
      assert.deepEqual(others, {});
      assert.equal(completed + reset, report.sessions);
      assert.ok(reset > 0.1 * report.sessions && reset < 0.2 * report.sessions, `${reset} resets`);
      // Most sessions ran in a Session object an earlier one ended in (recycled), and delivered exactly.
      assert.ok(report.sessionObjects < report.sessions / 2, `${report.sessionObjects} session objects`);
    });
  }
}
