import assert from "node:assert/strict";
import {
  addressFamily,
  endpointKey,
  formatEndpoint,
  ipv6Address,
  ipv6AddressBytes,
  ipv6AddressOfWords,
  keyAddress,
  keyPort,
  parseIpv6,
} from "../../src/wire/mod.ts";

Deno.test("an IPv4 key stays the 48-bit number, an IPv6 key a string, and both give back address and port", () => {
  const client = 0xc6130001 | 0; // 198.19.0.1, an `Ipv4Address`
  assert.equal(
    endpointKey(client, 40_000),
    0xc6130001 * 65536 + 40_000,
    "non-negative, the address unsigned",
  );
  const bytes = parseIpv6("2001:2:0:1::ffff:d800")!; // a group that is a lone surrogate as a character
  const address = ipv6Address(bytes);
  assert.equal(addressFamily(address), 6);
  assert.equal(address.length, 8);
  assert.deepEqual(ipv6AddressBytes(address), bytes);
  for (const [a, port] of [[client, 40_000], [address, 65535], [address, 0]] as const) {
    const key = endpointKey(a, port);
    assert.equal(keyAddress(key), a);
    assert.equal(keyPort(key), port);
  }
  assert.notEqual(endpointKey(address, 1), endpointKey(ipv6Address(parseIpv6("2001:2:0:1::ffff:d801")!), 1));
  assert.equal(formatEndpoint(address, 80), "[2001:2:0:1::ffff:d800]:80");
  assert.equal(formatEndpoint(0xc6130001, 80), "198.19.0.1:80");
});

/** An `Address` made the plain way, without the cache, to check the cached answers against. */
function groupString(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes[i] << 8 | bytes[i + 1]);
  return String.fromCharCode(...groups);
}

/** `count` pseudo-random IPv6 addresses (a fixed seed), each at offset 3 of its own frame-like array. */
function randomAddresses(count: number, seed: number): Uint8Array[] {
  let x = seed;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return Array.from({ length: count }, () => {
    const frame = new Uint8Array(3 + 16 + 5).fill(0xee);
    for (let i = 0; i < 16; i++) frame[3 + i] = next();
    return frame;
  });
}

Deno.test("decoded IPv6 addresses are right whatever the cache holds: first, again, after evictions", () => {
  // The unspecified address first: every slot starts out holding it.
  assert.equal(ipv6Address(new Uint8Array(16)), "\0".repeat(8));
  // Far more addresses than the cache has slots, so slots are shared and overwritten.
  const frames = randomAddresses(20_000, 7);
  for (let pass = 0; pass < 2; pass++) {
    for (const frame of frames) {
      const expected = groupString(frame.subarray(3, 19));
      assert.equal(ipv6Address(frame, 3), expected);
      assert.equal(ipv6Address(frame, 3), expected); // the cached string, now
    }
  }
  // Addresses one bit apart, one right after the other: where two of them share a slot, only a
  // comparison of every byte tells them apart.
  for (const frame of frames.slice(0, 1_000)) {
    const expected = groupString(frame.subarray(3, 19));
    for (let bit = 0; bit < 128; bit++) {
      const twin = frame.slice();
      twin[3 + (bit >> 3)] ^= 1 << (bit & 7);
      assert.equal(ipv6Address(frame, 3), expected);
      assert.equal(ipv6Address(twin, 3), groupString(twin.subarray(3, 19)));
      assert.equal(ipv6Address(frame, 3), expected);
    }
  }
  // The same address at another offset of another array.
  const moved = new Uint8Array(40);
  moved.set(frames[0].subarray(3, 19), 24);
  assert.equal(ipv6Address(moved, 24), groupString(frames[0].subarray(3, 19)));
});

Deno.test("IPv6 endpoint keys are right whatever the cache holds, and tell addresses and ports apart", () => {
  const zero = "\0".repeat(8);
  // The unspecified address and port 0 first: every slot starts out holding their key.
  assert.equal(endpointKey(zero, 0), zero + "\0");
  assert.equal(endpointKey(zero, 1), zero + "\x01");
  const frames = randomAddresses(3_000, 11);
  const addresses = frames.map((frame) => ipv6Address(frame, 3));
  assert.equal(new Set(addresses).size, addresses.length);
  const check = (address: string, port: number) => {
    const key = endpointKey(address, port) as string;
    assert.equal(key, address + String.fromCharCode(port));
    assert.equal(keyAddress(key), address);
    assert.equal(keyPort(key), port);
  };
  for (let pass = 0; pass < 2; pass++) {
    for (const [index, address] of addresses.entries()) {
      for (const port of [1000 + index, 80, 80 + 0x8000, 65535]) check(address, port);
    }
  }
  // Ports one bit apart, and addresses one bit apart, one right after the other (as for decoding).
  for (const [index, frame] of frames.slice(0, 200).entries()) {
    const address = addresses[index];
    for (let bit = 0; bit < 16; bit++) {
      for (let port = index; port < 65536; port += 997) {
        check(address, port);
        check(address, port ^ (1 << bit));
        check(address, port);
      }
    }
    for (let bit = 0; bit < 128; bit++) {
      const twin = frame.slice();
      twin[3 + (bit >> 3)] ^= 1 << (bit & 7);
      check(address, 443);
      check(ipv6Address(twin, 3), 443);
      check(address, 443);
    }
  }
});

Deno.test("an IPv6 address from its four words is the one decoded from its bytes, signed or unsigned words", () => {
  for (const frame of randomAddresses(5_000, 11)) {
    const view = new DataView(frame.buffer, 3, 16);
    const words = [0, 4, 8, 12].map((at) => view.getUint32(at));
    const expected = groupString(frame.subarray(3, 19));
    assert.equal(ipv6AddressOfWords(words[0], words[1], words[2], words[3]), expected);
    assert.equal(ipv6AddressOfWords(words[0] | 0, words[1] | 0, words[2] | 0, words[3] | 0), expected);
    assert.equal(ipv6Address(frame, 3), expected);
  }
  // A word past 32 bits wraps, as the low word of a range does past its end.
  assert.equal(ipv6AddressOfWords(0x20010002, 1, 0, 0xffffffff + 1), groupString(parseIpv6("2001:2:0:1::")!));
});
