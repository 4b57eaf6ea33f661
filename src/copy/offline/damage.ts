/** Where a capture file stops being readable: cut off while it was written, or corrupt. */
import { Capture } from "../../../ffi/mod.ts";
import { FatalError } from "../../errors.ts";
import { type CaptureFormat, PCAP_FILE_HEADER_LENGTH, PCAP_RECORD_HEADER_LENGTH } from "../../wire/mod.ts";
import { withoutPath } from "./file_errors.ts";

/** Where a capture file stops being readable (cut off while written, or corrupt). */
export interface FileDamage {
  /** The record, counting every packet in the file from 1, that could not be read. */
  readonly packetNumber: number;
  /** Where that record starts (classic pcap only). */
  readonly byteOffset: number | undefined;
  /** libpcap's explanation. */
  readonly reason: string;
}

/**
 * Counts every record of `path` (unfiltered) up to the one that cannot be read; `reason` is libpcap's
 * error there. Only classic pcap's records sit at offsets one can count, so only there is a byte given.
 */
export function locateDamage(path: string, format: CaptureFormat | undefined, reason: string): FileDamage {
  const capture = Capture.openOffline(path);
  let records = 0;
  let offset = PCAP_FILE_HEADER_LENGTH;
  try {
    for (let packet = capture.next(); packet; packet = capture.next()) {
      records++;
      offset += PCAP_RECORD_HEADER_LENGTH + packet.capturedLength;
    }
  } catch (error) {
    if (!(error instanceof FatalError)) throw error; // the damage being located
  } finally {
    capture.close();
  }
  return {
    packetNumber: records + 1,
    byteOffset: format === "pcap" ? offset : undefined,
    reason: withoutPath(reason, path),
  };
}
