import assert from "node:assert/strict";
import { ConnectQueue } from "../../src/connect/connect_queue.ts";
import { ConnectTransport } from "../../src/connect/transport.ts";
import type { ConnectSession } from "../../src/connect/session.ts";
import { socketAddress, SocketPoller, StreamSocket } from "../../ffi/mod.ts";
import { parseIpv4 } from "../../src/wire/mod.ts";
import { sleep } from "../../src/sleep.ts";
import { acceptWithin } from "./_accept.ts";

const EINVAL = 22;
const LOOPBACK = new Uint8Array([127, 0, 0, 1]);

/** Takes what `queue` made until `count` were handed back, each wait ended by the thread's signal. */
async function takeUntil<Item>(
  queue: ConnectQueue<Item>,
  poller: SocketPoller,
  made: [Item, number][],
  count: number,
): Promise<void> {
  // The thread may still be starting (under `deno test` its module is type-checked first: seconds).
  for (const deadline = Date.now() + 60_000; made.length < count && Date.now() < deadline;) {
    await poller.wait([], [], [], 1000);
    queue.takeMade((item, errno) => made.push([item, errno]));
  }
}

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
    // watch.
    await takeUntil(queue, poller, made, 4);
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
    const conn = await acceptWithin(server, 60_000);
    const end = await conn.read(new Uint8Array(16));
    assert.equal(end, null);
    conn.close();
  } finally {
    await transport.closeAll();
    server.close();
  }
});

Deno.test("push refuses once the capacity's connects wait, and queues again once they are handed back", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const to = socketAddress(LOOPBACK, (server.addr as Deno.NetAddr).port);
  const poller = new SocketPoller();
  const queue = new ConnectQueue<string>(poller.wakeFd, 2);
  const sockets: StreamSocket[] = [];
  const conns: Deno.Conn[] = [];
  const open = () => {
    const socket = StreamSocket.open(to);
    assert.ok(socket instanceof StreamSocket);
    sockets.push(socket);
    return socket.fd;
  };
  try {
    const made: [string, number][] = [];
    // Twice round the two slots, and the worker's connects read from the slots as the queue wrote them.
    for (const names of [["a", "b"], ["c", "d"]]) {
      for (const name of names) assert.ok(queue.push(name, open(), to), name);
      assert.equal(queue.push("past the capacity", open(), to), false);
      assert.equal(queue.pending, 2);
      queue.submit();
      assert.equal(queue.push("made, not handed back yet", open(), to), false);
      await takeUntil(queue, poller, made, made.length + 2);
      assert.equal(queue.pending, 0);
    }
    // Made by the thread, not on this one after it failed (a failed thread's queue refuses every push).
    assert.ok(queue.push("e", open(), to), "the connect thread still runs");
    queue.submit();
    await takeUntil(queue, poller, made, 5);
    assert.deepEqual(made, [["a", 0], ["b", 0], ["c", 0], ["d", 0], ["e", 0]]);
    for (let i = 0; i < 5; i++) conns.push(await acceptWithin(server, 10_000));
  } finally {
    await queue.close();
    for (const socket of sockets) socket.close();
    for (const conn of conns) conn.close();
    poller.close();
    server.close();
  }
});

// A running count wraps at 2**32, which only a power of two divides: another capacity would skip slots there.
Deno.test("a queue's capacity that is not a power of two is refused", () => {
  for (const capacity of [0, 3, 6000]) {
    assert.throws(() => new ConnectQueue<string>(-1, capacity), RangeError, `capacity ${capacity}`);
  }
});

// The worker's module cannot be read, so its thread never starts, as when a compiled binary lacks it. Deno
// still prints the worker's error on stderr (the queue's `onerror` keeps it from ending the program).
Deno.test({
  name: "a worker that cannot start: what was queued is made on this thread, and push refuses after",
  permissions: { read: false, net: true, ffi: true },
  fn: async () => {
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const to = socketAddress(LOOPBACK, (server.addr as Deno.NetAddr).port);
    const poller = new SocketPoller();
    const queue = new ConnectQueue<string>(poller.wakeFd);
    const sockets: StreamSocket[] = [];
    let conn: Deno.Conn | undefined;
    try {
      const socket = StreamSocket.open(to);
      assert.ok(socket instanceof StreamSocket);
      sockets.push(socket);
      // Its failure is an event, told in a later turn of the event loop: until then, connects are queued.
      assert.ok(queue.push("queued", socket.fd, to));
      queue.submit();
      const made: [string, number][] = [];
      await takeUntil(queue, poller, made, 1);
      assert.deepEqual(made, [["queued", 0]]);
      conn = await acceptWithin(server, 10_000);
      const later = StreamSocket.open(to);
      assert.ok(later instanceof StreamSocket);
      sockets.push(later);
      assert.equal(queue.push("after the failure", later.fd, to), false);
      assert.equal(queue.pending, 0);
    } finally {
      await queue.close();
      for (const socket of sockets) socket.close();
      conn?.close();
      poller.close();
      server.close();
    }
  },
});
