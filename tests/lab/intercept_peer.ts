/**
 * A stand-in for copy (or for a stranger pretending to be one) on intercept's port, for the intercept
 * lab tests. Unlike the agents it speaks tcpshadow's protocol, so it imports `src/protocol/`.
 *
 * Usage: deno run -A intercept_peer.ts --intercept HOST:PORT [--hello plain|extended|none]
 *          [--secret-file FILE] [--garbage TEXT | --partial] [--register SPEC] [--connections N]
 *          [--fuzz SEED --cases N]
 *
 * - `--register A.B.C.D:P[-Q],...` sends ADD registrations for those clients (ports P..Q) after the hello
 *   (and after auth, with `--secret-file`), then prints "sent" and one JSON line per reply record.
 * - `--garbage TEXT` sends TEXT after the hello (with `--hello none`, in its place), then goes on as
 *   `--register`; `--partial` sends half a registration of zero bytes there instead, closes the
 *   connection at once and prints "left".
 * - `--connections N` opens N connections that send nothing (or only their hello), prints "opened K" as
 *   they open, and "closed K" as intercept closes them; it ends on SIGTERM.
 * - `--fuzz SEED --cases N` opens N connections one after another, each sending seeded random bytes or a
 *   valid stream with bytes mutated, reads what comes back, closes, and prints "fuzzed N".
 * Prints "refused <why>" for a REFUSED frame, "authenticated" once the intercept proved the secret, and
 * "closed" when intercept closes the (single) connection.
 */
import { parseArgs } from "node:util";
import {
  authMac,
  authNonce,
  authProofValid,
  Capability,
  encodeAuthResponse,
  encodeExtensionRecord,
  encodeHello,
  encodeRegistration,
  ExtensionFrameType,
  ExtensionRecordType,
  REGISTRATION_LENGTH,
  RegistrationType,
  ReplyFrameDecoder,
} from "../../src/protocol/mod.ts";
import { formatIpv4, parseIpv4 } from "../../src/wire/address.ts";
import { seededRandom } from "../wire/_fixtures.ts";

const flags = parseArgs({
  args: Deno.args,
  options: {
    intercept: { type: "string" },
    hello: { type: "string", default: "extended" },
    "secret-file": { type: "string" },
    register: { type: "string" },
    garbage: { type: "string" },
    partial: { type: "boolean", default: false },
    connections: { type: "string" },
    fuzz: { type: "string" },
    cases: { type: "string", default: "200" },
  },
  strict: true,
}).values;
const [hostname, portText] = (flags.intercept ?? "").split(":");
const port = Number(portText);
const secret = flags["secret-file"] === undefined
  ? undefined
  : new TextEncoder().encode(Deno.readTextFileSync(flags["secret-file"]).replace(/[\r\n]+$/, ""));

function hello(): Uint8Array {
  const bytes = new Uint8Array(REGISTRATION_LENGTH);
  encodeHello(bytes, 0, flags.hello === "plain" ? undefined : secret === undefined ? 0 : Capability.AUTH);
  return bytes;
}

function registrations(spec: string): Uint8Array {
  const clients: Array<[number, number]> = [];
  for (const item of spec.split(",")) {
    const [address, ports] = item.split(":");
    const [first, last] = ports.split("-").map(Number);
    for (let p = first; p <= (last ?? first); p++) clients.push([parseIpv4(address)!, p]);
  }
  const bytes = new Uint8Array(clients.length * REGISTRATION_LENGTH);
  clients.forEach(([clientAddress, clientPort], i) =>
    encodeRegistration(
      {
        type: RegistrationType.ADD,
        clientAddress,
        clientPort,
        targetAddress: 0,
        targetPort: 0,
      },
      bytes,
      i * REGISTRATION_LENGTH,
    )
  );
  return bytes;
}

async function writeAll(connection: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) written += await connection.write(bytes.subarray(written));
}

