/**
 * The native bindings against a real kernel: a raw socket in one network namespace sends to a live
 * capture in another. Needs root; builds its own pair of namespaces and always removes them.
 */
import assert from "node:assert/strict";

const FFI = new URL("../../ffi/mod.ts", import.meta.url).href;
const ADDRESS_A = "198.18.250.1";
const ADDRESS_B = "198.18.250.2";
/** IPv6 benchmarking range (RFC 5180), the analogue of 198.18.0.0/15. */
const ADDRESS6_A = "2001:2::1";
const ADDRESS6_B = "2001:2::2";

async function run(command: string, ...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}${text}`);
  return text;
}

/** Two namespaces joined by a veth pair, both ends named eth0, for the duration of `body`. */
async function withNamespacePair(body: (a: string, b: string) => Promise<void>): Promise<void> {
  const suffix = crypto.randomUUID().slice(0, 8);
  const [a, b] = [`tsffi-${suffix}-a`, `tsffi-${suffix}-b`];
  const created: string[] = [];
  try {
    for (const ns of [a, b]) {
      await run("ip", "netns", "add", ns);
      created.push(ns);
      await run("ip", "-n", ns, "link", "set", "lo", "up");
    }
    await run("ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b);
    for (const [ns, v4, v6] of [[a, ADDRESS_A, ADDRESS6_A], [b, ADDRESS_B, ADDRESS6_B]]) {
      await run("ip", "-n", ns, "addr", "add", `${v4}/24`, "dev", "eth0");
      await run("ip", "-n", ns, "addr", "add", `${v6}/64`, "dev", "eth0", "nodad");
      await run("ip", "-n", ns, "link", "set", "eth0", "up");
    }
    await body(a, b);
  } finally {
    for (const ns of created) await run("ip", "netns", "del", ns);
  }
}

/** Writes `source` to a temporary module and runs it with Deno inside namespace `ns`. */
async function spawnIn(ns: string, dir: string, name: string, source: string): Promise<Deno.ChildProcess> {
  const path = `${dir}/${name}.ts`;
  await Deno.writeTextFile(path, source);
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", "--quiet", path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Reads a child's stdout as one JSON value per line. */
async function* jsonLines(child: Deno.ChildProcess): AsyncGenerator<Record<string, unknown>> {
  let pending = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
      yield JSON.parse(pending.slice(0, end));
      pending = pending.slice(end + 1);
    }
  }
}

/** The Internet checksum of `bytes`. */
function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A SYN to port 9 with every field set, checksums included, so the kernel sends it unchanged. */
function ipv4Syn(source: number[], destination: number[], sourcePort: number): number[] {
  const packet = new Uint8Array(40);
  const view = new DataView(packet.buffer);
  view.setUint8(0, 0x45);
  view.setUint16(2, packet.length);
  view.setUint16(4, 0x1234);
  view.setUint16(6, 0x4000); // don't fragment
  view.setUint8(8, 64);
  view.setUint8(9, 6);
  packet.set(source, 12);
  packet.set(destination, 16);
  view.setUint16(10, checksum(packet.subarray(0, 20)));
  view.setUint16(20, sourcePort);
  view.setUint16(22, 9);
  view.setUint32(24, 0x01020304);
  view.setUint8(32, 0x50);
  view.setUint8(33, 0x02);
  view.setUint16(34, 64240);
  const pseudo = new Uint8Array([...source, ...destination, 0, 6, 0, 20]);
  view.setUint16(36, checksum(packet.subarray(20), 0xffff - checksum(pseudo)));
  return [...packet];
}

function receiverScript(filter: string, expected: number): string {
  return `
