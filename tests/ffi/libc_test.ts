import assert from "node:assert/strict";
import {
  connectDescriptor,
  errnoMessage,
  localAddressToward,
  POLL_END,
  POLL_READ,
  POLL_WRITE,
  readKernelFile,
  routeNetlinkDump,
  socketAddress,
  SocketPoller,
  SocketRing,
  StreamSocket,
} from "../../ffi/mod.ts";
import { outputOf, withUnprivilegedDeno } from "./_unprivileged.ts";
import { sleep } from "../../src/sleep.ts";

const FFI = new URL("../../ffi/mod.ts", import.meta.url).href;

/** A socket connecting to `to` (from `from`), as `copy --connect` opens one; or the errno if that failed. */
function connectSocket(to: Uint8Array<ArrayBuffer>, from?: Uint8Array<ArrayBuffer>): StreamSocket | number {
  const socket = StreamSocket.open(to, from);
  if (typeof socket === "number") return socket;
  const errno = connectDescriptor(socket.fd, to);
  if (errno !== 0) socket.close();
  return errno === 0 ? socket : errno;
}

/**
 * A StreamSocket connected to `listener` (on 127.0.0.1) once `poller` says it is writable, and the
 * listener's side of the connection.
 */
async function connectOverLoopback(
  listener: Deno.Listener,
  poller: SocketPoller,
): Promise<{ socket: StreamSocket; server: Deno.Conn }> {
  const accepted = listener.accept();
  const port = (listener.addr as Deno.NetAddr).port;
  const socket = connectSocket(socketAddress(new Uint8Array([127, 0, 0, 1]), port));
  assert.ok(socket instanceof StreamSocket);
  const ready: number[] = [];
  await poller.wait([socket.fd], [true], ready, 2000);
  assert.ok(ready[0] & POLL_WRITE);
  return { socket, server: await accepted };
}

/** `count` connections made as `connectOverLoopback` makes one: the sockets, and the accepted ends in order. */
async function connectSeveralOverLoopback(
  listener: Deno.Listener,
  poller: SocketPoller,
  count: number,
): Promise<{ sockets: StreamSocket[]; servers: Deno.Conn[] }> {
  const sockets: StreamSocket[] = [];
  const servers: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) {
    const { socket, server } = await connectOverLoopback(listener, poller);
    sockets.push(socket);
    servers.push(server);
  }
  return { sockets, servers };
}

Deno.test("errnoMessage gives libc's text for an errno", () => {
  assert.equal(errnoMessage(1), "Operation not permitted");
  assert.equal(errnoMessage(105), "No buffer space available");
});

Deno.test("readKernelFile reads /proc and /sys files Deno reads only with --allow-all", () => {
  assert.match(readKernelFile("/proc/net/route")!, /^Iface\s+Destination\s+Gateway/);
  assert.match(readKernelFile("/sys/class/net/lo/address")!, /^00:00:00:00:00:00\n$/);
  assert.equal(readKernelFile("/sys/class/net/no-such-device/address"), undefined);
  assert.throws(() => readKernelFile("/etc/passwd"), TypeError);
});

Deno.test("opening a raw socket without privileges says how to get them", async () => {
  const script = `import { RawSocket } from ${JSON.stringify(FFI)};
    try { RawSocket.open(4); console.log("opened"); } catch (e) { console.log(e.constructor.name, e.message); }`;
  assert.equal(
    await withUnprivilegedDeno(script, "null", outputOf),
    "FatalError cannot open a raw socket: Operation not permitted (run as root or grant CAP_NET_RAW)",
  );
});

