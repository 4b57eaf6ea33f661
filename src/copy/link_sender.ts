/**
 * `copy --send-interface DEV`: copies leave as Ethernet frames written by libpcap on DEV, from DEV's own
 * MAC address to the target's (or, when the target is not on the link, to the gateway's), so the online
 * host's routing, connection tracking and firewall never see them (TCPCopy's link-layer mode). Each
 * target's next hop and MAC address are found once, at start: from `--target-mac`, or from the kernel's
 * routes and neighbour table (ARP's for IPv4, NDP's for IPv6), primed with one UDP datagram to the hop's
 * discard port when it has no entry. IPv4 and IPv6 frames leave through the same handle.
 */
import { createSocket } from "node:dgram";
import { Capture, PacketBatch, readKernelFile } from "../../ffi/mod.ts";
import type { Logger } from "../ops/mod.ts";
import { FatalError, UsageError } from "../errors.ts";
import {
  type Address,
  addressFamily,
  ETHERNET_HEADER_LENGTH,
  EtherType,
  formatAddress,
} from "../wire/mod.ts";
import { formatMac, neighbourMac, nextHop, readNeighbours, readRoutes } from "./neighbours.ts";
import { BATCH_PACKETS, BATCH_SLOT, type Outlet } from "./sender.ts";
import { sleep } from "../sleep.ts";

/** ARPHRD_ETHER in /sys/class/net/DEV/type. */
const ARPHRD_ETHER = "1";
const DISCARD_PORT = 9;
/** How long to wait for the kernel to learn a hop's MAC address after the priming datagram. */
const RESOLVE_MS = 3000;
const RESOLVE_POLL_MS = 50;

/** The frames' interface and link-layer addresses. */
export interface LinkPath {
  readonly device: string;
  readonly sourceMac: Uint8Array;
  /** Destination MAC address by target address. */
  readonly macs: ReadonlyMap<Address, Uint8Array>;
}

/**
 * Sends frames on `path.device` through libpcap, batched (sendmmsg on libpcap's packet socket), to targets
 * of either family: each target's Ethernet header carries its family's EtherType.
 */
export class LinkOutlet implements Outlet<Address> {
  readonly headerLength = ETHERNET_HEADER_LENGTH;
  readonly batch = new PacketBatch("link", BATCH_PACKETS, BATCH_SLOT);
  readonly #capture: Capture;
  /** The 14-byte Ethernet header of each target. */
  readonly #headers = new Map<Address, Uint8Array>();

  constructor(path: LinkPath) {
    for (const [target, mac] of path.macs) {
      const header = new Uint8Array(ETHERNET_HEADER_LENGTH);
      header.set(mac, 0);
      header.set(path.sourceMac, 6);
      const etherType = addressFamily(target) === 4 ? EtherType.IPV4 : EtherType.IPV6;
      header[12] = etherType >> 8;
      header[13] = etherType & 0xff;
      this.#headers.set(target, header);
    }
    this.#capture = Capture.openSender(path.device);
  }

  queue(length: number, destination: Address): void {
    this.batch.nextSlot().set(this.#header(destination));
    this.batch.push(length);
  }

  sendBatch(): number {
    return this.#capture.injectBatch(this.batch);
  }

  sendOne(packet: Uint8Array<ArrayBuffer>, destination: Address): boolean {
    packet.set(this.#header(destination));
    return this.#capture.inject(packet);
  }

  close(): void {
    this.#capture.close();
  }

  #header(destination: Address): Uint8Array {
    const header = this.#headers.get(destination);
    if (header === undefined) throw new Error(`no link-layer address for ${formatAddress(destination)}`);
    return header;
  }
}

/**
 * Finds `device`'s MAC address and each target's next-hop MAC address (all of them `targetMac` when
 * given). A device that is not Ethernet is a `UsageError`; a target with no route through `device`, or
 * whose hop does not answer ARP, a `FatalError` that suggests `--target-mac`.
 */
export async function resolveLinkPath(
  device: string,
  targets: readonly Address[],
  targetMac: Uint8Array | undefined,
  log: Logger,
): Promise<LinkPath> {
  const sourceMac = interfaceMac(device);
  const macs = new Map<Address, Uint8Array>();
  for (const target of new Set(targets)) {
    const mac = targetMac ?? await hopMac(device, target, log);
    macs.set(target, mac);
    log.info(`sending to ${formatAddress(target)} as frames on ${device} to ${formatMac(mac)}`);
  }
  return { device, sourceMac, macs };
}

function interfaceMac(device: string): Uint8Array {
  if (device === "any" || device.includes("/")) {
    throw new UsageError(`--send-interface: "${device}" is not an interface to send on`);
  }
  const type = readKernelFile(`/sys/class/net/${device}/type`)?.trim();
  const address = readKernelFile(`/sys/class/net/${device}/address`)?.trim();
  if (type === undefined || address === undefined) {
    throw new UsageError(`--send-interface: this host has no interface ${device}`);
  }
  if (type !== ARPHRD_ETHER) {
    throw new UsageError(`--send-interface: ${device} is not an Ethernet interface (type ${type})`);
  }
  const mac = address.split(":").map((part) => parseInt(part, 16));
  return new Uint8Array(mac);
}

async function hopMac(device: string, target: Address, log: Logger): Promise<Uint8Array> {
  const hop = nextHop(readRoutes(), device, target);
  if (hop === undefined) {
    throw new FatalError(
      `--send-interface: no route to ${formatAddress(target)} through ${device}; ` +
        `give its MAC with --target-mac`,
    );
  }
  const family = addressFamily(target);
  const via = hop === target ? "" : ` (through ${formatAddress(hop)})`;
  let mac = neighbourMac(readNeighbours(device, family), device, hop);
  if (mac !== undefined) return mac;
  log.info(`asking for ${formatAddress(hop)}'s MAC address on ${device}${via}`);
  await prime(hop, device);
  for (const deadline = performance.now() + RESOLVE_MS; performance.now() < deadline;) {
    await sleep(RESOLVE_POLL_MS);
    mac = neighbourMac(readNeighbours(device, family), device, hop);
    if (mac !== undefined) return mac;
  }
  throw new FatalError(
    `--send-interface: ${formatAddress(hop)}${
      via === "" ? "" : `, the gateway to ${formatAddress(target)},`
    } ` +
      `did not answer ${family === 4 ? "ARP" : "neighbour solicitation"} on ${device}; ` +
      `give its MAC with --target-mac`,
  );
}

/**
 * One empty UDP datagram to `hop`'s discard port: the kernel resolves the hop's MAC address to send it
 * (ARP, or IPv6 neighbour discovery). An IPv6 gateway is usually link-local (fe80::/10): named with
 * `device` as its zone.
 */
function prime(hop: Address, device: string): Promise<void> {
  const socket = createSocket(addressFamily(hop) === 4 ? "udp4" : "udp6");
  const text = formatAddress(hop);
  const host = /^fe[89ab]/i.test(text) ? `${text}%${device}` : text;
  return new Promise<void>((resolve) => {
    socket.send(new Uint8Array(0), DISCARD_PORT, host, () => resolve());
  }).finally(() => socket.close());
}
