/**
 * The protocol's decoders fed seeded random and mutated streams, cut at random places: whatever comes,
 * they give records or a `ProtocolError`, never an exception. A failing case names its seed and index.
 */
import assert from "node:assert/strict";
import {
  Capability,
  encodeExtensionFrame,
  encodeExtensionRecord,
  encodeHello,
  encodeRegistration,
  ExtensionFrameType,
  ProtocolError,
  REGISTRATION_LENGTH,
  RegistrationDecoder,
  REPLY_RECORD_LENGTH,
  ReplyFrameDecoder,
} from "../../src/protocol/mod.ts";
import { concatBytes } from "../../src/wire/mod.ts";
import { seededRandom } from "../wire/_fixtures.ts";

const SEED = 0x5eed;
const CASES = 3000;

/** What a copy sends: a hello (plain or extended), registrations and extension records. */
function copyStream(next: () => number): Uint8Array {
  const parts: Uint8Array[] = [];
  const hello = new Uint8Array(REGISTRATION_LENGTH);
  encodeHello(hello, 0, next() < 0.5 ? undefined : Capability.AUTH);
  parts.push(hello);
  for (let i = Math.floor(next() * 8); i > 0; i--) {
    if (next() < 0.8) {
      const registration = new Uint8Array(REGISTRATION_LENGTH);
      encodeRegistration(
        {
          type: next() < 0.5 ? 1 : 2,
          clientAddress: Math.floor(next() * 0x100000000),
          clientPort: Math.floor(next() * 0x10000),
          targetAddress: 0,
          targetPort: 8080,
        },
        registration,
        0,
      );
      parts.push(registration);
    } else {
      const body = new Uint8Array(Math.floor(next() * 64)).map(() => next() * 256);
      const record = new Uint8Array(REGISTRATION_LENGTH + body.length);
      encodeExtensionRecord(0x7400 + Math.floor(next() * 64), body, record, 0);
      parts.push(record);
    }
  }
  return concatBytes(parts);
}

/** What an intercept sends: reply frames and extension frames. */
function interceptStream(next: () => number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 1 + Math.floor(next() * 6); i > 0; i--) {
    if (next() < 0.7) {
      const count = 1 + Math.floor(next() * 16);
      const frame = new Uint8Array(2 + count * REPLY_RECORD_LENGTH).map(() => next() * 256);
      frame[0] = 0;
      frame[1] = count;
      parts.push(frame);
    } else {
      const body = new Uint8Array(Math.floor(next() * 48)).map(() => next() * 256);
      parts.push(encodeExtensionFrame(next() < 0.5 ? ExtensionFrameType.ACCEPTED : next() * 256, body));
    }
  }
  return concatBytes(parts);
}

/** Random bytes, or a valid stream with a few bytes changed, cut short, or doubled. */
function mutate(valid: Uint8Array, next: () => number): Uint8Array {
  const choice = next();
  if (choice < 0.3) return new Uint8Array(Math.floor(next() * 2048)).map(() => next() * 256);
  const bytes = valid.slice();
  for (let i = Math.floor(next() * 4); i >= 0; i--) bytes[Math.floor(next() * bytes.length)] = next() * 256;
  if (choice < 0.6) return bytes;
  if (choice < 0.8) return bytes.subarray(0, Math.floor(next() * bytes.length));
  return concatBytes([bytes, bytes]);
}

/** `bytes` in pieces of random lengths (some empty). */
function* pieces(bytes: Uint8Array, next: () => number): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length;) {
    const length = Math.floor(next() * (next() < 0.5 ? 20 : 400));
    yield bytes.subarray(at, at + length);
    at += length;
  }
}

Deno.test(`the registration decoder survives ${CASES} seeded random and mutated streams`, () => {
  const next = seededRandom(SEED);
  let errors = 0, records = 0;
  for (let index = 0; index < CASES; index++) {
    const decoder = new RegistrationDecoder();
    try {
      for (const piece of pieces(mutate(copyStream(next), next), next)) {
        const result = decoder.push(piece);
        if (result instanceof ProtocolError) {
          assert.equal(typeof result.message, "string");
          errors++;
          break;
        }
        assert.ok(Array.isArray(result));
        for (const record of result) {
          assert.ok(
            "clientAddress" in record ? record.type === 1 || record.type === 2 : record.type >= 0x7400,
          );
          records++;
        }
      }
    } catch (error) {
      throw new Error(`case ${index} of seed ${SEED}: ${error}`);
    }
  }
  // The streams are varied enough to reach both outcomes often.
  assert.ok(errors > CASES / 10 && records > CASES / 2, `${errors} errors, ${records} records`);
});

Deno.test(`the reply frame decoder survives ${CASES} seeded random and mutated streams`, () => {
  const next = seededRandom(SEED + 1);
  let errors = 0, records = 0, extensions = 0;
  for (let index = 0; index < CASES; index++) {
    const decoder = new ReplyFrameDecoder((_type, body) => {
      assert.ok(body.length <= 1024);
      extensions++;
    });
    try {
      for (const piece of pieces(mutate(interceptStream(next), next), next)) {
        const result = decoder.push(piece, (record) => {
          assert.equal(record.length, REPLY_RECORD_LENGTH);
          records++;
        });
        if (result !== undefined) {
          assert.ok(result instanceof ProtocolError);
          errors++;
          break;
        }
      }
    } catch (error) {
      throw new Error(`case ${index} of seed ${SEED + 1}: ${error}`);
    }
  }
  assert.ok(
    errors > CASES / 10 && records > CASES && extensions > CASES / 10,
    `${errors}, ${records}, ${extensions}`,
  );
});