Deno.test("FdPoller times out, then wakes on input, while the event loop keeps ticking", async () => {
  const script = `import { FdPoller } from ${JSON.stringify(FFI)};
    const poller = new FdPoller(0);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const idle = await poller.waitReadable(200);
    console.log(JSON.stringify({ idle, ticks }));
    ticks = 0;
    const first = poller.waitReadable(5000);
    const shared = first === poller.waitReadable(5000);
    const ready = await first;
    await poller.idle();
    clearInterval(timer);
    console.log(JSON.stringify({ ready, shared, ticks }));`;
  await withUnprivilegedDeno(script, "piped", async (child) => {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) text += (await lines.read()).value;
    const idle = JSON.parse(text);
    assert.equal(idle.idle, false);
    assert.ok(idle.ticks >= 10, `event loop ticked ${idle.ticks} times in 200 ms`);
    await sleep(100);
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("wake\n"));
    await writer.close();
    text = text.slice(text.indexOf("\n") + 1);
    for (let chunk = await lines.read(); !chunk.done; chunk = await lines.read()) text += chunk.value;
    const woken = JSON.parse(text);
    assert.deepEqual({ ready: woken.ready, shared: woken.shared }, { ready: true, shared: true });
    assert.ok(woken.ticks > 0, "event loop ticked while waiting for input");
    await child.stderr.cancel();
    assert.equal((await child.status).code, 0);
  });
});

Deno.test("a StreamSocket connects without blocking, sends, receives, half-closes, and aborts with a RST", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const { socket, server } = await connectOverLoopback(listener, poller);
    assert.equal(socket.connectError(), 0);
    const ready: number[] = [];
    assert.equal(socket.send(new TextEncoder().encode("hello!"), 5), 5, "the first 5 bytes");
    const got = new Uint8Array(16);
    assert.equal(await server.read(got), 5);
    await server.write(new TextEncoder().encode("hi"));
    await poller.wait([socket.fd], [false], ready, 2000);
    assert.ok(ready[0] & POLL_READ);
    const buffer = new Uint8Array(16);
    assert.equal(socket.receive(buffer), 2);
    assert.deepEqual([...buffer.subarray(0, 2)], [...new TextEncoder().encode("hi")]);
    assert.equal(socket.receive(buffer), -11, "nothing more waits: EAGAIN");
    // Bytes only counted: the kernel takes them without copying them out.
    await server.write(new TextEncoder().encode("dropped"));
    await poller.wait([socket.fd], [false], ready, 2000);
    buffer.fill(0);
    assert.equal(socket.receive(buffer, true), 7);
    assert.deepEqual([...buffer], new Array(16).fill(0), "nothing copied");
    assert.equal(socket.receive(buffer), -11, "taken all the same");
    socket.shutdownWrite();
    assert.equal(await server.read(got), null, "the FIN");
    socket.abort();
    // The peer got a RST, not a FIN: its very next write fails (after a plain close it would succeed).
    await assert.rejects(
      () => server.write(new Uint8Array(1)),
      (error) => error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset,
    );
    server.close();
  } finally {
    listener.close();
    poller.close();
  }
});

Deno.test("a StreamSocket counts what its peer has not acknowledged: bytes it had no room for, until read", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const { socket, server } = await connectOverLoopback(listener, poller);
    assert.equal(socket.unacknowledged(), 0);
    // The peer reads nothing: its receive buffer fills, then the send queue; what waits there is unacknowledged.
    const chunk = new Uint8Array(65536);
    let sent = 0;
    for (let n; (n = socket.send(chunk)) > 0;) sent += n;
    assert.ok(socket.unacknowledged() > 0, `${sent} bytes sent`);
    const got = new Uint8Array(65536);
    let read = 0;
    while (read < sent) read += (await server.read(got)) ?? 0;
    for (let i = 0; socket.unacknowledged() > 0 && i < 200; i++) await sleep(10);
    assert.equal(socket.unacknowledged(), 0, "all read, all acknowledged");
    socket.close();
    assert.equal(socket.unacknowledged(), 0, "closed: nothing to count");
    server.close();
  } finally {
    listener.close();
    poller.close();
  }
});

