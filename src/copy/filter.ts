/** The BPF filters `copy` captures with. */
import type { CopyOptions } from "./options.ts";
import { formatAddress, LinkType } from "../wire/mod.ts";

/**
 * The BPF program that selects what clients send to the copied ports, and with `--compare` what the online
 * server answers them too. A copy's own connections to the targets (`--connect`) are never selected, even
 * where a target listens on the copied port.
 */
export function captureFilter(options: CopyOptions): string {
  const compare = options.connect?.compare;
  const direction = (to: "dst" | "src") =>
    options.mappings.map((mapping) =>
      mapping.onlineAddress === undefined
        ? `${to} port ${mapping.onlinePort}`
        : `(${to} host ${formatAddress(mapping.onlineAddress)} and ${to} port ${mapping.onlinePort})`
    );
  const ports = compare === undefined ? direction("dst") : [...direction("dst"), ...direction("src")];
  const targets = compare === undefined ? [] : [
    ...options.mappings.map((mapping) => ({ address: mapping.targetAddress, port: mapping.targetPort })),
    ...(compare.baseline === undefined ? [] : [compare.baseline]),
  ];
  const own = targets.map(({ address, port }) =>
    ` and not (host ${formatAddress(address)} and port ${port})`
  );
  const base = `tcp and (${ports.join(" or ")})${own.join("")}`;
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
