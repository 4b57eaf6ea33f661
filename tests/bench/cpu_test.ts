/** The bench's CPU ratio of the two transports (bench/cpu.ts). */
import assert from "node:assert/strict";
import { formatConnectRatios } from "../../bench/cpu.ts";

const step = (copier: string, offered: number, copyCpuPer10k: number) => ({ copier, offered, copyCpuPer10k });

Deno.test("each --connect step is set against the packet step before it, then the means per rate and in all", () => {
  const steps = [
    step("tcpshadow", 34000, 0.1),
    step("tcpshadow --connect", 34000, 0.15),
    step("tcpcopy", 34000, 0.2), // C tcpcopy is no transport of ours
    step("tcpshadow", 0, 0.08),
    step("tcpshadow --connect", 0, 0.1),
    step("tcpshadow", 34000, 0.1),
    step("tcpshadow --connect", 34000, 0.11),
  ];
  assert.equal(
    formatConnectRatios(steps),
    "copy CPU per request, --connect over packets: 34000: 1.50x, 1.10x (means: 1.30x); max: 1.25x (means: " +
      "1.25x); all 3 steps, means: 1.29x",
  );
});

Deno.test("no ratio without both transports at the same rate", () => {
  assert.equal(formatConnectRatios([step("tcpshadow", 34000, 0.1), step("tcpcopy", 34000, 0.2)]), undefined);
  assert.equal(formatConnectRatios([step("tcpshadow --connect", 34000, 0.1)]), undefined);
  assert.equal(
    formatConnectRatios([step("tcpshadow", 34000, 0.1), step("tcpshadow --connect", 0, 0.2)]),
    undefined,
  );
});
