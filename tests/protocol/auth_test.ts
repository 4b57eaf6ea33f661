import assert from "node:assert/strict";
import {
  AUTH_MAC_LENGTH,
  AUTH_NONCE_LENGTH,
  authMac,
  authNonce,
  authProofValid,
  Capability,
  decodeAuthResponse,
  encodeAuthResponse,
  encodeExtensionRecord,
  encodeHello,
  ExtensionRecordType,
  REGISTRATION_LENGTH,
  RegistrationDecoder,
} from "../../src/protocol/mod.ts";

const secret = new TextEncoder().encode("correct horse battery staple");
const other = new TextEncoder().encode("incorrect horse battery staple");
const interceptNonce = new Uint8Array(AUTH_NONCE_LENGTH).fill(1);
const copyNonce = new Uint8Array(AUTH_NONCE_LENGTH).fill(2);

Deno.test("each side's proof checks out with the same secret and nonces, and with nothing else", () => {
  const copyProof = authMac(secret, interceptNonce, copyNonce, "copy");
  assert.equal(copyProof.length, AUTH_MAC_LENGTH);
  assert.ok(authProofValid(secret, interceptNonce, copyNonce, "copy", copyProof));
  assert.ok(!authProofValid(other, interceptNonce, copyNonce, "copy", copyProof), "another secret");
  assert.ok(!authProofValid(secret, copyNonce, interceptNonce, "copy", copyProof), "nonces swapped");
  assert.ok(!authProofValid(secret, authNonce(), copyNonce, "copy", copyProof), "another challenge");
  assert.ok(!authProofValid(secret, interceptNonce, copyNonce, "copy", copyProof.subarray(1)), "cut short");
});

Deno.test("a proof is bound to its direction: copy's proof reflected back is no intercept's proof", () => {
  const copyProof = authMac(secret, interceptNonce, copyNonce, "copy");
  assert.ok(!authProofValid(secret, interceptNonce, copyNonce, "intercept", copyProof));
  assert.notDeepEqual(authMac(secret, interceptNonce, copyNonce, "intercept"), copyProof);
});

Deno.test("nonces are fresh each time", () => {
  assert.notDeepEqual(authNonce(), authNonce());
  assert.equal(authNonce().length, AUTH_NONCE_LENGTH);
});

Deno.test("copy's auth response travels as an extension record after an extended hello asking for auth", () => {
  const body = encodeAuthResponse({ copyNonce, mac: authMac(secret, interceptNonce, copyNonce, "copy") });
  const bytes = new Uint8Array(2 * REGISTRATION_LENGTH + body.length);
  encodeHello(bytes, 0, Capability.AUTH);
  encodeExtensionRecord(ExtensionRecordType.AUTH_RESPONSE, body, bytes, REGISTRATION_LENGTH);
  const decoder = new RegistrationDecoder();
  const records = decoder.push(bytes);
  assert.ok(Array.isArray(records));
  assert.equal(decoder.hello?.capabilities, Capability.AUTH);
  const [record] = records;
  assert.ok(record !== undefined && !("clientAddress" in record));
  assert.equal(record.type, ExtensionRecordType.AUTH_RESPONSE);
  const response = decodeAuthResponse(record.body);
  assert.ok(response !== undefined);
  assert.deepEqual(response.copyNonce, copyNonce);
  assert.ok(authProofValid(secret, interceptNonce, response.copyNonce, "copy", response.mac));
  assert.equal(decodeAuthResponse(record.body.subarray(1)), undefined);
});
