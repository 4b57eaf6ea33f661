/** Live capture: what clients send to the copied ports on this host, fed to the runtime as it comes. */
import { setImmediate } from "node:timers";
import { Capture } from "../../ffi/mod.ts";
import { FatalError } from "../errors.ts";
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

/**
 * A live capture of what comes in on `device`. With `--connect` nothing else needs a privilege, so a
 * refusal says that only the capture does, and how to do without.
 */
function openCapture(runtime: CopyRuntime, device: string, direction: "in" | "inout"): Capture {
  try {
    // Not immediate: packed blocks hold bursts (a 1 MiB POST is 700+ packets) that fixed frames drop.
    return Capture.openLive({
      device,
      direction,
      immediate: false,
      bufferSize: runtime.options.captureBuffer,
    });
  } catch (error) {
    if (!(error instanceof FatalError) || runtime.options.connect === undefined) throw error;
    if (!error.message.includes("CAP_NET_RAW")) throw error;
    throw new FatalError(
      `${error.message}: with --connect only the live capture (libpcap) needs it; ` +
        `--connect --input FILE replays a recording as any user`,
    );
  }
}

/** Captures on every interface until `signal` aborts; returns the kernel's drop count. */
export async function copyLive(
  runtime: CopyRuntime,
  interfaces: string[],
  filter: string,
  signal: AbortSignal,
): Promise<{ kernelDropped: number }> {
  // With --compare the online server's answers are captured too, by the same capture, so that they come
  // in the order the kernel saw them: a separate capture hands its packets over apart, at times before
  // the client's packets that opened their session.
  const comparing = runtime.options.connect?.compare !== undefined;
  const captures = interfaces.map((device) => openCapture(runtime, device, comparing ? "inout" : "in"));
  try {
    for (const capture of captures) capture.setFilter(filterForLink(filter, capture.linkType));
  } catch (error) {
    for (const capture of captures) capture.close();
    throw error;
  }
  for (const capture of captures) if (capture.warning) runtime.log.warn(capture.warning);
  runtime.log.info(`copying on ${interfaces.join(",")} (filter: ${filter})`);
  runtime.announceRunning();
  /** Hands up to `budget` packets to the runtime; returns how many there were. */
  const drain = (capture: Capture, budget: number) => {
    const now = performance.now();
    let drained = 0;
    for (let packet; drained < budget && (packet = capture.next()); drained++) {
      runtime.onFrame(capture.linkType, packet.data, now);
    }
    runtime.runTimers(now);
    return drained;
  };
  const readKernelStats = () => {
    runtime.packetsKernelDropped = Capture.dropped(captures);
  };
  const kernelStats = setInterval(readKernelStats, KERNEL_STATS_MS);
  runtime.capturing(captures.map((capture) => capture.selectableFd));
  try {
    await Promise.all(captures.map(async (capture) => {
      for (let behind = false; !signal.aborted;) {
        // A drain that took its whole budget left packets in the ring: the next is taken after a turn of
        // the event loop, without a worker thread's poll(2) first, whose hand-off there and back is two
        // context switches (costly on a VM), and on busy CPUs a wait for one while the ring fills.
        if (behind) await new Promise((resolve) => setImmediate(resolve));
        else await capture.waitReadable(POLL_MS);
        behind = drain(capture, PACKETS_PER_TURN) === PACKETS_PER_TURN;
      }
      drain(capture, Infinity); // what the kernel already holds belongs to sessions that may still finish
    }));
    readKernelStats();
    return { kernelDropped: runtime.packetsKernelDropped };
  } finally {
    clearInterval(kernelStats);
    runtime.capturing([]);
    for (const capture of captures) capture.close();
  }
}
