/** The example systemd units in docs/systemd/ run command lines copy and intercept accept. */
import assert from "node:assert/strict";
import { parseCopyOptions } from "../../src/copy/options.ts";

const dir = new URL("../../docs/systemd/", import.meta.url);

/** The words of a unit's ExecStart (continuation lines joined, double quotes grouping). */
async function execStart(unit: string): Promise<string[]> {
  const text = (await Deno.readTextFile(new URL(unit, dir))).replaceAll("\\\n", " ");
  const line = /^ExecStart=(.*)$/m.exec(text)?.[1];
  assert.ok(line !== undefined, `${unit} has no ExecStart`);
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2]);
}

Deno.test("tcpshadow-copy.service: copy -d with its pid file where PIDFile= looks", async () => {
  const [binary, command, ...args] = await execStart("tcpshadow-copy.service");
  assert.equal(binary, "/usr/local/bin/tcpshadow");
  assert.equal(command, "copy");
  const options = parseCopyOptions(args);
  assert.equal(options.daemon.daemon, true);
  const unit = await Deno.readTextFile(new URL("tcpshadow-copy.service", dir));
  assert.match(unit, /^Type=forking$/m);
  assert.equal(/^PIDFile=(.*)$/m.exec(unit)?.[1], options.daemon.pidFile);
});

Deno.test("tcpshadow-intercept.service: intercept -d -P with its pid file where PIDFile= looks", async () => {
  const [binary, command, ...args] = await execStart("tcpshadow-intercept.service");
  assert.equal(binary, "/usr/local/bin/tcpshadow");
  assert.equal(command, "intercept");
  const unit = await Deno.readTextFile(new URL("tcpshadow-intercept.service", dir));
  assert.match(unit, /^Type=forking$/m);
  assert.ok(args.includes("-d"));
  assert.equal(args[args.indexOf("-P") + 1], /^PIDFile=(.*)$/m.exec(unit)?.[1]);
  assert.equal(args[args.indexOf("-F") + 1], "tcp and src port 8080");
});