Deno.test("SocketPoller says when the peer's FIN came, bytes before it still to read", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const { socket, server } = await connectOverLoopback(listener, poller);
    const ready: number[] = [];
    await server.write(new TextEncoder().encode("more"));
    await poller.wait([socket.fd], [false], ready, 2000);
    assert.equal(ready[0], POLL_READ, "bytes, no FIN yet");
    const buffer = new Uint8Array(16);
    assert.equal(socket.receive(buffer), 4);
    await server.write(new TextEncoder().encode("bye"));
    server.close();
    for (let waited = 0; ready[0] !== (POLL_READ | POLL_END) && waited < 2000; waited += 10) {
      await poller.wait([socket.fd], [false], ready, 2000);
      if (ready[0] !== (POLL_READ | POLL_END)) await sleep(10); // the FIN may trail the bytes
    }
    assert.equal(ready[0], POLL_READ | POLL_END);
    assert.equal(socket.receive(buffer), 3, "the bytes first");
    assert.equal(socket.receive(buffer), 0, "then the end");
    socket.close();
  } finally {
    listener.close();
    poller.close();
  }
});

Deno.test("SocketPoller.check reports at once what a wait would, and nothing when nothing waits", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const quiet = await connectOverLoopback(listener, poller);
    const talking = await connectOverLoopback(listener, poller);
    const ready: number[] = [];
    assert.equal(poller.check([quiet.socket.fd, talking.socket.fd], [false, false], ready), 0);
    await talking.server.write(new TextEncoder().encode("news"));
    await sleep(20);
    assert.equal(poller.check([quiet.socket.fd, talking.socket.fd], [false, true], ready), 1);
    assert.deepEqual(ready, [0, POLL_READ | POLL_WRITE]);
    for (const { socket, server } of [quiet, talking]) {
      socket.close();
      server.close();
    }
  } finally {
    listener.close();
    poller.close();
  }
});

Deno.test("SocketPoller.check waits up to its timeout on quiet sockets, less once a look-ender is readable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const quiet = await connectOverLoopback(listener, poller);
    const capture = await connectOverLoopback(listener, poller); // stands for the capture's descriptor
    const ready: number[] = [];
    let started = performance.now();
    assert.equal(poller.check([quiet.socket.fd], [false], ready, 60), 0);
    assert.ok(performance.now() - started >= 50, `looked ${performance.now() - started} ms`);
    poller.endLooksOn([capture.socket.fd]);
    await capture.server.write(new TextEncoder().encode("packets"));
    await sleep(20);
    started = performance.now();
    assert.equal(poller.check([quiet.socket.fd], [false], ready, 5000), 0);
    assert.ok(performance.now() - started < 1000, `looked ${performance.now() - started} ms`);
    assert.deepEqual(ready, [0]);
    poller.endLooksOn([]);
    started = performance.now();
    assert.equal(poller.check([quiet.socket.fd], [false], ready, 60), 0);
    assert.ok(performance.now() - started >= 50, `looked ${performance.now() - started} ms`);
    for (const { socket, server } of [quiet, capture]) {
      socket.close();
      server.close();
    }
  } finally {
    listener.close();
    poller.close();
  }
});

Deno.test("a StreamSocket to a closed port fails as refused; a wait is woken early", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const poller = new SocketPoller();
  try {
    const socket = connectSocket(socketAddress(new Uint8Array([127, 0, 0, 1]), port));
    const refused = typeof socket === "number"
      ? socket
      : (await poller.wait([socket.fd], [true], [], 2000), socket.connectError());
    assert.equal(refused, 111); // ECONNREFUSED
    const started = performance.now();
    const waiting = poller.wait([], [], [], 5000);
    setTimeout(() => poller.wake(), 20);
    await waiting;
    assert.ok(performance.now() - started < 2000);
  } finally {
    poller.close();
  }
});

