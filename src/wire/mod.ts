/**
 * The wire layer: zero-copy views over captured packets (link, IP, TCP), checksums and their
 * incremental updates, packet builders, and the layout of pcap files.
 *
 * Views are checked once (`XView.check` returns the view or a `WireError` value, never throws) and then
 * read and write fields in place; `checkAt` points an existing view at the next packet instead, so a hot
 * path allocates none. `TcpPacketDecoder.decode` is the one call a capture loop makes per frame (with its
 * own views, reused); `decodeTcpPacket` is the same with new ones, for packets kept longer. Beside each view, a `Repr` says what a packet means as a plain object (`TcpRepr` in tcp.ts, with
 * `parseTcpRepr` and `emitTcpRepr`; `Ipv4TcpRepr` and `Ipv6TcpRepr` in build.ts): the session engine's
 * own segments, the builders and the tests use those.
 *
 * @example
 * ```ts
 * const packet = decodeTcpPacket(LinkType.ETHERNET, frame);
 * if (packet !== undefined && !isWireError(packet) && packet.ip instanceof Ipv4View) {
 *   const { ip, tcp } = packet;
 *   tcp.checksum = adjustChecksum32(tcp.checksum, ip.dst, target); // the pseudo-header holds dst
 *   ip.setDst(target); // adjusts the IP header checksum itself
 * }
 * ```
 *
 * @module
 */
export * from "./address.ts";
export * from "./address_key.ts";
export * from "./bytes.ts";
export * from "./build.ts";
export * from "./checksum.ts";
export * from "./errors.ts";
export * from "./ethernet.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./link.ts";
export * from "./pcap_file.ts";
export * from "./sll.ts";
export * from "./tcp.ts";
export * from "./udp.ts";
