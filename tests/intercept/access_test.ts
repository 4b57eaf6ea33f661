import assert from "node:assert/strict";
import { AllowList, REFUSAL_LOG_MS, RefusalLog } from "../../src/intercept/access.ts";
import { parseCidr } from "../../src/wire/address.ts";

function allowList(...ranges: string[]): AllowList {
  return new AllowList(ranges.map((range) => parseCidr(range)!));
}

Deno.test("--allow lets in the addresses of its ranges and no others", () => {
  const allow = allowList("198.18.0.0/24", "198.19.5.7", "2001:2::/48");
  assert.ok(allow.allows("198.18.0.1"));
  assert.ok(allow.allows("198.18.0.255"));
  assert.ok(!allow.allows("198.18.1.1"));
  assert.ok(allow.allows("198.19.5.7"));
  assert.ok(!allow.allows("198.19.5.8"));
  assert.ok(allow.allows("2001:2::1"));
  assert.ok(!allow.allows("2001:3::1"));
  assert.ok(!allow.allows("not an address"));
});

Deno.test("--allow takes an IPv4-mapped address as the IPv4 address it is", () => {
  const allow = allowList("198.18.0.0/24");
  assert.ok(allow.allows("::ffff:198.18.0.9"));
  assert.ok(!allow.allows("::ffff:198.18.1.9"));
});

Deno.test("odd prefixes compare only their bits", () => {
  const allow = allowList("198.18.0.128/25", "0.0.0.0/0");
  assert.ok(allow.allows("1.2.3.4"), "/0 is everything of its family");
  assert.ok(!allowList("198.18.0.128/25").allows("198.18.0.127"));
  assert.ok(allowList("198.18.0.128/25").allows("198.18.0.200"));
});

Deno.test("a refusal is logged once a minute per key", () => {
  const log = new RefusalLog();
  assert.ok(log.shouldLog("not in --allow 198.18.0.9", 0));
  assert.ok(!log.shouldLog("not in --allow 198.18.0.9", REFUSAL_LOG_MS - 1));
  assert.ok(log.shouldLog("not in --allow 198.18.0.10", 1));
  assert.ok(log.shouldLog("not in --allow 198.18.0.9", REFUSAL_LOG_MS));
});

Deno.test("a flood of addresses is remembered in bounded memory and logged less, not more", () => {
  const log = new RefusalLog();
  let logged = 0;
  for (let i = 0; i < 10_000; i++) if (log.shouldLog(`address ${i}`, 0)) logged++;
  assert.ok(logged <= 4096, `${logged} lines`);
  assert.ok(log.shouldLog("address 0", REFUSAL_LOG_MS), "old entries make room once a minute passed");
});