import { Capture } from ${JSON.stringify(FFI)};
const capture = Capture.openLive({ device: "eth0", direction: "in", filter: ${JSON.stringify(filter)} });
// What came in before the filter was set (IPv6 neighbour discovery at link-up, say) can still sit in
// the ring: libpcap filters it out in next(), but poll would call the capture readable.
for (let packet = capture.next(); packet; packet = capture.next()) {}
let ticks = 0;
const timer = setInterval(() => ticks++, 10);
let started = performance.now();
const idleResult = await capture.waitReadable(300);
console.log(JSON.stringify({ idleResult, idleTicks: ticks, idleMs: performance.now() - started }));
ticks = 0;
const packets = [];
while (packets.length < ${expected} && await capture.waitReadable(5000)) {
  for (let packet = capture.next(); packet; packet = capture.next()) packets.push([...packet.data]);
}
clearInterval(timer);
const stats = capture.stats();
const pending = capture.waitReadable(200);
capture.close();
await pending;
const afterClose = capture.next() === undefined ? "undefined" : "packet";
console.log(JSON.stringify({ busyTicks: ticks, linkType: capture.linkType, packets, stats, afterClose }));
`;
}

function senderScript(family: 4 | 6, destination: number[], packets: number[][]): string {
  return `
import { RawSocket } from ${JSON.stringify(FFI)};
const socket = RawSocket.open(${family});
const results = ${JSON.stringify(packets)}.map((p) => socket.send(new Uint8Array(p), new Uint8Array(${
    JSON.stringify(destination)
  })));
socket.close();
socket.close();
console.log(JSON.stringify({ results }));
`;
}

/** Captures in `b` what `sender` sends from `a`; returns the receiver's two reports. */
async function exchange(a: string, b: string, filter: string, expected: number, sender: string) {
  const dir = await Deno.makeTempDir({ prefix: "tsffi-" });
  const receiver = await spawnIn(b, dir, "receiver", receiverScript(filter, expected));
  try {
    const reports = jsonLines(receiver);
    const idle = (await reports.next()).value!;
    const sent = JSON.parse(await runIn(a, dir, sender));
    const received = (await reports.next()).value!;
    return { idle, sent, received };
  } finally {
    try {
      receiver.kill();
    } catch { /* already exited */ }
    await receiver.status;
    await Deno.remove(dir, { recursive: true });
  }
}

async function runIn(ns: string, dir: string, source: string): Promise<string> {
  const child = await spawnIn(ns, dir, "sender", source);
  const { code, stdout } = await child.output();
  assert.equal(code, 0);
  return new TextDecoder().decode(stdout);
}

Deno.test({
  name: "an IPv4 SYN sent from a raw socket arrives byte for byte at a live capture in another namespace",
  fn: () =>
    withNamespacePair(async (a, b) => {
      const syn = ipv4Syn([198, 18, 250, 1], [198, 18, 250, 2], 40001);
      const { idle, sent, received } = await exchange(
        a,
        b,
        "tcp port 9",
        1,
        senderScript(4, [198, 18, 250, 2], [syn]),
      );
      assert.equal(idle.idleResult, false, "waitReadable resolves false when nothing arrives");
      assert.ok((idle.idleMs as number) >= 250, `waited only ${idle.idleMs} ms`);
      assert.ok((idle.idleTicks as number) >= 10, `event loop ticked ${idle.idleTicks} times in 300 ms`);
      assert.deepEqual(sent.results, [true]);
      assert.equal(received.linkType, 1);
      const packets = received.packets as number[][];
      assert.equal(packets.length, 1, "the RST going back is outgoing and filtered out");
      assert.deepEqual(packets[0].slice(12, 14), [0x08, 0x00]);
      assert.deepEqual(packets[0].slice(14), syn);
      assert.ok((received.busyTicks as number) > 0, "event loop ticked while waiting for the packet");
      assert.ok((received.stats as { received: number }).received >= 1);
      assert.equal(received.afterClose, "undefined", "closing during a wait ends the capture loop cleanly");
    }),
});

Deno.test({
  name: "an IPv6 packet sent from a raw socket arrives with its header as built, flow label and all",
  fn: () =>
    withNamespacePair(async (a, b) => {
      // From an address the sender does not have (a copy's fake client, 2001:2:0:1::7), as copy sends:
      // IPPROTO_RAW on AF_INET6 is header-included on Linux, and the kernel keeps every field.
      const source = [0x20, 0x01, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
      const destination = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
      const udp = [0x9c, 0x41, 0, 9, 0, 12, 0, 0, 0x74, 0x73, 0x66, 0x69]; // checksum 0: never delivered
      // Traffic class 0xb8 (DSCP EF), flow label 0x12345.
      const packet = [0x6b, 0x81, 0x23, 0x45, 0, udp.length, 17, 64, ...source, ...destination, ...udp];
      const { sent, received } = await exchange(
        a,
        b,
        "udp port 9",
        1,
        senderScript(6, destination, [packet]),
      );
      assert.deepEqual(sent.results, [true]);
      const packets = received.packets as number[][];
      assert.equal(packets.length, 1);
      assert.deepEqual(packets[0].slice(12, 14), [0x86, 0xdd]);
      assert.deepEqual(packets[0].slice(14), packet);
    }),
});

Deno.test({
  name: "a raw IPv6 socket bound to the host's source toward the target still sends the header as built",
  fn: () =>
    withNamespacePair(async (a, b) => {
      const source = [0x20, 0x01, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]; // a fake client, not a's
      const destination = [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
      const udp = [0x9c, 0x41, 0, 9, 0, 12, 0, 0, 0x74, 0x73, 0x66, 0x69];
      const packet = [0x60, 0x01, 0x23, 0x45, 0, udp.length, 17, 64, ...source, ...destination, ...udp];
      const sender = `
