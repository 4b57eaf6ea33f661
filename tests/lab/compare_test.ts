/**
 * `copy --connect --compare`: an online server and a target that differ on one endpoint, real servers and
 * clients, live and from a recording; the comparison must name exactly that endpoint. A baseline running the
 * online build turns a random id into noise.
 */
import assert from "node:assert/strict";
import { agentCommand, type Host, type Lab, type LabProcess, waitForLine, withLab } from "./lab.ts";
import { recordPort80, tcpshadow, waitForStderr } from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

const SHOP_PATHS = [
  ...Array.from({ length: 8 }, (_, i) => `/users/${i + 1}`),
  ...Array.from({ length: 8 }, (_, i) => `/price/${i + 1}`),
  "/token",
  "/token",
  "/token",
  "/gzip/1",
  "/gzip/2",
  "/chunked/1",
  "/chunked/2",
];
/** Every path asked in each of three ways: keep-alive, a connection each, pipelined. */
const MODES = ["keepalive", "close", "pipeline"] as const;
const PRICE_TURNS = 8 * MODES.length;

interface Row {
  endpoint: string;
  compared: number;
  same: number;
  different: number;
  noise: number;
  fields: string;
}

/** The `compared ...` lines of copy's log, as rows. */
function rows(stderr: string): Map<string, Row> {
  const out = new Map<string, Row>();
  for (
    const match of stderr.matchAll(
      /compared (.+?): (\d+) turns, (\d+) same, (\d+) different, (\d+) noise[^\n(]*(?:\(([^)]*)\))?/g,
    )
  ) {
    out.set(match[1], {
      endpoint: match[1],
      compared: Number(match[2]),
      same: Number(match[3]),
      different: Number(match[4]),
      noise: Number(match[5]),
      fields: match[6] ?? "",
    });
  }
  return out;
}

function summary(stderr: string): Record<string, number> {
  const line = stderr.split("\n").find((text) => text.includes(" summary "))!;
  return Object.fromEntries(
    line.slice(line.indexOf(" summary ") + 9).split(" ").map((pair) => {
      const [key, value] = pair.split("=");
      return [key, Number(value)];
    }),
  );
}

async function shop(host: Host, port: number, extra: string[] = []): Promise<LabProcess> {
  const server = host.spawn(agentCommand("shop_server", ["--port", String(port), ...extra]));
  await waitForLine(server, "listening");
  return server;
}

/** Asks the online shop every path in every mode, at `onlineHost` (a URL host: IPv6 in brackets). */
async function askShop(lab: Lab, onlineHost: string): Promise<void> {
  for (const mode of MODES) {
    const result = await lab.host("client").run(
      agentCommand("http_paths", [
        "--to",
        `${onlineHost}:80`,
        "--paths",
        SHOP_PATHS.join(","),
        "--mode",
        mode,
      ]),
      { timeoutMs: 60_000 },
    );
    assert.equal(result.stdout.trim(), `done ${SHOP_PATHS.length}`, result.stderr);
  }
}

const HOSTS = [
  { name: "client", address: "198.18.0.10/24", address6: "2001:2::10/64" },
  { name: "online", address: "198.18.0.1/24", address6: "2001:2::1/64" },
  { name: "target", address: "198.18.0.2/24", address6: "2001:2::2/64" },
  { name: "baseline", address: "198.18.0.3/24", address6: "2001:2::3/64" },
];

for (const family of [4, 6] as const) {
  Deno.test(`--compare http over IPv${family}, live: only the changed endpoint differs; a random id is noise with a baseline and a difference without`, async () => {
    await compareShop(family);
  });
}

/**
 * The shop asked live with a baseline, then replayed from the recording without one: over IPv6 every
 * address is IPv6 (clients, target, baseline), so the online server's answers are matched, and copy's own
 * connections left out of the capture, in that family.
 */
