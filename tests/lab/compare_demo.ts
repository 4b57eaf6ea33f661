/**
 * `deno task demo:compare`: the regression-testing workflow on a built-in lab. A client uses a JSON shop
 * on the online host while tcpdump records it; then `copy --connect -i` replays the recording against a
 * new build on the target host, in which one endpoint changed, with `--compare http --report`. Prints
 * copy's endpoint table, writes `compare-report.html` (and `compare-report.png`, a screenshot by headless
 * Chromium when it is there) in the current folder. Needs root (network namespaces); all torn down after.
 */
import { agentCommand, waitForLine, withLab } from "./lab.ts";
import { recordPort80, tcpshadow } from "./copy_lab.ts";

if (Deno.uid() !== 0) {
  console.error("tcpshadow demo:compare: needs root (it builds network namespaces)");
  Deno.exit(1);
}

const PATHS = [
  ...Array.from({ length: 20 }, (_, i) => `/users/${i + 1}`),
  ...Array.from({ length: 10 }, (_, i) => `/price/${i + 1}`),
  "/gzip/1",
  "/chunked/3",
];
const report = `${Deno.cwd()}/compare-report.html`;

await withLab({
  hosts: [
    { name: "client", address: "198.18.0.10/24" },
    { name: "online", address: "198.18.0.1/24" },
    { name: "target", address: "198.18.0.2/24" },
  ],
}, async (lab) => {
  const online = lab.host("online");
  const target = lab.host("target");
  const dir = await Deno.makeTempDir({ prefix: "tcpshadow-demo-" });
  try {
    console.log(
      "online 198.18.0.1:80 runs the shop; target 198.18.0.2:8080 runs a new build whose /price changed",
    );
    for (const [host, port, extra] of [[online, 80, []], [target, 8080, ["--change", "price"]]] as const) {
      await waitForLine(
        host.spawn(agentCommand("shop_server", ["--port", String(port), ...extra])),
        "listening",
      );
    }
    const recording = `${dir}/traffic.pcap`;
    console.log(
      "recording the client's traffic on the online host:  tcpdump -i eth0 -w traffic.pcap 'tcp port 80'",
    );
    const dump = await recordPort80(online, recording);
    for (const mode of ["keepalive", "close"]) {
      await lab.host("client").run(
        agentCommand("http_paths", [
          "--to",
          `${online.address}:80`,
          "--paths",
          PATHS.join(","),
          "--mode",
          mode,
        ]),
      );
    }
    await dump.stop("SIGINT", 5000);
    const command = [
      "copy",
      "-x",
      `80-${target.address}:8080`,
      "--connect",
      "-i",
      recording,
      "--compare",
      "http",
    ];
    console.log(
      `replaying it against the target:  tcpshadow ${command.join(" ")} --report compare-report.html\n`,
    );
    const replay = await online.run(tcpshadow([...command, "--report", report]), { check: false });
    for (const line of replay.stderr.split("\n")) {
      if (line.includes(" compared ") || line.includes(" report ")) {
        console.log(line.slice(line.indexOf("copy: ") + 6));
      }
    }
    if (replay.code !== 0) {
      console.error(replay.stderr);
      Deno.exitCode = 1;
      return;
    }
    const screenshot = await new Deno.Command("chromium", {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1200,1000",
        `--screenshot=${report.replace(/\.html$/, ".png")}`,
        `file://${report}`,
      ],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => undefined);
    console.log(`\nopen ${report} in a browser${screenshot?.success ? " (a screenshot beside it)" : ""}`);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
