/** `copy --connect`'s flags: what it needs, and what belongs to the packet transport only. */
import assert from "node:assert/strict";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { UsageError } from "../../src/errors.ts";
import { captureFilter } from "../../src/copy/filter.ts";
import { formatAddress } from "../../src/wire/mod.ts";

const TARGET = ["-x", "80-198.18.0.2:8080"];

Deno.test("--connect needs no intercept; --bind and --answer-gap are read, 200 ms by default", () => {
  const plain = parseCopyOptions([...TARGET, "--connect"]);
  assert.deepEqual(plain.connect, { bind: [], answerGapMs: 200, compare: undefined });
  assert.deepEqual(plain.intercepts, []);
  const bound = parseCopyOptions([
    ...TARGET,
    "--connect",
    "--bind",
    "198.18.0.1,198.18.0.31",
    "--answer-gap",
    "50",
  ]);
  assert.deepEqual(bound.connect, {
    bind: [0xc6120001 | 0, 0xc612001f | 0],
    answerGapMs: 50,
    compare: undefined,
  });
  assert.equal(parseCopyOptions([...TARGET, "-s", "198.18.0.3"]).connect, undefined);
});

Deno.test("the packet transport's flags with --connect, and --connect's without it, are usage errors", () => {
  const refused = (args: string[], text: RegExp) =>
    assert.throws(
      () => parseCopyOptions([...TARGET, ...args]),
      (error) => error instanceof UsageError && text.test(error.message),
    );
  refused(["--connect", "-s", "198.18.0.3"], /--intercept \(-s\) does not go with --connect/);
  refused(["--connect", "-c", "198.19.0.0/24"], /--clients \(-c\) does not go with --connect/);
  refused(["--bind", "198.18.0.1"], /--bind needs --connect/);
  refused(["--answer-gap", "10", "-s", "198.18.0.3"], /--answer-gap needs --connect/);
  refused(["--connect", "--bind", "nowhere"], /--bind/);
  refused([], /--intercept \(-s\) is required.*--connect/);
});

Deno.test("--connect reaches IPv6 targets, from clients of either family; --bind takes IPv6 addresses", () => {
  const v6 = parseCopyOptions(["-x", "80-[2001:2::2]:8080", "--connect", "--bind", "2001:2::1,[2001:2::21]"]);
  assert.deepEqual(v6.connect?.bind.map(formatAddress), ["2001:2::1", "2001:2::21"]);
  // An IPv4 online address copied to an IPv6 target needs no -c with --connect (and can have none).
  const crossed = parseCopyOptions(["-x", "198.18.0.1:80-[2001:2::2]:8080", "--connect"]);
  assert.equal(formatAddress(crossed.mappings[0].targetAddress), "2001:2::2");
  // Both families at once, each with a --bind address of its own.
  const both = parseCopyOptions([
    "-x",
    "198.18.0.1:80-198.18.0.2:8080,[2001:2::1]:80-[2001:2::2]:8080",
    "--connect",
    "--bind",
    "198.18.0.1,2001:2::1",
  ]);
  assert.deepEqual(both.connect?.bind.map(formatAddress), ["198.18.0.1", "2001:2::1"]);
});

Deno.test("--bind must give every target family an address, and no family without a target", () => {
  const refused = (args: string[], text: RegExp) =>
    assert.throws(
      () => parseCopyOptions(["--connect", ...args]),
      (error) => error instanceof UsageError && text.test(error.message),
    );
  refused(
    ["-x", "80-[2001:2::2]:8080", "--bind", "198.18.0.1"],
    /--bind: no IPv6 address for the IPv6 target 2001:2::2: add one, or leave --bind out/,
  );
  refused(
    ["-x", "80-198.18.0.2:8080,81-[2001:2::2]:8080", "--bind", "2001:2::1"],
    /--bind: no IPv4 address for the IPv4 target 198.18.0.2/,
  );
  refused(["-x", "80-198.18.0.2:8080", "--bind", "198.18.0.1,2001:2::1"], /an IPv6 address, but no --target/);
  refused(
    ["-x", "80-[2001:2::2]:8080", "--bind", "2001:2::zz"],
    /--bind: "2001:2::zz" is not an IPv4 or IPv6/,
  );
  // The baseline is a target too: an IPv6 baseline needs an IPv6 --bind address.
  refused(
    [
      "-x",
      "80-198.18.0.2:8080",
      "--compare",
      "http",
      "--baseline",
      "[2001:2::3]:8080",
      "--bind",
      "198.18.0.1",
    ],
    /no IPv6 address for the IPv6 target 2001:2::3/,
  );
});

Deno.test("--baseline takes [IPv6]:port, and the compare capture leaves both families' own connections out", () => {
  const options = parseCopyOptions([
    "-x",
    "80-[2001:2::2]:8080",
    "--connect",
    "--compare",
    "http",
    "--baseline",
    "[2001:2::3]:8081",
  ]);
  const baseline = options.connect?.compare?.baseline;
  assert.deepEqual(baseline && [formatAddress(baseline.address), baseline.port], ["2001:2::3", 8081]);
  assert.equal(
    captureFilter(options),
    "tcp and (dst port 80 or src port 80) and not (host 2001:2::2 and port 8080) and not (host 2001:2::3 and port 8081)",
  );
  assert.throws(
    () => parseCopyOptions([...TARGET, "--connect", "--compare", "http", "--baseline", "2001:2::3:8081"]),
    /--baseline: '2001:2::3:8081' is not IPv4:port or \[IPv6\]:port/,
  );
});

Deno.test("--compare pairs each request with its own answer: --max-lag and --no-wait do not go with it", () => {
  const compare = [...TARGET, "--connect", "--compare", "bytes"];
  assert.equal(parseCopyOptions(compare).session.maxLagMs, Infinity);
  assert.equal(parseCopyOptions(compare).session.responseWaitMs, 10_000);
  for (const flag of [["--max-lag", "200"], ["-W"]]) {
    assert.throws(
      () => parseCopyOptions([...compare, ...flag]),
      (error: Error) =>
        error instanceof UsageError && /does not go with --compare: every request waits/.test(error.message),
    );
  }
});
