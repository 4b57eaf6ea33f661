/** CPU time of a process as /proc counts it, for the bench's figures; the two transports' CPU ratio. */

/** Linux's USER_HZ, the unit of /proc's CPU times. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds in user and system mode (all threads) a process has used. */
export async function cpuSeconds(pid: number): Promise<{ user: number; system: number }> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 (utime) and 15 (stime) of proc(5), counted from the state field, which is 3.
  return {
    user: Number(fields[14 - 3]) / CLOCK_TICKS_PER_SECOND,
    system: Number(fields[15 - 3]) / CLOCK_TICKS_PER_SECOND,
  };
}

/** User and system CPU seconds spent between two readings of `cpuSeconds`. */
export function cpuSpent(
  before: { user: number; system: number },
  after: { user: number; system: number },
): number {
  return after.user - before.user + after.system - before.system;
}

/** What `formatConnectRatios` reads of a bench step. */
export interface CopierCpu {
  readonly copier: string;
  /** The offered rate, 0 for as fast as the client can. */
  readonly offered: number;
  readonly copyCpuPer10k: number;
}

/**
 * `--connect`'s copy CPU per request over the packet transport's, step by step (each `--connect` step
 * against the packet step run just before it at the same rate), then per rate and over every step as the
 * ratio of the mean figures: one step's ratio moves by a third between sittings on a small machine, so
 * the goal (issue #16: within 1.5x) is judged on the means of repeated steps (`--repeat`).
 * `undefined` without `--connect` steps beside packet ones.
 */
export function formatConnectRatios(steps: readonly CopierCpu[]): string | undefined {
  const pairs: { offered: number; packets: number; connect: number }[] = [];
  steps.forEach((step, i) => {
    const before = steps[i - 1];
    if (step.copier !== "tcpshadow --connect" || before?.copier !== "tcpshadow") return;
    if (before.offered !== step.offered) return;
    pairs.push({ offered: step.offered, packets: before.copyCpuPer10k, connect: step.copyCpuPer10k });
  });
  if (pairs.length === 0) return undefined;
  const ratioOfMeans = (group: typeof pairs) =>
    `${
      (group.reduce((sum, pair) => sum + pair.connect, 0) /
        group.reduce((sum, pair) => sum + pair.packets, 0)).toFixed(2)
    }x`;
  const offered = [...new Set(pairs.map((pair) => pair.offered))];
  const byRate = offered.map((rate) => {
    const group = pairs.filter((pair) => pair.offered === rate);
    const each = group.map((pair) => `${(pair.connect / pair.packets).toFixed(2)}x`).join(", ");
    return `${rate === 0 ? "max" : rate}: ${each} (means: ${ratioOfMeans(group)})`;
  });
  return `copy CPU per request, --connect over packets: ${byRate.join("; ")}; ` +
    `all ${pairs.length} steps, means: ${ratioOfMeans(pairs)}`;
}