async function compareShop(family: 4 | 6): Promise<void> {
  await withLab({ hosts: HOSTS }, async (lab) => {
    const online = lab.host("online");
    const target = lab.host("target");
    const baseline = lab.host("baseline");
    const endpoint = (host: Host) => family === 4 ? host.address : `[${host.address6}]`;
    await shop(online, 80);
    await shop(target, 8080, ["--change", "price"]);
    await shop(baseline, 8080);
    const dir = await Deno.makeTempDir({ prefix: "tcpshadow-compare-" });
    const recording = `${dir}/shop.pcap`;
    try {
      const dump = await recordPort80(online, recording);
      const copy = online.spawn(tcpshadow([
        "copy",
        "-x",
        `80-${endpoint(target)}:8080`,
        "--connect",
        "--compare",
        "http",
        "--baseline",
        `${endpoint(baseline)}:8080`,
        "--diff-file",
        `${dir}/diffs.jsonl`,
        "--report",
        `${dir}/report.html`,
      ]));
      await waitForStderr(copy, "copying on");
      await askShop(lab, endpoint(online));
      await sleep(1500);
      await copy.stop("SIGTERM", 15_000);
      await dump.stop("SIGINT", 5000);
      const stderr = copy.stderrText();
      const table = rows(stderr);
      const counted = summary(stderr);

      const price = table.get("GET /price/{n}");
      assert.deepEqual(price && [price.compared, price.different, price.fields], [
        PRICE_TURNS,
        PRICE_TURNS,
        "json:$.price",
      ], stderr);
      const token = table.get("GET /token");
      assert.deepEqual(token && [token.compared, token.noise, token.different], [9, 9, 0], stderr);
      for (const endpoint of ["GET /users/{n}", "GET /gzip/{n}", "GET /chunked/{n}"]) {
        const row = table.get(endpoint);
        assert.ok(
          row !== undefined && row.compared > 0 && row.compared === row.same,
          `${endpoint}: ${stderr}`,
        );
      }
      assert.equal(counted["turns-different"], PRICE_TURNS, stderr);
      assert.equal(counted["turns-compared"], SHOP_PATHS.length * MODES.length, stderr);

      const diffs = (await Deno.readTextFile(`${dir}/diffs.jsonl`)).trim().split("\n").map((line) =>
        JSON.parse(line)
      );
      assert.ok(diffs.length >= 1 && diffs.length <= 5, `${diffs.length} samples`);
      assert.ok(diffs.every((d) => d.endpoint === "GET /price/{n}"));
      assert.deepEqual(diffs[0].differences.map((d: { field: string }) => d.field), ["json:$.price"]);
      const report = await Deno.readTextFile(`${dir}/report.html`);
      assert.match(report, /GET \/price\/\{n\}/);

      // The same traffic from the recording, with no baseline: the random id is now a difference too.
      const replay = await online.run(
        tcpshadow([
          "copy",
          "-x",
          `80-${endpoint(target)}:8080`,
          "--connect",
          "-i",
          recording,
          "--compare",
          "http",
        ]),
        { check: false, timeoutMs: 60_000 },
      );
      assert.equal(replay.code, 0, replay.stderr);
      const offline = rows(replay.stderr);
      assert.equal(offline.get("GET /price/{n}")?.different, PRICE_TURNS, replay.stderr);
      assert.equal(offline.get("GET /token")?.different, 9, replay.stderr);
      assert.equal(offline.get("GET /users/{n}")?.different, 0, replay.stderr);
      assert.equal(offline.get("GET /chunked/{n}")?.different, 0, replay.stderr);
      assert.equal(offline.get("GET /gzip/{n}")?.different, 0, replay.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("--compare bytes: a Redis-protocol target whose GET of one key answers differently is caught", async () => {
  await withLab({ hosts: HOSTS.slice(0, 3) }, async (lab) => {
    const online = lab.host("online");
    const target = lab.host("target");
    for (const [host, port, extra] of [[online, 80, []], [target, 6379, ["--change", "k2"]]] as const) {
      const server = host.spawn(agentCommand("resp_server", ["--port", String(port), ...extra]));
      await waitForLine(server, "listening");
    }
    const copy = online.spawn(
      tcpshadow(["copy", "-x", `80-${target.address}:6379`, "--connect", "--compare", "bytes"]),
    );
    await waitForStderr(copy, "copying on");
    const commands = "SET k1 a;SET k2 b;GET k1;GET k2;INCR n;INCR n;PING";
    for (let i = 0; i < 3; i++) {
      const result = await lab.host("client").run(
        agentCommand("resp_client", ["--to", `${online.address}:80`, "--commands", commands]),
      );
      assert.match(result.stdout, /done/);
    }
    await sleep(1500);
    await copy.stop("SIGTERM", 15_000);
    const table = rows(copy.stderrText());
    assert.equal(table.get("redis GET")?.different, 3, copy.stderrText());
    assert.equal(table.get("redis GET")?.same, 3, copy.stderrText());
    for (const command of ["redis SET", "redis INCR", "redis PING"]) {
      assert.equal(table.get(command)?.different, 0, `${command}: ${copy.stderrText()}`);
    }
  });
});
