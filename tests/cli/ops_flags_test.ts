/** The flags every long-running command shares: logs, stats, metrics. */
import assert from "node:assert/strict";
import { listenAddressValue, operationOptions } from "../../src/cli/mod.ts";
import { UsageError } from "../../src/errors.ts";

Deno.test("operation flags default to info logs and no stats lines off a terminal", () => {
  const options = operationOptions({}, false);
  assert.equal(options.log.level, "info");
  assert.equal(options.statsSeconds, 5);
  assert.equal(options.statsLines, Deno.stderr.isTerminal());
  assert.equal(options.metrics, undefined);
});

Deno.test("--quiet means warn unless --log-level says otherwise", () => {
  assert.equal(operationOptions({}, true).log.level, "warn");
  assert.equal(operationOptions({ "log-level": "debug" }, true).log.level, "debug");
});

Deno.test("bad operation flag values are usage errors naming the flag", () => {
  assert.throws(() => operationOptions({ "log-level": "loud" }, false), UsageError);
  assert.throws(() => operationOptions({ stats: "-1" }, false), /--stats/);
  assert.throws(() => operationOptions({ stats: "0", "stats-json": "-" }, false), /--stats-json/);
  assert.throws(() => operationOptions({ metrics: "9100" }, false), /--metrics/);
});

Deno.test("--stats 0 turns the lines off and a number turns them on", () => {
  assert.equal(operationOptions({ stats: "0" }, false).statsLines, false);
  const every2 = operationOptions({ stats: "2" }, true);
  assert.equal(every2.statsLines, true);
  assert.equal(every2.statsSeconds, 2);
});

Deno.test("a metrics address is HOST:PORT or :PORT for all addresses", () => {
  assert.deepEqual(listenAddressValue("--metrics", "127.0.0.1:9100"), { hostname: "127.0.0.1", port: 9100 });
  assert.deepEqual(listenAddressValue("--metrics", ":9100"), { hostname: "0.0.0.0", port: 9100 });
  assert.deepEqual(listenAddressValue("--metrics", "[::1]:9100"), { hostname: "::1", port: 9100 });
  assert.throws(() => listenAddressValue("--metrics", "host:99999"), UsageError);
});
