import assert from "node:assert/strict";
import { endpointHash, EndpointMap } from "../../src/session/endpoint_map.ts";
import { type Address, endpointKey, ipv6Address, parseIpv6 } from "../../src/wire/mod.ts";
import { seededRandom as random } from "../wire/_fixtures.ts";

Deno.test("an endpoint map agrees with a Map over random sets and deletes of both families", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const next = random(seed);
    // Few addresses and ports, so keys repeat, collide and cluster; IPv4 above 2**31 and IPv6 ones whose
    // low bits equal an IPv4 address's, so the families must be told apart.
    const addresses: Address[] = [0xc6130001 | 0, 0xc6130002 | 0, 7, -1, 0];
    for (const text of ["2001:2::1", "2001:2::2", "::7", "::"]) addresses.push(ipv6Address(parseIpv6(text)!));
    const map = new EndpointMap<number>();
    const reference = new Map<string | number, number>();
    for (let step = 0; step < 20_000; step++) {
      const address = addresses[Math.floor(next() * addresses.length)];
      const port = Math.floor(next() * 300) * (next() < 0.1 ? 218 : 1);
      const key = endpointKey(address, port);
      const action = next();
      // Phases that fill and empty the map, so it grows, and deletes shift long clusters back.
      const fill = Math.floor(step / 2_500) % 2 === 0;
      if (action < (fill ? 0.6 : 0.3)) {
        map.set(address, port, step);
        reference.set(key, step);
      } else if (action < 0.9) {
        assert.equal(map.delete(address, port), reference.delete(key));
      } else {
        assert.equal(map.has(address, port), reference.has(key));
      }
      assert.equal(map.get(address, port), reference.get(key));
      assert.equal(map.size, reference.size);
    }
    for (const address of addresses) {
      for (let port = 0; port < 300; port++) {
        assert.equal(map.get(address, port), reference.get(endpointKey(address, port)), `seed ${seed}`);
      }
    }
    assert.deepEqual([...map.values()].sort((a, b) => a - b), [...reference.values()].sort((a, b) => a - b));
    map.clear();
    assert.equal(map.size, 0);
    assert.equal(map.get(addresses[0], 1), undefined);
    assert.deepEqual([...map.values()], []);
  }
});

Deno.test("an endpoint map keeps an IPv4 and an IPv6 endpoint with equal numbers apart", () => {
  const map = new EndpointMap<string>();
  const v6 = ipv6Address(parseIpv6("::c613:1")!);
  map.set(0xc6130001 | 0, 80, "v4");
  map.set(v6, 80, "v6");
  assert.equal(map.get(0xc6130001 | 0, 80), "v4");
  assert.equal(map.get(v6, 80), "v6");
  assert.equal(map.delete(0xc6130001 | 0, 80), true);
  assert.equal(map.get(v6, 80), "v6");
  assert.equal(map.get(0xc6130001 | 0, 80), undefined);
  assert.equal(map.delete(0xc6130001 | 0, 80), false);
});

Deno.test("endpoints chosen to collide in an unseeded hash do not collide in the map's", () => {
  // A sum of the address's words and the port, unseeded, collides for whoever picks them: IPv4 addresses
  // falling as ports rise (a + 0x85ebca6b * p constant), IPv6 addresses of one /64 keeping 31 * w2 + w3.
  const ipv4 = Array.from({ length: 2000 }, (_, port) => ({
    address: (0xc6120000 - Math.imul(port, 0x85ebca6b)) | 0,
    port,
  }));
  const ipv6 = Array.from({ length: 2000 }, (_, i) => {
    const w2 = 0x1000 + i;
    const w3 = (0x7fff0000 - 31 * w2) >>> 0;
    const groups = [0x2001, 2, 0, 1, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
    return { address: String.fromCharCode(...groups), port: 40000 };
  });
  for (const endpoints of [ipv4, ipv6]) {
    const hashes = new Set(endpoints.map(({ address, port }) => endpointHash(address, port)));
    // 2,000 random 32-bit hashes collide less than once in a thousand runs.
    assert.ok(hashes.size >= 1990, `${hashes.size} distinct hashes of 2,000`);
  }
});
