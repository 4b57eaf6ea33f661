/**
 * Sends the engine's segments (and copied UDP datagrams) to the target, through a raw IPv4 socket or, with
 * `--send-interface`, as Ethernet frames (`LinkOutlet`). Packets are built straight into a batch and
 * leave together, one system call per batch, at the end of the JavaScript task that made them (or sooner
 * when the batch is full): a capture drain or a read from intercept makes many.
 */
import { PacketBatch, RawSocket } from "../../ffi/mod.ts";
import { emitIpv4Tcp, emitIpv4Udp, ipv4Bytes, type TcpRepr } from "../wire/mod.ts";

const MAX_PACKET = 65535;
/** Packets per batch: one system call sends them all. */
export const BATCH_PACKETS = 64;
/** Fits a full-size segment (1460 bytes of payload) with the largest IP and TCP headers and a link header. */
export const BATCH_SLOT = 2048;
/** An IPv4 header without options (all we emit) and a TCP header with the most options. */
const MAX_HEADERS = 20 + 60;
/** An IPv4 header without options and a UDP header. */
const UDP_HEADERS = 20 + 8;

/**
 * Where built packets leave: each goes into `batch.nextSlot()` after `headerLength` bytes left for the
 * link-layer header, and `queue` completes and queues it.
 */
export interface Outlet {
  /** Bytes before the IP header: 0 for a raw IP socket, 14 for Ethernet. */
  readonly headerLength: number;
  readonly batch: PacketBatch;
  /** Queues the `length`-byte packet (link header included) built in `batch.nextSlot()` for `destination`. */
  queue(length: number, destination: number): void;
  /** Sends what `batch` holds and empties it; returns how many the kernel had no room for. */
  sendBatch(): number;
  /** Sends one packet (link header room included) outside the batch; `false` when the kernel had no room. */
  sendOne(packet: Uint8Array<ArrayBuffer>, destination: number): boolean;
  close(): void;
}

/** The raw IPv4 socket: the kernel routes each packet by its destination, through the host's firewall. */
class RawOutlet implements Outlet {
  readonly headerLength = 0;
  readonly batch = new PacketBatch(4, BATCH_PACKETS, BATCH_SLOT);
  readonly #socket: RawSocket;
  readonly #destinations = new Map<number, Uint8Array>();

  constructor() {
    this.#socket = RawSocket.open(4);
    this.#socket.setSendBuffer(8 << 20);
  }

  queue(length: number, destination: number): void {
    this.batch.push(length, this.#address(destination));
  }

  sendBatch(): number {
    return this.#socket.sendBatch(this.batch);
  }

  sendOne(packet: Uint8Array<ArrayBuffer>, destination: number): boolean {
    return this.#socket.send(packet, this.#address(destination));
  }

  close(): void {
    this.#socket.close();
  }

  #address(destination: number): Uint8Array {
    let address = this.#destinations.get(destination);
    if (address === undefined) {
      address = ipv4Bytes(destination);
      this.#destinations.set(destination, address);
    }
    return address;
  }
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

  readonly #out: Outlet;
  /** For the rare packet larger than a batch slot. */
  readonly #large = new Uint8Array(MAX_PACKET + 64);
  readonly #flushSoon = () => this.flush();
  #flushQueued = false;
  #id = 0;

  /** Sends through `outlet`; by default a raw IPv4 socket. */
  constructor(outlet?: Outlet) {
    this.#out = outlet ?? new RawOutlet();
  }

  /** Queues `tcp` from `source` to `destination` (IPv4 addresses as numbers); it leaves by the end of the task. */
  send(source: number, destination: number, tcp: TcpRepr): void {
    this.#id = (this.#id + 1) & 0xffff;
    const packet = { src: source, dst: destination, id: this.#id, tcp };
    const out = this.#out;
    if ((tcp.payload?.length ?? 0) + MAX_HEADERS + out.headerLength > BATCH_SLOT) {
      this.#sendLarge(emitIpv4Tcp(packet, this.#large, out.headerLength), destination);
      return;
    }
    this.#queue(emitIpv4Tcp(packet, out.batch.nextSlot(), out.headerLength), destination);
  }

  /** Queues a UDP datagram from `source`:`srcPort` to `destination`:`dstPort`; it leaves by the end of the task. */
  sendUdp(source: number, destination: number, srcPort: number, dstPort: number, payload: Uint8Array): void {
    this.#id = (this.#id + 1) & 0xffff;
    const datagram = { src: source, dst: destination, id: this.#id, srcPort, dstPort, payload };
    const out = this.#out;
    if (payload.length + UDP_HEADERS + out.headerLength > BATCH_SLOT) {
      this.#sendLarge(emitIpv4Udp(datagram, this.#large, out.headerLength), destination);
      return;
    }
    this.#queue(emitIpv4Udp(datagram, out.batch.nextSlot(), out.headerLength), destination);
  }

  /** Sends what is queued now. */
  flush(): void {
    this.#flushQueued = false;
    const count = this.#out.batch.count;
    if (count === 0) return;
    const dropped = this.#out.sendBatch();
    this.sent += count - dropped;
    this.dropped += dropped;
  }

  /** Sends what is queued and closes the socket. */
  close(): void {
    this.flush();
    this.#out.close();
  }

  #queue(ipLength: number, destination: number): void {
    const out = this.#out;
    out.queue(out.headerLength + ipLength, destination);
    if (out.batch.full) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  /** Out of the batch, but not ahead of what is already queued. */
  #sendLarge(ipLength: number, destination: number): void {
    this.flush();
    const length = this.#out.headerLength + ipLength;
    if (this.#out.sendOne(this.#large.subarray(0, length), destination)) this.sent++;
    else this.dropped++;
  }
}
