/** The copy plan tests and benchmarks start from. */
import { type CopyPlan, defaultSessionConfig } from "../../src/session/mod.ts";
import type { Address } from "../../src/wire/mod.ts";

/** Port 80 copied to `target`:8080, every session once, real client addresses unless `overrides` say. */
export function port80Plan(target: Address, overrides: Partial<CopyPlan> = {}): CopyPlan {
  return {
    mappings: [{ onlinePort: 80, targetAddress: target, targetPort: 8080 }],
    clients: [],
    rate: 100,
    multiply: 1,
    portShift: 0,
    maxSessions: 100_000,
    session: defaultSessionConfig,
    ...overrides,
  };
}
