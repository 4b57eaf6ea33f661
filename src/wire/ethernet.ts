/** Zero-copy view of an Ethernet II header, with up to two 802.1Q / 802.1ad tags skipped. */
import { read16 } from "./bytes.ts";
import { checkVlanTags, innerTypeFieldAt, vlanTagCount } from "./_vlan.ts";
import { type WireError, wireError } from "./errors.ts";

const DST = 0;
const SRC = 6;
const TYPE = 12;
const MAC_LENGTH = 6;
/** Length of an untagged Ethernet header. */
export const ETHERNET_HEADER_LENGTH = 14;

/** EtherType values tcpshadow tells apart. */
export const EtherType = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, QINQ: 0x88a8, IPV6: 0x86dd } as const;

/** An Ethernet header at `bytes[offset..]`; `check` guarantees it and any tags are whole. */
export class EthernetView {
  /** `bytes` and `offset` move with `checkAt`: one view serves frame after frame. */
  constructor(public bytes: Uint8Array, public offset = 0) {}

  /** Checks that the header and at most two VLAN tags are in `bytes`. */
  static check(bytes: Uint8Array, offset = 0): EthernetView | WireError {
    return new EthernetView(bytes, offset).checkAt(bytes, offset);
  }

  /** Points this view at `bytes[offset..]` and checks it as `check` does: no new view per frame. */
  checkAt(bytes: Uint8Array, offset = 0): EthernetView | WireError {
    const available = bytes.length - offset;
    if (available < ETHERNET_HEADER_LENGTH) {
      return wireError("truncated", `Ethernet header needs 14 bytes, have ${available}`);
    }
    this.bytes = bytes;
    this.offset = offset;
    return checkVlanTags(bytes, offset + TYPE, "Ethernet") ?? this;
  }

  /** Destination MAC address, a 6-byte subarray. */
  get dst(): Uint8Array {
    return this.bytes.subarray(this.offset + DST, this.offset + DST + MAC_LENGTH);
  }

  /** Source MAC address, a 6-byte subarray. */
  get src(): Uint8Array {
    return this.bytes.subarray(this.offset + SRC, this.offset + SRC + MAC_LENGTH);
  }

  /** Number of VLAN tags skipped (0..2). */
  get vlanTags(): number {
    return vlanTagCount(this.bytes, this.offset + TYPE);
  }

  /** EtherType of the payload, after any VLAN tags. */
  get etherType(): number {
    return read16(this.bytes, innerTypeFieldAt(this.bytes, this.offset + TYPE));
  }

  /** Absolute index in `bytes` where the payload starts. */
  get payloadOffset(): number {
    return innerTypeFieldAt(this.bytes, this.offset + TYPE) + 2;
  }
}
