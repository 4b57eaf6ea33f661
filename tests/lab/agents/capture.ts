/**
 * Lab agent: captures packets on one interface with libpcap (through `ffi/`) into a pcap file until
 * SIGTERM or SIGINT, then drains what is still queued and closes the file.
 *
 * Usage: deno run -A capture.ts --device eth0 --out FILE [--filter "tcp port 80"] [--direction in|out|inout]
 *
 * Prints "capturing" once the capture is active and filtered, and "captured <N> dropped <D>" at the end.
 */
import { parseArgs } from "node:util";
import { Capture, PcapWriter } from "../../../ffi/mod.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    device: { type: "string", default: "eth0" },
    out: { type: "string" },
    filter: { type: "string" },
    direction: { type: "string", default: "inout" },
  },
  strict: true,
}).values;
if (flags.out === undefined) throw new Error("--out is required");
if (!["in", "out", "inout"].includes(flags.direction)) throw new Error("--direction is in, out or inout");

const capture = Capture.openLive({
  device: flags.device,
  filter: flags.filter,
  direction: flags.direction as "in" | "out" | "inout",
});
const writer = PcapWriter.open(capture, flags.out);
let stopping = false;
const stop = () => stopping = true;
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
console.log("capturing");

let count = 0;
const drain = () => {
  for (let packet = capture.next(); packet; packet = capture.next()) {
    writer.write(packet);
    count++;
  }
};
while (!stopping) {
  if (await capture.waitReadable(50)) drain();
}
drain();
const { dropped } = capture.stats();
writer.close();
capture.close();
console.log(`captured ${count} dropped ${dropped}`);
Deno.exit(0);
