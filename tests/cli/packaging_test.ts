/**
 * The ways to run tcpshadow (from source, compiled, in Docker) give it the same permissions and V8 flags,
 * and the Docker image the task's environment (a compiled binary cannot carry one: README says to set it).
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);
const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks as Record<string, string>;
const dockerfile = await Deno.readTextFile(new URL("Dockerfile", root));

/** The `--allow-*` and `--v8-flags` arguments of a command line, sorted. */
function runtimeFlags(words: string[]): string[] {
  return words.filter((word) => word.startsWith("--allow-") || word.startsWith("--v8-flags")).sort();
}

Deno.test("deno task tcpshadow, deno task compile and the Docker image run with the same runtime flags", () => {
  const fromSource = runtimeFlags(tasks.tcpshadow.split(/\s+/));
  assert.ok(fromSource.includes("--allow-ffi"), "libpcap and libc are reachable");
  assert.deepEqual(runtimeFlags(tasks.compile.split(/\s+/)), fromSource);
  const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)![1]) as string[];
  assert.deepEqual(runtimeFlags(entrypoint), fromSource);
});

Deno.test("the Docker image sets the environment deno task tcpshadow sets", () => {
  const fromSource = tasks.tcpshadow.split(/\s+/).filter((word) => /^[A-Z_][A-Z0-9_]*=/.test(word));
  assert.deepEqual(fromSource, ["MALLOC_ARENA_MAX=2"], "two malloc arenas (bench/RESULTS.md, twelfth round)");
  const image = [...dockerfile.matchAll(/^ENV (.*)$/gm)].flatMap((line) => line[1].split(/\s+/));
  assert.deepEqual(image, fromSource);
});
