import assert from "node:assert/strict";
import {
  buildIpv4Tcp,
  buildIpv6Tcp,
  concatBytes,
  decodeTcpPacket,
  EthernetView,
  EtherType,
  formatIpv4,
  Ipv4View,
  Ipv6View,
  isWireError,
  LinkType,
  PacketType,
  parseIpv6,
  Sll2View,
  SllView,
  TcpFlag,
  type TcpPacket,
  TcpPacketDecoder,
  UdpView,
  type WireError,
} from "../../src/wire/mod.ts";
import {
  ANY_SLL_SYN,
  hex,
  LO_ETHERNET_DATA,
  LO_ETHERNET_SYN,
  VETH_SLL2_SYN_OUT,
  VETH_SLL2_SYNACK_IN,
} from "./_fixtures.ts";

function decoded(linkType: number, frame: Uint8Array): TcpPacket {
  const packet = decodeTcpPacket(linkType, frame);
  if (packet === undefined) throw new Error("not TCP");
  if (isWireError(packet)) throw new Error(`${packet.kind}: ${packet.message}`);
  return packet;
}

function failure(linkType: number, frame: Uint8Array): WireError["kind"] {
  const result = decodeTcpPacket(linkType, frame);
  assert.ok(isWireError(result), `expected a WireError, got ${result}`);
  return result.kind;
}

const SYN_IP = LO_ETHERNET_SYN.subarray(14);
const MACS = hex("0200 0000 0002 0200 0000 0001");

Deno.test("a loopback Ethernet frame decodes to the fields tcpdump printed", () => {
  const { ip, tcp, outgoing } = decoded(LinkType.ETHERNET, LO_ETHERNET_DATA);
  assert.ok(ip instanceof Ipv4View);
  assert.equal(formatIpv4(ip.src), "127.0.0.1");
  assert.equal(ip.id, 53373);
  assert.equal(ip.totalLength, 57);
  assert.deepEqual([tcp.srcPort, tcp.dstPort, tcp.seq, tcp.ack], [40812, 5733, 438402435, 488201095]);
  assert.equal(tcp.flags, TcpFlag.PSH | TcpFlag.ACK);
  assert.equal(tcp.window, 64);
  assert.equal(new TextDecoder().decode(tcp.payload()), "hello");
  assert.equal(outgoing, false);
  assert.equal(tcp.bytes, LO_ETHERNET_DATA, "views point into the frame");
});

Deno.test("an SLL frame from -i any decodes with its packet type", () => {
  const sll = SllView.check(ANY_SLL_SYN) as SllView;
  assert.equal(sll.packetType, PacketType.HOST);
  assert.equal(sll.arphrdType, 772);
  assert.equal(sll.addressLength, 6);
  assert.deepEqual(sll.address, new Uint8Array(6));
  assert.equal(sll.protocol, EtherType.IPV4);
  assert.equal(sll.payloadOffset, 16);
  const { ip, tcp, outgoing } = decoded(LinkType.LINUX_SLL, ANY_SLL_SYN);
  assert.equal((ip as Ipv4View).id, 53371);
  assert.equal(tcp.seq, 438402434);
  assert.equal(outgoing, false);
});

Deno.test("SLL2 frames tell outgoing from incoming packets", () => {
  const out = Sll2View.check(VETH_SLL2_SYN_OUT) as Sll2View;
  assert.deepEqual(
    [out.protocol, out.interfaceIndex, out.arphrdType, out.packetType, out.addressLength],
    [EtherType.IPV4, 2, 1, PacketType.OUTGOING, 6],
  );
  assert.deepEqual(out.address, hex("3207 5900 4b2b"));
  const syn = decoded(LinkType.LINUX_SLL2, VETH_SLL2_SYN_OUT);
  assert.equal(syn.outgoing, true);
  assert.equal(formatIpv4((syn.ip as Ipv4View).src), "198.18.99.1");
  assert.deepEqual([syn.tcp.srcPort, syn.tcp.dstPort, syn.tcp.seq], [59146, 5734, 2474456701]);
  assert.deepEqual(syn.tcp.options(), {
    mss: 1460,
    sackPermitted: true,
    timestamp: { value: 1623083041, echo: 0 },
    windowScale: 10,
  });
  const synAck = decoded(LinkType.LINUX_SLL2, VETH_SLL2_SYNACK_IN);
  assert.equal(synAck.outgoing, false);
  assert.equal(synAck.tcp.flags, TcpFlag.SYN | TcpFlag.ACK);
  assert.deepEqual([synAck.tcp.seq, synAck.tcp.ack, synAck.tcp.window], [3735755783, 2474456702, 65160]);
});

