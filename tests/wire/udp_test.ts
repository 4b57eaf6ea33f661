import assert from "node:assert/strict";
import {
  buildIpv4Tcp,
  decodeUdpPacket,
  destinationAddress,
  emitIpv4Udp,
  emitIpv6Udp,
  formatAddress,
  internetChecksum,
  IpProtocol,
  Ipv4View,
  Ipv6View,
  isWireError,
  LinkType,
  parseIpv4,
  parseIpv6,
  sourceAddress,
  TcpFlag,
  type UdpPacket,
} from "../../src/wire/mod.ts";

const CLIENT = parseIpv4("198.18.0.10")!;
const SERVER = parseIpv4("198.18.0.1")!;
const QUERY = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1]);

function datagram(payload = QUERY): Uint8Array {
  const packet = new Uint8Array(20 + 8 + payload.length);
  emitIpv4Udp({ src: CLIENT, dst: SERVER, id: 7, srcPort: 40000, dstPort: 53, payload }, packet);
  return packet;
}

function decoded(linkType: number, frame: Uint8Array): UdpPacket {
  const result = decodeUdpPacket(linkType, frame);
  if (result === undefined || isWireError(result)) throw new Error(`not decoded: ${JSON.stringify(result)}`);
  return result;
}

/** The UDP checksum over the pseudo-header and the datagram: 0 when the packet's checksum is right. */
function udpChecksumResidue(packet: Uint8Array): number {
  const udpLength = packet.length - 20;
  const pseudo = new Uint8Array(12 + udpLength);
  pseudo.set(packet.subarray(12, 20), 0);
  pseudo[9] = IpProtocol.UDP;
  pseudo[10] = udpLength >> 8;
  pseudo[11] = udpLength & 0xff;
  pseudo.set(packet.subarray(20), 12);
  return internetChecksum(pseudo, 0, pseudo.length);
}

Deno.test("emitIpv4Udp builds a datagram whose IP and UDP checksums verify", () => {
  const packet = datagram();
  const ip = new Ipv4View(packet, 0);
  assert.ok(ip.verifyChecksum());
  assert.equal(ip.protocol, IpProtocol.UDP);
  assert.equal(ip.totalLength, packet.length);
  assert.equal(ip.isFragment, false);
  assert.equal(udpChecksumResidue(packet), 0);
  const { udp } = decoded(LinkType.RAW, packet);
  assert.deepEqual([udp.srcPort, udp.dstPort, udp.length], [40000, 53, 8 + QUERY.length]);
  assert.deepEqual(udp.payload(), QUERY);
});

Deno.test("emitIpv4Udp writes after a link header, and sends a computed checksum of 0 as 0xffff", () => {
  const emit = (payload: Uint8Array) => {
    const frame = new Uint8Array(14 + 20 + 8 + payload.length);
    const length = emitIpv4Udp({ src: CLIENT, dst: SERVER, srcPort: 1, dstPort: 2, payload }, frame, 14);
    assert.equal(length, frame.length - 14);
    return frame.subarray(14);
  };
  // A payload word that brings the sum to 0xffff, whose complement, the checksum, is 0.
  const first = emit(new Uint8Array(2));
  const sum = ~((first[26] << 8) | first[27]) & 0xffff;
  const word = 0xffff - sum;
  const packet = emit(new Uint8Array([word >> 8, word & 0xff]));
  assert.equal((packet[26] << 8) | packet[27], 0xffff);
  assert.equal(udpChecksumResidue(packet), 0);
});

Deno.test("decodeUdpPacket finds UDP in Ethernet frames and leaves Ethernet padding out of the payload", () => {
  const packet = datagram(new Uint8Array([1, 2, 3]));
  const frame = new Uint8Array(60); // padded to Ethernet's minimum
  frame.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  frame.set(packet, 14);
  frame.fill(0xee, 14 + packet.length);
  const { ip, udp, outgoing } = decoded(LinkType.ETHERNET, frame);
  assert.equal(sourceAddress(ip), CLIENT);
  assert.equal(outgoing, false);
  assert.deepEqual(udp.payload(), new Uint8Array([1, 2, 3]));
});

