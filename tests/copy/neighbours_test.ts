import assert from "node:assert/strict";
import {
  formatMac,
  neighbourMac,
  nextHop,
  parseIpv6Routes,
  parseMac,
  parseNeighbourDump,
  parseNeighbours,
  parseRoutes,
} from "../../src/copy/neighbours.ts";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { main } from "../../main.ts";
import { UsageError } from "../../src/errors.ts";
import { formatAddress, formatIpv4, ipv6Address, parseIpv4, parseIpv6 } from "../../src/wire/mod.ts";

// As a little-endian host prints them: a default route via 198.18.0.254 on eth0, 198.18.0.0/24 on eth0,
// 198.18.5.0/24 via 198.18.0.5 on eth0, 198.19.0.0/16 on eth1, and a route that is down.
const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\tFE0012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t000512C6\t050012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t000013C6\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000713C6\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

const ARP = `IP address       HW type     Flags       HW address            Mask     Device
198.18.0.2       0x1         0x2         02:aa:bb:cc:dd:02     *        eth0
198.18.0.254     0x1         0x2         02:aa:bb:cc:dd:fe     *        eth0
198.18.0.7       0x1         0x0         00:00:00:00:00:00     *        eth0
198.19.0.2       0x1         0x6         02:aa:bb:cc:dd:13     *        eth1
`;

const ip = (text: string) => parseIpv4(text)!;
const hop = (device: string, target: string) => {
  const found = nextHop(parseRoutes(ROUTES), device, ip(target));
  return found === undefined ? undefined : formatIpv4(found);
};

Deno.test("the next hop is the target on the link, else the gateway of the longest matching route", () => {
  assert.equal(hop("eth0", "198.18.0.2"), "198.18.0.2");
  assert.equal(hop("eth0", "198.18.5.9"), "198.18.0.5");
  assert.equal(hop("eth0", "203.0.113.1"), "198.18.0.254");
  assert.equal(hop("eth1", "198.19.3.4"), "198.19.3.4");
  assert.equal(hop("eth1", "198.18.0.2"), undefined); // no route through eth1 covers it
  assert.equal(hop("eth0", "198.19.7.1"), "198.18.0.254"); // the down route is ignored
});

Deno.test("a lower metric wins between routes of the same prefix", () => {
  const routes = parseRoutes(`Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask
eth0\t00000000\t010012C6\t0003\t0\t0\t200\t00000000
eth0\t00000000\t020012C6\t0003\t0\t0\t100\t00000000
`);
  assert.equal(formatIpv4(nextHop(routes, "eth0", ip("203.0.113.1"))!), "198.18.0.2");
});

Deno.test("only complete neighbour entries give a MAC address, per device", () => {
  const neighbours = parseNeighbours(ARP);
  assert.equal(neighbours.length, 3);
  assert.equal(formatMac(neighbourMac(neighbours, "eth0", ip("198.18.0.2"))!), "02:aa:bb:cc:dd:02");
  assert.equal(neighbourMac(neighbours, "eth0", ip("198.18.0.7")), undefined); // incomplete
  assert.equal(neighbourMac(neighbours, "eth0", ip("198.19.0.2")), undefined); // on eth1
  assert.equal(formatMac(neighbourMac(neighbours, "eth1", ip("198.19.0.2"))!), "02:aa:bb:cc:dd:13");
});

Deno.test("MAC addresses parse and format both ways; anything else is refused", () => {
  assert.deepEqual(parseMac("02:AA:bb:0c:dd:fe"), new Uint8Array([2, 0xaa, 0xbb, 0x0c, 0xdd, 0xfe]));
  assert.equal(formatMac(parseMac("02:AA:bb:0c:dd:fe")!), "02:aa:bb:0c:dd:fe");
  for (
    const bad of ["", "02:aa:bb:cc:dd", "02:aa:bb:cc:dd:ee:ff", "02-aa-bb-cc-dd-ee", "0g:aa:bb:cc:dd:ee"]
  ) {
    assert.equal(parseMac(bad), undefined, bad);
  }
});

Deno.test("--send-interface (TCPCopy's -o) and --target-mac are checked before anything is opened", () => {
  const base = ["-x", "80-198.18.0.3:8080", "-s", "198.18.0.4"];
  assert.equal(parseCopyOptions(base).sendInterface, undefined);
  assert.equal(parseCopyOptions([...base, "-o", "eth0"]).sendInterface, "eth0");
  const withMac = parseCopyOptions([
    ...base,
    "--send-interface",
    "eth0",
    "--target-mac",
    "02:00:00:00:00:03",
  ]);
  assert.deepEqual(withMac.targetMac, new Uint8Array([2, 0, 0, 0, 0, 3]));
  assert.throws(() => parseCopyOptions([...base, "--target-mac", "02:00:00:00:00:03"]), UsageError);
  assert.throws(() => parseCopyOptions([...base, "-o", "eth0", "--target-mac", "nope"]), UsageError);
  assert.throws(() => parseCopyOptions([...base, "-o", "any"]), UsageError);
});

Deno.test("copy refuses a send interface that does not exist or is not Ethernet, with exit 2", async () => {
  const udp = ["copy", "-x", "udp:53-198.18.0.3:53", "-q", "--stats", "0"];
  assert.equal(await main([...udp, "-o", "nosuch0"]), 2);
  assert.equal(await main([...udp, "-o", "lo"]), 2);
});

