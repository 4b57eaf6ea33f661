/**
 * Test oracles for TCP checksums, computed apart from the code they check: the checksum a segment should
 * carry, and whether the one it carries is right. Production fills checksums (`fillTcpChecksumIpv4`)
 * and never verifies one: captures with checksum offload carry partial ones.
 */
import {
  finishChecksum,
  IpProtocol,
  type Ipv4View,
  type Ipv6View,
  onesComplementSum,
  type TcpView,
} from "../../src/wire/mod.ts";

/** Bytes 16..18 of a TCP header. */
const CHECKSUM_FIELD = 16;

/** The checksum `tcp`, carried in `ip`, should have: over a copy of the segment with the field zeroed. */
export function expectedTcpChecksum(ip: Ipv4View | Ipv6View, tcp: TcpView): number {
  const segment = tcp.bytes.slice(tcp.offset, tcp.offset + tcp.segmentLength);
  segment[CHECKSUM_FIELD] = segment[CHECKSUM_FIELD + 1] = 0;
  return finishChecksum(
    onesComplementSum(segment, 0, segment.length, ip.pseudoHeaderSum(IpProtocol.TCP, tcp.segmentLength)),
  );
}

/** True when the TCP checksum of `tcp`, carried in `ip`, is right; false too when the capture was cut. */
export function verifyTcpChecksum(ip: Ipv4View | Ipv6View, tcp: TcpView): boolean {
  if (tcp.capturedPayloadLength < tcp.payloadLength) return false;
  const end = tcp.offset + tcp.segmentLength;
  return finishChecksum(
    onesComplementSum(tcp.bytes, tcp.offset, end, ip.pseudoHeaderSum(IpProtocol.TCP, tcp.segmentLength)),
  ) === 0;
}
