/**
 * Sends the engine's segments to the target through raw sockets, one per address family. Segments are
 * built straight into a batch and leave together, one system call per batch, at the end of the
 * JavaScript task that made them (or sooner when the batch is full): a capture drain or a read from
 * intercept makes many.
 *
 * An IPv4 raw socket of protocol IPPROTO_RAW takes our header as is (IP_HDRINCL); so does an IPv6 one on
 * Linux (the kernel sets its hdrincl for IPPROTO_RAW): it sends the whole IPv6 header we built, flow label
 * and traffic class included, and routes by the sockaddr's address.
 */
import { PacketBatch, RawSocket } from "../../ffi/mod.ts";
import {
  type Address,
  emitIpv4Tcp,
  emitIpv6Tcp,
  ipv4Bytes,
  type Ipv4TcpRepr,
  ipv6AddressBytes,
  type Ipv6TcpRepr,
  type TcpRepr,
  writeIpv6Address,
} from "../wire/mod.ts";

const MAX_PACKET = 65535;
const BATCH_PACKETS = 64;
/** Fits a full-size segment (1460 bytes of payload) with the largest IP and TCP headers. */
const BATCH_SLOT = 2048;
/** An IPv6 header (the larger of the two we emit, no options) and a TCP header with the most options. */
const MAX_HEADERS = 40 + 60;

/** One family's socket and batch. */
class FamilySender {
  readonly socket: RawSocket;
  readonly batch: PacketBatch;

  constructor(readonly family: 4 | 6) {
    this.socket = RawSocket.open(family);
    this.socket.setSendBuffer(8 << 20);
    this.batch = new PacketBatch(family, BATCH_PACKETS, BATCH_SLOT);
  }
}

/** Writes `packet` at `into[0..]`; returns its length. */
function emit(packet: Ipv4TcpRepr | Ipv6TcpRepr, into: Uint8Array): number {
  return typeof packet.src === "number"
    ? emitIpv4Tcp(packet as Ipv4TcpRepr, into)
    : emitIpv6Tcp(packet as Ipv6TcpRepr, into);
}

/** Builds each segment in place and sends it with the others of the same task. */
export class PacketSender {
  /** Packets handed to the kernel. */
  sent = 0;
  /** Packets the kernel had no room for (counted, not retried: the session retransmits). */
  dropped = 0;

  readonly #v4: FamilySender;
  readonly #v6: FamilySender | undefined;
  /** For the rare segment larger than a batch slot. */
  readonly #large = new Uint8Array(MAX_PACKET);
  readonly #destinations = new Map<Address, Uint8Array>();
  /** The IPv6 source address of the packet being built. */
  readonly #source6 = new Uint8Array(16);
  readonly #flushSoon = () => this.flush();
  #flushQueued = false;
  #id = 0;

  /** Opens the IPv4 raw socket, and the IPv6 one when `ipv6` (some target is IPv6). */
  constructor(ipv6 = false) {
    this.#v4 = new FamilySender(4);
    try {
      this.#v6 = ipv6 ? new FamilySender(6) : undefined;
    } catch (error) {
      this.#v4.socket.close();
      throw error;
    }
  }

  /**
   * Queues `tcp` from `source` to `destination` (both of one family; `flowInfo` is the IPv6 traffic
   * class and flow label); it leaves by the end of the task.
   */
  send(source: Address, destination: Address, tcp: TcpRepr, flowInfo = 0): void {
    let address = this.#destinations.get(destination);
    if (address === undefined) {
      address = typeof destination === "number" ? ipv4Bytes(destination) : ipv6AddressBytes(destination);
      this.#destinations.set(destination, address);
    }
    let family: FamilySender, packet: Ipv4TcpRepr | Ipv6TcpRepr;
    if (typeof source === "number") {
      this.#id = (this.#id + 1) & 0xffff;
      packet = { src: source, dst: destination as number, id: this.#id, tcp };
      family = this.#v4;
    } else {
      if (this.#v6 === undefined) throw new Error("IPv6 segment without an IPv6 target");
      writeIpv6Address(source, this.#source6);
      packet = { src: this.#source6, dst: address, flowInfo, tcp };
      family = this.#v6;
    }
    const batch = family.batch;
    if ((tcp.payload?.length ?? 0) + MAX_HEADERS > BATCH_SLOT) {
      // Out of the batch, but not ahead of what is already queued.
      this.flush();
      const length = emit(packet, this.#large);
      if (family.socket.send(this.#large.subarray(0, length), address)) this.sent++;
      else this.dropped++;
      return;
    }
    batch.push(emit(packet, batch.nextSlot()), address);
    if (batch.full) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  /** Sends what is queued now. */
  flush(): void {
    this.#flushQueued = false;
    this.#flushFamily(this.#v4);
    if (this.#v6 !== undefined) this.#flushFamily(this.#v6);
  }

  /** Sends what is queued and closes the sockets. */
  close(): void {
    this.flush();
    this.#v4.socket.close();
    this.#v6?.socket.close();
  }

  #flushFamily(family: FamilySender): void {
    const count = family.batch.count;
    if (count === 0) return;
    const dropped = family.socket.sendBatch(family.batch);
    this.sent += count - dropped;
    this.dropped += dropped;
  }
}