// As Linux prints them: 2001:2::/64 on eth0, a default route via fe80::1 on eth0 (metric 0x400), 2001:2:5::/48
// via 2001:2::5 on eth0, 2001:2:9::/64 on eth1, the local route to this host's own 2001:2::1, and a route that
// is down.
const ROUTES6 = [
  "20010002000000000000000000000000 40 00000000000000000000000000000000 00 " +
  "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0",
  "00000000000000000000000000000000 00 00000000000000000000000000000000 00 " +
  "fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth0",
  "20010002000500000000000000000000 30 00000000000000000000000000000000 00 " +
  "20010002000000000000000000000005 00000100 00000001 00000000 00000003     eth0",
  "20010002000900000000000000000000 40 00000000000000000000000000000000 00 " +
  "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1",
  "20010002000000000000000000000001 80 00000000000000000000000000000000 00 " +
  "00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0",
  "20010002000700000000000000000000 40 00000000000000000000000000000000 00 " +
  "00000000000000000000000000000000 00000100 00000001 00000000 00000000     eth0",
].join("\n") + "\n";

const v6 = (text: string) => ipv6Address(parseIpv6(text)!);
const hop6 = (device: string, target: string) => {
  const routes = [...parseRoutes(ROUTES), ...parseIpv6Routes(ROUTES6)];
  const found = nextHop(routes, device, v6(target));
  return found === undefined ? undefined : formatAddress(found);
};

Deno.test("IPv6: the next hop is the target on the link, else the longest matching route's gateway", () => {
  assert.equal(hop6("eth0", "2001:2::2"), "2001:2::2");
  assert.equal(hop6("eth0", "2001:2:5:1::9"), "2001:2::5");
  assert.equal(hop6("eth0", "2001:db8::1"), "fe80::1");
  assert.equal(hop6("eth1", "2001:2:9::3"), "2001:2:9::3");
  assert.equal(hop6("eth1", "2001:2::2"), undefined); // no route through eth1 covers it
  assert.equal(hop6("eth0", "2001:2:7::1"), "fe80::1"); // the down route is ignored
  assert.equal(hop6("eth0", "2001:2::1"), "2001:2::1"); // the local /128 is left out; the /64 has it
  // IPv4 targets never match IPv6 routes, nor the other way round.
  assert.equal(
    formatIpv4(nextHop(parseIpv6Routes(ROUTES6).concat(parseRoutes(ROUTES)), "eth0", ip("198.18.0.2"))!),
    "198.18.0.2",
  );
  assert.equal(nextHop(parseIpv6Routes(ROUTES6), "eth0", ip("198.18.0.2")), undefined);
});

/** An RTM_NEWNEIGH message body: ndmsg (family, ifindex, state), then NDA_DST and NDA_LLADDR if given. */
function neighbourMessage(ifindex: number, state: number, address?: string, mac?: number[]) {
  const attributes: number[] = [];
  const attribute = (type: number, value: Uint8Array) => {
    const length = 4 + value.length;
    attributes.push(length & 0xff, length >> 8, type, 0, ...value);
    while (attributes.length % 4 !== 0) attributes.push(0);
  };
  if (address !== undefined) attribute(1, parseIpv6(address)!);
  if (mac !== undefined) attribute(2, new Uint8Array(mac));
  const body = new Uint8Array(12 + attributes.length);
  const view = new DataView(body.buffer);
  body[0] = 10;
  view.setInt32(4, ifindex, true);
  view.setUint16(8, state, true);
  body.set(attributes, 12);
  return { type: 28, body };
}

Deno.test("IPv6 neighbours from an rtnetlink dump: usable states with a MAC address, on the device asked", () => {
  const mac = [2, 0xaa, 0xbb, 0xcc, 0xdd, 2];
  const neighbours = parseNeighbourDump([
    neighbourMessage(3, 0x02, "2001:2::2", mac), // REACHABLE
    neighbourMessage(3, 0x04, "fe80::1", [2, 0, 0, 0, 0, 1]), // STALE: the kernel still uses it
    neighbourMessage(3, 0x01, "2001:2::7"), // INCOMPLETE: no address yet
    neighbourMessage(3, 0x20, "2001:2::8", [2, 0, 0, 0, 0, 8]), // FAILED
    neighbourMessage(4, 0x02, "2001:2::9", [2, 0, 0, 0, 0, 9]), // another device
    { type: 3, body: new Uint8Array(4) }, // not a neighbour message
  ], new Map([[3, "eth0"]]));
  assert.deepEqual(
    neighbours.map((entry) => [formatAddress(entry.address), formatMac(entry.mac), entry.device]),
    [
      ["2001:2::2", "02:aa:bb:cc:dd:02", "eth0"],
      ["fe80::1", "02:00:00:00:00:01", "eth0"],
    ],
  );
  assert.equal(formatMac(neighbourMac(neighbours, "eth0", v6("2001:2::2"))!), "02:aa:bb:cc:dd:02");
  assert.equal(neighbourMac(neighbours, "eth0", v6("2001:2::7")), undefined);
});