Deno.test("a SocketRing makes the sends of several sockets in one batch, each with its result", async () => {
  const ring = SocketRing.open(4, 1024);
  assert.ok(ring, "io_uring on this kernel");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const { sockets, servers } = await connectSeveralOverLoopback(listener, poller, 3);
    servers[2].close(); // the third peer is gone: its send fails
    await sleep(20);
    sockets[2].send(new Uint8Array(1)); // the peer's RST answers this byte
    await sleep(20);
    const texts = ["one", "second", "third"];
    let offset = 0;
    const indexes = texts.map((text, i) => {
      const bytes = new TextEncoder().encode(text);
      ring.staging.set(bytes, offset);
      const index = ring.queueSend(sockets[i].fd, offset, bytes.length);
      offset += bytes.length;
      return index;
    });
    assert.deepEqual(indexes, [0, 1, 2]);
    assert.equal(ring.count, 3);
    ring.submit();
    assert.equal(ring.count, 0);
    assert.deepEqual([ring.result(0), ring.result(1)], [3, 6]);
    assert.deepEqual([ring.length(0), ring.length(1), ring.length(2)], [3, 6, 5]);
    assert.ok(ring.result(2) < 0, `a send to a reset connection fails (${ring.result(2)})`);
    const got = new Uint8Array(16);
    assert.equal(new TextDecoder().decode(got.subarray(0, (await servers[0].read(got))!)), "one");
    assert.equal(new TextDecoder().decode(got.subarray(0, (await servers[1].read(got))!)), "second");
    // A full socket answers 0, as send(2)'s EAGAIN: the peer does not read.
    const big = ring.staging.length;
    let sent = 0;
    for (let round = 0; round < 10_000; round++) {
      ring.queueSend(sockets[0].fd, 0, big);
      ring.submit();
      if (ring.result(0) === 0) break;
      sent += ring.result(0);
    }
    assert.equal(ring.result(0), 0, `the socket filled after ${sent} bytes`);
    for (const socket of sockets) socket.close();
    for (const server of servers.slice(0, 2)) server.close();
    // No more sends in a batch than its capacity.
    for (let i = 0; i < ring.capacity; i++) ring.queueSend(-1, 0, 0);
    assert.throws(() => ring.queueSend(-1, 0, 0), RangeError);
    ring.submit();
    assert.equal(ring.result(0), -9, "EBADF, from the kernel");
  } finally {
    ring.close();
    listener.close();
    poller.close();
  }
});

Deno.test("a SocketRing's receives drop what waits uncopied, and tell the end of the stream and EAGAIN", async () => {
  const ring = SocketRing.open(8, 1024);
  assert.ok(ring, "io_uring on this kernel");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const poller = new SocketPoller();
  try {
    const { sockets, servers } = await connectSeveralOverLoopback(listener, poller, 3);
    await servers[0].write(new Uint8Array(300).fill(1));
    await servers[1].write(new Uint8Array(5).fill(2));
    await servers[1].closeWrite();
    await sleep(20);
    ring.staging.fill(9);
    // A send, then receives: one batch, made in the order queued.
    ring.staging.set(new TextEncoder().encode("hello"), 0);
    assert.equal(ring.queueSend(sockets[2].fd, 0, 5), 0);
    assert.equal(ring.queueDiscardingReceive(sockets[0].fd, 100), 1);
    assert.equal(ring.queueDiscardingReceive(sockets[0].fd, 1000), 2);
    assert.equal(ring.queueDiscardingReceive(sockets[1].fd, 1000), 3);
    assert.equal(ring.queueDiscardingReceive(sockets[1].fd, 1000), 4);
    assert.equal(ring.queueDiscardingReceive(sockets[2].fd, 1000), 5);
    ring.submit();
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => ring.result(i)),
      [5, 100, 200, 5, 0, -11],
      "sent; 100 then the other 200 bytes; 5 then the end; EAGAIN, not 0, where none waited",
    );
    assert.ok(ring.staging.subarray(5).every((byte) => byte === 9), "nothing received was copied out");
    const got = new Uint8Array(8);
    assert.equal(new TextDecoder().decode(got.subarray(0, (await servers[2].read(got))!)), "hello");
    // Queued and cleared: never made.
    ring.queueDiscardingReceive(sockets[0].fd, 1000);
    ring.clear();
    assert.equal(ring.count, 0);
    await servers[0].write(new Uint8Array(7));
    await sleep(20);
    assert.equal(sockets[0].receive(new Uint8Array(100), true), 7, "the cleared receive took nothing");
    for (const socket of sockets) socket.close();
    for (const server of servers) server.close();
  } finally {
    ring.close();
    listener.close();
    poller.close();
  }
});

