import assert from "node:assert/strict";
import {
  addressFamily,
  endpointKey,
  formatEndpoint,
  ipv6Address,
  ipv6AddressBytes,
  keyAddress,
  keyPort,
  parseIpv6,
} from "../../src/wire/mod.ts";

Deno.test("an IPv4 key stays the 48-bit number, an IPv6 key a string, and both give back address and port", () => {
  assert.equal(endpointKey(0xc6130001, 40_000), 0xc6130001 * 65536 + 40_000);
  const bytes = parseIpv6("2001:2:0:1::ffff:d800")!; // a group that is a lone surrogate as a character
  const address = ipv6Address(bytes);
  assert.equal(addressFamily(address), 6);
  assert.equal(address.length, 8);
  assert.deepEqual(ipv6AddressBytes(address), bytes);
  for (const [a, port] of [[0xc6130001, 40_000], [address, 65535], [address, 0]] as const) {
    const key = endpointKey(a, port);
    assert.equal(keyAddress(key), a);
    assert.equal(keyPort(key), port);
  }
  assert.notEqual(endpointKey(address, 1), endpointKey(ipv6Address(parseIpv6("2001:2:0:1::ffff:d801")!), 1));
  assert.equal(formatEndpoint(address, 80), "[2001:2:0:1::ffff:d800]:80");
  assert.equal(formatEndpoint(0xc6130001, 80), "198.19.0.1:80");
});
