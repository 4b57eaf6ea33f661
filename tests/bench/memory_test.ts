/** Which mapping of a process is what (bench/memory.ts), for the bench's memory split. */
import assert from "node:assert/strict";
import { splitMemory } from "../../bench/memory.ts";

const DENO = "/usr/lib/node_modules/deno/deno";

/** One smaps entry: its header line and the Rss line (the only field the split reads). */
function entry(range: string, perms: string, path: string, rssKb: number): string {
  return `${range} ${perms} 00000000 00:00 0 ${path}\nSize: 0 kB\nRss: ${rssKb} kB\nAnonymous: 0 kB\n`;
}

// Mappings as a copy at ~10k new connections/s has them (bench/RESULTS.md, twelfth round), fewer of each.
const SMAPS = [
  entry("1b2ac8c0000-1b2ac900000", "rw-p", "", 256), // a V8 heap page, far below the executable
  entry("393400000000-393402000000", "---p", "", 0),
  entry("393402000000-393402060000", "rw-p", "", 16), // V8's own reservation, also below
  entry("55e5d2970000-55e5d44fe000", "r--p", DENO, 12916),
  entry("55e5d4774000-55e5d8468000", "r-xp", DENO, 25544),
  entry("55e5d8468000-55e5d86da000", "rw-p", DENO, 2504),
  entry("55e60d736000-55e60e148000", "rw-p", "[heap]", 10104),
  entry("7f7f8c000000-7f7fabdc0000", "rwxp", "", 1068), // V8's code range, 64 MiB-aligned too
  entry("7f7fb4000000-7f7fb4381000", "rw-p", "", 3544), // an arena's head ...
  entry("7f7fb4381000-7f7fb8000000", "---p", "", 0), // ... and the rest of its 64 MiB
  entry("7f7fb8000000-7f7fbc000000", "rw-p", "", 9000), // an arena grown to all of its 64 MiB
  entry("7f7fc112c000-7f7fc212c000", "rw-s", "socket:[86556511]", 16384),
  entry("7f7fc212c000-7f7fc212d000", "---p", "", 0), // a thread's guard page ...
  entry("7f7fc212d000-7f7fc232d000", "rw-p", "", 12), // ... and its stack
  entry("7f7fc32bc000-7f7fc3327000", "rw-p", "", 428), // a large block malloc mapped by itself
  entry("7f7fc3327000-7f7fc3328000", "---p", "", 0), // a page of ---p, not 4 KiB below a rw-p
  entry("7f7fc3329000-7f7fc3339000", "rw-p", "", 64), // not adjacent: not a stack
  entry("7f7fcca4f000-7f7fccba5000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 1284),
  entry("7f7fccd2d000-7f7fccd2f000", "r-xp", "[vdso]", 4),
  entry("7ffd104e2000-7ffd1054b000", "rw-p", "[stack]", 420),
].join("");

Deno.test("splitMemory names each mapping's resident kB, and the parts add up to the RSS", () => {
  const split = splitMemory(SMAPS, DENO);
  assert.deepEqual(split, {
    executable: 12916 + 25544 + 2504,
    captureRing: 16384,
    otherFiles: 1284 + 4,
    v8Heap: 256 + 16,
    v8Code: 1068,
    mallocMain: 10104,
    mallocArenas: 3544 + 9000,
    mallocArenaCount: 2,
    stacks: 12 + 420,
    otherAnonymous: 428 + 64,
  });
  const rss = [...SMAPS.matchAll(/^Rss:\s+(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
  const { mallocArenaCount: _, ...parts } = split;
  assert.deepEqual(Object.values(parts).reduce((sum, kb) => sum + kb, 0), rss);
});

Deno.test("splitMemory: a 64 MiB-aligned mapping whose rest is not its arena's is not an arena", () => {
  const smaps = entry("7f7fb4000000-7f7fb4381000", "rw-p", "", 100) +
    entry("7f7fb4381000-7f7fb4400000", "---p", "", 0); // ends short of the 64 MiB
  assert.deepEqual(splitMemory(smaps, DENO).mallocArenas, 0);
  assert.deepEqual(splitMemory(smaps, DENO).otherAnonymous, 100);
});
