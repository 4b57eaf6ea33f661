/**
 * Zero-copy views of the Linux "cooked" capture headers that `tcpdump -i any` produces: SLL
 * (DLT_LINUX_SLL, 16 bytes) and SLL2 (LINKTYPE_LINUX_SLL2, 20 bytes). Their packet type tells a host's
 * incoming packets from its outgoing ones.
 */
import { read16, read32 } from "./bytes.ts";
import { checkVlanTags, innerTypeFieldAt } from "./_vlan.ts";
import { type WireError, wireError } from "./errors.ts";

const SLL_PACKET_TYPE = 0;
const SLL_ARPHRD = 2;
const SLL_ADDRESS_LENGTH = 4;
const SLL_ADDRESS = 6;
const SLL_PROTOCOL = 14;
/** Length of an SLL header. */
export const SLL_HEADER_LENGTH = 16;

const SLL2_PROTOCOL = 0;
const SLL2_INTERFACE_INDEX = 4;
const SLL2_ARPHRD = 8;
const SLL2_PACKET_TYPE = 10;
const SLL2_ADDRESS_LENGTH = 11;
const SLL2_ADDRESS = 12;
/** Length of an SLL2 header. */
export const SLL2_HEADER_LENGTH = 20;

const ADDRESS_FIELD_LENGTH = 8;

/** Linux packet types (`PACKET_*` in linux/if_packet.h) as cooked headers carry them. */
export const PacketType = { HOST: 0, BROADCAST: 1, MULTICAST: 2, OTHERHOST: 3, OUTGOING: 4 } as const;

/**
 * An SLL header at `bytes[offset..]`. libpcap puts a VLAN tag it recovers in front of the protocol
 * field, so `protocol` and `payloadOffset` look past up to two tags, as for Ethernet.
 */
export class SllView {
  /** `bytes` and `offset` move with `checkAt`: one view serves frame after frame. */
  constructor(public bytes: Uint8Array, public offset = 0) {}

  /** Checks that the 16-byte header and any VLAN tags are in `bytes`. */
  static check(bytes: Uint8Array, offset = 0): SllView | WireError {
    return new SllView(bytes, offset).checkAt(bytes, offset);
  }

  /** Points this view at `bytes[offset..]` and checks it as `check` does: no new view per frame. */
  checkAt(bytes: Uint8Array, offset = 0): SllView | WireError {
    const available = bytes.length - offset;
    if (available < SLL_HEADER_LENGTH) {
      return wireError("truncated", `SLL header needs 16 bytes, have ${available}`);
    }
    this.bytes = bytes;
    this.offset = offset;
    return checkVlanTags(bytes, offset + SLL_PROTOCOL, "SLL") ?? this;
  }

  /** Packet type, one of `PacketType`. */
  get packetType(): number {
    return read16(this.bytes, this.offset + SLL_PACKET_TYPE);
  }

  /** True when the capturing host sent this packet. */
  get outgoing(): boolean {
    return this.packetType === PacketType.OUTGOING;
  }

  /** ARPHRD_* type of the interface (1 = Ethernet, 772 = loopback). */
  get arphrdType(): number {
    return read16(this.bytes, this.offset + SLL_ARPHRD);
  }

  /** Link-layer address length as sent; `address` holds at most 8 bytes of it. */
  get addressLength(): number {
    return read16(this.bytes, this.offset + SLL_ADDRESS_LENGTH);
  }

  /** Link-layer source address, a subarray of at most 8 bytes. */
  get address(): Uint8Array {
    const start = this.offset + SLL_ADDRESS;
    return this.bytes.subarray(start, start + Math.min(this.addressLength, ADDRESS_FIELD_LENGTH));
  }

  /** Protocol (an EtherType for most interfaces) of the payload, after any VLAN tags. */
  get protocol(): number {
    return read16(this.bytes, innerTypeFieldAt(this.bytes, this.offset + SLL_PROTOCOL));
  }

  /** Absolute index in `bytes` where the payload starts. */
  get payloadOffset(): number {
    return innerTypeFieldAt(this.bytes, this.offset + SLL_PROTOCOL) + 2;
  }
}

/** An SLL2 header at `bytes[offset..]`. */
export class Sll2View {
  /** `bytes` and `offset` move with `checkAt`: one view serves frame after frame. */
  constructor(public bytes: Uint8Array, public offset = 0) {}

  /** Checks that the 20-byte header is in `bytes`. */
  static check(bytes: Uint8Array, offset = 0): Sll2View | WireError {
    return new Sll2View(bytes, offset).checkAt(bytes, offset);
  }

  /** Points this view at `bytes[offset..]` and checks it as `check` does: no new view per frame. */
  checkAt(bytes: Uint8Array, offset = 0): Sll2View | WireError {
    const available = bytes.length - offset;
    if (available < SLL2_HEADER_LENGTH) {
      return wireError("truncated", `SLL2 header needs 20 bytes, have ${available}`);
    }
    this.bytes = bytes;
    this.offset = offset;
    return this;
  }

  /** Protocol (an EtherType for most interfaces) of the payload. */
  get protocol(): number {
    return read16(this.bytes, this.offset + SLL2_PROTOCOL);
  }

  /** Index of the interface the packet was seen on. */
  get interfaceIndex(): number {
    return read32(this.bytes, this.offset + SLL2_INTERFACE_INDEX);
  }

  /** ARPHRD_* type of the interface (1 = Ethernet, 772 = loopback). */
  get arphrdType(): number {
    return read16(this.bytes, this.offset + SLL2_ARPHRD);
  }

  /** Packet type, one of `PacketType`. */
  get packetType(): number {
    return this.bytes[this.offset + SLL2_PACKET_TYPE];
  }

  /** True when the capturing host sent this packet. */
  get outgoing(): boolean {
    return this.packetType === PacketType.OUTGOING;
  }

  /** Link-layer address length as sent; `address` holds at most 8 bytes of it. */
  get addressLength(): number {
    return this.bytes[this.offset + SLL2_ADDRESS_LENGTH];
  }

  /** Link-layer source address, a subarray of at most 8 bytes. */
  get address(): Uint8Array {
    const start = this.offset + SLL2_ADDRESS;
    return this.bytes.subarray(start, start + Math.min(this.addressLength, ADDRESS_FIELD_LENGTH));
  }

  /** Absolute index in `bytes` where the payload starts. */
  get payloadOffset(): number {
    return this.offset + SLL2_HEADER_LENGTH;
  }
}