Deno.test("socketAddress lays out sockaddr_in and sockaddr_in6, the port in network order", () => {
  assert.deepEqual(
    [...socketAddress(new Uint8Array([198, 18, 0, 2]), 8080)],
    [2, 0, 0x1f, 0x90, 198, 18, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
  );
  const v6 = new Uint8Array(16);
  v6.set([0x20, 0x01, 0x00, 0x02], 0);
  v6[15] = 2;
  // sa_family AF_INET6 (10, host order), port, flow info 0, the 16 address bytes, scope id 0.
  assert.deepEqual(
    [...socketAddress(v6, 443)],
    [10, 0, 0x01, 0xbb, 0, 0, 0, 0, ...v6, 0, 0, 0, 0],
  );
  assert.throws(() => socketAddress(new Uint8Array(6), 80), TypeError);
});

Deno.test("a StreamSocket connects over IPv6 from a bound local address", async () => {
  const listener = Deno.listen({ hostname: "::1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const poller = new SocketPoller();
  const loopback6 = new Uint8Array(16);
  loopback6[15] = 1;
  try {
    const accepted = listener.accept();
    const socket = connectSocket(socketAddress(loopback6, port), socketAddress(loopback6, 0));
    assert.ok(socket instanceof StreamSocket, `errno ${socket}`);
    const ready: number[] = [];
    await poller.wait([socket.fd], [true], ready, 2000);
    assert.equal(socket.connectError(), 0);
    const server = await accepted;
    assert.equal((server.remoteAddr as Deno.NetAddr).hostname, "::1");
    assert.equal(socket.send(new TextEncoder().encode("six")), 3);
    const got = new Uint8Array(8);
    assert.equal(await server.read(got), 3);
    socket.close();
    server.close();
    // A local address of the other family is the caller's mistake, not an errno.
    assert.throws(
      () =>
        StreamSocket.open(
          socketAddress(loopback6, port),
          socketAddress(new Uint8Array([127, 0, 0, 1]), 0),
        ),
      TypeError,
    );
  } finally {
    listener.close();
    poller.close();
  }
});

Deno.test("routeNetlinkDump reads a dump of the kernel's tables, unprivileged; a refusal is a FatalError", () => {
  // RTM_GETROUTE (26) for IPv6 (struct rtmsg, family AF_INET6): every answer an RTM_NEWROUTE (24), at
  // least ::1's.
  const request = new Uint8Array(12);
  request[0] = 10;
  const routes = routeNetlinkDump(26, request);
  assert.ok(routes.length > 0);
  assert.ok(routes.every((message) => message.type === 24 && message.body.length >= 12));
  assert.throws(() => routeNetlinkDump(9999, new Uint8Array(0)), /the kernel refused a netlink dump/);
});

Deno.test("localAddressToward gives the kernel's source address toward a destination", () => {
  assert.deepEqual(localAddressToward(new Uint8Array([127, 0, 0, 1])), new Uint8Array([127, 0, 0, 1]));
  assert.deepEqual(localAddressToward(new Uint8Array([127, 1, 2, 3])), new Uint8Array([127, 0, 0, 1]));
  const loopback6 = new Uint8Array(16);
  loopback6[15] = 1;
  assert.deepEqual(localAddressToward(loopback6), loopback6);
});
