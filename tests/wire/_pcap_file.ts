/**
 * A writer of classic pcap files (the format libpcap reads), for test fixtures. Reading captures is
 * libpcap's job, through `ffi/`.
 */
import {
  PCAP_FILE_HEADER_LENGTH as FILE_HEADER_LENGTH,
  PCAP_MAGIC_MICROSECONDS as MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS as MAGIC_NANOSECONDS,
  PCAP_RECORD_HEADER_LENGTH as RECORD_HEADER_LENGTH,
} from "../../src/wire/mod.ts";

const VERSION_MAJOR = 2;
const VERSION_MINOR = 4;
/** The snapshot length tcpdump uses by default. */
export const DEFAULT_SNAPLEN = 262144;

/** One captured packet for `encodePcapFile`. */
export interface PcapRecord {
  /** Capture time in seconds since the epoch, fractional. */
  time: number;
  /** Frame bytes; cut to the file's snaplen if longer. */
  data: Uint8Array;
  /** Length the frame had on the wire; default `data.length`. Larger than the data for a cut capture. */
  originalLength?: number;
}

/** Options for `encodePcapFile`. */
export interface PcapFileOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds. */
  nanosecond?: boolean;
  /** Write big-endian headers instead of little-endian ones. */
  bigEndian?: boolean;
  /** Snapshot length in the file header; longer frames are cut to it. Default 262144. */
  snaplen?: number;
}

/** Encodes `records` as a classic pcap file of link type `linkType`. */
export function encodePcapFile(
  linkType: number,
  records: PcapRecord[],
  options: PcapFileOptions = {},
): Uint8Array {
  const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
  const littleEndian = !options.bigEndian;
  const ticksPerSecond = options.nanosecond ? 1e9 : 1e6;
  const size = records.reduce(
    (sum, record) => sum + RECORD_HEADER_LENGTH + Math.min(record.data.length, snaplen),
    FILE_HEADER_LENGTH,
  );
  const file = new Uint8Array(size);
  const view = new DataView(file.buffer);
  view.setUint32(0, options.nanosecond ? MAGIC_NANOSECONDS : MAGIC_MICROSECONDS, littleEndian);
  view.setUint16(4, VERSION_MAJOR, littleEndian);
  view.setUint16(6, VERSION_MINOR, littleEndian);
  // Bytes 8..16 (time zone offset, timestamp accuracy) stay zero, as every writer leaves them.
  view.setUint32(16, snaplen, littleEndian);
  view.setUint32(20, linkType, littleEndian);
  let at = FILE_HEADER_LENGTH;
  for (const record of records) {
    let seconds = Math.floor(record.time);
    let ticks = Math.round((record.time - seconds) * ticksPerSecond);
    if (ticks >= ticksPerSecond) {
      seconds++;
      ticks -= ticksPerSecond;
    }
    const captured = Math.min(record.data.length, snaplen);
    view.setUint32(at, seconds, littleEndian);
    view.setUint32(at + 4, ticks, littleEndian);
    view.setUint32(at + 8, captured, littleEndian);
    view.setUint32(at + 12, record.originalLength ?? record.data.length, littleEndian);
    file.set(record.data.subarray(0, captured), at + RECORD_HEADER_LENGTH);
    at += RECORD_HEADER_LENGTH + captured;
  }
  return file;
}
