/**
 * TCPCopy 1.3's and intercept 1.0's flags: each is either ours with the same meaning or accepted with a
 * notice; none is an unknown option, and where our short flag meant something else TCPCopy's won.
 */
import assert from "node:assert/strict";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { gradualPlan } from "../../src/copy/gradual.ts";
import { skipLongGaps } from "../../src/copy/offline/max_gap.ts";
import { main } from "../../main.ts";
import { UsageError } from "../../src/errors.ts";
import { defaultSessionConfig, SessionTable } from "../../src/session/mod.ts";
import { TcpFlag } from "../../src/wire/mod.ts";
import { port80Plan } from "../session/_plan.ts";

const COPY = ["-x", "80-198.18.0.2:8080", "-s", "198.18.0.3"];
const copy = (...args: string[]) => parseCopyOptions([...COPY, ...args]);

/** Every flag of `tcpcopy -h` (live and offline builds, and the pcap build's), with a value where it takes one. */
const TCPCOPY_FLAGS: string[][] = [
  ["-x", "80-198.18.0.2:8080"],
  ["-H", "198.18.0.9"],
  ["-c", "198.19.0.x"],
  ["-n", "2"],
  ["-f", "3"],
  ["-m", "512"],
  ["-M", "1400"],
  ["-D", "1200"],
  ["-R", "20"],
  ["-U", "4"],
  ["-C", "4"],
  ["-s", "198.18.0.3:36524"],
  ["-t", "60"],
  ["-k", "700"],
  ["-l", "/tmp/tcpshadow-flags-test.log"],
  ["-r", "20"],
  ["-p", "36525"],
  ["-P", "/tmp/tcpshadow-flags-test.pid"],
  ["-O"],
  ["-g"],
  ["-W"],
  ["-L"],
  ["-d"],
  ["-F", "tcp"],
  ["-B", "32"],
  ["-S", "1500"],
];
const OFFLINE_FLAGS: string[][] = [["-i", "x.pcap"], ["-a", "2"], ["-I", "500"], ["-T", "3"]];

Deno.test("every flag of tcpcopy 1.3 (live, pcap and offline builds) is a flag of copy", () => {
  for (const flag of TCPCOPY_FLAGS) copy(...flag);
  for (const flag of OFFLINE_FLAGS) copy("-i", "x.pcap", ...flag);
  copy(...TCPCOPY_FLAGS.flat());
  copy(...OFFLINE_FLAGS.flat());
});

Deno.test("-M is the MTU and -D the MSS: together the largest payload; --max-sessions keeps its long name", () => {
  assert.equal(copy().session.maxSegment, 1460);
  assert.equal(copy("-M", "1000").session.maxSegment, 960);
  assert.equal(copy("-D", "536").session.maxSegment, 536);
  assert.equal(copy("-M", "9000", "-D", "8000").session.maxSegment, 8000);
  assert.equal(copy("--max-sessions", "50").maxSessions, 50);
  assert.throws(() => copy("-M", "100"), UsageError);
  assert.throws(() => copy("-D", "70000"), UsageError);
});

Deno.test("-I is offline replay's gap threshold; --interface keeps the long name; -i names a device or a file", () => {
  assert.equal(copy("-i", "x.pcap", "-I", "1000").replay?.maxGapMs, 1000);
  assert.equal(copy("-i", "x.pcap").replay?.maxGapMs, undefined);
  assert.throws(() => copy("-I", "1000"), UsageError, "a live capture has no recorded gaps");
  assert.deepEqual(copy("--interface", "lo").interfaces, ["lo"]);
  // TCPCopy's pcap build: -i eth0 captures there.
  assert.deepEqual(copy("-i", "lo").interfaces, ["lo"]);
  assert.equal(copy("-i", "lo").replay, undefined);
  assert.equal(copy("-i", "no-such-device0").replay?.input, "no-such-device0");
  assert.equal(copy("-i", "..").replay?.input, "..", "/sys/class/net/.. is no interface");
});

Deno.test("-W never waits, -O copies from the SYN only, -g ramps, -H, -p, -L, -d and -P are read", () => {
  assert.equal(copy("-W").session.maxLagMs, 0);
  assert.throws(() => copy("-W", "--max-lag", "10"), UsageError);
  assert.equal(copy("-O").onlyFromSyn, true);
  assert.equal(copy().onlyFromSyn, false);
  assert.equal(copy("-g").gradual, true);
  assert.equal(copy("-H", "198.18.0.9").localhostAddress, 0xc6120009 | 0);
  assert.throws(() => copy("-H", "localhost"), UsageError);
  assert.deepEqual(copy("-p", "4000", "-s", "198.18.0.4:5000").intercepts, [
    { host: "198.18.0.3", port: 4000 },
    { host: "198.18.0.4", port: 5000 },
  ]);
  assert.equal(copy("-L").lonely, true);
  assert.deepEqual(copy("-d", "-P", "/run/copy.pid").daemon, { daemon: true, pidFile: "/run/copy.pid" });
  assert.equal(copy("-l", "/tmp/x.log").operation.log.file, "/tmp/x.log");
});