import { localAddressToward, RawSocket } from ${JSON.stringify(FFI)};
const destination = new Uint8Array(${JSON.stringify(destination)});
const own = localAddressToward(destination);
const socket = RawSocket.open(6);
const bound = socket.bind(own);
const stranger = RawSocket.open(6);
const refused = stranger.bind(new Uint8Array(${JSON.stringify(source)}));
stranger.close();
const results = [socket.send(new Uint8Array(${JSON.stringify(packet)}), destination)];
socket.close();
console.log(JSON.stringify({ own: [...own], bound, refused, results }));
`;
      const { sent, received } = await exchange(a, b, "udp port 9", 1, sender);
      assert.deepEqual(sent.own, [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "a's own address");
      assert.equal(sent.bound, 0);
      assert.equal(sent.refused, 99, "EADDRNOTAVAIL: not an address of the host");
      assert.deepEqual(sent.results, [true]);
      const packets = received.packets as number[][];
      assert.equal(packets.length, 1);
      assert.deepEqual(packets[0].slice(14), packet);
    }),
});

Deno.test({
  name: "a raw socket reports a full send buffer as drops and other failures as FatalError",
  fn: () =>
    withNamespacePair(async (a) => {
      const dir = await Deno.makeTempDir({ prefix: "tsffi-" });
      try {
        const output = await runIn(
          a,
          dir,
          `
import { RawSocket } from ${JSON.stringify(FFI)};
const socket = RawSocket.open(4);
socket.setSendBuffer(4096);
// 198.18.250.3 never answers ARP: packets wait in the neighbour queue, holding the send buffer.
const packet = new Uint8Array(1400);
packet.set([0x45, 0, 1400 >> 8, 1400 & 0xff, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 18, 250, 1, 198, 18, 250, 3]);
const started = performance.now();
let dropped = 0;
for (let i = 0; i < 100; i++) if (!socket.send(packet, new Uint8Array([198, 18, 250, 3]))) dropped++;
const elapsedMs = performance.now() - started;
let unreachable = "";
try {
  socket.send(packet, new Uint8Array([198, 19, 0, 1]));
} catch (error) {
  unreachable = error.constructor.name + ": " + error.message;
}
socket.close();
console.log(JSON.stringify({ dropped, elapsedMs, unreachable }));
`,
        );
        const result = JSON.parse(output);
        assert.ok(result.dropped > 0, "some sends found the buffer full");
        assert.ok(result.dropped < 100, "the first sends went through");
        assert.ok(result.elapsedMs < 1000, `sending blocked for ${result.elapsedMs} ms`);
        assert.equal(
          result.unreachable,
          "FatalError: cannot send a 1400-byte packet: Network is unreachable",
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }),
});
