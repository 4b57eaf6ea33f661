/**
 * Prints the functions with the most self time in a V8 `.cpuprofile` (from `deno run --cpu-prof`),
 * to find what dominates a run.
 *
 * Run: deno run -A bench/profile_summary.ts PROFILE.cpuprofile [TOP]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (`name file:line`), most first, as [label, microseconds, share]. */
export function selfTimes(profile: Profile): Array<[string, number, number]> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    const frame = byId.get(id)!.callFrame;
    const file = frame.url.split("/").slice(-2).join("/");
    const label = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    totals.set(label, (totals.get(label) ?? 0) + delta);
    all += delta;
  });
  return [...totals].sort((a, b) => b[1] - a[1]).map(([label, time]) => [label, time, time / all]);
}

if (import.meta.main) {
  const [path, top = "25"] = Deno.args;
  const profile: Profile = JSON.parse(await Deno.readTextFile(path));
  for (const [label, time, share] of selfTimes(profile).slice(0, Number(top))) {
    console.log(
      `${(share * 100).toFixed(1).padStart(5)}%  ${(time / 1000).toFixed(0).padStart(6)} ms  ${label}`,
    );
  }
}
