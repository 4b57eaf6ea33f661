/** Sends the engine's segments to the target through a raw IPv4 socket. */
import { RawSocket } from "../../ffi/mod.ts";
import { emitIpv4Tcp, ipv4Bytes, type TcpRepr } from "../wire/mod.ts";

const MAX_PACKET = 65535;

/** Builds each segment into one reused buffer and sends it. */
export class PacketSender {
  /** Packets handed to the kernel. */
  sent = 0;
  /** Packets the kernel had no room for (counted, not retried: the session retransmits). */
  dropped = 0;

  readonly #socket: RawSocket;
  readonly #buffer = new Uint8Array(MAX_PACKET);
  readonly #destinations = new Map<number, Uint8Array>();
  #id = 0;

  constructor() {
    this.#socket = RawSocket.open(4);
    this.#socket.setSendBuffer(8 << 20);
  }

  /** Sends `tcp` from `source` to `destination` (IPv4 addresses as numbers). */
  send(source: number, destination: number, tcp: TcpRepr): void {
    this.#id = (this.#id + 1) & 0xffff;
    const length = emitIpv4Tcp({ src: source, dst: destination, id: this.#id, tcp }, this.#buffer);
    let address = this.#destinations.get(destination);
    if (address === undefined) {
      address = ipv4Bytes(destination);
      this.#destinations.set(destination, address);
    }
    if (this.#socket.send(this.#buffer.subarray(0, length), address)) this.sent++;
    else this.dropped++;
  }

  close(): void {
    this.#socket.close();
  }
}
