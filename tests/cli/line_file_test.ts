/** Log and stats files survive logrotate: SIGHUP reopens them by path. */
import assert from "node:assert/strict";
import { LineFile, linesDropped, reopenOnHangup } from "../../src/cli/line_file.ts";
import { createLogger } from "../../src/cli/log.ts";
import { StatsReporter } from "../../src/cli/stats.ts";
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

Deno.test("a line the file does not take (a full disk) is dropped and counted, and that is said once", () => {
  const warnings: string[] = [];
  const before = linesDropped();
  const file = new LineFile("/dev/full", "log file", (line) => warnings.push(line));
  try {
    for (let i = 0; i < 5; i++) file.writeLine(`line ${i}`);
    assert.equal(file.dropped, 5);
    assert.equal(linesDropped() - before, 5);
    assert.deepEqual(warnings, [
      "cannot write log file /dev/full (No space left on device (os error 28)): dropping its lines until it can",
    ]);
  } finally {
    file.close();
  }
});

Deno.test("writing resumes when the file takes lines again, and says so once", async () => {
  const dir = await Deno.makeTempDir();
  const warnings: string[] = [];
  // The path leads to a full device first, then (reopened, as after logrotate) to a real file.
  await Deno.symlink("/dev/full", `${dir}/copy.log`);
  const file = new LineFile(`${dir}/copy.log`, "log file", (line) => warnings.push(line));
  try {
    file.writeLine("lost 1");
    file.writeLine("lost 2");
    await Deno.remove(`${dir}/copy.log`);
    assert.equal(file.reopen(), undefined);
    file.writeLine("kept 1");
    file.writeLine("kept 2");
    assert.equal(await Deno.readTextFile(`${dir}/copy.log`), "kept 1\nkept 2\n");
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /^cannot write log file .*: dropping its lines until it can$/);
    assert.equal(warnings[1], `writing log file ${dir}/copy.log again; 2 line(s) dropped so far`);
  } finally {
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stats file that takes no writes (/proc/version) costs its lines, not the run", () => {
  const logged: string[] = [];
  const log = { ...createLogger("copy", { level: "error" }), always: (line: string) => logged.push(line) };
  const reporter = new StatsReporter(() => ({ counters: { captured: 1 } }), {
    intervalSeconds: 1,
    lines: false,
    jsonPath: "/proc/version",
    lineKeys: ["captured"],
    rateKeys: [],
  }, log);
  reporter.report();
  reporter.report();
  reporter.stop();
  assert.equal(logged.length, 1);
  assert.match(
    logged[0],
    /^warning: cannot write --stats-json file \/proc\/version \(.*\): dropping its lines/,
  );
});

Deno.test("a log file on a full disk still lets every log call return", () => {
  const log = createLogger("copy", { level: "debug", file: "/dev/full" });
  try {
    log.error("e");
    log.info("i");
    log.always("summary sessions=0");
  } finally {
    log.close();
  }
});
