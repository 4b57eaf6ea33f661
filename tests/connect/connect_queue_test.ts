import assert from "node:assert/strict";
import { ConnectQueue } from "../../src/connect/connect_queue.ts";
import { ConnectTransport } from "../../src/connect/transport.ts";
import type { ConnectSession } from "../../src/connect/session.ts";
import { socketAddress, SocketPoller, StreamSocket } from "../../ffi/mod.ts";
import { parseIpv4 } from "../../src/wire/mod.ts";
import { sleep } from "../../src/sleep.ts";

const EINVAL = 22;
const LOOPBACK = new Uint8Array([127, 0, 0, 1]);

Deno.test("queued connects are made on the connect thread after submit, handed back in order", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const to = socketAddress(LOOPBACK, (server.addr as Deno.NetAddr).port);
  const poller = new SocketPoller();
  const queue = new ConnectQueue<string>(poller.wakeFd);
  const sockets: StreamSocket[] = [];
  const conns: Deno.Conn[] = [];
  try {
    for (const name of ["a", "b", "c"]) {
      const socket = StreamSocket.open(to);
      assert.ok(socket instanceof StreamSocket);
      sockets.push(socket);
      assert.ok(queue.push(name, socket.fd, to));
    }
    // An IPv6 socket given an IPv4 address: connect(2) refuses it at once, and says why.
    const wrongFamily = StreamSocket.open(socketAddress(new Uint8Array(16), 80));
    assert.ok(wrongFamily instanceof StreamSocket);
    sockets.push(wrongFamily);
    assert.ok(queue.push("wrong family", wrongFamily.fd, to));
    const made: [string, number][] = [];
    await sleep(50);
    queue.takeMade((name, errno) => made.push([name, errno]));
    assert.equal(made.length, 0, "nothing is made before submit");
    assert.equal(queue.pending, 4);
    queue.submit();
    // The thread signals the poller's eventfd once they are made, which ends a wait with nothing else to
    // watch. The thread may still be starting (under `deno test` its module is type-checked first: seconds).
    for (const deadline = Date.now() + 60_000; made.length < 4 && Date.now() < deadline;) {
      await poller.wait([], [], [], 1000);
      queue.takeMade((name, errno) => made.push([name, errno]));
    }
    assert.deepEqual(made, [["a", 0], ["b", 0], ["c", 0], ["wrong family", EINVAL]]);
    assert.equal(queue.pending, 0);
    for (let i = 0; i < 3; i++) conns.push(await server.accept());
  } finally {
    await queue.close();
    for (const socket of sockets) socket.close();
    for (const conn of conns) conn.close();
    poller.close();
    server.close();
  }
});

Deno.test("a connection closed before its connect was made is closed once it is, not before", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const transport = new ConnectTransport([], () => {}, {
    readsAnswers: () => false,
    answer: () => {},
    turnOver: () => {},
  });
  const session = {
    endpoints: { targetAddress: parseIpv4("127.0.0.1")!, targetPort: (server.addr as Deno.NetAddr).port },
    turn: 0,
    onConnected: () => assert.fail("closed before it opened"),
    onConnectFailed: (errno: number) => assert.fail(`connect failed: ${errno}`),
  } as unknown as ConnectSession;
  try {
    transport.connect(session);
    transport.close(session); // in the same turn: the connect is still queued
    assert.equal(transport.open, 0);
    // Its descriptor was not closed under the connect: the target sees the connection, then its end.
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const conn = await Promise.race([
      server.accept(),
      new Promise<never>((_, reject) => {
        timeout = setTimeout(() => reject(new Error("no connection reached the target")), 60_000);
      }),
    ]);
    clearTimeout(timeout);
    const end = await conn.read(new Uint8Array(16));
    assert.equal(end, null);
    conn.close();
  } finally {
    await transport.closeAll();
    server.close();
  }
});
