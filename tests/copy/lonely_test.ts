/** copy -L (TCPCopy's lonely): an intercept unreachable at start is retried, not fatal. */
import assert from "node:assert/strict";
import { InterceptLinks } from "../../src/copy/intercept_link.ts";
import type { Logger } from "../../src/ops/mod.ts";
import { FatalError } from "../../src/errors.ts";
import { PROTOCOL_VERSION, REGISTRATION_LENGTH } from "../../src/protocol/mod.ts";
import { sleep } from "../../src/sleep.ts";

function recordingLogger(lines: string[]): Logger {
  const write = (line: string) => lines.push(line);
  return {
    error: write,
    warn: write,
    info: write,
    debug: write,
    debugEnabled: false,
    always: write,
    close() {},
  };
}

/** A port nothing listens on now: one the kernel just gave out and took back. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("without -L an intercept unreachable at start is fatal", async () => {
  const links = new InterceptLinks(
    [{ host: "127.0.0.1", port: freePort() }],
    1,
    () => {},
    () => [],
    recordingLogger([]),
  );
  await assert.rejects(() => links.connect(), FatalError);
  links.close();
});

Deno.test("with -L copy starts anyway, says so, and connects with its hello once intercept listens", async () => {
  const port = freePort();
  const lines: string[] = [];
  const links = new InterceptLinks(
    [{ host: "127.0.0.1", port }],
    1,
    () => {},
    () => [],
    recordingLogger(lines),
    true,
  );
  try {
    await links.connect();
    assert.match(
      lines.join("\n"),
      /cannot connect to intercept at 127\.0\.0\.1:[0-9]+: .*retrying \(--lonely\)/,
    );
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      const connection = await listener.accept();
      const hello = new Uint8Array(REGISTRATION_LENGTH);
      for (let read = 0; read < hello.length;) {
        const count = await connection.read(hello.subarray(read));
        assert.notEqual(count, null);
        read += count!;
      }
      assert.equal(hello[6] << 8 | hello[7], PROTOCOL_VERSION);
      for (
        let waited = 0;
        waited < 2000 && !lines.some((line) => line.startsWith("reconnected"));
        waited += 10
      ) {
        await sleep(10);
      }
      assert.match(lines.join("\n"), /reconnected to intercept/);
      connection.close();
    } finally {
      listener.close();
    }
  } finally {
    links.close();
  }
});
