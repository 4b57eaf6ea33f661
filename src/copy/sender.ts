/**
 * Sends the engine's segments (and copied UDP datagrams) to the target. IPv4 packets leave through a raw
 * IPv4 socket or, with `--send-interface`, as Ethernet frames (`LinkOutlet`); IPv6 packets through a raw
 * IPv6 socket of their own, opened only when some target is IPv6. Packets are built straight into a batch
 * and leave together, one system call per batch, at the end of the JavaScript task that made them (or
 * sooner when the batch is full): a capture drain or a read from intercept makes many.
 *
 * An IPv4 raw socket of protocol IPPROTO_RAW takes our header as is (IP_HDRINCL); so does an IPv6 one on
 * Linux (the kernel sets its hdrincl for IPPROTO_RAW): it sends the whole IPv6 header we built, flow label
 * and traffic class included, and routes by the sockaddr's address. Unbound, an IPv6 raw socket has the
 * kernel select a source address for every packet's route lookup (`ipv6_dev_get_saddr`, though the header
 * has its source), about a fifth of the lookup's cost: so the IPv6 socket is bound to the address the kernel
 * selects toward the targets, when it is one for all of them (bench/RESULTS.md, tenth round).
 */
import { localAddressToward, PacketBatch, RawSocket } from "../../ffi/mod.ts";
import {
  type Address,
  addressBytes,
  emitIpv4Tcp,
  emitIpv4Udp,
  emitIpv6Tcp,
  emitIpv6Udp,
  type Ipv4TcpRepr,
  ipv6Address,
  ipv6AddressBytes,
  type Ipv6TcpRepr,
  type TcpRepr,
  writeIpv6Address,
} from "../wire/mod.ts";

const MAX_PACKET = 65535;
/** Packets per batch: one system call sends them all. */
export const BATCH_PACKETS = 64;
/** Fits a full-size segment (1460 bytes of payload) with the largest IP and TCP headers and a link header. */
export const BATCH_SLOT = 2048;
/** An IPv6 header (the larger of the two we emit, no options) and a TCP header with the most options. */
const MAX_HEADERS = 40 + 60;
/** An IPv6 header (the larger of the two, no options or extensions) and a UDP header. */
const UDP_HEADERS = 40 + 8;
/** What the reused packet descriptions hold before their first packet. */
const EMPTY_SEGMENT: TcpRepr = { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0 };

/**
 * Where built packets leave: each goes into `batch.nextSlot()` after `headerLength` bytes left for the
 * link-layer header, and `queue` completes and queues it. `D` is the destination's address: a number for
 * IPv4, an IPv6 `Address` string for the IPv6 socket.
 */
export interface Outlet<D extends Address = number> {
  /** Bytes before the IP header: 0 for a raw IP socket, 14 for Ethernet. */
  readonly headerLength: number;
  readonly batch: PacketBatch;
  /** Queues the `length`-byte packet (link header included) built in `batch.nextSlot()` for `destination`. */
  queue(length: number, destination: D): void;
  /** Sends what `batch` holds and empties it; returns how many the kernel had no room for. */
  sendBatch(): number;
  /** Sends one packet (link header room included) outside the batch; `false` when the kernel had no room. */
  sendOne(packet: Uint8Array<ArrayBuffer>, destination: D): boolean;
  close(): void;
}

/** A raw IP socket of one family: the kernel routes each packet by its destination, through the host's firewall. */
class RawOutlet<D extends Address> implements Outlet<D> {
  readonly headerLength = 0;
  readonly batch: PacketBatch;
  readonly #socket: RawSocket;
  readonly #destinations = new Map<D, Uint8Array>();

  /** @param source an address of this host to bind the socket to (its route lookups start from it) */
  constructor(family: 4 | 6, source?: Uint8Array) {
    this.#socket = RawSocket.open(family);
    try {
      this.#socket.setSendBuffer(8 << 20);
      // Refused (the address went meanwhile), the socket sends all the same, only selecting as it did.
      if (source !== undefined) this.#socket.bind(source);
    } catch (error) {
      this.#socket.close();
      throw error;
    }
    this.batch = new PacketBatch(family, BATCH_PACKETS, BATCH_SLOT);
  }

