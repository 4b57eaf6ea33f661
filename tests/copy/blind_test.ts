/** A copy without intercept says so while sessions wait, every few seconds, unless -L. */
import assert from "node:assert/strict";
import { BLIND_REPEAT_MS, BlindAlarm } from "../../src/copy/blind.ts";
import { parseCopyOptions } from "../../src/copy/options.ts";

function recorder() {
  const warnings: string[] = [];
  return { warnings, log: { warn: (line: string) => warnings.push(line) } };
}

Deno.test("no intercept and sessions waiting: a warning at once, then every few seconds", () => {
  const { warnings, log } = recorder();
  const alarm = new BlindAlarm(false);
  assert.equal(alarm.check(0, 3, 0, log), true);
  assert.equal(alarm.check(0, 3, 1000, log), true);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^no intercept connected: 3 session\(s\) wait for the target's replies/);
  alarm.check(0, 4, BLIND_REPEAT_MS, log);
  assert.equal(warnings.length, 2);
  assert.ok(BLIND_REPEAT_MS <= 10_000);
});

Deno.test("no warning with an intercept connected, or with no session waiting", () => {
  const { warnings, log } = recorder();
  const alarm = new BlindAlarm(false);
  assert.equal(alarm.check(1, 3, 0, log), false);
  assert.equal(alarm.check(0, 0, 1, log), false);
  assert.deepEqual(warnings, []);
  // Blind again after a recovery: said again at once.
  alarm.check(0, 1, 2, log);
  alarm.check(1, 1, 3, log);
  alarm.check(0, 1, 4, log);
  assert.equal(warnings.length, 2);
});

Deno.test("-L (--lonely) keeps copy quiet while blind", () => {
  const { warnings, log } = recorder();
  const alarm = new BlindAlarm(true);
  assert.equal(alarm.check(0, 3, 0, log), true);
  assert.equal(alarm.check(0, 3, 60_000, log), true);
  assert.deepEqual(warnings, []);
  const base = ["-x", "80-198.18.0.2:8080", "-s", "198.18.0.3"];
  assert.equal(parseCopyOptions(base).lonely, false);
  assert.equal(parseCopyOptions([...base, "-L"]).lonely, true);
  assert.equal(parseCopyOptions([...base, "--lonely"]).lonely, true);
});
