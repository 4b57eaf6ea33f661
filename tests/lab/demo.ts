/**
 * `deno task demo`: the main job on a built-in lab. Builds four hosts in network namespaces, runs
 * real HTTP servers on the online and target hosts, applies `tcpshadow route` on the target, runs
 * `intercept` and `copy`, drives traffic from a client host, and prints what reached the target.
 * Needs root (network namespaces, raw sockets); everything is torn down at the end.
 */
import { agentCommand } from "./lab.ts";
import { compareLogs, withCopyLab } from "./copy_lab.ts";

const REQUESTS = 500;

if (Deno.uid() !== 0) {
  console.error("tcpshadow demo: needs root (it builds network namespaces and sends with raw sockets)");
  Deno.exit(1);
}

await withCopyLab({}, async (lab) => {
  console.log("lab: client 198.18.0.10, online 198.18.0.1:80, target 198.18.0.2:8080, assistant 198.18.0.3");
  console.log(`target route: replies to 198.19.0.0/24 via ${lab.assistant.address} (from 'tcpshadow route')`);
  const copy = await lab.startCopy();
  console.log("copy and intercept running; the client sends its requests to the online server...");
  const started = performance.now();
  for (const mode of ["--keep-alive", "--close"]) {
    await lab.client.run(agentCommand("http_client", [
      "--url",
      `http://${lab.online.address}:80`,
      "--requests",
      String(REQUESTS / 2),
      "--connections",
      "8",
      mode,
      "--id-prefix",
      mode.slice(2),
      "--body-sizes",
      "0,100,2000,40000",
    ]));
  }
  const online = await lab.readLog(lab.onlineLogPath);
  const target = await lab.waitForTarget(online.length, 20_000);
  const seconds = (performance.now() - started) / 1000;
  const summary = await lab.stopCopy(copy);
  const differences = compareLogs(online, target);
  const identical = target.length - differences.filter((line) => line.startsWith("target has")).length;
  const rows: Array<[string, string | number]> = [
    ["requests served online", online.length],
    ["requests received by the target", target.length],
    ["identical method, path and body", identical],
    ["sessions copied", summary["sessions-copied"]],
    ["sessions completed", summary["sessions-completed"]],
    ["sessions failed", summary["sessions-failed"]],
    ["retransmissions", summary.retransmissions],
    ["elapsed", `${seconds.toFixed(1)} s`],
  ];
  console.log("");
  for (const [name, value] of rows) console.log(`  ${name.padEnd(34)} ${String(value).padStart(8)}`);
  console.log("");
  const ok = differences.length === 0 && target.length === online.length;
  console.log(
    ok ? "every request was copied to the target, byte for byte" : `differences:\n${differences.join("\n")}`,
  );
  if (!ok) Deno.exitCode = 1;
});
