import assert from "node:assert/strict";
import {
  adjustChecksum16,
  adjustChecksum32,
  adjustChecksumBytes,
  finishChecksum,
  internetChecksum,
  onesComplementSum,
} from "../../src/wire/mod.ts";
import { hex, seededUint32 } from "./_fixtures.ts";

Deno.test("the one's complement sum of the RFC 1071 example words is 0xddf2", () => {
  const words = hex("0001 f203 f4f5 f6f7");
  assert.equal(onesComplementSum(words, 0, words.length), 0xddf2);
  assert.equal(internetChecksum(words, 0, words.length), 0x220d);
});

Deno.test("a sum chains across ranges through its initial value", () => {
  const words = hex("0001 f203 f4f5 f6f7");
  assert.equal(onesComplementSum(words, 4, 8, onesComplementSum(words, 0, 4)), 0xddf2);
  assert.equal(onesComplementSum(words, 0, 8, 0x1_0000_0000), onesComplementSum(words, 0, 8, 1));
});

Deno.test("an odd trailing byte is summed as a word padded with zero", () => {
  assert.equal(onesComplementSum(hex("1234 56"), 0, 3), 0x1234 + 0x5600);
});

Deno.test("the checksum of a captured IPv4 header is the one it carries", () => {
  const header = hex("4500 003c d07b 4000 4006 6c3e 7f00 0001 7f00 0001");
  assert.equal(internetChecksum(header, 0, 20), 0);
  header[10] = header[11] = 0;
  assert.equal(internetChecksum(header, 0, 20), 0x6c3e);
});

Deno.test("finishChecksum folds carries before complementing", () => {
  assert.equal(finishChecksum(0x2_fffe), 0xfffe);
  assert.equal(finishChecksum(0xffff), 0);
});

Deno.test("incremental updates equal a full recompute over many random field changes", () => {
  const random = seededUint32(1624);
  const data = new Uint8Array(64);
  for (let round = 0; round < 5000; round++) {
    for (let i = 0; i < data.length; i++) data[i] = random() & 0xff;
    // Some all-ones and all-zero words exercise the 0x0000 / 0xffff corner of RFC 1624.
    if (round % 7 === 0) data.fill(0xff, 0, 16);
    if (round % 11 === 0) data.fill(0, 16, 32);
    let checksum = internetChecksum(data, 0, data.length);
    const at = (random() % 16) * 4;
    const view = new DataView(data.buffer);
    if (round % 2 === 0) {
      const old = view.getUint32(at);
      const next = round % 5 === 0 ? [0, 0xffffffff][random() & 1] : random();
      view.setUint32(at, next);
      checksum = adjustChecksum32(checksum, old, next);
    } else {
      const old = view.getUint16(at);
      const next = random() & 0xffff;
      view.setUint16(at, next);
      checksum = adjustChecksum16(checksum, old, next);
    }
    assert.equal(checksum, internetChecksum(data, 0, data.length), `round ${round}`);
  }
});

Deno.test("a byte-run update equals a full recompute for a changed 16-byte address", () => {
  const random = seededUint32(6);
  const data = new Uint8Array(40);
  for (let round = 0; round < 500; round++) {
    for (let i = 0; i < data.length; i++) data[i] = random() & 0xff;
    const before = internetChecksum(data, 0, data.length);
    const old = data.slice(8, 24);
    const next = old.map(() => random() & 0xff);
    data.set(next, 8);
    assert.equal(adjustChecksumBytes(before, old, next), internetChecksum(data, 0, data.length));
  }
});
