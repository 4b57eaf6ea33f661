import assert from "node:assert/strict";
import { Capture } from "../../ffi/mod.ts";
import { LinkType } from "../../src/wire/mod.ts";
import { encodePcapFile, type PcapRecord } from "../wire/_pcap_file.ts";
import { agentCommand } from "./lab.ts";
import {
  compareLogs,
  type CopyLab,
  type CopyRun,
  recordPort80OnEth0AndAny,
  withCopyLab,
} from "./copy_lab.ts";

const REQUESTS = 24;
/** Classic pcap: a 24-byte file header, then 16-byte record headers with the captured length at 8. */
const FILE_HEADER = 24;
const RECORD_HEADER = 16;
const LINK_TYPE_AT = 20;

/** Records the client's HTTP traffic to the online host with tcpdump, on eth0 and on `any` at once. */
function record(lab: CopyLab): Promise<{ eth0: string; any: string }> {
  // Four connections at a time, six requests each, 400 ms apart: about 2 s of traffic.
  return recordPort80OnEth0AndAny(lab.online, lab.dir, () =>
    lab.client.run(agentCommand("http_client", [
      "--url",
      `http://${lab.online.address}:80`,
      "--requests",
      String(REQUESTS),
      "--connections",
      "4",
      "--close",
      "--think-ms",
      "400",
      "--body-sizes",
      "0,10,1000,5000",
    ])));
}

/** Replays `path` with `extra` flags, after clearing the target's log; fails on a non-zero exit. */
async function replay(lab: CopyLab, path: string, extra: string[]): Promise<CopyRun> {
  await Deno.truncate(lab.targetLogPath).catch(() => {});
  const run = await lab.runCopy(["-i", path, "-q", ...extra], 60_000);
  assert.equal(run.code, 0, run.stderr);
  return run;
}

/** The records of a classic pcap file: where each starts and ends. */
function recordSpans(bytes: Uint8Array): Array<{ start: number; end: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const spans = [];
  for (let at = FILE_HEADER; at < bytes.length;) {
    const end = at + RECORD_HEADER + view.getUint32(at + 8, true);
    spans.push({ start: at, end });
    at = end;
  }
  return spans;
}

/** The packets of a capture file, for writing again. */
function readRecords(path: string): PcapRecord[] {
  const capture = Capture.openOffline(path);
  const records: PcapRecord[] = [];
  try {
    for (let packet = capture.next(); packet; packet = capture.next()) {
      records.push({ time: packet.timeSeconds + packet.timeNanos / 1e9, data: packet.data.slice() });
    }
  } finally {
    capture.close();
  }
  return records;
}

Deno.test("tcpdump captures replay to the target with copy --input, whole or broken", async (t) => {
  await withCopyLab({}, async (lab) => {
    const captures = await record(lab);
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, REQUESTS);
    // Each replay takes other client ports (-f): the target still holds the last one's in TIME_WAIT.
    let recordedMs = 0;

    await t.step("an eth0 capture at --speed 1 takes about as long as it was recorded", async () => {
      const { summary } = await replay(lab, captures.eth0, ["-f", "1"]);
      assert.deepEqual(compareLogs(online, await lab.readLog(lab.targetLogPath)), []);
      assert.equal(summary["file-sessions"], REQUESTS);
      assert.equal(summary["sessions-replayed"], REQUESTS);
      assert.equal(summary["sessions-completed"], REQUESTS);
      recordedMs = summary["file-duration-ms"];
      assert.ok(recordedMs > 1500, `recorded ${recordedMs} ms`);
      assert.ok(summary["replay-ms"] >= recordedMs * 0.95, `replayed in ${summary["replay-ms"]} ms`);
      assert.ok(summary["replay-ms"] < recordedMs + 3000, `replayed in ${summary["replay-ms"]} ms`);
    });

    await t.step("--speed max takes far less than the recording", async () => {
      const { summary } = await replay(lab, captures.eth0, ["-a", "max", "-f", "2"]);
      assert.deepEqual(compareLogs(online, await lab.readLog(lab.targetLogPath)), []);
      assert.equal(summary["sessions-completed"], REQUESTS);
      assert.ok(
        summary["replay-ms"] < recordedMs / 2,
        `${summary["replay-ms"]} ms for ${recordedMs} recorded`,
      );
    });

    await t.step("--speed max holds sessions back at --max-sessions rather than refusing them", async () => {
      const { summary } = await replay(lab, captures.eth0, ["-a", "max", "--max-sessions", "12", "-f", "6"]);
      assert.deepEqual(compareLogs(online, await lab.readLog(lab.targetLogPath)), []);
      assert.equal(summary["sessions-refused-at-cap"], 0);
      assert.equal(summary["sessions-completed"], REQUESTS);
    });

    await t.step(
      "an -i any capture (Linux cooked v2) with --loop 2 delivers each request twice",
      async () => {
        const header = await Deno.readFile(captures.any);
        assert.equal(new DataView(header.buffer).getUint32(LINK_TYPE_AT, true), LinkType.LINUX_SLL2);
        const { summary } = await replay(lab, captures.any, ["-a", "max", "-T", "2", "-f", "3"]);
        assert.deepEqual(compareLogs(online, await lab.readLog(lab.targetLogPath), 2), []);
        assert.equal(summary["replay-passes"], 2);
        assert.equal(summary["sessions-completed"], 2 * REQUESTS);
        assert.equal(summary["file-outgoing"], 0, "the clients' packets came in to the capturing host");
      },
    );

    await t.step("a file cut off inside a packet replays what is whole and says where it broke", async () => {
      const bytes = await Deno.readFile(captures.eth0);
      const spans = recordSpans(bytes);
      const broken = Math.floor(spans.length * 0.6);
      const path = `${lab.dir}/truncated.pcap`;
      await Deno.writeFile(path, bytes.subarray(0, spans[broken].start + 20));
      // Sessions the break left open end by the session timeout.
      const { summary, stderr } = await replay(lab, path, ["-a", "max", "-f", "4", "-t", "2"]);
      assert.match(
        stderr,
        new RegExp(`breaks off at packet ${broken + 1} \\(byte ${spans[broken].start}\\)`),
      );
      assert.equal(summary["file-damaged"], 1);
      const target = await lab.readLog(lab.targetLogPath);
      assert.ok(
        target.length > 0 && target.length < REQUESTS,
        `${target.length} requests reached the target`,
      );
      const problems = compareLogs(online, target);
      assert.deepEqual(problems.filter((problem) => !problem.startsWith("target lacks")), []);
    });

    await t.step("packets cut by a 200-byte snapshot length end their sessions as capture-cut", async () => {
      const path = `${lab.dir}/snaplen.pcap`;
      await Deno.writeFile(
        path,
        encodePcapFile(LinkType.ETHERNET, readRecords(captures.eth0), { snaplen: 200 }),
      );
      const { summary, stderr } = await replay(lab, path, ["-a", "max", "-f", "5"]);
      // GETs fit in 200 bytes; every POST's request is cut.
      const gets = online.filter((line) => line.method === "GET");
      assert.equal(gets.length, REQUESTS / 4);
      assert.deepEqual(compareLogs(gets, await lab.readLog(lab.targetLogPath)), []);
      assert.equal(summary["sessions-capture-cut"], REQUESTS - gets.length);
      assert.equal(summary["sessions-completed"], gets.length);
      assert.match(stderr, /snapshot length/);
    });
  });
});
