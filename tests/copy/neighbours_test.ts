import assert from "node:assert/strict";
import {
  formatMac,
  neighbourMac,
  nextHop,
  parseMac,
  parseNeighbours,
  parseRoutes,
} from "../../src/copy/neighbours.ts";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { main } from "../../main.ts";
import { UsageError } from "../../src/errors.ts";
import { formatIpv4, parseIpv4 } from "../../src/wire/mod.ts";

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
