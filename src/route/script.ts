/**
 * The pure part of `tcpshadow route`: client ranges and options in, shell script lines out.
 * Nothing here reads flags or prints; `mod.ts` does both.
 */
import { type Cidr, formatCidr, formatIpv4, ipv4FromBytes, ipv4Netmask } from "../wire/mod.ts";

/** Which tool the printed commands use: iproute2's `ip`, or net-tools' legacy `route`. */
export type RouteStyle = "ip" | "route";

/** A next hop (the assistant host) of one address family, as canonical address text. */
export interface Gateway {
  readonly family: 4 | 6;
  readonly address: string;
}

/** Everything a route script depends on, already checked (see `parseRouteFlags`). */
export interface RoutePlan {
  /** The fake client ranges whose replies must go to the assistant; each has a gateway of its family. */
  readonly clients: readonly Cidr[];
  /** At most one per family. */
  readonly gateways: readonly Gateway[];
  readonly style: RouteStyle;
  /** Output interface name, shell-safe. */
  readonly dev?: string;
  /** Routing table id or name, shell-safe; only with the `ip` style. */
  readonly table?: string;
  /** Print the commands that remove the routes instead of adding them. */
  readonly undo: boolean;
}

/** The gateway for a range's family; `parseRouteFlags` guarantees there is one. */
function gatewayFor(plan: RoutePlan, cidr: Cidr): string {
  const gateway = plan.gateways.find((candidate) => candidate.family === cidr.family);
  if (gateway === undefined) throw new Error(`no IPv${cidr.family} gateway for ${formatCidr(cidr)}`);
  return gateway.address;
}

function ipStyleLine(plan: RoutePlan, cidr: Cidr): string {
  const words = [cidr.family === 6 ? "ip -6 route" : "ip route", plan.undo ? "del" : "add", formatCidr(cidr)];
  words.push("via", gatewayFor(plan, cidr));
  if (plan.dev !== undefined) words.push("dev", plan.dev);
  if (plan.table !== undefined) words.push("table", plan.table);
  return words.join(" ");
}

function routeStyleLine(plan: RoutePlan, cidr: Cidr): string {
  const verb = plan.undo ? "del" : "add";
  const words = cidr.family === 6
    ? ["route -A inet6", verb, formatCidr(cidr)]
    : cidr.prefix === 32
    ? ["route", verb, "-host", formatIpv4(ipv4FromBytes(cidr.network))]
    : ["route", verb, "-net", formatIpv4(ipv4FromBytes(cidr.network)), "netmask", ipv4Netmask(cidr.prefix)];
  words.push("gw", gatewayFor(plan, cidr));
  if (plan.dev !== undefined) words.push("dev", plan.dev);
  return words.join(" ");
}

/** One command per client range, in the order given: `ip route add 1.1.1.0/24 via 2.2.2.2` and kin. */
export function routeLines(plan: RoutePlan): string[] {
  return plan.clients.map((cidr) =>
    plan.style === "ip" ? ipStyleLine(plan, cidr) : routeStyleLine(plan, cidr)
  );
}

/** The flags that reproduce `plan`, so the script can name its own undo (or redo) command. */
export function routeFlags(plan: RoutePlan, undo: boolean): string {
  const words = [`--clients ${plan.clients.map(formatCidr).join(",")}`];
  words.push(`--via ${plan.gateways.map((gateway) => gateway.address).join(",")}`);
  if (plan.style !== "ip") words.push(`--style ${plan.style}`);
  if (plan.dev !== undefined) words.push(`--dev ${plan.dev}`);
  if (plan.table !== undefined) words.push(`--table ${plan.table}`);
  if (undo) words.push("--undo");
  return words.join(" ");
}

function addHeader(plan: RoutePlan): string[] {
  const assistants = plan.gateways.map((gateway) => gateway.address).join(" and ");
  const forwarding = plan.gateways.map((gateway) =>
    gateway.family === 4 ? "net.ipv4.ip_forward=0" : "net.ipv6.conf.all.forwarding=0"
  ).join(" and ");
  return [
    "#!/bin/sh",
    `# tcpshadow route: run this on the TARGET host, as root. It routes the target's replies to the copied`,
    `# clients to the assistant host (${assistants}), where 'tcpshadow intercept' captures them.`,
    "# Undo (removes exactly these routes):",
    `#   tcpshadow route ${routeFlags(plan, true)} | sh`,
    "#",
    "# What commonly breaks this setup:",
    "# - The assistant must NOT forward IP, or it passes the replies on to the real clients.",
    `#   On the assistant: ${forwarding}`,
    "# - Reverse-path filtering on the target drops copied packets whose client address it would route",
    "#   out of another interface. If the target sees no copied traffic, loosen it on the target:",
    "#     sysctl -w net.ipv4.conf.all.rp_filter=2",
    "# - The assistant must be on a network the target reaches directly (it is the routes' next hop).",
    "# - Running this twice stops at 'File exists': the routes are already in place.",
  ];
}

function undoHeader(plan: RoutePlan): string[] {
  return [
    "#!/bin/sh",
    "# tcpshadow route --undo: run this on the TARGET host, as root. It removes the routes that",
    `#   tcpshadow route ${routeFlags(plan, false)} | sh`,
    "# added; the target then answers the copied clients directly again.",
  ];
}

/**
 * The whole script `tcpshadow route` prints: explanatory `#` comments, `set -e` so a failing line
 * stops it, then one command per range.
 */
export function routeScript(plan: RoutePlan): string {
  const header = plan.undo ? undoHeader(plan) : addHeader(plan);
  return [...header, "set -e", ...routeLines(plan)].join("\n") + "\n";
}
