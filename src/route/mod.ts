/**
 * `tcpshadow route`: prints the shell script that routes the target's replies to the copied clients to
 * the assistant host. It only prints; it never changes the host it runs on.
 *
 * @example
 * ```ts
 * import { routeCommand } from "./mod.ts";
 *
 * await routeCommand.run(["--clients", "198.19.0.0/24", "--via", "198.18.0.4"]); // prints ip route lines
 * ```
 *
 * @module
 */
import { cidrListValue, type Command, listValue, parseFlags } from "../cli/mod.ts";
import { UsageError } from "../errors.ts";
import {
  type Cidr,
  formatCidr,
  formatIpv4,
  formatIpv6,
  ipv4Bytes,
  parseIpv4,
  parseIpv6,
} from "../wire/mod.ts";
import { riskyClientRange, riskyGateway } from "./checks.ts";
import { type Gateway, type RoutePlan, routeScript, type RouteStyle } from "./script.ts";

export {
  type Gateway,
  routeFlags,
  routeLines,
  type RoutePlan,
  routeScript,
  type RouteStyle,
} from "./script.ts";

const HELP = `tcpshadow route: print the commands that route the target's replies to the assistant host

Usage: tcpshadow route --clients RANGE[,RANGE...] --via ADDRESS [flags] | sh

Run it on the TARGET host. The copied packets reach the target with the real clients' addresses;
these routes send the target's replies for those addresses to the assistant host (where
'tcpshadow intercept' captures them) instead of to the real clients. It prints a shell script
and changes nothing itself.

Flags:
  -c, --clients RANGE   client ranges to route, like 1.1.1.0/24, 62.135.200.x (a /24), 1.2.3.4
                        (a /32) or 2001:db8::/64; a comma list, and the flag may be repeated
      --via ADDRESS     the assistant host's address, the routes' next hop; with both IPv4 and
                        IPv6 ranges give one address of each family (comma list or repeated)
      --style ip|route  print iproute2 'ip route' commands (default) or legacy net-tools 'route'
      --dev NAME        add 'dev NAME' (the target's interface toward the assistant)
      --table ID        add 'table ID' (a routing table number or name; ip style only)
      --undo            print the commands that delete the routes instead
      --force           route 0.0.0.0/0, ::/0, multicast or broadcast ranges, or through a
                        multicast, broadcast or unspecified --via, all refused otherwise
  -h, --help            show this help

Examples:
  tcpshadow route --clients 1.1.1.0/24 --via 2.2.2.2 | sh
  tcpshadow route -c 62.135.200.x -c 10.9.0.0/16 --via 2.2.2.2 --dev eth1
  tcpshadow route --clients 1.1.1.0/24,2001:db8:1::/64 --via 2.2.2.2,2001:db8::2
  tcpshadow route --clients 1.1.1.0/24 --via 2.2.2.2 --style route
  tcpshadow route --clients 1.1.1.0/24 --via 2.2.2.2 --undo | sh`;

/**
 * Interface names: at most 15 bytes (IFNAMSIZ - 1), only characters that need no shell quoting, not
 * starting with "-" (`ip` would take it for an option: `--dev=--help`), and not "." or "..".
 */
const DEV_NAME = /^(?!-)(?!\.\.?$)[A-Za-z0-9_.:@-]{1,15}$/;
/** A table number 1..2^32-1 or a name from /etc/iproute2/rt_tables. */
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

function gatewayValue(text: string, force: boolean): Gateway {
  const v4 = parseIpv4(text);
  const v6 = v4 === undefined ? parseIpv6(text) : undefined;
  const gateway: Gateway | undefined = v4 !== undefined
    ? { family: 4, address: formatIpv4(v4) }
    : v6 !== undefined
    ? { family: 6, address: formatIpv6(v6) }
    : undefined;
  if (gateway === undefined) throw new UsageError(`--via: "${text}" is not an IPv4 or IPv6 address`);
  const risk = riskyGateway(gateway, v4 !== undefined ? ipv4Bytes(v4) : v6!);
  if (risk !== undefined && !force) {
    throw new UsageError(`--via: ${risk} (--force to route through it anyway)`);
  }
  return gateway;
}

