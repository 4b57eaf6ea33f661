/**
 * Lab agent: sends Redis-protocol commands one at a time on one connection, each after the answer to the
 * one before, and prints the answers.
 *
 * Usage: deno run -A resp_client.ts --to HOST:PORT --commands "SET k1 v1;GET k1;..."
 *
 * Prints each answer as a JSON string on a line of its own, then "done".
 */
import { parseArgs } from "node:util";
import { writeAll } from "./_common.ts";

const flags = parseArgs({
  args: Deno.args,
  options: { to: { type: "string" }, commands: { type: "string" } },
  strict: true,
}).values;
if (flags.to === undefined || flags.commands === undefined) {
  throw new Error("--to and --commands are required");
}
const [host, port] = flags.to.split(":");
const connection = await Deno.connect({ hostname: host, port: Number(port) });
const buffer = new Uint8Array(16 * 1024);
for (const command of flags.commands.split(";")) {
  const args = command.trim().split(/\s+/);
  const text = `*${args.length}\r\n${args.map((arg) => `$${arg.length}\r\n${arg}\r\n`).join("")}`;
  await writeAll(connection, new TextEncoder().encode(text));
  const count = await connection.read(buffer);
  if (count === null) break;
  console.log(JSON.stringify(new TextDecoder().decode(buffer.subarray(0, count))));
}
connection.close();
console.log("done");
