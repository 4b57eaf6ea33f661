/**
 * What a turn is about, as a short name that groups like turns: `GET /users/{n}` for HTTP (numbers and ids
 * in the path collapsed, the query left out), `redis GET` for the Redis protocol, and the first bytes of
 * the request, printable, for anything else.
 */
import { parseRequests } from "./http.ts";

const PREFIX_BYTES = 16;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMBER = /^\d+$/;
/** Long hex, or a token of letters and digits that holds at least 4 digits: an id, not a word. */
const ID = /^(?:[0-9a-f]{16,}|(?=(?:[^\d]*\d){4})[A-Za-z0-9_-]{8,})$/i;

/** The endpoint of a turn whose request bytes are `request`, in `mode`'s terms. */
export function endpointOf(request: Uint8Array, mode: "http" | "bytes"): string {
  if (mode === "http") {
    const [first] = parseRequests(request);
    if (first?.method !== undefined && first.target !== undefined) {
      return `${first.method} ${collapsePath(first.target)}`;
    }
  }
  const redis = redisCommand(request);
  if (redis !== undefined) return `redis ${redis}`;
  return printable(request.subarray(0, PREFIX_BYTES));
}

/** `target`'s path with its query dropped and its numeric and id-like segments named by kind. */
export function collapsePath(target: string): string {
  const path = target.split("?")[0].split("#")[0];
  return path.split("/").map((segment) => {
    if (NUMBER.test(segment)) return "{n}";
    if (UUID.test(segment)) return "{uuid}";
    if (ID.test(segment)) return "{id}";
    return segment;
  }).join("/");
}

/** The command of a RESP array request (`*2\r\n$3\r\nGET\r\n...`), upper case. */
function redisCommand(request: Uint8Array): string | undefined {
  if (request[0] !== 0x2a) return undefined;
  const text = new TextDecoder("latin1").decode(request.subarray(0, 64));
  const match = /^\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/.exec(text);
  return match?.[1].toUpperCase();
}

function printable(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : ".").join("");
}
