/**
 * UDP copy (`-x udp:53-198.18.0.3:5353`, TCPCopy's `--udp` build): each datagram a client sends to a
 * copied port goes to the target as it came, with no session, handshake or intercept. `--rate` picks
 * clients (address and port) by the sessions' stable hash, `--multiply` sends each datagram N times
 * from N client ports, and `--clients` rewrites the client address as for TCP sessions (an address of the
 * target's family); the target's answers go where the route sends them (the assistant drops them). IPv4
 * and IPv6 alike. Pure: frames in, datagrams out.
 */
import { copyPort, rangeAddress, sampled, type TargetMapping } from "../session/mod.ts";
import type { AddressRange } from "../session/mod.ts";
import {
  type Address,
  addressFamily,
  decodeUdpPacket,
  destinationAddress,
  isWireError,
  sourceAddress,
} from "../wire/mod.ts";

/** What to copy over UDP and how. */
export interface UdpPlan {
  /** The `udp:` mappings of `-x`. */
  readonly mappings: readonly TargetMapping[];
  /** Client addresses the target sees; empty keeps each real client's address. */
  readonly clients: readonly AddressRange[];
  /** Percent of clients copied, 1..100. */
  readonly rate: number;
  /** Copies of each datagram, 1..1023. */
  readonly multiply: number;
  /** Keeps several `copy` processes' client ports apart (`-f`). */
  readonly portShift: number;
}

/** Where copied datagrams go: one datagram from `source`:`srcPort` to `destination`:`dstPort`. */
export type DatagramSink = (
  source: Address,
  destination: Address,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
) => void;

/** Copies the datagrams of a `UdpPlan`, and counts them. */
export class UdpCopier {
  /** Datagrams captured to a copied port. */
  captured = 0;
  /** Datagrams sent toward the targets (each copied one `multiply` times). */
  copied = 0;
  /** Datagrams of clients `--rate` leaves out. */
  skippedByRate = 0;
  /** UDP frames that cannot be read whole: cut by the capture, malformed, or IP fragments. */
  malformed = 0;
  /**
   * Datagrams of a client whose family is not its target's, with no `-c` range of the target's family to
   * give it an address of that family.
   */
  familyUnreachable = 0;

  /** The `-c` ranges of each family, and how many addresses they hold. */
  readonly #clients: Readonly<Record<4 | 6, readonly AddressRange[]>>;
  readonly #clientsTotal: Readonly<Record<4 | 6, number>>;

  constructor(readonly plan: UdpPlan, readonly sink: DatagramSink) {
    const ranges = (family: 4 | 6) => plan.clients.filter((range) => addressFamily(range.first) === family);
    this.#clients = { 4: ranges(4), 6: ranges(6) };
    const total = (family: 4 | 6) => this.#clients[family].reduce((sum, range) => sum + range.count, 0);
    this.#clientsTotal = { 4: total(4), 6: total(6) };
  }

  /** One captured frame of link type `linkType`; frames that are not UDP are left alone. */
  onFrame(linkType: number, frame: Uint8Array): void {
    const decoded = decodeUdpPacket(linkType, frame);
    if (decoded === undefined) return;
    if (isWireError(decoded)) {
      this.malformed++;
      return;
    }
    if (decoded.outgoing) return;
    const { ip, udp } = decoded;
    const payload = udp.payload();
    if (payload.length < udp.payloadLength) {
      this.malformed++;
      return;
    }
    this.onDatagram(sourceAddress(ip), destinationAddress(ip), udp.srcPort, udp.dstPort, payload);
  }

  /** One datagram a client sent to this host. */
  onDatagram(
    source: Address,
    destination: Address,
    srcPort: number,
    dstPort: number,
    payload: Uint8Array,
  ): void {
    const mapping = this.plan.mappings.find((candidate) =>
      candidate.onlinePort === dstPort &&
      (candidate.onlineAddress === undefined || candidate.onlineAddress === destination)
    );
    if (mapping === undefined) return;
    this.captured++;
    const { rate, multiply, portShift } = this.plan;
    if (!sampled(rate, source, srcPort)) {
      this.skippedByRate++;
      return;
    }
    const family = addressFamily(mapping.targetAddress);
    const clientsTotal = this.#clientsTotal[family];
    if (clientsTotal === 0 && addressFamily(source) !== family) {
      this.familyUnreachable++;
      return;
    }
    const client = clientsTotal === 0 ? source : rangeAddress(this.#clients[family], clientsTotal, source, 0);
    for (let index = 0; index < multiply; index++) {
      const port = copyPort(srcPort, portShift * multiply + index);
      this.sink(client, mapping.targetAddress, port, mapping.targetPort, payload);
      this.copied++;
    }
  }
}