Deno.test("-k, -R, -U and -S are accepted with one notice each naming what does their job", () => {
  assert.deepEqual(copy().notices, []);
  const notices = copy("-k", "700", "-R", "20", "-U", "4", "-S", "1500").notices;
  assert.equal(notices.length, 4);
  assert.match(notices[0], /^-k 700 .*-t\/--session-timeout/);
  assert.match(notices[1], /^-R 20 .*round trip/);
  assert.match(notices[2], /^-U 4 .*--max-sessions/);
  assert.match(notices[3], /^-S 1500 .*whole packets/);
});

Deno.test("-g: the rate starts at 1% and rises a point a second up to --rate", () => {
  let now = 1000;
  const plan = gradualPlan(port80Plan(0, { rate: 20 }), 1000, () => now);
  assert.equal(plan.rate, 1);
  now += 999;
  assert.equal(plan.rate, 1);
  now += 1;
  assert.equal(plan.rate, 2);
  now += 60_000;
  assert.equal(plan.rate, 20);
  assert.equal(plan.maxSessions, 100_000, "the rest of the plan shows through");
});

Deno.test("--max-gap: gaps longer than the threshold are skipped whole, shorter ones kept", () => {
  const shift = skipLongGaps(1000);
  assert.deepEqual([0, 200, 1100, 60_000, 60_300, 60_250].map(shift), [0, 200, 1100, 1100, 1400, 1350]);
  const none = skipLongGaps(Infinity);
  assert.deepEqual([0, 5000, 100_000].map(none), [0, 5000, 100_000]);
});

Deno.test("-O: a session seen first midway is not taken over; one seen from its SYN is copied", () => {
  const opened: number[] = [];
  const table = new SessionTable(
    { ...port80Plan(0xc6120002), onlyFromSyn: true, session: defaultSessionConfig },
    { segment() {}, clientOpened: (endpoints) => opened.push(endpoints.clientPort), clientClosed() {} },
  );
  const segment = (srcPort: number, flags: number) => ({
    srcPort,
    dstPort: 80,
    seq: 1000,
    ack: flags & TcpFlag.ACK ? 5000 : 0,
    flags,
    window: 502,
    payloadLength: 0,
    payload: () => new Uint8Array(0),
    options: () => ({ mss: 1460 }),
  });
  table.onCapture(0xc6120a0a, 0xc6120001, segment(40_000, TcpFlag.ACK), 0);
  assert.deepEqual(opened, []);
  table.onCapture(0xc6120a0a, 0xc6120001, segment(40_001, TcpFlag.SYN), 0);
  assert.deepEqual(opened, [40_001]);
});

Deno.test("-v prints the version for copy and intercept, as tcpcopy -v and intercept -v do", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    assert.equal(await main(["copy", "-v"]), 0);
    assert.equal(await main(["intercept", "-v"]), 0);
  } finally {
    console.log = log;
  }
  assert.equal(printed.length, 2);
  for (const line of printed) assert.match(line, /^tcpshadow [0-9]+\.[0-9]+\.[0-9]+$/);
});

Deno.test("copy --help and intercept --help list TCPCopy's flags", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (text: string) => printed.push(text);
  try {
    await main(["copy", "--help"]);
    await main(["intercept", "--help"]);
  } finally {
    console.log = log;
  }
  const [copyHelp, interceptHelp] = printed;
  for (const flag of ["-M, --mtu", "-D, --mss", "-I, --max-gap", "-W, --no-wait", "-O, --only-from-syn"]) {
    assert.ok(copyHelp.includes(flag), flag);
  }
  for (const flag of ["-g, --gradual", "-L, --lonely", "-H, --localhost-address", "-p, --intercept-port"]) {
    assert.ok(copyHelp.includes(flag), flag);
  }
  for (
    const flag of ["-d, --daemon", "-P, --pid-file", "-l, --log-file", "-v, --version", "-k, -R, -U, -S"]
  ) {
    assert.ok(copyHelp.includes(flag), flag);
  }
  for (const flag of ["-d, --daemon", "-P, --pid-file", "-l, --log-file", "-v, --version", "-D, --docker"]) {
    assert.ok(interceptHelp.includes(flag), flag);
  }
  assert.ok(interceptHelp.includes("-n, -s <num>"));
});

Deno.test("every flag of intercept 1.0 is a flag of intercept: -n and -s with a notice each", async () => {
  const dir = await Deno.makeTempDir();
  const errors: string[] = [];
  const error = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    // Every flag but -d (the lab runs it), on a device that does not exist: the flags are read, then
    // the capture fails (exit 1), where an unknown option or a bad value would exit 2.
    const code = await main([
      "intercept",
      ...["-i", "no-such-dev0", "-F", "tcp and src port 8080", "-n", "5", "-s", "1024"],
      ...["-D", "172.17.0.2-198.19.0.1", "-l", `${dir}/intercept.log`, "-P", `${dir}/intercept.pid`],
      ...["-p", "36599", "-b", "127.0.0.1"],
    ]);
    assert.equal(code, 1, errors.join("\n"));
    const log = await Deno.readTextFile(`${dir}/intercept.log`);
    assert.match(log, /warning: -n 5 .*frames of up to 16/);
    assert.match(log, /warning: -s 1024 .*grows as needed/);
    assert.equal(await main(["intercept", "-F", "tcp", "-D", "172.17.0.2"]), 2, "-D needs two addresses");
  } finally {
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
});
