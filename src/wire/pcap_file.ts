/**
 * The layout of capture files, where we need it beside libpcap (which reads them, through `ffi/`): which
 * format a file is from its first four bytes, and the sizes of classic pcap's headers, to say at which
 * byte a damaged file breaks off.
 */

/** Classic pcap's magic, microsecond timestamps, as written in the writer's byte order. */
export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
/** Classic pcap's magic, nanosecond timestamps. */
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
/** pcapng's first block type (Section Header Block), the same in either byte order. */
export const PCAPNG_MAGIC = 0x0a0d0d0a;
/** Classic pcap's file header: magic, version, zone, accuracy, snapshot length, link type. */
export const PCAP_FILE_HEADER_LENGTH = 24;
/** Classic pcap's record header: seconds, fraction, captured and original lengths. */
export const PCAP_RECORD_HEADER_LENGTH = 16;

/** The capture formats libpcap reads. */
export type CaptureFormat = "pcap" | "pcapng";

/** The format of a file that starts with `magic` (its first four bytes, big-endian), if it is a capture. */
export function captureFormat(magic: number): CaptureFormat | undefined {
  if (magic === PCAPNG_MAGIC) return "pcapng";
  const swapped = ((magic & 0xff) << 24 | (magic & 0xff00) << 8 | (magic >>> 8) & 0xff00 | magic >>> 24) >>>
    0;
  const classic = [PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS];
  return classic.includes(magic) || classic.includes(swapped) ? "pcap" : undefined;
}