Deno.test("decodeUdpPacket leaves TCP alone and refuses fragments and lengths beyond the IP payload", () => {
  const syn = buildIpv4Tcp({
    src: CLIENT,
    dst: SERVER,
    tcp: { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TcpFlag.SYN, window: 1 },
  });
  assert.equal(decodeUdpPacket(LinkType.RAW, syn), undefined);

  const fragment = datagram();
  new Ipv4View(fragment, 0).flags = 0b001; // more fragments
  const fragmentResult = decodeUdpPacket(LinkType.RAW, fragment);
  assert.ok(isWireError(fragmentResult) && fragmentResult.kind === "unsupported");

  const long = datagram();
  long[24] = 0x01; // UDP length 256+
  const longResult = decodeUdpPacket(LinkType.RAW, long);
  assert.ok(isWireError(longResult) && longResult.kind === "malformed");
});

const CLIENT6 = parseIpv6("2001:2::10")!;
const SERVER6 = parseIpv6("2001:2::1")!;

function datagram6(payload = QUERY): Uint8Array {
  const packet = new Uint8Array(40 + 8 + payload.length);
  emitIpv6Udp({ src: CLIENT6, dst: SERVER6, srcPort: 40000, dstPort: 53, payload }, packet);
  return packet;
}

/** The UDP checksum over the IPv6 pseudo-header and the datagram: 0 when the packet's checksum is right. */
function udp6ChecksumResidue(packet: Uint8Array): number {
  const udpLength = packet.length - 40;
  const pseudo = new Uint8Array(40 + udpLength);
  pseudo.set(packet.subarray(8, 40), 0);
  pseudo[34] = udpLength >> 8;
  pseudo[35] = udpLength & 0xff;
  pseudo[39] = IpProtocol.UDP;
  pseudo.set(packet.subarray(40), 40);
  return internetChecksum(pseudo, 0, pseudo.length);
}

Deno.test("emitIpv6Udp builds a datagram whose UDP checksum verifies; decodeUdpPacket reads it back", () => {
  const packet = datagram6();
  const ip = new Ipv6View(packet, 0);
  assert.deepEqual([ip.version, ip.nextHeader, ip.payloadLength, ip.hopLimit], [6, 17, 8 + QUERY.length, 64]);
  assert.equal(udp6ChecksumResidue(packet), 0);
  assert.notEqual((packet[46] << 8) | packet[47], 0, "IPv6 UDP always has a checksum");
  const { ip: read, udp } = decoded(LinkType.RAW, packet);
  assert.equal(formatAddress(sourceAddress(read)), "2001:2::10");
  assert.equal(formatAddress(destinationAddress(read)), "2001:2::1");
  assert.deepEqual([udp.srcPort, udp.dstPort, udp.length], [40000, 53, 8 + QUERY.length]);
  assert.deepEqual(udp.payload(), QUERY);
});

Deno.test("decodeUdpPacket finds IPv6 UDP in Ethernet after an extension header, and refuses fragments", () => {
  const inner = datagram6(new Uint8Array([1, 2, 3]));
  // The same datagram behind an 8-byte destination-options header (next header UDP, length 0: 8 bytes).
  const packet = new Uint8Array(inner.length + 8);
  packet.set(inner.subarray(0, 40));
  packet.set([IpProtocol.UDP, 0, 1, 4, 0, 0, 0, 0], 40); // a PadN option fills the header
  packet.set(inner.subarray(40), 48);
  const ip = new Ipv6View(packet, 0);
  ip.nextHeader = 60;
  ip.payloadLength += 8;
  const frame = new Uint8Array(14 + packet.length + 4);
  frame.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd]);
  frame.set(packet, 14);
  frame.fill(0xee, 14 + packet.length); // bytes past the IPv6 payload are not the datagram's
  const { udp } = decoded(LinkType.ETHERNET, frame);
  assert.deepEqual([udp.dstPort, udp.payloadLength], [53, 3]);
  assert.deepEqual(udp.payload(), new Uint8Array([1, 2, 3]));

  const fragment = new Uint8Array(inner.length + 8);
  fragment.set(inner.subarray(0, 40));
  fragment.set([IpProtocol.UDP, 0, 0, 1, 0, 0, 0, 7], 40); // more fragments follow
  fragment.set(inner.subarray(40), 48);
  const fragmentIp = new Ipv6View(fragment, 0);
  fragmentIp.nextHeader = 44;
  fragmentIp.payloadLength += 8;
  const fragmentResult = decodeUdpPacket(LinkType.RAW, fragment);
  assert.ok(isWireError(fragmentResult) && fragmentResult.kind === "unsupported");
  const long = datagram6();
  long[45] = 0xff; // UDP length beyond the payload
  const longResult = decodeUdpPacket(LinkType.RAW, long);
  assert.ok(isWireError(longResult) && longResult.kind === "malformed");
});
