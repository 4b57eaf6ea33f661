import assert from "node:assert/strict";
import { agentCommand } from "./lab.ts";
import { compareLogs, withCopyLab } from "./copy_lab.ts";

Deno.test("copy replays HTTP requests on new connections to the target, byte for byte", async () => {
  await withCopyLab({}, async (lab) => {
    const copy = await lab.startCopy(["-I", "eth0"]);
    const clientLog = `${lab.dir}/client.jsonl`;
    await lab.client.run(agentCommand("http_client", [
      "--url",
      `http://${lab.online.address}:80`,
      "--requests",
      "200",
      "--connections",
      "8",
      "--close",
      "--body-sizes",
      "0,10,1000,5000",
      "--log",
      clientLog,
    ]));
    const online = await lab.readLog(lab.onlineLogPath);
    assert.equal(online.length, 200);
    const target = await lab.waitForTarget(200, 15000);
    const summary = await lab.stopCopy(copy);
    console.log(summary);
    assert.deepEqual(compareLogs(online, target), []);
    assert.equal(summary.sessions, 200);
    assert.equal(summary.completed, 200);
  });
});
