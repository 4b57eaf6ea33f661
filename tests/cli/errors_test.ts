/** Every subcommand answers bad input with one line `tcpshadow: ...`, a help hint and exit 2. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

async function tcpshadow(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

const badCommandLines: Array<[string[], RegExp]> = [
  [["frobnicate"], /^tcpshadow: unknown command "frobnicate"$/],
  [["copy", "--bogus"], /^tcpshadow: unknown option --bogus$/],
  [["copy", "-s", "198.18.0.3"], /^tcpshadow: --target \(-x\) is required/],
  [["copy", "-x", "80-198.18.0.2:8080"], /^tcpshadow: --intercept \(-s\) is required/],
  [["copy", "-x", "80-198.18.0.2:70000", "-s", "198.18.0.3"], /^tcpshadow: --target: "70000" is not a port/],
  [["copy", "-x", "80:198.18.0.2", "-s", "198.18.0.3"], /^tcpshadow: --target: "80:198.18.0.2" is not/],
  [
    ["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3", "--rate", "0"],
    /^tcpshadow: --rate must be a whole number from 1 to 100, not "0"$/,
  ],
  [["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3", "-n", "1024"], /^tcpshadow: --multiply must be/],
  [
    ["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3", "-c", "1.2.3/24"],
    /^tcpshadow: --clients: "1.2.3\/24" is not an address range/,
  ],
  [["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3:0"], /^tcpshadow: --intercept: "0" is not a port/],
  [["copy", "-x"], /^tcpshadow: --target needs a value$/],
  [["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3", "-F", "tcp port"], /^tcpshadow: --filter: /],
  [["copy", "stray"], /^tcpshadow: unexpected argument stray$/],
  [
    ["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3", "--max-lag", "-5"],
    /^tcpshadow: --max-lag needs a value \(one that starts with a dash: --max-lag=VALUE\)$/,
  ],
  [
    ["copy", "-x", "80-198.18.0.2:8080", "-s", "198.18.0.3", "--max-lag=-5"],
    /^tcpshadow: --max-lag must be a whole number from 0 to 3600000, not "-5"$/,
  ],
  [
    ["intercept", "-F", "tcp", "--capture-buffer", "0"],
    /^tcpshadow: --capture-buffer must be a whole number from 1 to 4096, not "0"$/,
  ],
  [["intercept", "--bogus"], /^tcpshadow: unknown option --bogus$/],
  [["intercept"], /^tcpshadow: .*-F/],
  [["intercept", "-F", "tcp", "-p", "70000"], /^tcpshadow: .*70000/],
  [["route", "--clients", "1.2.3/24", "--via", "198.18.0.3"], /^tcpshadow: .*1\.2\.3\/24/],
  [["route", "--clients"], /^tcpshadow: --clients needs a value$/],
];

for (const [args, message] of badCommandLines) {
  Deno.test(`'tcpshadow ${args.join(" ")}' fails with one line and exit 2`, async () => {
    const { code, stdout, stderr } = await tcpshadow(args);
    const lines = stderr.trimEnd().split("\n");
    assert.equal(code, 2, stderr);
    assert.equal(stdout, "");
    assert.match(lines[0], message);
    assert.equal(lines.length, 2, stderr);
    assert.match(lines[1], /^Try 'tcpshadow (\w+ )?--help'\.$/);
    assert.doesNotMatch(stderr, / {4}at /, "no stack trace");
  });
}

Deno.test("--version prints the version and every command has --help", async () => {
  const version = await tcpshadow(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^tcpshadow \d+\.\d+\.\d+\n$/);
  for (const command of ["copy", "intercept", "route"]) {
    const help = await tcpshadow([command, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`tcpshadow ${command}`));
  }
});
