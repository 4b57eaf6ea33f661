import assert from "node:assert/strict";
import {
  agentCommand,
  createLab,
  type Host,
  type Lab,
  LAB_NETNS_PREFIX,
  sweepStaleLabs,
  waitForLine,
  withLab,
} from "./lab.ts";

const THREE_HOSTS = { hosts: [{ name: "client" }, { name: "online" }, { name: "target" }] };

async function rootCommand(args: string[]): Promise<string> {
  const output = await new Deno.Command(args[0], { args: args.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

async function netnsList(): Promise<string[]> {
  return (await rootCommand(["ip", "netns", "list"])).split("\n").map((line) => line.split(" ")[0])
    .filter((name) => name !== "");
}

function labNamespaces(lab: Lab): string[] {
  return [lab.bridgeNetns, ...Object.values(lab.hosts).map((host) => host.netns)];
}

/** Percent of `count` pings from `from` to `to` that got no answer. */
async function pingLoss(from: Host, to: Host, count = 100): Promise<number> {
  const result = await from.run(
    ["ping", "-q", "-n", "-c", String(count), "-i", "0.01", "-W", "1", to.address],
    { check: false },
  );
  const loss = /(\d+(?:\.\d+)?)% packet loss/.exec(result.stdout);
  assert.ok(loss, `no loss figure in ping output: ${result.stdout}${result.stderr}`);
  return Number(loss[1]);
}

Deno.test("a three-host lab gives each host its own namespace, address and MAC", async () => {
  await withLab(THREE_HOSTS, async (lab) => {
    const hosts = Object.values(lab.hosts);
    assert.deepEqual(hosts.map((host) => host.address), ["198.18.0.1", "198.18.0.2", "198.18.0.3"]);
    assert.equal(new Set(hosts.map((host) => host.netns)).size, 3);
    assert.equal(new Set(hosts.map((host) => host.mac)).size, 3);
    const namespaces = await netnsList();
    for (const netns of labNamespaces(lab)) {
      assert.ok(netns.startsWith(`${LAB_NETNS_PREFIX}${Deno.pid}-`), netns);
      assert.ok(namespaces.includes(netns), `${netns} exists`);
    }
    const addresses = await lab.host("online").run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert.match(addresses.stdout, /inet 198\.18\.0\.2\/24/);
    assert.equal(
      lab.host("online").mac,
      JSON.parse((await lab.host("online").run(["ip", "-j", "link"])).stdout)
        .find((link: { ifname: string }) => link.ifname === "eth0").address,
    );
  });
});

Deno.test("every host of a lab reaches every other one", async () => {
  await withLab(THREE_HOSTS, async (lab) => {
    for (const from of Object.values(lab.hosts)) {
      for (const to of Object.values(lab.hosts)) {
        if (from !== to) assert.equal(await pingLoss(from, to, 3), 0, `${from.name} -> ${to.name}`);
      }
    }
  });
});

Deno.test("lab hosts send no packet larger than the MTU (offloads are off)", async () => {
  await withLab(THREE_HOSTS, async (lab) => {
    for (const host of Object.values(lab.hosts)) {
      const features = (await host.run(["ethtool", "-k", "eth0"])).stdout;
      for (
        const feature of [
          "tcp-segmentation-offload",
          "generic-segmentation-offload",
          "generic-receive-offload",
        ]
      ) {
        assert.match(features, new RegExp(`^${feature}: off`, "m"), `${host.name} ${feature}`);
      }
    }
  });
});

Deno.test("an HTTP client in one lab host gets every answer from a server in another", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tcpshadow-lab-" });
  try {
    await withLab(THREE_HOSTS, async (lab) => {
      const online = lab.host("online");
      const server = online.spawn(
        agentCommand("http_server", ["--port", "80", "--log", `${dir}/server.jsonl`]),
      );
      await waitForLine(server, "listening");
      const client = await lab.host("client").run(agentCommand("http_client", [
        ...["--url", `http://${online.address}:80`, "--requests", "12", "--connections", "2"],
        ...["--body-sizes", "0,100,65536,1048576", "--log", `${dir}/client.jsonl`],
      ]));
      assert.match(client.stdout, /^done 12\/12$/m);
      const sent = (await Deno.readTextFile(`${dir}/client.jsonl`)).trim().split("\n").map((line) =>
        JSON.parse(line)
      );
      const served = (await Deno.readTextFile(`${dir}/server.jsonl`)).trim().split("\n").map((line) =>
        JSON.parse(line)
      );
      const key = (record: { id?: string; requestId?: string; bodySha256: string; bodyLength: number }) =>
        `${record.id ?? record.requestId} ${record.bodyLength} ${record.bodySha256}`;
      assert.deepEqual(served.map(key).sort(), sent.map(key).sort());
      assert.ok(served.every((record) => record.remote.startsWith(`${lab.host("client").address}:`)));
      assert.equal(
        new Set(sent.map((record) => record.bodySha256)).size,
        10,
        "POST bodies differ per request",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("close() deletes every namespace of the lab, stops its processes and may be called again", async () => {
  const lab = await createLab(THREE_HOSTS);
  const namespaces = labNamespaces(lab);
  const sleeper = lab.host("target").spawn(["sleep", "600"]);
  // A grandchild the lab did not spawn itself, holding the shell's stdout open.
  const shell = lab.host("client").spawn(["sh", "-c", "sleep 600 & echo started; wait"]);
  await waitForLine(shell, "started");
  await lab.close();
  await lab.close();
  const left = await netnsList();
  assert.deepEqual(namespaces.filter((netns) => left.includes(netns)), []);
  assert.equal((await sleeper.exited).success, false);
  assert.equal((await shell.exited).success, false);
});

Deno.test("withLab tears the lab down when the test body throws", async () => {
  let namespaces: string[] = [];
  let sleeper: Deno.ChildProcess["status"] | undefined;
  await assert.rejects(
    withLab(THREE_HOSTS, (lab) => {
      namespaces = labNamespaces(lab);
      sleeper = lab.host("online").spawn(["sleep", "600"]).exited;
      throw new Error("the test body failed");
    }),
    /the test body failed/,
  );
  assert.equal(namespaces.length, 4);
  const left = await netnsList();
  assert.deepEqual(namespaces.filter((netns) => left.includes(netns)), []);
  assert.equal((await sleeper!).success, false);
});

Deno.test("a lab adds no interface, address or route to the root namespace", async () => {
  const snapshot = () =>
    Promise.all([
      rootCommand(["ip", "-o", "link"]),
      rootCommand(["ip", "-o", "addr"]),
      rootCommand(["ip", "route"]),
      rootCommand(["ip", "-6", "route"]),
    ]);
  // Interface counters and flags move with unrelated traffic; names, addresses and routes may not.
  const stable = (lines: string[]) => lines.map((text) => text.replace(/ qlen \d+|state \w+|<[^>]*>/g, ""));
  const before = stable(await snapshot());
  await withLab(THREE_HOSTS, async (lab) => {
    await lab.addRoute(lab.host("client"), "198.19.0.0/24", lab.host("online").address);
    await lab.dropRandom(lab.host("client"), 10);
    await lab.rateLimit(lab.host("client"), "100mbit");
    assert.deepEqual(stable(await snapshot()), before, "while the lab runs");
  });
  assert.deepEqual(stable(await snapshot()), before, "after the lab closed");
});

Deno.test("dropping 50% of a host's outgoing packets loses between 25% and 75% of 100 pings", async () => {
  await withLab(THREE_HOSTS, async (lab) => {
    const [client, target] = [lab.host("client"), lab.host("target")];
    await lab.dropRandom(client, 50, { direction: "out" });
    const loss = await pingLoss(client, target);
    assert.ok(loss >= 25 && loss <= 75, `lost ${loss}%`);
  });
});

Deno.test("an incoming drop with a match loses only matching packets, and clearImpairments ends it", async () => {
  await withLab(THREE_HOSTS, async (lab) => {
    const [client, online, target] = [lab.host("client"), lab.host("online"), lab.host("target")];
    await lab.dropRandom(target, 100, { direction: "in", match: `ip saddr ${client.address}` });
    assert.equal(await pingLoss(client, target, 20), 100);
    assert.equal(await pingLoss(online, target, 20), 0);
    await lab.clearImpairments(target);
    assert.equal(await pingLoss(client, target, 20), 0);
  });
});

Deno.test("rateLimit slows what a host sends to the given rate", async () => {
  await withLab(THREE_HOSTS, async (lab) => {
    const [client, online] = [lab.host("client"), lab.host("online")];
    const server = online.spawn(agentCommand("http_server", ["--port", "80"]));
    await waitForLine(server, "listening");
    await lab.rateLimit(client, "8mbit");
    const started = performance.now();
    // 1 MiB is 8.4 Mbit: about a second at 8 Mbit/s, a few milliseconds over an unlimited veth.
    await client.run(agentCommand("http_client", [
      ...["--url", `http://${online.address}:80`, "--requests", "1", "--body-sizes", "1048576"],
    ]));
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds > 0.8, `1 MiB took ${seconds.toFixed(2)} s`);
  });
});

Deno.test("sweepStaleLabs deletes namespaces of dead runs and keeps live ones", async () => {
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  const stale = `${LAB_NETNS_PREFIX}${dead.pid}-test-host`;
  await rootCommand(["ip", "netns", "add", stale]);
  try {
    await withLab({ hosts: [{ name: "only" }] }, async (lab) => {
      assert.ok(!(await netnsList()).includes(stale), "createLab swept the stale namespace");
      await rootCommand(["ip", "netns", "add", stale]);
      const swept = sweepStaleLabs();
      // A concurrent test run may sweep it first; either way it must be gone, and only stale ones swept.
      assert.ok(!(await netnsList()).includes(stale), `${stale} was swept`);
      assert.ok(
        swept.every((netns) => !netns.startsWith(`${LAB_NETNS_PREFIX}${Deno.pid}-`)),
        swept.join(" "),
      );
      assert.ok((await netnsList()).includes(lab.host("only").netns), "the live lab survives");
    });
  } finally {
    await new Deno.Command("ip", { args: ["netns", "del", stale], stderr: "null" }).output();
  }
});

Deno.test("createLab refuses addresses outside 198.18.0.0/15 and duplicate host names", async () => {
  await assert.rejects(
    createLab({ hosts: [{ name: "a", address: "10.0.0.1" }] }),
    /inside 198\.18\.0\.0\/15/,
  );
  await assert.rejects(
    createLab({ hosts: [{ name: "a" }], subnet: "192.168.0.0/24" }),
    /inside 198\.18\.0\.0\/15/,
  );
  await assert.rejects(createLab({ hosts: [{ name: "a" }, { name: "a" }] }), /must be unique/);
});

Deno.test("createLab refuses IPv6 addresses outside 2001:2::/48", async () => {
  for (const address6 of ["2001:db8::1/64", "2001:3::1/64", "fe80::1/64", "2001:2::1", "2001:2::1/32"]) {
    await assert.rejects(
      createLab({ hosts: [{ name: "a", address6 }] }),
      /inside 2001:2::\/48/,
      address6,
    );
  }
});
