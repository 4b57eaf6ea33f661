/** Log and stats files survive logrotate: SIGHUP reopens them by path. */
import assert from "node:assert/strict";
import { LineFile, linesDropped, reopenOnHangup } from "../../src/ops/mod.ts";
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

/** A file that takes `room` bytes, then fails as a full disk does, until `room` is raised again. */
function diskOf(room: number) {
  const disk = { room, written: "" };
  const file = {
    writeSync(bytes: Uint8Array): number {
      if (disk.room === 0) throw new Deno.errors.WriteZero("No space left on device (os error 28)");
      const count = Math.min(bytes.length, disk.room);
      disk.room -= count;
      disk.written += new TextDecoder().decode(bytes.subarray(0, count));
      return count;
    },
    close() {},
  };
  return { disk, open: () => file };
}

Deno.test("a line the file does not take (a full disk) is dropped and counted, and that is said once", () => {
  const warnings: string[] = [];
  const before = linesDropped();
  const { disk, open } = diskOf(0);
  const file = new LineFile("copy.log", "log file", (line) => warnings.push(line), open);
  for (let i = 0; i < 5; i++) file.writeLine(`line ${i}`);
  assert.equal(file.dropped, 5);
  assert.equal(linesDropped() - before, 5);
  assert.equal(disk.written, "");
  assert.deepEqual(warnings, [
    "cannot write log file copy.log (No space left on device (os error 28)): dropping its lines until it can",
  ]);
  file.close();
});

Deno.test("writing resumes when the disk has room again, says so once, and a cut line is ended first", () => {
  const warnings: string[] = [];
  const { disk, open } = diskOf(12);
  const file = new LineFile("copy.log", "log file", (line) => warnings.push(line), open);
  file.writeLine("first line"); // 11 bytes: fits
  file.writeLine("second line"); // 1 byte fits, then the disk is full
  file.writeLine("third line");
  disk.room = 1000;
  file.writeLine("fourth line");
  file.writeLine("fifth line");
  assert.equal(disk.written, "first line\ns\nfourth line\nfifth line\n");
  assert.equal(file.dropped, 2);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /^cannot write log file copy\.log \(.*\): dropping its lines until it can$/);
  assert.equal(warnings[1], "writing log file copy.log again; 2 line(s) dropped so far");
  file.close();
});
