import assert from "node:assert/strict";
import { Capture } from "../../ffi/mod.ts";
import { decodeTcpPacket, Ipv4View, isWireError, TcpFlag } from "../../src/wire/mod.ts";
import { verifyTcpChecksum } from "../wire/_checksum.ts";
import { sha256Hex } from "./agents/_common.ts";
import { agentCommand, waitForLine, withLab } from "./lab.ts";

const ETHERNET_MTU_FRAME = 14 + 1500;

/** One direction of one TCP connection as captured: the ISN and the payload segments by sequence number. */
interface Flow {
  isn: number | undefined;
  segments: Map<number, Uint8Array>;
}

/** What the capture shows, decoded with `src/wire`: client-to-server byte streams, one per connection. */
interface Decoded {
  streams: Uint8Array[];
  frames: number;
  largestFrame: number;
  badChecksums: number;
}

function decodeCapture(path: string, serverPort: number): Decoded {
  const capture = Capture.openOffline(path);
  const flows = new Map<string, Flow>();
  let frames = 0, largestFrame = 0, badChecksums = 0;
  try {
    for (let packet = capture.next(); packet; packet = capture.next()) {
      frames++;
      largestFrame = Math.max(largestFrame, packet.originalLength);
      const decoded = decodeTcpPacket(capture.linkType, packet.data);
      assert.ok(
        decoded !== undefined && !isWireError(decoded),
        `frame ${frames} is TCP: ${JSON.stringify(decoded)}`,
      );
      const { ip, tcp } = decoded;
      assert.ok(ip instanceof Ipv4View);
      if (!verifyTcpChecksum(ip, tcp)) badChecksums++;
      if (tcp.dstPort !== serverPort) continue;
      const key = `${ip.src}:${tcp.srcPort}`;
      const flow = flows.get(key) ?? { isn: undefined, segments: new Map() };
      flows.set(key, flow);
      if (tcp.flags & TcpFlag.SYN) flow.isn = tcp.seq;
      // A retransmission carries the same bytes at the same sequence number: keeping the longest is exact.
      const payload = tcp.payload();
      if (payload.length > (flow.segments.get(tcp.seq)?.length ?? 0)) {
        flow.segments.set(tcp.seq, payload.slice());
      }
    }
  } finally {
    capture.close();
  }
  const streams = [...flows.entries()].map(([key, flow]) => {
    assert.ok(flow.isn !== undefined, `connection ${key} has its SYN in the capture`);
    const isn = flow.isn;
    const ordered = [...flow.segments.entries()]
      .map(([seq, bytes]) => ({ at: (seq - isn - 1) >>> 0, bytes }))
      .sort((a, b) => a.at - b.at);
    const parts: Uint8Array[] = [];
    let next = 0;
    for (const { at, bytes } of ordered) {
      assert.ok(at <= next, `connection ${key} misses bytes ${next}..${at}`);
      if (at + bytes.length > next) parts.push(bytes.subarray(next - at));
      next = Math.max(next, at + bytes.length);
    }
    const stream = new Uint8Array(next);
    let offset = 0;
    for (const part of parts) {
      stream.set(part, offset);
      offset += part.length;
    }
    return stream;
  });
  return { streams, frames, largestFrame, badChecksums };
}

interface RequestSeen {
  id: string;
  method: string;
  path: string;
  bodyLength: number;
  bodySha256: string;
}

/** Splits one connection's client-to-server bytes into HTTP requests (Content-Length bodies only). */
async function parseRequests(stream: Uint8Array): Promise<RequestSeen[]> {
  const decoder = new TextDecoder();
  const requests: RequestSeen[] = [];
  let at = 0;
  while (at < stream.length) {
    let end = at;
    while (end + 4 <= stream.length && decoder.decode(stream.subarray(end, end + 4)) !== "\r\n\r\n") end++;
    assert.ok(end + 4 <= stream.length, "every request head is complete");
    const [requestLine, ...headerLines] = decoder.decode(stream.subarray(at, end)).split("\r\n");
    const headers = new Map(headerLines.map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as const;
    }));
    const [method, path] = requestLine.split(" ");
    const bodyLength = Number(headers.get("content-length") ?? 0);
    const body = stream.subarray(end + 4, end + 4 + bodyLength);
    assert.equal(body.length, bodyLength, `the body of ${requestLine} is complete`);
    requests.push({
      id: headers.get("x-request-id") ?? "",
      method,
      path,
      bodyLength,
      bodySha256: await sha256Hex(body),
    });
    at = end + 4 + bodyLength;
  }
  return requests;
}

Deno.test("a pcap captured through ffi/ decodes with src/wire into exactly the requests the client sent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tcpshadow-capture-" });
  try {
    await withLab({ hosts: [{ name: "client" }, { name: "server" }] }, async (lab) => {
      const server = lab.host("server");
      const http = server.spawn(
        agentCommand("http_server", ["--port", "80", "--log", `${dir}/server.jsonl`]),
      );
      const capture = server.spawn(agentCommand("capture", [
        ...["--device", "eth0", "--filter", "tcp port 80", "--out", `${dir}/server.pcap`],
      ]));
      await Promise.all([waitForLine(http, "listening"), waitForLine(capture, "capturing")]);
      for (const mode of ["--keep-alive", "--close"]) {
        await lab.host("client").run(agentCommand("http_client", [
          ...["--url", `http://${server.address}:80`, "--requests", "8", "--connections", "2", mode],
          ...[
            "--body-sizes",
            "0,100,65536,300000",
            "--id-prefix",
            mode.slice(2),
            "--log",
            `${dir}/client.jsonl`,
          ],
        ]));
      }
      assert.equal((await capture.stop()).code, 0, capture.stderrText());
      assert.match(capture.stdoutText(), /^captured \d+ dropped 0$/m);
    });
    const sent: RequestSeen[] = (await Deno.readTextFile(`${dir}/client.jsonl`)).trim().split("\n")
      .map((line) => JSON.parse(line))
      .map(({ id, method, path, bodyLength, bodySha256 }) => ({ id, method, path, bodyLength, bodySha256 }));
    const decoded = decodeCapture(`${dir}/server.pcap`, 80);
    // 2 keep-alive connections, then one connection per request.
    assert.equal(decoded.streams.length, 2 + 8);
    const seen = (await Promise.all(decoded.streams.map(parseRequests))).flat();
    const byId = (a: RequestSeen, b: RequestSeen) => a.id.localeCompare(b.id);
    assert.deepEqual(seen.sort(byId), sent.sort(byId));
    assert.equal(decoded.badChecksums, 0, "offloads are off, so captured checksums are real");
    assert.ok(decoded.largestFrame <= ETHERNET_MTU_FRAME, `largest frame ${decoded.largestFrame} bytes`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
