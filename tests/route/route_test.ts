import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../src/errors.ts";
import { parseRouteFlags, routeLines, routeScript } from "../../src/route/mod.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

function lines(argv: string[]): string[] {
  return routeLines(parseRouteFlags(argv));
}

function usageError(argv: string[]): string {
  try {
    parseRouteFlags(argv);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${error}`);
    assert.ok(!error.message.includes("\n"), `message is one line: ${error.message}`);
    return error.message;
  }
  assert.fail(`${argv.join(" ")} was accepted`);
}

Deno.test("one IPv4 range routes through the assistant with ip route add", () => {
  assert.deepEqual(lines(["--clients", "1.1.1.0/24", "--via", "2.2.2.2"]), [
    "ip route add 1.1.1.0/24 via 2.2.2.2",
  ]);
});

Deno.test("ranges come from comma lists and repeated flags, TCPCopy's .x form is a /24", () => {
  assert.deepEqual(lines(["-c", "1.1.1.0/24,62.135.200.x", "--clients", "10.9.0.0/16", "--via", "2.2.2.2"]), [
    "ip route add 1.1.1.0/24 via 2.2.2.2",
    "ip route add 62.135.200.0/24 via 2.2.2.2",
    "ip route add 10.9.0.0/16 via 2.2.2.2",
  ]);
});

Deno.test("host bits are cleared and a range given twice is routed once", () => {
  assert.deepEqual(lines(["--clients", "1.1.1.77/24,1.1.1.x,5.6.7.8", "--via", "2.2.2.2"]), [
    "ip route add 1.1.1.0/24 via 2.2.2.2",
    "ip route add 5.6.7.8/32 via 2.2.2.2",
  ]);
});

Deno.test("IPv6 ranges use ip -6 route and the IPv6 gateway", () => {
  assert.deepEqual(lines(["--clients", "2001:DB8:1::/64", "--via", "2001:db8:0:0::2"]), [
    "ip -6 route add 2001:db8:1::/64 via 2001:db8::2",
  ]);
});

Deno.test("mixed families take one gateway per family, as a list or a repeated --via", () => {
  const expected = ["ip route add 1.1.1.0/24 via 2.2.2.2", "ip -6 route add 2001:db8:1::/64 via 2001:db8::2"];
  assert.deepEqual(lines(["-c", "1.1.1.0/24,2001:db8:1::/64", "--via", "2001:db8::2,2.2.2.2"]), expected);
  assert.deepEqual(
    lines(["-c", "1.1.1.0/24,2001:db8:1::/64", "--via", "2.2.2.2", "--via", "2001:db8::2"]),
    expected,
  );
});

Deno.test("--dev and --table are appended to ip style commands", () => {
  assert.deepEqual(lines(["-c", "1.1.1.0/24", "--via", "2.2.2.2", "--dev", "eth1", "--table", "100"]), [
    "ip route add 1.1.1.0/24 via 2.2.2.2 dev eth1 table 100",
  ]);
  assert.deepEqual(lines(["-c", "1.1.1.0/24", "--via", "2.2.2.2", "--table", "shadow"]), [
    "ip route add 1.1.1.0/24 via 2.2.2.2 table shadow",
  ]);
});

Deno.test("--undo prints deletes with the same arguments", () => {
  assert.deepEqual(
    lines(["-c", "1.1.1.0/24,2001:db8:1::/64", "--via", "2.2.2.2,2001:db8::2", "--dev", "eth1", "--undo"]),
    [
      "ip route del 1.1.1.0/24 via 2.2.2.2 dev eth1",
      "ip -6 route del 2001:db8:1::/64 via 2001:db8::2 dev eth1",
    ],
  );
});

Deno.test("--style route prints legacy net-tools commands, -host for single addresses", () => {
  const argv = [
    "-c",
    "1.1.1.0/24,5.6.7.8,2001:db8:1::/64",
    "--via",
    "2.2.2.2,2001:db8::2",
    "--style",
    "route",
  ];
  assert.deepEqual(lines([...argv, "--dev", "eth1"]), [
    "route add -net 1.1.1.0 netmask 255.255.255.0 gw 2.2.2.2 dev eth1",
    "route add -host 5.6.7.8 gw 2.2.2.2 dev eth1",
    "route -A inet6 add 2001:db8:1::/64 gw 2001:db8::2 dev eth1",
  ]);
  assert.deepEqual(lines([...argv, "--undo"]), [
    "route del -net 1.1.1.0 netmask 255.255.255.0 gw 2.2.2.2",
    "route del -host 5.6.7.8 gw 2.2.2.2",
    "route -A inet6 del 2001:db8:1::/64 gw 2001:db8::2",
  ]);
});

Deno.test("the script starts with sh, comments on what breaks the setup, then set -e and the commands", () => {
  const script = routeScript(parseRouteFlags(["-c", "1.1.1.0/24", "--via", "2.2.2.2", "--dev", "eth1"]));
  const all = script.split("\n");
  assert.equal(all[0], "#!/bin/sh");
  assert.equal(all.at(-1), "", "ends with a newline");
  const setE = all.indexOf("set -e");
  assert.ok(setE > 0);
  assert.ok(
    all.slice(0, setE).every((line) => line.startsWith("#")),
    "everything before set -e is a comment",
  );
  assert.deepEqual(all.slice(setE + 1, -1), ["ip route add 1.1.1.0/24 via 2.2.2.2 dev eth1"]);
  assert.ok(all.includes("#     sysctl -w net.ipv4.conf.all.rp_filter=2"));
  assert.ok(all.some((line) => line.startsWith("#") && line.includes("net.ipv4.ip_forward=0")));
  assert.ok(all.includes("#   tcpshadow route --clients 1.1.1.0/24 --via 2.2.2.2 --dev eth1 --undo | sh"));
});

Deno.test("the IPv6 script names the IPv6 forwarding sysctl for the assistant", () => {
  const script = routeScript(parseRouteFlags(["-c", "2001:db8:1::/64", "--via", "2001:db8::2"]));
  assert.match(script, /^#.*net\.ipv6\.conf\.all\.forwarding=0$/m);
  assert.doesNotMatch(script, /ip_forward/);
});

Deno.test("the undo script names the command that added the routes", () => {
  const script = routeScript(
    parseRouteFlags(["-c", "1.1.1.x", "--via", "2.2.2.2", "--style", "route", "--undo"]),
  );
  assert.match(
    script,
    /^# {3}tcpshadow route --clients 1\.1\.1\.0\/24 --via 2\.2\.2\.2 --style route \| sh$/m,
  );
  assert.match(script, /^set -e\nroute del -net 1\.1\.1\.0 netmask 255\.255\.255\.0 gw 2\.2\.2\.2\n$/m);
});

Deno.test("bad ranges and addresses are usage errors naming the flag", () => {
  assert.match(usageError(["-c", "1.2.3/24", "--via", "2.2.2.2"]), /^--clients: "1\.2\.3\/24" is not/);
  assert.match(usageError(["-c", "1.1.1.0/33", "--via", "2.2.2.2"]), /^--clients: "1\.1\.1\.0\/33"/);
  assert.match(
    usageError(["-c", "1.1.1.0/24", "--via", "2.2.2"]),
    /^--via: "2\.2\.2" is not an IPv4 or IPv6/,
  );
  assert.match(usageError(["-c", "1.1.1.0/24", "--via", "2.2.2.0/24"]), /^--via: "2\.2\.2\.0\/24"/);
});

Deno.test("missing flags and values are usage errors", () => {
  assert.match(usageError(["--via", "2.2.2.2"]), /^--clients is required/);
  assert.match(usageError(["-c", ",", "--via", "2.2.2.2"]), /^--clients is required/);
  assert.match(usageError(["-c", "1.1.1.0/24"]), /^--via is required/);
  assert.match(usageError(["-c", "1.1.1.0/24", "--via"]), /^--via needs a value$/);
  assert.match(
    usageError(["-c", "1.1.1.0/24", "--via", "2.2.2.2", "--frobnicate"]),
    /^unknown option --frobnicate/,
  );
  assert.match(usageError(["-c", "1.1.1.0/24", "--via", "2.2.2.2", "extra"]), /^unexpected argument/);
});

Deno.test("each range needs a gateway of its own family, and each gateway a range", () => {
  assert.match(
    usageError(["-c", "1.1.1.0/24,2001:db8:1::/64", "--via", "2.2.2.2"]),
    /^--via: no IPv6 address for 2001:db8:1::\/64/,
  );
  assert.match(usageError(["-c", "2001:db8:1::/64", "--via", "2.2.2.2"]), /^--via: no IPv6 address/);
  assert.match(
    usageError(["-c", "1.1.1.0/24", "--via", "2.2.2.2,2001:db8::2"]),
    /^--via 2001:db8::2 is IPv6 but/,
  );
  assert.match(usageError(["-c", "1.1.1.0/24", "--via", "2.2.2.2", "--via", "3.3.3.3"]), /both IPv4/);
});

Deno.test("bad --style, --dev and --table values are usage errors", () => {
  const base = ["-c", "1.1.1.0/24", "--via", "2.2.2.2"];
  assert.match(usageError([...base, "--style", "iproute"]), /^--style must be "ip" or "route"/);
  assert.match(usageError([...base, "--dev", "a-name-longer-than-15"]), /^--dev:/);
  assert.match(usageError([...base, "--dev", "eth0; reboot"]), /^--dev:/);
  assert.match(usageError([...base, "--table", "0"]), /^--table:/);
  assert.match(usageError([...base, "--table", "4294967296"]), /^--table:/);
  assert.match(usageError([...base, "--table", "x;y"]), /^--table:/);
  assert.match(usageError([...base, "--style", "route", "--table", "100"]), /^--table needs --style ip/);
});

async function runMain(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "route", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

for (
  const [name, args, message] of [
    [
      "an unknown flag",
      ["-c", "1.1.1.0/24", "--via", "2.2.2.2", "--nope"],
      "tcpshadow: unknown option --nope",
    ],
    ["a bad range", ["-c", "1.2.3/24", "--via", "2.2.2.2"], 'tcpshadow: --clients: "1.2.3/24" is not'],
    ["a missing value", ["-c", "1.1.1.0/24", "--via"], "tcpshadow: --via needs a value"],
  ] as const
) {
  Deno.test(`main.ts route with ${name} exits 2 with one line and a help hint, no stack trace`, async () => {
    const { code, stdout, stderr } = await runMain([...args]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    const errorLines = stderr.trimEnd().split("\n");
    assert.equal(errorLines.length, 2, stderr);
    assert.ok(errorLines[0].startsWith(message), stderr);
    assert.equal(errorLines[1], "Try 'tcpshadow route --help'.");
  });
}

Deno.test("main.ts route prints the script on stdout and exits 0", async () => {
  const { code, stdout, stderr } = await runMain(["--clients", "198.19.0.0/24", "--via", "198.18.0.2"]);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assert.equal(stdout, routeScript(parseRouteFlags(["--clients", "198.19.0.0/24", "--via", "198.18.0.2"])));
});

Deno.test("main.ts route --help shows usage with examples and exits 0", async () => {
  const { code, stdout } = await runMain(["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: tcpshadow route --clients/m);
  assert.match(stdout, /^Examples:$/m);
  for (const flag of ["--clients", "--via", "--style", "--dev", "--table", "--undo"]) {
    assert.ok(stdout.includes(flag));
  }
});

Deno.test("a --dev that ip would take for an option, or . and .., is refused", () => {
  const base = ["-c", "1.1.1.0/24", "--via", "2.2.2.2"];
  assert.match(usageError([...base, "--dev=--help"]), /^--dev: "--help" is not an interface name/);
  assert.match(usageError([...base, "--dev=-x"]), /^--dev:/);
  assert.match(usageError([...base, "--dev", ".."]), /^--dev:/);
  assert.match(usageError([...base, "--table=-1"]), /^--table:/);
  assert.deepEqual(lines([...base, "--dev", "eth0.100"]), [
    "ip route add 1.1.1.0/24 via 2.2.2.2 dev eth0.100",
  ]);
});

Deno.test("every address, multicast and broadcast ranges or next hops are refused unless --force", () => {
  const cases: [string[], RegExp][] = [
    [["-c", "0.0.0.0/0", "--via", "2.2.2.2"], /^--clients: 0\.0\.0\.0\/0 is every address/],
    [["-c", "::/0", "--via", "2001:db8::2"], /^--clients: ::\/0 is every address/],
    [["-c", "224.0.0.0/4", "--via", "2.2.2.2"], /^--clients: 224\.0\.0\.0\/4 is multicast/],
    [["-c", "ff02::/16", "--via", "2001:db8::2"], /^--clients: ff02::\/16 is multicast/],
    [["-c", "255.255.255.255", "--via", "2.2.2.2"], /^--clients: 255\.255\.255\.255\/32 is the broadcast/],
    [["-c", "1.1.1.0/24", "--via", "255.255.255.255"], /^--via: 255\.255\.255\.255 is the broadcast address/],
    [["-c", "1.1.1.0/24", "--via", "239.1.1.1"], /^--via: 239\.1\.1\.1 is multicast/],
    [["-c", "1.1.1.0/24", "--via", "0.0.0.0"], /^--via: 0\.0\.0\.0 is the unspecified address/],
    [["-c", "2001:db8:1::/64", "--via", "ff02::1"], /^--via: ff02::1 is multicast/],
    [["-c", "2001:db8:1::/64", "--via", "::"], /^--via: :: is the unspecified address/],
  ];
  for (const [argv, message] of cases) {
    assert.match(usageError(argv), message);
    assert.match(usageError(argv), /\(--force to route/);
    assert.doesNotThrow(() => parseRouteFlags([...argv, "--force"]), argv.join(" "));
  }
  assert.deepEqual(lines(["-c", "0.0.0.0/0", "--via", "2.2.2.2", "--force"]), [
    "ip route add 0.0.0.0/0 via 2.2.2.2",
  ]);
});
