/** `copy`'s flags with IPv6: bracketed targets and intercepts, IPv6 `-c` ranges, families checked at start. */
import assert from "node:assert/strict";
import { captureFilter } from "../../src/copy/filter.ts";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { UsageError } from "../../src/errors.ts";
import { formatAddress } from "../../src/wire/mod.ts";

const parse = (...args: string[]) => parseCopyOptions(["-s", "198.18.0.3", ...args]);

Deno.test("-x takes IPv6 online and target addresses in brackets, beside IPv4 ones", () => {
  const options = parse("-x", "[2001:2::1]:80-[2001:2::2]:8080,81-198.18.0.2:8081,82-[2001:2::2]:82");
  assert.deepEqual(
    options.mappings.map((
      m,
    ) => [
      m.onlineAddress && formatAddress(m.onlineAddress),
      m.onlinePort,
      formatAddress(m.targetAddress),
      m.targetPort,
    ]),
    [["2001:2::1", 80, "2001:2::2", 8080], [undefined, 81, "198.18.0.2", 8081], [
      undefined,
      82,
      "2001:2::2",
      82,
    ]],
  );
  assert.throws(() => parse("-x", "80-[2001:2::zz]:8080"), UsageError);
  assert.throws(() => parse("-x", "80-2001:2::2:8080"), /not \[udp:\]\[onlineIP:\]port-targetIP:targetPort/);
});

Deno.test("-c takes IPv6 prefixes: the all-zero host left out, at most the low 32 bits used", () => {
  const options = parse("-x", "80-[2001:2::2]:8080", "-c", "2001:2:0:1::/64,2001:2:0:2::/120,2001:2:0:3::5");
  assert.deepEqual(options.clients.map((r) => [formatAddress(r.first), r.count]), [
    ["2001:2:0:1::1", 2 ** 32 - 1],
    ["2001:2:0:2::1", 255],
    ["2001:2:0:3::5", 1],
  ]);
});

Deno.test("families that cannot meet are a usage error at start-up", () => {
  // IPv6 clients of an IPv6 online address, an IPv4 target, and no IPv4 range for them.
  assert.throws(() => parse("-x", "[2001:2::1]:80-198.18.0.2:8080"), /give --clients an IPv4 range/);
  assert.throws(
    () => parse("-x", "[2001:2::1]:80-198.18.0.2:8080", "-c", "2001:2:0:1::/64"),
    /no --target is IPv6/,
  );
  // With an IPv4 range they get IPv4 addresses.
  assert.equal(parse("-x", "[2001:2::1]:80-198.18.0.2:8080", "-c", "198.19.0.0/24").clients.length, 1);
  // Any online address: IPv6 clients may come or not; those that do are counted (sessions-family-unreachable).
  assert.equal(parse("-x", "80-198.18.0.2:8080").mappings.length, 1);
});

Deno.test("-s takes IPv6 intercepts, bracketed with a port or bare", () => {
  assert.deepEqual(
    parse("-x", "80-198.18.0.2:8080", "-s", "[2001:2::3]:4000,2001:2::4").intercepts.slice(1),
    [
      { host: "2001:2::3", port: 4000 },
      { host: "2001:2::4", port: 36524 },
    ],
  );
  assert.throws(() => parse("-x", "80-198.18.0.2:8080", "-s", "[2001:2::zz]:1"), UsageError);
});

Deno.test("--send-interface takes targets of both families; udp: ones beside TCP ones of the other", () => {
  assert.equal(parse("-x", "80-[2001:2::2]:8080,81-198.18.0.2:8080", "-o", "eth0").sendInterface, "eth0");
  assert.equal(parse("-x", "udp:53-[2001:2::2]:5353", "-o", "eth0").sendInterface, "eth0");
  const mixed = parse("-x", "80-[2001:2::2]:8080,udp:53-198.18.0.2:5353");
  assert.equal(mixed.mappings.length, 1);
  assert.equal(mixed.udpMappings.length, 1);
  assert.equal(parse("-x", "80-198.18.0.2:8080", "-o", "eth0").sendInterface, "eth0");
});

Deno.test("the capture filter names IPv6 online addresses beside udp: selections", () => {
  assert.equal(
    captureFilter(parse("-x", "[2001:2::1]:80-[2001:2::2]:8080,udp:53-198.18.0.3:53")),
    "(tcp and ((dst host 2001:2::1 and dst port 80))) or (udp and (dst port 53))",
  );
});
