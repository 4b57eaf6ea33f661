/**
 * TCPCopy's flags seen on the wire: `-M` (MTU) and `-D` (MSS) in what reaches the target, `-O` in which
 * sessions are copied at all, `-H` in the address the target sees for the online host's own requests.
 */
import assert from "node:assert/strict";
import { Capture } from "../../ffi/mod.ts";
import { decodeTcpPacket, Ipv4View, isWireError, TcpFlag } from "../../src/wire/mod.ts";
import { agentCommand, waitForLine } from "./lab.ts";
import { sleep } from "../../src/sleep.ts";
import { compareLogs, type CopyLab, withCopyLab } from "./copy_lab.ts";

function httpClient(lab: CopyLab, args: string[]) {
  return lab.client.spawn(agentCommand("http_client", ["--url", `http://${lab.online.address}:80`, ...args]));
}

Deno.test("-M 576 -D 500: the target gets packets of at most 576 bytes, SYNs announcing MSS 500", async () => {
  await withCopyLab({}, async (lab) => {
    const path = `${lab.dir}/target.pcap`;
    const capture = lab.target.spawn(agentCommand("capture", [
      "--device",
      lab.target.device,
      "--out",
      path,
      "--filter",
      "tcp dst port 8080",
      "--direction",
      "in",
    ]));
    await waitForLine(capture, "capturing");
    const copy = await lab.startCopy(["-M", "576", "-D", "500"]);
    const client = httpClient(lab, [
      "--requests",
      "60",
      "--connections",
      "4",
      "--close",
      "--body-sizes",
      "0,1400,5000,20000",
    ]);
    assert.equal((await client.exited).code, 0, client.stdoutText());
    const online = await lab.readLog(lab.onlineLogPath);
    const target = await lab.waitForTarget(60, 30_000);
    await lab.stopCopy(copy);
    await capture.stop("SIGTERM", 5000);
    assert.deepEqual(compareLogs(online, target), []);

    const packets = Capture.openOffline(path);
    let largest = 0;
    let payloadBytes = 0;
    const synMss = new Set<number | undefined>();
    try {
      for (let packet = packets.next(); packet; packet = packets.next()) {
        const decoded = decodeTcpPacket(packets.linkType, packet.data);
        if (decoded === undefined || isWireError(decoded) || !(decoded.ip instanceof Ipv4View)) continue;
        largest = Math.max(largest, decoded.ip.totalLength);
        payloadBytes += decoded.tcp.payloadLength;
        if (decoded.tcp.flags & TcpFlag.SYN) {
          const options = decoded.tcp.options();
          synMss.add(isWireError(options) ? undefined : options.mss);
        }
      }
    } finally {
      packets.close();
    }
    assert.ok(payloadBytes > 60 * 5000, `${payloadBytes} payload bytes captured`);
    assert.ok(largest <= 576, `a packet of ${largest} bytes`);
    assert.ok(largest > 500, `the largest packet is ${largest} bytes: segments are filled`);
    assert.deepEqual([...synMss], [500]);
  });
});

Deno.test("-O: keep-alive sessions open before copy started are not taken over, new ones are copied", async () => {
  await withCopyLab({}, async (lab) => {
    // Two connections open now, with a request every 200 ms for about 6 s.
    const early = httpClient(lab, [
      "--requests",
      "60",
      "--connections",
      "2",
      "--keep-alive",
      "--think-ms",
      "200",
      "--id-prefix",
      "early",
    ]);
    while ((await lab.readLog(lab.onlineLogPath)).length < 4) await sleep(50);
    const copy = await lab.startCopy(["-O"]);
    const late = httpClient(lab, [
      "--requests",
      "40",
      "--connections",
      "4",
      "--close",
      "--id-prefix",
      "late",
    ]);
    assert.equal((await late.exited).code, 0);
    assert.equal((await early.exited).code, 0);
    const target = await lab.waitForTarget(40, 20_000);
    const summary = await lab.stopCopy(copy);
    const copied = (await lab.readLog(lab.targetLogPath)).map((line) => String(line.requestId));
    assert.ok(target.length >= 40);
    assert.deepEqual(copied.filter((id) => id.startsWith("early")), [], "a taken-over session was copied");
    assert.equal(copied.filter((id) => id.startsWith("late")).length, 40);
    assert.equal(summary["sessions-copied"], 40, JSON.stringify(summary));
  });
});

Deno.test("-H: requests the online host makes to itself reach the target from the address given", async () => {
  await withCopyLab({ keepClientAddress: true }, async (lab) => {
    // The target routes replies to the client host's address to the assistant: that is the -H address.
    const copy = await lab.startCopy(["-H", lab.client.address]);
    await lab.online.run(
      agentCommand("http_client", [
        "--url",
        "http://127.0.0.1:80",
        "--requests",
        "30",
        "--connections",
        "3",
        "--close",
        "--body-sizes",
        "0,3000",
      ]),
      { timeoutMs: 60_000 },
    );
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 30);
    assert.ok(online.every((line) => String(line.remote).startsWith("127.0.0.1:")));
    const target = await lab.waitForTarget(30, 20_000);
    const summary = await lab.stopCopy(copy);
    assert.deepEqual(compareLogs(online, target), [], JSON.stringify(summary));
    assert.ok(target.every((line) => String(line.remote).startsWith(`${lab.client.address}:`)));
  });
});