Deno.test("an SLL frame with a VLAN tag libpcap put back is decoded past the tag", () => {
  const header = ANY_SLL_SYN.subarray(0, 14);
  const frame = concatBytes([header, hex("8100 0064 0800"), SYN_IP]);
  assert.equal((SllView.check(frame) as SllView).payloadOffset, 20);
  assert.equal(decoded(LinkType.LINUX_SLL, frame).tcp.seq, 438402434);
});

Deno.test("Ethernet frames with one or two VLAN tags are decoded past the tags", () => {
  const single = concatBytes([MACS, hex("8100 0064 0800"), SYN_IP]);
  const double = concatBytes([MACS, hex("88a8 00c8 8100 0064 0800"), SYN_IP]);
  assert.equal((EthernetView.check(single) as EthernetView).vlanTags, 1);
  const view = EthernetView.check(double) as EthernetView;
  assert.deepEqual([view.vlanTags, view.etherType, view.payloadOffset], [2, EtherType.IPV4, 22]);
  assert.deepEqual(view.dst, hex("0200 0000 0002"));
  assert.deepEqual(view.src, hex("0200 0000 0001"));
  assert.equal(decoded(LinkType.ETHERNET, single).tcp.dstPort, 5733);
  assert.equal(decoded(LinkType.ETHERNET, double).tcp.dstPort, 5733);
});

Deno.test("three VLAN tags are unsupported and a cut tag is truncated", () => {
  assert.equal(
    failure(LinkType.ETHERNET, concatBytes([MACS, hex("8100 0001 8100 0002 8100 0003 0800"), SYN_IP])),
    "unsupported",
  );
  assert.equal(failure(LinkType.ETHERNET, concatBytes([MACS, hex("8100 0001")])), "truncated");
});

Deno.test("frames that are not TCP over IP decode to undefined", () => {
  const arp = concatBytes([MACS, hex("0806 0001 0800 0604 0001"), new Uint8Array(20)]);
  assert.equal(decodeTcpPacket(LinkType.ETHERNET, arp), undefined);
  const udpIp = SYN_IP.slice(0, 28);
  udpIp.set(hex("001c"), 2);
  udpIp[9] = 17;
  udpIp.set(hex("0035 e000 0008 0000"), 20);
  assert.equal(decodeTcpPacket(LinkType.RAW, udpIp), undefined);
  const udp = UdpView.check(udpIp, 20) as UdpView;
  assert.deepEqual([udp.srcPort, udp.dstPort, udp.length, udp.payloadLength], [53, 57344, 8, 0]);
  const v6Udp = hex("6000 0000 0008 1140" + "00".repeat(32) + "0035 0035 0008 0000");
  assert.equal(decodeTcpPacket(LinkType.IPV6, v6Udp), undefined);
  assert.equal(decodeTcpPacket(LinkType.NULL, hex("0700 0000 0000")), undefined, "AF 7 is not IP");
});

Deno.test("raw, IPv4, IPv6, NULL and LOOP link types find the IP header", () => {
  assert.equal(decoded(LinkType.RAW, SYN_IP).tcp.seq, 438402434);
  assert.equal(decoded(12, SYN_IP).tcp.seq, 438402434);
  assert.equal(decoded(14, SYN_IP).tcp.seq, 438402434);
  assert.equal(decoded(LinkType.IPV4, SYN_IP).tcp.seq, 438402434);
  assert.equal(decoded(LinkType.NULL, concatBytes([hex("0200 0000"), SYN_IP])).tcp.seq, 438402434);
  assert.equal(decoded(LinkType.LOOP, concatBytes([hex("0000 0002"), SYN_IP])).tcp.seq, 438402434);
  const v6 = buildIpv6Tcp({
    src: parseIpv6("2001:db8::1")!,
    dst: parseIpv6("2001:db8::2")!,
    tcp: { srcPort: 1, dstPort: 2, seq: 3, ack: 0, flags: TcpFlag.SYN, window: 100 },
  });
  assert.ok(decoded(LinkType.IPV6, v6).ip instanceof Ipv6View);
  assert.equal(decoded(LinkType.RAW, v6).tcp.seq, 3);
  assert.equal(decoded(LinkType.NULL, concatBytes([hex("1e00 0000"), v6])).tcp.seq, 3, "macOS AF_INET6");
  assert.equal(decoded(LinkType.ETHERNET, concatBytes([MACS, hex("86dd"), v6])).tcp.dstPort, 2);
});

Deno.test("IPv6 with a destination-options header decodes to the TCP segment behind it", () => {
  const plain = buildIpv6Tcp({
    src: parseIpv6("2001:db8::1")!,
    dst: parseIpv6("2001:db8::2")!,
    tcp: { srcPort: 443, dstPort: 50000, seq: 7, ack: 9, flags: TcpFlag.ACK, window: 5 },
  });
  const withOptions = concatBytes([plain.subarray(0, 40), hex("0600 0104 0000 0000"), plain.subarray(40)]);
  withOptions[6] = 60;
  withOptions[5] += 8;
  const { tcp } = decoded(LinkType.IPV6, withOptions);
  assert.deepEqual([tcp.offset, tcp.segmentLength, tcp.srcPort, tcp.ack], [48, 20, 443, 9]);
});