  queue(length: number, destination: D): void {
    this.batch.push(length, this.#address(destination));
  }

  sendBatch(): number {
    return this.#socket.sendBatch(this.batch);
  }

  sendOne(packet: Uint8Array<ArrayBuffer>, destination: D): boolean {
    return this.#socket.send(packet, this.#address(destination));
  }

  close(): void {
    this.#socket.close();
  }

  /** `destination`'s bytes (4 or 16), kept for the next packet to it. */
  #address(destination: D): Uint8Array {
    let address = this.#destinations.get(destination);
    if (address === undefined) {
      address = addressBytes(destination);
      this.#destinations.set(destination, address);
    }
    return address;
  }
}

/**
 * The address this host sends from toward every one of the IPv6 `targets`, when that is one address (the
 * kernel's own choice, so binding to it changes no route); `undefined` when the kernel has several, or
 * no route to some.
 */
export function sourceToward(targets: readonly string[]): Uint8Array | undefined {
  let common: string | undefined;
  for (const target of targets) {
    const source = localAddressToward(ipv6AddressBytes(target));
    if (source === undefined) return undefined;
    const address = ipv6Address(source);
    if (common !== undefined && address !== common) return undefined;
    common = address;
  }
  return common === undefined ? undefined : ipv6AddressBytes(common);
}

/** Builds each packet in place and sends it with the others of the same task. */
export class PacketSender {
  /** Packets handed to the kernel. */
  sent = 0;
  /**
   * Packets the kernel had no room for, or a firewall rule of this host dropped (counted, not retried:
   * the session retransmits).
   */
  dropped = 0;

