/**
 * Sends the engine's segments to the target through a raw IPv4 socket. Segments are built straight
 * into a batch and leave together, one system call per batch, at the end of the JavaScript task that
 * made them (or sooner when the batch is full): a capture drain or a read from intercept makes many.
 */
import { PacketBatch, RawSocket } from "../../ffi/mod.ts";
import { emitIpv4Tcp, ipv4Bytes, type TcpRepr } from "../wire/mod.ts";

const MAX_PACKET = 65535;
const BATCH_PACKETS = 64;
/** Fits a full-size segment (1460 bytes of payload) with the largest IP and TCP headers. */
const BATCH_SLOT = 2048;
/** An IPv4 header without options (all we emit) and a TCP header with the most options. */
const MAX_HEADERS = 20 + 60;

/** Builds each segment in place and sends it with the others of the same task. */
export class PacketSender {
  /** Packets handed to the kernel. */
  sent = 0;
  /** Packets the kernel had no room for (counted, not retried: the session retransmits). */
  dropped = 0;

  readonly #socket: RawSocket;
  readonly #batch = new PacketBatch(4, BATCH_PACKETS, BATCH_SLOT);
  /** For the rare segment larger than a batch slot. */
  readonly #large = new Uint8Array(MAX_PACKET);
  readonly #destinations = new Map<number, Uint8Array>();
  readonly #flushSoon = () => this.flush();
  #flushQueued = false;
  #id = 0;

  constructor() {
    this.#socket = RawSocket.open(4);
    this.#socket.setSendBuffer(8 << 20);
  }

  /** Queues `tcp` from `source` to `destination` (IPv4 addresses as numbers); it leaves by the end of the task. */
  send(source: number, destination: number, tcp: TcpRepr): void {
    this.#id = (this.#id + 1) & 0xffff;
    let address = this.#destinations.get(destination);
    if (address === undefined) {
      address = ipv4Bytes(destination);
      this.#destinations.set(destination, address);
    }
    const packet = { src: source, dst: destination, id: this.#id, tcp };
    const batch = this.#batch;
    if ((tcp.payload?.length ?? 0) + MAX_HEADERS > BATCH_SLOT) {
      // Out of the batch, but not ahead of what is already queued.
      this.flush();
      const length = emitIpv4Tcp(packet, this.#large);
      if (this.#socket.send(this.#large.subarray(0, length), address)) this.sent++;
      else this.dropped++;
      return;
    }
    batch.push(emitIpv4Tcp(packet, batch.nextSlot()), address);
    if (batch.full) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  /** Sends what is queued now. */
  flush(): void {
    this.#flushQueued = false;
    const count = this.#batch.count;
    if (count === 0) return;
    const dropped = this.#socket.sendBatch(this.#batch);
    this.sent += count - dropped;
    this.dropped += dropped;
  }

  /** Sends what is queued and closes the socket. */
  close(): void {
    this.flush();
    this.#socket.close();
  }
}