Deno.test("a frame cut by snaplen inside the payload decodes with a short payload", () => {
  const cut = LO_ETHERNET_DATA.subarray(0, LO_ETHERNET_DATA.length - 3);
  const { ip, tcp } = decoded(LinkType.ETHERNET, cut);
  assert.equal((ip as Ipv4View).truncated, true);
  assert.deepEqual([tcp.payloadLength, tcp.capturedPayloadLength], [5, 2]);
});

Deno.test("a frame cut by snaplen inside a header is truncated", () => {
  assert.equal(failure(LinkType.ETHERNET, LO_ETHERNET_DATA.subarray(0, 60)), "truncated");
  assert.equal(failure(LinkType.ETHERNET, LO_ETHERNET_DATA.subarray(0, 30)), "truncated");
  assert.equal(failure(LinkType.ETHERNET, LO_ETHERNET_DATA.subarray(0, 10)), "truncated");
  assert.equal(failure(LinkType.LINUX_SLL, ANY_SLL_SYN.subarray(0, 15)), "truncated");
  assert.equal(failure(LinkType.LINUX_SLL2, VETH_SLL2_SYN_OUT.subarray(0, 19)), "truncated");
  assert.equal(failure(LinkType.NULL, hex("0200")), "truncated");
  assert.equal(failure(LinkType.RAW, new Uint8Array(0)), "truncated");
});

Deno.test("TCP fragments, bad raw versions and unknown link types are reported", () => {
  const fragment = SYN_IP.slice();
  fragment[6] = 0x20; // MF
  assert.equal(failure(LinkType.RAW, fragment), "unsupported");
  assert.equal(failure(LinkType.RAW, hex("5500 0014")), "malformed");
  assert.equal(failure(147, SYN_IP), "unsupported");
});

Deno.test("Ethernet padding after a short segment is not read as payload", () => {
  const ack = buildIpv4Tcp({
    src: 0xc6120001,
    dst: 0xc6120002,
    tcp: { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: TcpFlag.ACK, window: 5 },
  });
  const frame = concatBytes([MACS, hex("0800"), ack, new Uint8Array(6)]);
  assert.equal(frame.length, 60);
  const { tcp } = decoded(LinkType.ETHERNET, frame);
  assert.deepEqual([tcp.payloadLength, tcp.payload().length], [0, 0]);
});

Deno.test("a TcpPacketDecoder decodes into one packet and its views, frame after frame", () => {
  const decoder = new TcpPacketDecoder();
  const first = decoder.decode(LinkType.ETHERNET, LO_ETHERNET_DATA);
  assert.ok(first !== undefined && !isWireError(first));
  assert.equal(new TextDecoder().decode(first.tcp.payload()), "hello");
  const tcp = first.tcp;
  const second = decoder.decode(LinkType.LINUX_SLL2, VETH_SLL2_SYN_OUT);
  assert.equal(second, first, "the same packet object");
  assert.ok(second !== undefined && !isWireError(second));
  assert.equal(second.tcp, tcp, "the same TCP view, pointed at the new frame");
  assert.equal(second.tcp.bytes, VETH_SLL2_SYN_OUT);
  assert.equal(second.outgoing, true);
  // It decodes as decodeTcpPacket does, IPv6 and errors included.
  for (
    const [linkType, frame] of [[LinkType.ETHERNET, LO_ETHERNET_SYN], [
      LinkType.LINUX_SLL,
      ANY_SLL_SYN,
    ]] as const
  ) {
    const reused = decoder.decode(linkType, frame);
    const fresh = decoded(linkType, frame);
    assert.ok(reused !== undefined && !isWireError(reused));
    assert.deepEqual([reused.tcp.srcPort, reused.tcp.seq, reused.outgoing], [
      fresh.tcp.srcPort,
      fresh.tcp.seq,
      fresh.outgoing,
    ]);
  }
  const v6 = buildIpv6Tcp({
    src: parseIpv6("2001:2::10")!,
    dst: parseIpv6("2001:2::1")!,
    tcp: { srcPort: 40000, dstPort: 80, seq: 7, ack: 0, flags: TcpFlag.SYN, window: 1000 },
  });
  const six = decoder.decode(LinkType.RAW, v6);
  assert.ok(six !== undefined && !isWireError(six));
  assert.ok(six.ip instanceof Ipv6View);
  assert.equal(six.tcp.seq, 7);
  const cut = decoder.decode(LinkType.ETHERNET, LO_ETHERNET_SYN.subarray(0, 30));
  assert.ok(isWireError(cut));
  assert.equal(cut.kind, "truncated");
});