  /** Where IPv4 packets leave. */
  readonly #out: Outlet;
  /** Where IPv6 packets leave, when some target is IPv6: a raw IPv6 socket, or the link outlet. */
  readonly #out6: Outlet<string> | undefined;
  /** For the rare packet larger than a batch slot. */
  readonly #large = new Uint8Array(MAX_PACKET + 64);
  /** The IPv6 source and destination addresses of the packet being built, and the `Address`es they hold. */
  readonly #source6 = new Uint8Array(16);
  readonly #destination6 = new Uint8Array(16);
  #source6Held = "";
  #destination6Held = "";
  /** Whether IPv4 and IPv6 leave through the one link outlet. */
  readonly #outletShared: boolean;
  /** The packet being built, one object for all: `send` allocates nothing. */
  readonly #packet4: Ipv4TcpRepr = { src: 0, dst: 0, id: 0, tcp: EMPTY_SEGMENT };
  readonly #packet6: Ipv6TcpRepr = {
    src: this.#source6,
    dst: this.#destination6,
    flowInfo: 0,
    tcp: EMPTY_SEGMENT,
  };
  readonly #flushSoon = () => this.flush();
  #flushQueued = false;
  #id = 0;

  /**
   * Sends through `linkOutlet` (`--send-interface`: frames of both families), or else IPv4 through a raw
   * IPv4 socket and IPv6 through a raw IPv6 socket, opened when there are `ipv6Targets`.
   */
  constructor(linkOutlet?: Outlet<Address>, ipv6Targets: readonly string[] = []) {
    this.#out = linkOutlet ?? new RawOutlet<number>(4);
    this.#outletShared = linkOutlet !== undefined;
    try {
      this.#out6 = ipv6Targets.length === 0
        ? undefined
        : linkOutlet ?? new RawOutlet<string>(6, sourceToward(ipv6Targets));
    } catch (error) {
      this.#out.close();
      throw error;
    }
  }

  /**
   * Queues `tcp` from `source` to `destination` (both of one family; `flowInfo` is the IPv6 traffic
   * class and flow label); it leaves by the end of the task.
   */
  send(source: Address, destination: Address, tcp: TcpRepr, flowInfo = 0): void {
    const segmentRoom = (tcp.payload?.length ?? 0) + MAX_HEADERS;
    if (typeof source === "number") {
      this.#id = (this.#id + 1) & 0xffff;
      const packet = this.#packet4;
      packet.src = source;
      packet.dst = destination as number;
      packet.id = this.#id;
      packet.tcp = tcp;
      const out = this.#out;
      if (segmentRoom + out.headerLength > BATCH_SLOT) {
        this.#sendLarge(out, emitIpv4Tcp(packet, this.#large, out.headerLength), destination as number);
      } else {this.#queue(
          out,
          emitIpv4Tcp(packet, out.batch.nextSlot(), out.headerLength),
          destination as number,
        );}
      return;
    }
    const out6 = this.#ipv6Outlet(source, destination as string);
    const packet = this.#packet6;
    packet.flowInfo = flowInfo;
    packet.tcp = tcp;
    if (segmentRoom + out6.headerLength > BATCH_SLOT) {
      this.#sendLarge(out6, emitIpv6Tcp(packet, this.#large, out6.headerLength), destination as string);
    } else {
      this.#queue(out6, emitIpv6Tcp(packet, out6.batch.nextSlot(), out6.headerLength), destination as string);
    }
  }

  /**
   * Queues a UDP datagram from `source`:`srcPort` to `destination`:`dstPort` (both of one family); it
   * leaves by the end of the task.
   */
  sendUdp(
    source: Address,
    destination: Address,
    srcPort: number,
    dstPort: number,
    payload: Uint8Array,
  ): void {
    const datagramRoom = payload.length + UDP_HEADERS;
    if (typeof source === "number") {
      this.#id = (this.#id + 1) & 0xffff;
      const datagram = { src: source, dst: destination as number, id: this.#id, srcPort, dstPort, payload };
      const out = this.#out;
      if (datagramRoom + out.headerLength > BATCH_SLOT) {
        this.#sendLarge(out, emitIpv4Udp(datagram, this.#large, out.headerLength), destination as number);
      } else {
        this.#queue(
          out,
          emitIpv4Udp(datagram, out.batch.nextSlot(), out.headerLength),
          destination as number,
        );
      }
      return;
    }
    const out6 = this.#ipv6Outlet(source, destination as string);
    const datagram = { src: this.#source6, dst: this.#destination6, srcPort, dstPort, payload };
    if (datagramRoom + out6.headerLength > BATCH_SLOT) {
      this.#sendLarge(out6, emitIpv6Udp(datagram, this.#large, out6.headerLength), destination as string);
    } else {
      this.#queue(
        out6,
        emitIpv6Udp(datagram, out6.batch.nextSlot(), out6.headerLength),
        destination as string,
      );
    }
  }

  /** The IPv6 outlet, with `source` and `destination` written for the packet about to be built. */
  #ipv6Outlet(source: string, destination: string): Outlet<string> {
    const out6 = this.#out6;
    if (out6 === undefined) throw new Error("IPv6 packet without an IPv6 target");
    // The target is nearly always the last packet's, and often the fake client too.
    if (source !== this.#source6Held) {
      writeIpv6Address(source, this.#source6);
      this.#source6Held = source;
    }
    if (destination !== this.#destination6Held) {
      writeIpv6Address(destination, this.#destination6);
      this.#destination6Held = destination;
    }
    return out6;
  }

  /** Sends what is queued now. */
  flush(): void {
    this.#flushQueued = false;
    this.#flushOutlet(this.#out);
    // With --send-interface both families share the link outlet.
    if (this.#out6 !== undefined && !this.#outletShared) this.#flushOutlet(this.#out6);
  }

  /** Sends what is queued and closes the sockets. */
  close(): void {
    this.flush();
    this.#out.close();
    if (!this.#outletShared) this.#out6?.close();
  }

  #flushOutlet<D extends Address>(out: Outlet<D>): void {
    const count = out.batch.count;
    if (count === 0) return;
    const dropped = out.sendBatch();
    this.sent += count - dropped;
    this.dropped += dropped;
  }

  #queue<D extends Address>(out: Outlet<D>, ipLength: number, destination: D): void {
    out.queue(out.headerLength + ipLength, destination);
    if (out.batch.full) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  /** Out of the batch, but not ahead of what is already queued. */
  #sendLarge<D extends Address>(out: Outlet<D>, ipLength: number, destination: D): void {
    this.flush();
    const length = out.headerLength + ipLength;
    if (out.sendOne(this.#large.subarray(0, length), destination)) this.sent++;
    else this.dropped++;
  }
}
