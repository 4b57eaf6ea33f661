/** Zero-copy view of a UDP header (RFC 768). */
import { read16, write16 } from "./bytes.ts";
import { type WireError, wireError } from "./errors.ts";

const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;
/** Length of the UDP header. */
export const UDP_HEADER_LENGTH = 8;

/** A UDP header in place at `bytes[offset..]`; the payload may be cut short by the capture. */
export class UdpView {
  constructor(readonly bytes: Uint8Array, readonly offset: number) {}

  /** Checks that the 8-byte header is in `bytes` and its length field covers at least the header. */
  static check(bytes: Uint8Array, offset = 0): UdpView | WireError {
    const available = bytes.length - offset;
    if (available < UDP_HEADER_LENGTH) {
      return wireError("truncated", `UDP header needs 8 bytes, have ${available}`);
    }
    const view = new UdpView(bytes, offset);
    if (view.length < UDP_HEADER_LENGTH) return wireError("malformed", `UDP length ${view.length} below 8`);
    return view;
  }

  /** Source port. */
  get srcPort(): number {
    return read16(this.bytes, this.offset + SRC_PORT);
  }
  set srcPort(port: number) {
    write16(this.bytes, this.offset + SRC_PORT, port);
  }

  /** Destination port. */
  get dstPort(): number {
    return read16(this.bytes, this.offset + DST_PORT);
  }
  set dstPort(port: number) {
    write16(this.bytes, this.offset + DST_PORT, port);
  }

  /** Length of header plus payload. */
  get length(): number {
    return read16(this.bytes, this.offset + LENGTH);
  }
  set length(value: number) {
    write16(this.bytes, this.offset + LENGTH, value);
  }

  /** Checksum field (0 over IPv4 means none was computed). */
  get checksum(): number {
    return read16(this.bytes, this.offset + CHECKSUM);
  }
  set checksum(value: number) {
    write16(this.bytes, this.offset + CHECKSUM, value);
  }

  /** Absolute index in `bytes` where the payload starts. */
  get payloadOffset(): number {
    return this.offset + UDP_HEADER_LENGTH;
  }

  /** Payload length the header declares. */
  get payloadLength(): number {
    return this.length - UDP_HEADER_LENGTH;
  }

  /** The captured payload, as a subarray of `bytes` (no copy). */
  payload(): Uint8Array {
    return this.bytes.subarray(this.payloadOffset, Math.min(this.offset + this.length, this.bytes.length));
  }
}
