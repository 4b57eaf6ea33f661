/** Log and stats files survive logrotate: SIGHUP reopens them by path. */
import assert from "node:assert/strict";
import { LineFile, reopenOnHangup } from "../../src/ops/mod.ts";
import { FatalError } from "../../src/errors.ts";

Deno.test("on SIGHUP a moved file is opened again by its path and the lines after go there", async () => {
  const dir = await Deno.makeTempDir();
  const heard: string[] = [];
  const stop = reopenOnHangup({ info: (line) => heard.push(line), warn: (line) => heard.push(line) });
  const file = new LineFile(`${dir}/copy.log`, "log file");
  try {
    file.writeLine("before");
    await Deno.rename(`${dir}/copy.log`, `${dir}/copy.log.1`);
    file.writeLine("moved, not yet reopened");
    const hangup = new Promise<void>((resolve) => {
      const listener = () => {
        Deno.removeSignalListener("SIGHUP", listener);
        resolve();
      };
      Deno.addSignalListener("SIGHUP", listener);
    });
    // Signal listeners do not keep the event loop alive: a timer does until the signal is in.
    const keepAlive = setTimeout(() => {}, 5000);
    Deno.kill(Deno.pid, "SIGHUP");
    await hangup;
    clearTimeout(keepAlive);
    file.writeLine("after");
    assert.equal(await Deno.readTextFile(`${dir}/copy.log.1`), "before\nmoved, not yet reopened\n");
    assert.equal(await Deno.readTextFile(`${dir}/copy.log`), "after\n");
    assert.deepEqual(heard, [`SIGHUP: reopened ${dir}/copy.log`]);
  } finally {
    stop();
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file that cannot be reopened keeps its old handle and says why", async () => {
  const dir = await Deno.makeTempDir();
  const file = new LineFile(`${dir}/stats.jsonl`, "--stats-json file");
  try {
    await Deno.remove(dir, { recursive: true }); // the directory is gone: the path cannot be created
    assert.match(file.reopen() ?? "", /No such file or directory/);
    file.writeLine("still writable");
  } finally {
    file.close();
  }
});

Deno.test("a file that cannot be opened is a FatalError naming it", () => {
  assert.throws(
    () => new LineFile("/nonexistent-dir/copy.log", "log file"),
    (error) =>
      error instanceof FatalError &&
      /^cannot open log file \/nonexistent-dir\/copy\.log: /.test(error.message),
  );
});
