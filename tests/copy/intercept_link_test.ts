/**
 * copy's side of the auth exchange against fake intercepts on loopback: a C intercept that never
 * answers, one that refuses, one with another secret, and one that proves the right secret.
 */
import assert from "node:assert/strict";
import { AUTH_DEADLINE_MS, InterceptLinks } from "../../src/copy/intercept_link.ts";
import { createLogger } from "../../src/ops/log.ts";
import { FatalError } from "../../src/errors.ts";
import {
  authMac,
  authNonce,
  authProofValid,
  Capability,
  decodeAuthResponse,
  encodeExtensionFrame,
  ExtensionFrameType,
  ExtensionRecordType,
  type Registration,
  RegistrationDecoder,
} from "../../src/protocol/mod.ts";

const secret = new TextEncoder().encode("correct horse battery staple");
const log = createLogger("copy", { level: "error" });
const registration: Registration = {
  type: 1,
  clientAddress: 0xc6130007 | 0,
  clientPort: 40000,
  targetAddress: 0xc6120002 | 0,
  targetPort: 8080,
};

type Behaviour = "silent" | "refuse" | "other-secret" | "prove";

/** A one-connection intercept on loopback that answers copy's hello as `behaviour` says. */
async function fakeIntercept(
  behaviour: Behaviour,
  fn: (port: number, seen: Registration[]) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Registration[] = [];
  const served = (async () => {
    const connection = await listener.accept();
    const decoder = new RegistrationDecoder();
    const buffer = new Uint8Array(4096);
    const challenge = authNonce();
    const proofSecret = behaviour === "other-secret"
      ? new TextEncoder().encode("another secret, 16+ bytes")
      : secret;
    try {
      for (let length; (length = await connection.read(buffer)) !== null;) {
        const wasGreeted = decoder.hello !== undefined;
        const records = decoder.push(buffer.subarray(0, length));
        if (!Array.isArray(records)) throw new Error(records.message);
        if (!wasGreeted && decoder.hello !== undefined) {
          assert.equal(decoder.hello.capabilities & Capability.AUTH, Capability.AUTH);
          if (behaviour === "silent") continue;
          if (behaviour === "refuse") {
            await connection.write(
              encodeExtensionFrame(ExtensionFrameType.REFUSED, new TextEncoder().encode("no")),
            );
            continue;
          }
          await connection.write(encodeExtensionFrame(ExtensionFrameType.ACCEPTED, new Uint8Array([0, 2])));
          await connection.write(encodeExtensionFrame(ExtensionFrameType.AUTH_CHALLENGE, challenge));
        }
        for (const record of records) {
          if ("clientAddress" in record) {
            seen.push(record);
            continue;
          }
          assert.equal(record.type, ExtensionRecordType.AUTH_RESPONSE);
          assert.equal(seen.length, 0, "no registration before the proof");
          const response = decodeAuthResponse(record.body)!;
          assert.ok(authProofValid(secret, challenge, response.copyNonce, "copy", response.mac));
          const proof = authMac(proofSecret, challenge, response.copyNonce, "intercept");
          await connection.write(encodeExtensionFrame(ExtensionFrameType.AUTH_PROOF, proof));
        }
      }
    } catch {
      // copy closed the connection
    }
  })();
  try {
    await fn(listener.addr.port, seen);
  } finally {
    listener.close();
    await served;
  }
}

function links(port: number): InterceptLinks {
  return new InterceptLinks([{ host: "127.0.0.1", port }], 1, () => {}, () => [], log, false, secret);
}

async function connectError(links: InterceptLinks): Promise<string> {
  try {
    await links.connect();
  } catch (error) {
    assert.ok(error instanceof FatalError);
    return error.message;
  } finally {
    links.close();
  }
  throw new Error("connect succeeded");
}

Deno.test("with a secret, copy gives up on an intercept that never answers (a C intercept), naming it", async () => {
  await fakeIntercept("silent", async (port) => {
    const started = performance.now();
    const message = await connectError(links(port));
    assert.ok(performance.now() - started >= AUTH_DEADLINE_MS - 50);
    assert.match(
      message,
      new RegExp(`^intercept 127\\.0\\.0\\.1:${port}: no answer to the auth hello .*a C intercept`),
    );
  });
});

Deno.test("with a secret, copy stops at an intercept's refusal and says why", async () => {
  await fakeIntercept("refuse", async (port) => {
    assert.match(await connectError(links(port)), /: refused this copy: no$/);
  });
});

Deno.test("with a secret, copy refuses an intercept that proves another one", async () => {
  await fakeIntercept("other-secret", async (port, seen) => {
    assert.match(await connectError(links(port)), /failed to prove the shared secret/);
    assert.deepEqual(seen, []);
  });
});

Deno.test("with a secret, registrations go only once the intercept proved it", async () => {
  await fakeIntercept("prove", async (port, seen) => {
    const copyLinks = links(port);
    await copyLinks.connect();
    copyLinks.clientOpened(registration);
    await copyLinks.drain();
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, [registration]);
    assert.equal(copyLinks.registrationsLost, 0);
    copyLinks.close();
  });
});
