/** Live capture: what clients send to the copied ports on this host, fed to the runtime as it comes. */
import { Capture } from "../../ffi/mod.ts";
import { filterForLink } from "./filter.ts";
import type { CopyRuntime } from "./runtime.ts";

/** How long a wait for packets lasts at most: how soon a stop is noticed. Blocks come when ready anyway. */
const POLL_MS = 250;
const KERNEL_STATS_MS = 1000;
/**
 * Packets handled before the event loop gets its turn again (a few milliseconds' work). A capture that
 * fell behind would otherwise be drained in one go while the target's replies wait unread from
 * intercept, and the sessions' timers, run after the drain, would take those late replies for losses:
 * a copy started cold under 8,000 new connections/s retransmitted 24,000-72,000 segments that way.
 */
const PACKETS_PER_TURN = 512;

/** Captures on every interface until `signal` aborts; returns the kernel's drop count. */
export async function copyLive(
  runtime: CopyRuntime,
  interfaces: string[],
  filter: string,
  signal: AbortSignal,
): Promise<{ kernelDropped: number }> {
  // Not immediate: packed blocks hold bursts (a 1 MiB POST is 700+ packets) that fixed frames drop.
  const captures = interfaces.map((device) =>
    Capture.openLive({
      device,
      direction: "in",
      immediate: false,
      bufferSize: runtime.options.captureBuffer,
    })
  );
  try {
    for (const capture of captures) capture.setFilter(filterForLink(filter, capture.linkType));
  } catch (error) {
    for (const capture of captures) capture.close();
    throw error;
  }
  for (const capture of captures) if (capture.warning) runtime.log.warn(capture.warning);
  runtime.log.info(`copying on ${interfaces.join(",")} (filter: ${filter})`);
  runtime.announceRunning();
  const drain = (capture: Capture, budget: number) => {
    const now = performance.now();
    for (let packet; budget > 0 && (packet = capture.next()); budget--) {
      runtime.onFrame(capture.linkType, packet.data, now);
    }
    runtime.runTimers(now);
  };
  const readKernelStats = () => {
    runtime.packetsKernelDropped = Capture.dropped(captures);
  };
  const kernelStats = setInterval(readKernelStats, KERNEL_STATS_MS);
  try {
    await Promise.all(captures.map(async (capture) => {
      while (!signal.aborted) {
        await capture.waitReadable(POLL_MS);
        drain(capture, PACKETS_PER_TURN);
      }
      drain(capture, Infinity); // what the kernel already holds belongs to sessions that may still finish
    }));
    readKernelStats();
    return { kernelDropped: runtime.packetsKernelDropped };
  } finally {
    clearInterval(kernelStats);
    for (const capture of captures) capture.close();
  }
}
