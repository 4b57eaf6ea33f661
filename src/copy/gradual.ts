/**
 * TCPCopy's `-g` (gradually replay): the share of sessions copied starts at 1% and rises by one point a
 * second, up to `--rate`, so a cold target meets the load step by step. Sampling is by a stable hash
 * under the rate, so a session copied at one rate is copied at every higher one.
 */
import type { CopyPlan } from "../session/mod.ts";

/** `plan` with a rate that ramps from 1% at `startedAt` up to `plan.rate`, read on `clock`. */
export function gradualPlan<T extends CopyPlan>(
  plan: T,
  startedAt: number,
  clock: () => number = () => performance.now(),
): T {
  return Object.create(plan, {
    rate: { get: () => Math.min(plan.rate, 1 + Math.floor(Math.max(0, clock() - startedAt) / 1000)) },
  });
}
