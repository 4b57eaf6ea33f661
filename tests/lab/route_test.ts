import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Host, withLab } from "./lab.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const LAB = {
  hosts: [
    { name: "target", address6: "2001:2::1/64" },
    { name: "assistant", address6: "2001:2::2/64" },
  ],
};

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Runs `tcpshadow route ARGS | sh` inside `host`, as an operator would; pipefail so either side may fail. */
function routePipedToSh(host: Host, args: string[], check = true) {
  const route = [Deno.execPath(), "run", "-A", "--quiet", MAIN, "route", ...args].map(shellQuote).join(" ");
  return host.run(["bash", "-o", "pipefail", "-c", `${route} | sh`], { check });
}

async function routes(host: Host, ...selector: string[]): Promise<string[]> {
  return (await host.run(["ip", ...selector])).stdout.split("\n").map((line) => line.trim())
    .filter((line) => line !== "");
}

Deno.test("route's script piped to sh installs the client routes in the target, --undo removes them", async () => {
  await withLab(LAB, async (lab) => {
    const [target, assistant] = [lab.host("target"), lab.host("assistant")];
    const before = await routes(target, "-4", "route");
    const args = ["--clients", "198.19.0.0/24,198.19.5.x", "--via", assistant.address];
    await routePipedToSh(target, args);
    const added = (await routes(target, "-4", "route")).filter((line) => !before.includes(line));
    assert.deepEqual(added.sort(), [
      `198.19.0.0/24 via ${assistant.address} dev eth0`,
      `198.19.5.0/24 via ${assistant.address} dev eth0`,
    ]);
    const chosen = await target.run(["ip", "route", "get", "198.19.5.77"]);
    assert.match(chosen.stdout, new RegExp(`via ${assistant.address.replaceAll(".", "\\.")} dev eth0`));
    await routePipedToSh(target, [...args, "--undo"]);
    assert.deepEqual(await routes(target, "-4", "route"), before);
  });
});

Deno.test("the IPv6 form installs routes through the assistant's IPv6 address", async () => {
  await withLab(LAB, async (lab) => {
    const [target, assistant] = [lab.host("target"), lab.host("assistant")];
    const args = [
      "--clients",
      "2001:2:0:1::/64,198.19.0.0/24",
      "--via",
      `${assistant.address6},${assistant.address}`,
    ];
    await routePipedToSh(target, args);
    assert.ok(
      (await routes(target, "-6", "route")).some((line) =>
        line.startsWith(`2001:2:0:1::/64 via ${assistant.address6} dev eth0`)
      ),
    );
    // The kernel now sends replies to a fake IPv6 client through the assistant.
    const chosen = await target.run(["ip", "-6", "route", "get", "2001:2:0:1::77"]);
    assert.match(chosen.stdout, new RegExp(`via ${assistant.address6} dev eth0`));
    assert.ok((await routes(target, "-4", "route")).some((line) => line.startsWith("198.19.0.0/24 via")));
    await routePipedToSh(target, [...args, "--undo"]);
    assert.ok(!(await routes(target, "-6", "route")).some((line) => line.startsWith("2001:2:0:1::/64")));
    assert.ok(!(await routes(target, "-4", "route")).some((line) => line.startsWith("198.19.0.0/24")));
  });
});

Deno.test("--dev and --table put the routes into that table on that interface", async () => {
  await withLab(LAB, async (lab) => {
    const [target, assistant] = [lab.host("target"), lab.host("assistant")];
    const args = [
      "--clients",
      "198.19.7.0/24",
      "--via",
      assistant.address,
      "--dev",
      "eth0",
      "--table",
      "100",
    ];
    await routePipedToSh(target, args);
    assert.deepEqual(await routes(target, "route", "show", "table", "100"), [
      `198.19.7.0/24 via ${assistant.address} dev eth0`,
    ]);
    assert.ok(!(await routes(target, "-4", "route")).some((line) => line.startsWith("198.19.7.0/24")));
    await routePipedToSh(target, [...args, "--undo"]);
    assert.deepEqual(await routes(target, "route", "show", "table", "100"), []);
  });
});

Deno.test("the script stops at its first failing command (set -e)", async () => {
  await withLab(LAB, async (lab) => {
    const [target, assistant] = [lab.host("target"), lab.host("assistant")];
    await lab.addRoute(target, "198.19.1.0/24", assistant.address);
    const result = await routePipedToSh(target, [
      "--clients",
      "198.19.1.0/24,198.19.2.0/24",
      "--via",
      assistant.address,
    ], false);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /File exists/);
    assert.ok(!(await routes(target, "-4", "route")).some((line) => line.startsWith("198.19.2.0/24")));
  });
});
