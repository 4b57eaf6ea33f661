import assert from "node:assert/strict";
import { type GuardedTable, MemoryGuard, processMemory } from "../../src/copy/memory_guard.ts";

const MB = 1 << 20;

/** A process whose garbage collections bring resident memory down to `live` MB and take `collectMs`. */
function fakeProcess(rssMb: number, liveMb: number) {
  const process = {
    rss: rssMb * MB,
    live: liveMb * MB,
    collectMs: 20,
    collectedAt: [] as number[],
    now: 0,
    warnings: [] as string[],
  };
  const memory = {
    rss: () => process.rss,
    collect: () => {
      process.collectedAt.push(process.now);
      process.rss = Math.min(process.rss, process.live);
      return process.collectMs;
    },
  };
  const log = { warn: (message: string) => process.warnings.push(message) };
  const guard = new MemoryGuard(100 * MB, memory, log);
  /** The guard's look at `sessions` at `now` ms; the resident bytes it ends with. */
  const check = (sessions: GuardedTable, now: number) => {
    process.now = now;
    return guard.check(sessions, process.rss, now);
  };
  return { process, guard, check };
}

function table(): GuardedTable {
  return { paused: false, counters: { sessionsRefusedWhilePaused: 0 } };
}

Deno.test("below the limit the guard neither collects nor pauses", () => {
  const { process, check } = fakeProcess(99, 10);
  const sessions = table();
  for (let second = 0; second < 5; second++) assert.equal(check(sessions, second * 1000), 99 * MB);
  assert.deepEqual(process.collectedAt, []);
  assert.equal(sessions.paused, false);
});

Deno.test("above the limit a collection that frees enough keeps sessions coming", () => {
  const { process, guard, check } = fakeProcess(130, 60);
  const sessions = table();
  assert.equal(check(sessions, 0), 60 * MB);
  assert.equal(sessions.paused, false);
  assert.equal(guard.collections, 1);
  assert.equal(guard.pauses, 0);
  assert.deepEqual(process.warnings, []);
});

Deno.test("live memory above the limit pauses, and collections back off to every 32 s", () => {
  const { process, guard, check } = fakeProcess(130, 125);
  const sessions = table();
  for (let second = 0; second <= 120; second++) check(sessions, second * 1000);
  assert.equal(sessions.paused, true);
  assert.equal(guard.pauses, 1);
  // The first collection frees 5 MB, the others nothing: each waits twice as long, up to 32 s.
  assert.deepEqual(process.collectedAt, [0, 2000, 6000, 14_000, 30_000, 62_000, 94_000]);
  assert.match(process.warnings[0], /above --max-memory 100 MB after a garbage collection/);
});

Deno.test("while paused, a collection that gets below 90% lets sessions in again", () => {
  const { process, check } = fakeProcess(130, 125);
  const sessions = table();
  check(sessions, 0);
  assert.equal(sessions.paused, true);
  // The open sessions end; their memory is garbage until collected.
  process.live = 70 * MB;
  assert.equal(check(sessions, 1000), 125 * MB); // backing off: no collection yet
  assert.equal(sessions.paused, true);
  assert.equal(check(sessions, 2000), 70 * MB);
  assert.equal(sessions.paused, false);
  assert.match(process.warnings[1], /back below 90 MB: taking new sessions again/);
  // Freeing much brings the wait back to a second.
  process.rss = 120 * MB;
  check(sessions, 3000);
  assert.deepEqual(process.collectedAt, [0, 2000, 3000]);
});

Deno.test("collections take at most a tenth of the time; above the limit meanwhile, sessions wait", () => {
  const { process, guard, check } = fakeProcess(130, 60);
  process.collectMs = 300;
  const sessions = table();
  const paused: boolean[] = [];
  for (let second = 0; second < 8; second++) {
    check(sessions, second * 1000);
    paused.push(sessions.paused);
    process.rss += 30 * MB; // garbage of the next second
  }
  assert.deepEqual(process.collectedAt, [0, 3000, 6000]);
  assert.deepEqual(paused, [false, false, true, false, false, true, false, false]);
  assert.equal(guard.pauses, 2);
});

Deno.test("the process collector really collects and returns memory", async () => {
  const memory = await processMemory();
  let garbage: number[][] | undefined = Array.from({ length: 200_000 }, (_, i) => [i, i + 1, i + 2]);
  assert.equal(garbage.length, 200_000);
  garbage = undefined;
  const before = Deno.memoryUsage().heapUsed;
  assert.ok(memory.collect() > 0);
  const after = Deno.memoryUsage().heapUsed;
  assert.ok(after < before - 10 * MB, `heap used ${before} before, ${after} after`);
  assert.ok(memory.rss() > 0);
});
