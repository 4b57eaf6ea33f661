/** The BPF filters `copy` captures with. */
import type { CopyOptions } from "./options.ts";
import { formatAddress, LinkType } from "../wire/mod.ts";

/** The BPF program that selects what clients send to the copied ports. */
export function captureFilter(options: CopyOptions): string {
  const ports = options.mappings.map((mapping) =>
    mapping.onlineAddress === undefined
      ? `dst port ${mapping.onlinePort}`
      : `(dst host ${formatAddress(mapping.onlineAddress)} and dst port ${mapping.onlinePort})`
  );
  const base = `tcp and (${ports.join(" or ")})`;
  return options.filter === undefined ? base : `${base} and (${options.filter})`;
}

/**
 * `filter` for a capture of link type `linkType`. On Ethernet, a frame inside a VLAN tag (a trunk port,
 * or a recording of one) has its IP header 4 bytes later, where BPF only looks after `vlan`; other link
 * types have no tags to skip (and libpcap refuses `vlan` for them).
 */
export function filterForLink(filter: string, linkType: number): string {
  return linkType === LinkType.ETHERNET ? `(${filter}) or (vlan and (${filter}))` : filter;
}
