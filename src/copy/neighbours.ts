/**
 * What `copy --send-interface` needs to know to address Ethernet frames itself: the next hop toward a
 * target through one interface (the kernel's routes, `/proc/net/route` and `/proc/net/ipv6_route`) and
 * that hop's MAC address (the neighbour table: `/proc/net/arp` for IPv4; IPv6's, NDP's, has no file and
 * comes from rtnetlink). The parsers are pure; `readRoutes` and `readNeighbours` read this process's
 * network namespace.
 */
import { readKernelFile, routeNetlinkDump } from "../../ffi/mod.ts";
import { type Address, addressBytes, cidrContains, ipv6Address, parseIpv4 } from "../wire/mod.ts";

/** One route of the kernel's tables, IPv4 or IPv6. */
export interface Route {
  readonly device: string;
  /** Network address. */
  readonly destination: Address;
  /** Prefix length in bits. */
  readonly prefix: number;
  /** `undefined` for a route on the link. */
  readonly gateway: Address | undefined;
  readonly metric: number;
}

/** One complete entry of the neighbour table. */
export interface Neighbour {
  readonly address: Address;
  readonly mac: Uint8Array;
  readonly device: string;
}

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
/** IPv6's RTF_LOCAL (include/uapi/linux/ipv6_route.h). */
const RTF_LOCAL = 0x80000000;
/** ATF_COM: the entry has a MAC address (not still being resolved, not failed). */
const ATF_COM = 0x2;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const AF_INET6 = 10;
const RTM_NEWNEIGH = 28;
const RTM_GETNEIGH = 30;
// struct ndmsg: family u8, 3 bytes of padding, ifindex i32, state u16, flags u8, type u8; then attributes
// (struct rtattr: length u16, type u16, value, padded to 4 bytes).
const NDMSG_SIZE = 12;
const NDMSG_IFINDEX = 4;
const NDMSG_STATE = 8;
const RTA_HEADER_SIZE = 4;
const NDA_DST = 1;
const NDA_LLADDR = 2;
/**
 * The states whose MAC address may be used (REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT): not
 * INCOMPLETE (still asking) or FAILED; a STALE entry is the kernel's own choice too until it probes.
 */
const NUD_VALID = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;

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
      prefix: prefixLength(hostOrderWord(mask)),
      gateway: flagBits & RTF_GATEWAY ? hostOrderWord(gateway) : undefined,
      metric: Number(metric),
    });
  }
  return routes;
}

/**
 * The routes in `/proc/net/ipv6_route`'s text (destination, its prefix length, source, its prefix length,
 * next hop, metric, reference count, use, flags, device; addresses as 32 hex digits in network order).
 * Routes that are down, and routes to this host's own addresses, are left out.
 */
export function parseIpv6Routes(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [destination, prefix, , , gateway, metric, , , flags, device] = fields;
    const flagBits = parseInt(flags, 16);
    // The local table's routes to this host's own addresses lead nowhere on the link.
    if (!(flagBits & RTF_UP) || flagBits & RTF_LOCAL) continue;
    routes.push({
      device,
      destination: hexIpv6(destination),
      prefix: parseInt(prefix, 16),
      gateway: flagBits & RTF_GATEWAY ? hexIpv6(gateway) : undefined,
      metric: parseInt(metric, 16),
    });
  }
  return routes;
}

/**
 * The address whose MAC a frame to `target` out of `device` carries: `target` itself when a route through
 * `device` has it on the link, the route's gateway otherwise; `undefined` when no route through `device`
 * covers `target`. The longest prefix wins, then the lowest metric. Routes of the other family never match.
 */
export function nextHop<A extends Address>(
  routes: readonly Route[],
  device: string,
  target: A,
): A | undefined {
  let best: Route | undefined;
  for (const route of routes) {
    if (
      route.device !== device || !cidrContains(
        { network: addressBytes(route.destination), prefix: route.prefix },
        addressBytes(target),
      )
    ) continue;
    if (
      best === undefined || route.prefix > best.prefix ||
      (route.prefix === best.prefix && route.metric < best.metric)
    ) {
      best = route;
    }
  }
  if (best === undefined) return undefined;
  return (best.gateway ?? target) as A;
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
  address: Address,
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

/** The IPv4 and IPv6 routes of this network namespace. */
export function readRoutes(): Route[] {
  return [
    ...parseRoutes(readKernelFile("/proc/net/route") ?? ""),
    ...parseIpv6Routes(readKernelFile("/proc/net/ipv6_route") ?? ""),
  ];
}

/** The complete neighbour entries of `device` in this network namespace: IPv4's (ARP) or IPv6's (NDP). */
export function readNeighbours(device: string, family: 4 | 6): Neighbour[] {
  if (family === 4) return parseNeighbours(readKernelFile("/proc/net/arp") ?? "");
  const ifindex = Number(readKernelFile(`/sys/class/net/${device}/ifindex`)?.trim());
  const request = new Uint8Array(NDMSG_SIZE);
  request[0] = AF_INET6;
  return parseNeighbourDump(routeNetlinkDump(RTM_GETNEIGH, request), new Map([[ifindex, device]]));
}

/**
 * The complete entries of an rtnetlink neighbour dump (RTM_NEWNEIGH messages' bodies: `struct ndmsg`, then
 * attributes), named by device through `devices` (interface index to name; other devices left out).
 */
export function parseNeighbourDump(
  messages: readonly { readonly type: number; readonly body: Uint8Array }[],
  devices: ReadonlyMap<number, string>,
): Neighbour[] {
  const neighbours: Neighbour[] = [];
  for (const { type, body } of messages) {
    if (type !== RTM_NEWNEIGH || body.length < NDMSG_SIZE) continue;
    const view = new DataView(body.buffer, body.byteOffset, body.length);
    const device = devices.get(view.getInt32(NDMSG_IFINDEX, true));
    const state = view.getUint16(NDMSG_STATE, true);
    if (device === undefined || !(state & NUD_VALID)) continue;
    let address: Uint8Array | undefined;
    let mac: Uint8Array | undefined;
    for (let at = NDMSG_SIZE; at + RTA_HEADER_SIZE <= body.length;) {
      const length = view.getUint16(at, true);
      if (length < RTA_HEADER_SIZE || at + length > body.length) break;
      const value = body.subarray(at + RTA_HEADER_SIZE, at + length);
      const attribute = view.getUint16(at + 2, true);
      if (attribute === NDA_DST) address = value;
      else if (attribute === NDA_LLADDR) mac = value;
      at += (length + 3) & ~3;
    }
    if (address?.length !== 16 || mac?.length !== 6 || mac.every((byte) => byte === 0)) continue;
    neighbours.push({ address: ipv6Address(address), mac: mac.slice(), device });
  }
  return neighbours;
}

/** 32 hex digits (as `/proc/net/ipv6_route` writes an address) as an IPv6 `Address`. */
function hexIpv6(hex: string): string {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return ipv6Address(bytes);
}

function hostOrderWord(hex: string): number {
  const value = parseInt(hex, 16);
  // Little-endian: the word's lowest byte is the address's first.
  return ((value & 0xff) << 24) | ((value >>> 8 & 0xff) << 16) | ((value >>> 16 & 0xff) << 8) |
    (value >>> 24);
}

function prefixLength(mask: number): number {
  let bits = 0;
  for (let m = mask >>> 0; m !== 0; m = (m << 1) >>> 0) bits++;
  return bits;
}
