/**
 * `--secret-file FILE` (copy and intercept): the shared secret of the auth exchange. The file must not be
 * readable by every user (refused, not warned about: a secret anyone on the host can read proves nothing),
 * must hold at least 16 bytes, and a trailing newline is not part of the secret.
 */
import { UsageError } from "../errors.ts";
import { errorMessage } from "../errors.ts";
import { MIN_SECRET_LENGTH } from "../protocol/mod.ts";

const OTHERS_READ = 0o004;

/** The secret in `path`, or a `UsageError` naming `flag` and what is wrong with the file. */
export function readSecretFile(flag: string, path: string): Uint8Array {
  let bytes: Uint8Array;
  let mode: number | null;
  try {
    mode = Deno.statSync(path).mode;
    bytes = Deno.readFileSync(path);
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${errorMessage(error)}`);
  }
  if (mode !== null && (mode & OTHERS_READ) !== 0) {
    throw new UsageError(
      `${flag}: ${path} is readable by every user (mode ${
        (mode & 0o777).toString(8)
      }): chmod o-r it, e.g. 600`,
    );
  }
  let length = bytes.length;
  while (length > 0 && (bytes[length - 1] === 0x0a || bytes[length - 1] === 0x0d)) length--;
  if (length < MIN_SECRET_LENGTH) {
    throw new UsageError(
      `${flag}: ${path} holds ${length} bytes; a secret needs at least ${MIN_SECRET_LENGTH} (e.g. head -c 32 /dev/urandom | base64)`,
    );
  }
  return bytes.slice(0, length);
}
