/** The BPF filters `copy` captures with. */
import type { CopyOptions } from "./options.ts";
import type { TargetMapping } from "../session/mod.ts";
import { type Address, formatAddress, LinkType } from "../wire/mod.ts";

/**
 * The BPF program that selects what clients send to the copied ports, TCP and `udp:`, and with `--compare`
 * what the online server answers them too. A copy's own connections to the targets (`--connect`) are never
 * selected, even where a target listens on the copied port.
 */
export function captureFilter(options: CopyOptions): string {
  const compare = options.connect?.compare;
  const own = compare === undefined ? [] : [
    ...options.mappings.map((mapping) => ({ address: mapping.targetAddress, port: mapping.targetPort })),
    ...(compare.baseline === undefined ? [] : [compare.baseline]),
  ];
  const selections = [
    protocolFilter("tcp", options.mappings, compare === undefined ? ["dst"] : ["dst", "src"], own),
    protocolFilter("udp", options.udpMappings, ["dst"], []),
  ].filter((selection) => selection !== undefined);
  if (selections.length > 1) selections.splice(0, 2, `(${selections[0]}) or (${selections[1]})`);
  const base = selections[0];
  return options.filter === undefined ? base : `(${base}) and (${options.filter})`;
}

/**
 * `protocol` to or from (`directions`) the copied ports of `mappings`, never to or from `excluded`. BPF's
 * `tcp` and `udp` match over IPv4 and IPv6 alike, and `host` takes either family's address.
 */
function protocolFilter(
  protocol: "tcp" | "udp",
  mappings: readonly TargetMapping[],
  directions: readonly ("dst" | "src")[],
  excluded: readonly { readonly address: Address; readonly port: number }[],
): string | undefined {
  if (mappings.length === 0) return undefined;
  const ports = directions.flatMap((to) =>
    mappings.map((mapping) =>
      mapping.onlineAddress === undefined
        ? `${to} port ${mapping.onlinePort}`
        : `(${to} host ${formatAddress(mapping.onlineAddress)} and ${to} port ${mapping.onlinePort})`
    )
  );
  const not = excluded.map(({ address, port }) =>
    ` and not (host ${formatAddress(address)} and port ${port})`
  );
  return `${protocol} and (${ports.join(" or ")})${not.join("")}`;
}

/**
 * `filter` for a capture of link type `linkType`. On Ethernet, a frame inside a VLAN tag (a trunk port,
 * or a recording of one) has its IP header 4 bytes later, where BPF only looks after `vlan`; other link
 * types have no tags to skip (and libpcap refuses `vlan` for them).
 */
export function filterForLink(filter: string, linkType: number): string {
  return linkType === LinkType.ETHERNET ? `(${filter}) or (vlan and (${filter}))` : filter;
}
