/**
 * Helpers the lab agents share: hashing, deterministic request bodies, JSON-lines logs and a
 * buffered reader over a TCP connection. Agents import nothing outside this folder and Deno.
 */

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * `size` pseudo-random bytes determined by `seed` alone (xorshift32 over an FNV-1a hash of the seed),
 * so a request's body can be rebuilt from its id.
 */
export function deterministicBytes(seed: string, size: number): Uint8Array {
  let state = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) state = Math.imul(state ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  state ||= 1;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** Appends one JSON object per line to a file; each line is a single write, so lines never interleave. */
export class JsonLog {
  readonly #file: Deno.FsFile | undefined;
  readonly #encoder = new TextEncoder();

  /** Logs to `path`, or nowhere when `path` is undefined. */
  constructor(path: string | undefined) {
    this.#file = path === undefined ? undefined : Deno.openSync(path, { append: true, create: true });
  }

  write(record: Record<string, unknown>): void {
    if (this.#file === undefined) return;
    const bytes = this.#encoder.encode(JSON.stringify(record) + "\n");
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
  }

  close(): void {
    this.#file?.close();
  }
}

/** Writes all of `bytes` to `conn` (a single `write` may take only part). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Reads a TCP stream by delimiter or by count, keeping what it read ahead for the next call. */
export class ConnReader {
  #buffer = new Uint8Array(0);
  readonly #chunk = new Uint8Array(64 * 1024);

  constructor(readonly conn: Deno.Conn) {}

  /** Reads more bytes into the buffer; false at end of stream. */
  async #fill(): Promise<boolean> {
    const count = await this.conn.read(this.#chunk);
    if (count === null) return false;
    const grown = new Uint8Array(this.#buffer.length + count);
    grown.set(this.#buffer);
    grown.set(this.#chunk.subarray(0, count), this.#buffer.length);
    this.#buffer = grown;
    return true;
  }

  #take(count: number): Uint8Array {
    const taken = this.#buffer.slice(0, count);
    this.#buffer = this.#buffer.slice(count);
    return taken;
  }

  /** Bytes up to and including `delimiter`; undefined if the stream ends first (or at once). */
  async readUntil(delimiter: Uint8Array): Promise<Uint8Array | undefined> {
    let searchFrom = 0;
    for (;;) {
      for (let i = searchFrom; i + delimiter.length <= this.#buffer.length; i++) {
        if (delimiter.every((byte, k) => this.#buffer[i + k] === byte)) {
          return this.#take(i + delimiter.length);
        }
      }
      searchFrom = Math.max(0, this.#buffer.length - delimiter.length + 1);
      if (!(await this.#fill())) return undefined;
    }
  }

  /** Reads until the peer closes its side, dropping what comes. */
  async untilEnd(): Promise<void> {
    while (await this.#fill()) this.#buffer = new Uint8Array(0);
  }

  /** Exactly `count` bytes; undefined if the stream ends first. */
  async readExactly(count: number): Promise<Uint8Array | undefined> {
    while (this.#buffer.length < count) {
      if (!(await this.#fill())) return undefined;
    }
    return this.#take(count);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
