/** CPU time of a process, as /proc counts it: for the bench's figures per request and per packet. */

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
