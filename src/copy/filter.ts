/** The BPF filters `copy` captures with. */
import type { CopyOptions } from "./options.ts";
import type { TargetMapping } from "../session/mod.ts";
import { formatIpv4, LinkType } from "../wire/mod.ts";

/** The BPF program that selects what clients send to the copied ports, TCP and `udp:`. */
export function captureFilter(options: CopyOptions): string {
  const selections = [
    protocolFilter("tcp", options.mappings),
    protocolFilter("udp", options.udpMappings),
  ].filter((selection) => selection !== undefined);
  if (selections.length > 1) selections.splice(0, 2, `(${selections[0]}) or (${selections[1]})`);
  const base = selections[0];
  return options.filter === undefined ? base : `(${base}) and (${options.filter})`;
}

function protocolFilter(protocol: "tcp" | "udp", mappings: readonly TargetMapping[]): string | undefined {
  if (mappings.length === 0) return undefined;
  const ports = mappings.map((mapping) =>
    mapping.onlineAddress === undefined
      ? `dst port ${mapping.onlinePort}`
      : `(dst host ${formatIpv4(mapping.onlineAddress)} and dst port ${mapping.onlinePort})`
  );
  return `${protocol} and (${ports.join(" or ")})`;
}

/**
 * `filter` for a capture of link type `linkType`. On Ethernet, a frame inside a VLAN tag (a trunk port,
 * or a recording of one) has its IP header 4 bytes later, where BPF only looks after `vlan`; other link
 * types have no tags to skip (and libpcap refuses `vlan` for them).
 */
export function filterForLink(filter: string, linkType: number): string {
  return linkType === LinkType.ETHERNET ? `(${filter}) or (vlan and (${filter}))` : filter;
}
