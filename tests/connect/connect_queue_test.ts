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

/** What a queue's test works with: a loopback server, a poller, the queue, and sockets toward the server. */
interface QueueBench {
  readonly server: Deno.Listener;
  readonly to: Uint8Array<ArrayBuffer>;
  readonly poller: SocketPoller;
  readonly queue: ConnectQueue<string>;
  /** The descriptor of a new socket toward `to` (or `toward`), closed after the test. */
  open(toward?: Uint8Array<ArrayBuffer>): number;
  /** Connections the server accepted, closed after the test. */
  readonly conns: Deno.Conn[];
}

/** Runs `test` with a queue of `capacity` (the product's unless given), and closes everything after. */
async function withQueue(test: (bench: QueueBench) => Promise<void>, capacity?: number): Promise<void> {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const to = socketAddress(LOOPBACK, (server.addr as Deno.NetAddr).port);
  const poller = new SocketPoller();
  const queue = new ConnectQueue<string>(poller.wakeFd, capacity);
  const sockets: StreamSocket[] = [];
  const conns: Deno.Conn[] = [];
  const open = (toward = to) => {
    const socket = StreamSocket.open(toward);
    assert.ok(socket instanceof StreamSocket);
    sockets.push(socket);
    return socket.fd;
  };
  try {
    await test({ server, to, poller, queue, open, conns });
  } finally {
    await queue.close();
    for (const socket of sockets) socket.close();
    for (const conn of conns) conn.close();
    poller.close();
    server.close();
  }
}

Deno.test("queued connects are made on the connect thread after submit, handed back in order", async () => {
  await withQueue(async ({ server, to, poller, queue, open, conns }) => {
    for (const name of ["a", "b", "c"]) assert.ok(queue.push(name, open(), to));
    // An IPv6 socket given an IPv4 address: connect(2) refuses it at once, and says why.
    assert.ok(queue.push("wrong family", open(socketAddress(new Uint8Array(16), 80)), to));
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
  });
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
  await withQueue(async ({ server, to, poller, queue, open, conns }) => {
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
  }, 2);
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
  fn: () =>
    withQueue(async ({ server, to, poller, queue, open, conns }) => {
      // Its failure is an event, told in a later turn of the event loop: until then, connects are queued.
      assert.ok(queue.push("queued", open(), to));
      queue.submit();
      const made: [string, number][] = [];
      await takeUntil(queue, poller, made, 1);
      assert.deepEqual(made, [["queued", 0]]);
      conns.push(await acceptWithin(server, 10_000));
      assert.equal(queue.push("after the failure", open(), to), false);
      assert.equal(queue.pending, 0);
    }),
});