/** One connection that says hello, proves the secret if it has one, registers, and prints replies. */
async function register(spec: string | undefined): Promise<void> {
  const connection = await Deno.connect({ hostname, port });
  console.log("connected");
  let authenticated = secret === undefined || flags.hello === "plain";
  let copyNonce: Uint8Array | undefined, interceptNonce: Uint8Array | undefined;
  const sendRegistrations = async () => {
    if (spec !== undefined) await writeAll(connection, registrations(spec));
    console.log("sent");
  };
  const decoder = new ReplyFrameDecoder((type, body) => {
    if (type === ExtensionFrameType.REFUSED) console.log(`refused ${new TextDecoder().decode(body)}`);
    if (type === ExtensionFrameType.AUTH_CHALLENGE && secret !== undefined) {
      interceptNonce = body.slice();
      copyNonce = authNonce();
      const response = encodeAuthResponse({
        copyNonce,
        mac: authMac(secret, interceptNonce, copyNonce, "copy"),
      });
      const record = new Uint8Array(REGISTRATION_LENGTH + response.length);
      encodeExtensionRecord(ExtensionRecordType.AUTH_RESPONSE, response, record, 0);
      writeAll(connection, record).catch(() => {});
    }
    if (type === ExtensionFrameType.AUTH_PROOF && secret !== undefined && copyNonce !== undefined) {
      if (!authProofValid(secret, interceptNonce!, copyNonce, "intercept", body)) {
        throw new Error("bad proof");
      }
      authenticated = true;
      console.log("authenticated");
      sendRegistrations().catch(() => {});
    }
  });
  // intercept may close the connection while we write (a refused host): the read below then ends.
  if (flags.hello !== "none") await writeAll(connection, hello()).catch(() => {});
  if (flags.partial) {
    await writeAll(connection, new Uint8Array(REGISTRATION_LENGTH / 2));
    connection.close();
    console.log("left");
    return;
  }
  if (flags.garbage !== undefined) {
    await writeAll(connection, new TextEncoder().encode(flags.garbage)).catch(() => {});
  }
  if (authenticated) await sendRegistrations().catch(() => {});
  const buffer = new Uint8Array(65536);
  for (;;) {
    const length = await connection.read(buffer).catch(() => null);
    if (length === null) break;
    const problem = decoder.push(buffer.subarray(0, length), (record) => {
      const view = new DataView(record.buffer, record.byteOffset, record.length);
      console.log(JSON.stringify({
        src: formatIpv4(view.getUint32(12)),
        dst: formatIpv4(view.getUint32(16)),
        srcPort: view.getUint16(20),
        dstPort: view.getUint16(22),
        seq: view.getUint32(24),
        ack: view.getUint32(28),
        flags: view.getUint8(33),
      }));
    });
    if (problem) throw new Error(problem.message);
  }
  console.log("closed");
}

/** `count` connections held open, each with nothing or only a hello sent. */
async function hold(count: number): Promise<void> {
  let opened = 0, closed = 0;
  const readers: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    let connection: Deno.Conn;
    try {
      connection = await Deno.connect({ hostname, port });
    } catch (error) {
      console.log(`connect failed: ${(error as Error).message}`);
      break;
    }
    console.log(`opened ${++opened}`);
    if (flags.hello !== "none") await writeAll(connection, hello()).catch(() => {});
    readers.push((async () => {
      const buffer = new Uint8Array(4096);
      while ((await connection.read(buffer).catch(() => null)) !== null);
      console.log(`closed ${++closed}`);
    })());
  }
  await Promise.all(readers);
}

async function fuzz(seed: number, cases: number): Promise<void> {
  // The same SEED gives the same cases.
  const next = seededRandom(seed);
  const valid = new Uint8Array([...hello(), ...registrations("198.19.0.1:1000-1010")]);
  for (let i = 0; i < cases; i++) {
    const bytes = next() < 0.5
      ? new Uint8Array(1 + Math.floor(next() * 600)).map(() => next() * 256)
      : valid.map((byte) => next() < 0.05 ? next() * 256 : byte);
    const connection = await Deno.connect({ hostname, port });
    await writeAll(connection, bytes).catch(() => {});
    const buffer = new Uint8Array(4096);
    await Promise.race([
      connection.read(buffer).catch(() => null),
      new Promise((resolve) => setTimeout(resolve, 20)),
    ]);
    try {
      connection.close();
    } catch {
      // closed by intercept
    }
  }
  console.log(`fuzzed ${cases}`);
}

if (flags.fuzz !== undefined) await fuzz(Number(flags.fuzz), Number(flags.cases));
else if (flags.connections !== undefined) await hold(Number(flags.connections));
else await register(flags.register);
