/**
 * Per-packet costs of the wire layer: decoding a captured frame, a full checksum over a full-size
 * segment, and the copy path's in-place rewrite with incremental checksum updates.
 *
 * Run: deno bench bench/wire_bench.ts
 */
import {
  adjustChecksum16,
  adjustChecksum32,
  buildIpv4Tcp,
  decodeTcpPacket,
  internetChecksum,
  Ipv4View,
  isWireError,
  LinkType,
  TcpFlag,
  TcpView,
} from "../src/wire/mod.ts";

const MACS_AND_TYPE = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

function ethernetFrame(payloadLength: number): Uint8Array {
  const ip = buildIpv4Tcp({
    src: 0xc6120001,
    dst: 0xc6120002,
    tcp: {
      srcPort: 40812,
      dstPort: 80,
      seq: 438402435,
      ack: 488201095,
      flags: TcpFlag.PSH | TcpFlag.ACK,
      window: 502,
      options: { timestamp: { value: 3018404835, echo: 884884481 } },
      payload: new Uint8Array(payloadLength).fill(0x61),
    },
  });
  const frame = new Uint8Array(14 + ip.length);
  frame.set(MACS_AND_TYPE);
  frame.set(ip, 14);
  return frame;
}

const smallFrame = ethernetFrame(5);
const fullFrame = ethernetFrame(1448);
const segment = new Uint8Array(1460).map((_, i) => (i * 7919) & 0xff);

Deno.bench("decodeTcpPacket, Ethernet IPv4 TCP frame", { group: "decode" }, () => {
  const packet = decodeTcpPacket(LinkType.ETHERNET, smallFrame);
  if (packet === undefined || isWireError(packet)) throw new Error("decode failed");
});

Deno.bench("internetChecksum over 1460 bytes", { group: "checksum" }, () => {
  internetChecksum(segment, 0, segment.length);
});

const rewrite = fullFrame.slice();
const rewriteIp = Ipv4View.check(rewrite, 14) as Ipv4View;
const rewriteTcp = TcpView.check(rewrite, rewriteIp.payloadOffset, rewriteIp.payloadLength) as TcpView;
let counter = 0;

Deno.bench("rewrite dst address, port and ack with incremental checksums", { group: "rewrite" }, () => {
  counter = (counter + 1) >>> 0;
  const dst = (0xc6130000 | (counter & 0xffff)) >>> 0;
  const port = counter & 0xffff;
  const ack = (488201095 + counter) >>> 0;
  rewriteTcp.checksum = adjustChecksum32(rewriteTcp.checksum, rewriteIp.dst, dst);
  rewriteIp.setDst(dst);
  rewriteTcp.checksum = adjustChecksum16(rewriteTcp.checksum, rewriteTcp.dstPort, port);
  rewriteTcp.dstPort = port;
  rewriteTcp.checksum = adjustChecksum32(rewriteTcp.checksum, rewriteTcp.ack, ack);
  rewriteTcp.ack = ack;
});

Deno.bench("decode, then rewrite with incremental checksums", { group: "rewrite" }, () => {
  const packet = decodeTcpPacket(LinkType.ETHERNET, rewrite);
  if (packet === undefined || isWireError(packet) || !(packet.ip instanceof Ipv4View)) {
    throw new Error("decode failed");
  }
  const { ip, tcp } = packet;
  counter = (counter + 1) >>> 0;
  const dst = (0xc6130000 | (counter & 0xffff)) >>> 0;
  tcp.checksum = adjustChecksum32(tcp.checksum, ip.dst, dst);
  ip.setDst(dst);
  tcp.checksum = adjustChecksum16(tcp.checksum, tcp.dstPort, counter & 0xffff);
  tcp.dstPort = counter & 0xffff;
  tcp.checksum = adjustChecksum32(tcp.checksum, tcp.ack, (tcp.ack + 1) >>> 0);
  tcp.ack = (tcp.ack + 1) >>> 0;
});
