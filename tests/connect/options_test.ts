/** `copy --connect`'s flags: what it needs, and what belongs to the packet transport only. */
import assert from "node:assert/strict";
import { parseCopyOptions } from "../../src/copy/options.ts";
import { UsageError } from "../../src/errors.ts";

const TARGET = ["-x", "80-198.18.0.2:8080"];

Deno.test("--connect needs no intercept; --bind and --answer-gap are read, 200 ms by default", () => {
  const plain = parseCopyOptions([...TARGET, "--connect"]);
  assert.deepEqual(plain.connect, { bind: [], answerGapMs: 200, compare: undefined });
  assert.deepEqual(plain.intercepts, []);
  const bound = parseCopyOptions([
    ...TARGET,
    "--connect",
    "--bind",
    "198.18.0.1,198.18.0.31",
    "--answer-gap",
    "50",
  ]);
  assert.deepEqual(bound.connect, { bind: [0xc6120001, 0xc612001f], answerGapMs: 50, compare: undefined });
  assert.equal(parseCopyOptions([...TARGET, "-s", "198.18.0.3"]).connect, undefined);
});

Deno.test("the packet transport's flags with --connect, and --connect's without it, are usage errors", () => {
  const refused = (args: string[], text: RegExp) =>
    assert.throws(
      () => parseCopyOptions([...TARGET, ...args]),
      (error) => error instanceof UsageError && text.test(error.message),
    );
  refused(["--connect", "-s", "198.18.0.3"], /--intercept \(-s\) does not go with --connect/);
  refused(["--connect", "-c", "198.19.0.0/24"], /--clients \(-c\) does not go with --connect/);
  refused(["--bind", "198.18.0.1"], /--bind needs --connect/);
  refused(["--answer-gap", "10", "-s", "198.18.0.3"], /--answer-gap needs --connect/);
  refused(["--connect", "--bind", "nowhere"], /--bind/);
  refused([], /--intercept \(-s\) is required.*--connect/);
});
