import assert from "node:assert/strict";
import { configArguments } from "../../src/cli/config.ts";
import { parseFlags, prepareConfig } from "../../src/cli/mod.ts";
import { UsageError } from "../../src/errors.ts";
import { main } from "../../main.ts";

const FLAGS = {
  target: { type: "string", multiple: true },
  rate: { type: "string" },
  filter: { type: "string" },
  quiet: { type: "boolean" },
} as const;

function argsOf(text: string, given: string[] = []): string[] {
  return configArguments("tcpshadow.yaml", text, "copy", FLAGS, new Set(given));
}

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail("no UsageError");
}

Deno.test("a config section becomes the command's long flags, lists repeated and true booleans bare", () => {
  const text = [
    "# production",
    "copy:",
    "  target: [80-198.18.0.3:8080, 443-198.18.0.3:8443]",
    "  rate: 20",
    "  quiet: true",
    "intercept:",
    "  filter: tcp and src port 8080",
  ].join("\n");
  assert.deepEqual(argsOf(text), [
    "--target=80-198.18.0.3:8080",
    "--target=443-198.18.0.3:8443",
    "--rate=20",
    "--quiet",
  ]);
});

Deno.test("flags given on the command line are left out of what the config supplies", () => {
  assert.deepEqual(argsOf("copy:\n  rate: 20\n  quiet: false\n", ["rate"]), []);
});

Deno.test("an unknown key is an error naming the file, the line and the section", () => {
  const text = "copy:\n  target: 80-198.18.0.3:8080\n\n  rat: 20\n";
  assert.equal(usageMessage(() => argsOf(text)), 'tcpshadow.yaml:4: unknown key "rat" in copy');
});

Deno.test("help is not a key a config file may set", () => {
  assert.equal(
    usageMessage(() => argsOf("copy:\n  help: true\n")),
    'tcpshadow.yaml:2: unknown key "help" in copy',
  );
});

Deno.test("an unknown section is an error naming its line", () => {
  assert.match(usageMessage(() => argsOf("cpy:\n  rate: 20\n")), /^tcpshadow\.yaml:1: unknown section "cpy"/);
});

Deno.test("values of the wrong shape are errors naming the key and line", () => {
  assert.equal(
    usageMessage(() => argsOf("copy:\n  rate: [1, 2]\n")),
    'tcpshadow.yaml:2: "rate" takes one value, not a list',
  );
  assert.equal(
    usageMessage(() => argsOf("copy:\n  quiet: yes please\n")),
    'tcpshadow.yaml:2: "quiet" must be true or false',
  );
  assert.equal(usageMessage(() => argsOf("copy:\n  rate:\n")), 'tcpshadow.yaml:2: "rate" needs a value');
});

Deno.test("nested lists, mappings, booleans for values and multi-line values are errors, not flattened", () => {
  assert.equal(
    usageMessage(() =>
      argsOf("copy:\n  target: [[80-198.18.0.3:8080, 81-198.18.0.3:8081], 82-198.18.0.3:8082]\n")
    ),
    'tcpshadow.yaml:2: "target" is a list of plain values; a list or mapping inside it is not',
  );
  assert.equal(
    usageMessage(() => argsOf("copy:\n  target:\n    - port: 80\n")),
    'tcpshadow.yaml:2: "target" is a list of plain values; a list or mapping inside it is not',
  );
  assert.equal(
    usageMessage(() => argsOf("copy:\n  rate:\n    percent: 20\n")),
    'tcpshadow.yaml:2: "rate" takes a value, not a mapping',
  );
  assert.equal(
    usageMessage(() => argsOf("copy:\n  rate: true\n")),
    'tcpshadow.yaml:2: "rate" takes a value, not true',
  );
  assert.equal(
    usageMessage(() => argsOf("copy:\n  filter: |\n    tcp\n    and port 80\n")),
    'tcpshadow.yaml:2: "filter" must be one line',
  );
});

Deno.test("YAML that does not parse is an error with its line", () => {
  assert.match(usageMessage(() => argsOf("copy:\n  rate: 20\n  rate: 30\n")), /^tcpshadow\.yaml:3: /);
});

Deno.test("parseFlags takes values from --config, and the command line wins", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, "route:\n  style: route\n  dev: eth1\n");
    const options = { style: { type: "string" }, dev: { type: "string" } } as const;
    await prepareConfig(["--config", path]);
    const fromFile = parseFlags("route", ["--config", path], options);
    assert.equal(fromFile.style, "route");
    assert.equal(fromFile.dev, "eth1");
    const overridden = parseFlags("route", ["--config", path, "--dev", "eth2"], options);
    assert.equal(overridden.style, "route");
    assert.equal(overridden.dev, "eth2");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("tcpshadow exits 2 with the file and line of an unknown config key", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  const errors: string[] = [];
  const originalError = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  try {
    await Deno.writeTextFile(path, "copy:\n  target: 80-198.18.0.3:8080\n  rat: 20\n");
    assert.equal(await main(["copy", "--config", path]), 2);
  } finally {
    console.error = originalError;
    await Deno.remove(path);
  }
  assert.equal(errors[0], `tcpshadow: ${path}:3: unknown key "rat" in copy`);
});

Deno.test("a config file that cannot be read is a usage error naming it", () => {
  assert.match(
    usageMessage(() => parseFlags("route", ["--config", "/nonexistent/tcpshadow.yaml"], {})),
    /^--config: cannot read \/nonexistent\/tcpshadow\.yaml/,
  );
});
