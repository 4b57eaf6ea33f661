/**
 * What `copy --send-interface` needs to know to address Ethernet frames itself: the next hop toward a
 * target through one interface (the kernel's IPv4 routes, `/proc/net/route`) and that hop's MAC address
 * (the neighbour table, `/proc/net/arp`). The parsers are pure; `readRoutes` and `readNeighbours` read the
 * files of this process's network namespace.
 */
import { readKernelFile } from "../../ffi/mod.ts";
import { parseIpv4 } from "../wire/mod.ts";

/** One IPv4 route of the main table. */
export interface Route {
  readonly device: string;
  /** Network address (uint32). */
  readonly destination: number;
  /** 0 for a route on the link. */
  readonly gateway: number;
  /** Netmask (uint32). */
  readonly mask: number;
  readonly metric: number;
}

/** One complete entry of the neighbour table. */
export interface Neighbour {
  readonly address: number;
  readonly mac: Uint8Array;
  readonly device: string;
}

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
/** ATF_COM: the entry has a MAC address (not still being resolved, not failed). */
const ATF_COM = 0x2;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/**
 * The routes in `/proc/net/route`'s text: addresses are hex words in the host's byte order (little-endian
 * on the machines tcpshadow runs on). Routes that are down are left out.
 */
export function parseRoutes(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [device, destination, gateway, flags, , , metric, mask] = fields;
    const flagBits = parseInt(flags, 16);
    if (!(flagBits & RTF_UP)) continue;
    routes.push({
      device,
      destination: hostOrderWord(destination),
      gateway: flagBits & RTF_GATEWAY ? hostOrderWord(gateway) : 0,
      mask: hostOrderWord(mask),
      metric: Number(metric),
    });
  }
  return routes;
}

/**
 * The address whose MAC a frame to `target` out of `device` carries: `target` itself when a route through
 * `device` has it on the link, the route's gateway otherwise; `undefined` when no route through `device`
 * covers `target`. The longest prefix wins, then the lowest metric.
 */
export function nextHop(routes: readonly Route[], device: string, target: number): number | undefined {
  let best: Route | undefined;
  for (const route of routes) {
    if (route.device !== device || ((target & route.mask) >>> 0) !== route.destination) continue;
    if (
      best === undefined || prefixLength(route.mask) > prefixLength(best.mask) ||
      (prefixLength(route.mask) === prefixLength(best.mask) && route.metric < best.metric)
    ) {
      best = route;
    }
  }
  if (best === undefined) return undefined;
  return best.gateway === 0 ? target : best.gateway;
}

/** The complete entries of `/proc/net/arp`'s text. */
export function parseNeighbours(text: string): Neighbour[] {
  const neighbours: Neighbour[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 6) continue;
    const [address, , flags, mac, , device] = fields;
    const parsed = parseMac(mac);
    const ipv4 = parseIpv4(address);
    if (!(parseInt(flags, 16) & ATF_COM) || parsed === undefined || ipv4 === undefined) continue;
    if (parsed.every((byte) => byte === 0)) continue;
    neighbours.push({ address: ipv4, mac: parsed, device });
  }
  return neighbours;
}

/** The MAC address of `address` on `device`, if the table has it. */
export function neighbourMac(
  neighbours: readonly Neighbour[],
  device: string,
  address: number,
): Uint8Array | undefined {
  return neighbours.find((entry) => entry.device === device && entry.address === address)?.mac;
}

/** `aa:bb:cc:dd:ee:ff` as 6 bytes, or `undefined` if it is not one. */
export function parseMac(text: string): Uint8Array | undefined {
  if (!MAC.test(text)) return undefined;
  return new Uint8Array(text.split(":").map((part) => parseInt(part, 16)));
}

/** 6 bytes as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(mac: Uint8Array): string {
  return [...mac].map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}

/** The IPv4 routes of this network namespace. */
export function readRoutes(): Route[] {
  return parseRoutes(readKernelFile("/proc/net/route") ?? "");
}

/** The complete IPv4 neighbour entries of this network namespace. */
export function readNeighbours(): Neighbour[] {
  return parseNeighbours(readKernelFile("/proc/net/arp") ?? "");
}

function hostOrderWord(hex: string): number {
  const value = parseInt(hex, 16);
  // Little-endian: the word's lowest byte is the address's first.
  return (((value & 0xff) << 24) | ((value >>> 8 & 0xff) << 16) | ((value >>> 16 & 0xff) << 8) |
    (value >>> 24)) >>> 0;
}

function prefixLength(mask: number): number {
  let bits = 0;
  for (let m = mask >>> 0; m !== 0; m = (m << 1) >>> 0) bits++;
  return bits;
}