function gatewaysValue(texts: string[], clients: readonly Cidr[], force: boolean): Gateway[] {
  if (texts.length === 0) {
    throw new UsageError("--via is required: the assistant host's address, like --via 2.2.2.2");
  }
  const gateways = texts.map((text) => gatewayValue(text, force));
  const ofFamily = (family: 4 | 6) => gateways.filter((gateway) => gateway.family === family);
  const rangesOf = (family: 4 | 6) => clients.filter((cidr) => cidr.family === family);
  for (const family of [4, 6] as const) {
    if (ofFamily(family).length > 1) {
      throw new UsageError(
        `--via: ${ofFamily(family).map((gateway) => gateway.address).join(" and ")} are both IPv${family}; ` +
          "give one assistant address per address family",
      );
    }
  }
  for (const family of [4, 6] as const) {
    if (rangesOf(family).length > 0 && ofFamily(family).length === 0) {
      throw new UsageError(
        `--via: no IPv${family} address for ${formatCidr(rangesOf(family)[0])}; ` +
          `add the assistant's IPv${family} address`,
      );
    }
  }
  for (const family of [4, 6] as const) {
    if (rangesOf(family).length === 0 && ofFamily(family).length > 0) {
      throw new UsageError(`--via ${ofFamily(family)[0].address} is IPv${family} but no --clients range is`);
    }
  }
  return gateways;
}

function tableValue(text: string): string {
  const number = /^[0-9]+$/.test(text) ? Number(text) : undefined;
  if (number !== undefined ? number >= 1 && number <= 0xffffffff : TABLE_NAME.test(text)) return text;
  throw new UsageError(`--table: "${text}" is not a table number (1-4294967295) or name`);
}

/**
 * Checks `tcpshadow route`'s flags and turns them into a plan; throws `UsageError` naming the flag
 * at fault. Ranges given twice (`1.1.1.x` and `1.1.1.0/24`) are kept once, since the second
 * `ip route add` would fail.
 */
export function parseRouteFlags(argv: string[]): RoutePlan {
  const flags = parseFlags("route", argv, {
    clients: { type: "string", short: "c", multiple: true },
    via: { type: "string", multiple: true },
    style: { type: "string" },
    dev: { type: "string" },
    table: { type: "string" },
    undo: { type: "boolean" },
    force: { type: "boolean" },
  });
  const force = flags.force ?? false;
  const clientTexts = listValue(flags.clients);
  if (clientTexts.length === 0) {
    throw new UsageError("--clients is required: the client ranges to route, like --clients 1.1.1.0/24");
  }
  const byText = new Map<string, Cidr>();
  for (const cidr of cidrListValue("--clients", clientTexts.join(","))) {
    if (!byText.has(formatCidr(cidr))) byText.set(formatCidr(cidr), cidr);
  }
  const clients = [...byText.values()];
  for (const cidr of clients) {
    const risk = riskyClientRange(cidr);
    if (risk !== undefined && !force) throw new UsageError(`--clients: ${risk} (--force to route it anyway)`);
  }
  const gateways = gatewaysValue(listValue(flags.via), clients, force);
  const style = flags.style ?? "ip";
  if (style !== "ip" && style !== "route") {
    throw new UsageError(`--style must be "ip" or "route", not "${style}"`);
  }
  if (flags.dev !== undefined && !DEV_NAME.test(flags.dev)) {
    throw new UsageError(`--dev: "${flags.dev}" is not an interface name (1-15 of A-Z a-z 0-9 _ . : @ -)`);
  }
  const table = flags.table === undefined ? undefined : tableValue(flags.table);
  if (table !== undefined && style === "route") {
    throw new UsageError("--table needs --style ip: the legacy route command has no routing tables");
  }
  return { clients, gateways, style: style as RouteStyle, dev: flags.dev, table, undo: flags.undo ?? false };
}

/** `tcpshadow route`. */
export const routeCommand: Command = {
  name: "route",
  summary: "print the commands that route the target's replies to the assistant",
  help: HELP,
  run(argv) {
    const plan = parseRouteFlags(argv);
    console.log(routeScript(plan).trimEnd());
    return Promise.resolve(0);
  },
};
