/**
 * The connections of `copy --connect`: one ordinary TCP connection from this host to the target per
 * copied session, opened, written, shut and reset as its `ConnectSession` asks, and its news (open,
 * bytes, FIN, reset) handed back to the session. No raw socket and no privilege: the kernel does TCP.
 *
 * Sockets are libc's, non-blocking, through `ffi/` (`StreamSocket`), all watched by one poll per batch
 * of events (`SocketPoller`: a wait on a worker thread, or after news a look on the JS thread, which
 * sleeps there up to a millisecond unless the capture has packets).
 * `Deno.connect` and `node:net` were measured first (bench/RESULTS.md): under a live capture's load their
 * connects waited in the event loop for seconds (no SYN left while the capture kept it busy), and
 * `Deno.connect` can neither bind a local address (`--bind`) nor close with a RST. Here the socket is made
 * when the session asks, on the JS thread, and its connect(2) at the end of that turn of the event loop on
 * the connect thread (`ConnectQueue`, which the handshake then holds instead), and the sends then, each
 * with all its connection's writes of the turn, and all of them in one system call (`SocketRing`,
 * io_uring) where the kernel offers it, as are the reads of the answers that nothing inspects, all of
 * those a poll reported at once.
 */
import {
  connectDescriptor,
  POLL_END,
  POLL_ERROR,
  POLL_READ,
  POLL_WRITE,
  socketAddress,
  SocketPoller,
  SocketRing,
  StreamSocket,
} from "../../ffi/mod.ts";
import { setImmediate } from "node:timers";
import { ConnectQueue } from "./connect_queue.ts";
import { type Address, addressBytes, addressFamily } from "../wire/mod.ts";
import type { ConnectionSink, ConnectSession } from "./session.ts";
import type { TurnEnd } from "./turns.ts";

/** The target's answers as they arrive, for counting and for comparing them with the online server's. */
export interface AnswerListener {
  /**
   * Whether `answer` needs the bytes the target sends on `session`'s connection, asked at each read. If
   * not, the kernel drops them without copying them out, and `answer` gets their count only.
   */
  readsAnswers(session: ConnectSession): boolean;
  /**
   * The target sent `length` bytes in turn `turn` of `session`: `bytes` (valid during the call only) if
   * `readsAnswers` asked for them.
   */
  answer(session: ConnectSession, turn: number, length: number, bytes: Uint8Array | undefined): void;
  /** Turn `turn` of `session` is over, and why. */
  turnOver(session: ConnectSession, turn: number, end: TurnEnd): void;
  /** `bytes` (valid during the call only) of the client's that went to the target in turn `turn`. */
  wrote?(session: ConnectSession, turn: number, bytes: Uint8Array): void;
  /** Every turn's end, with the online server's bytes up to it (see `ConnectionSink.turnEnded`). */
  turnEnded?(session: ConnectSession, turn: number, expected: number): void;
}

const EAGAIN = 11;
const EADDRNOTAVAIL = 99;
const EADDRINUSE = 98;
/** The longest a poll waits when nothing happens (a wake ends it sooner). */
const POLL_MS = 1000;
/** Connections with news handled in one pass of the loop, at most, before the event loop gets a turn. */
const PASS_NEWS = 256;
/** How long a look after news waits on the JS thread before a worker thread takes over the wait. */
const LOOK_MS = 1;
/**
 * The longest pause before the look that follows news, in µs. Meanwhile the other connections' answers come
 * in, and one wake of the JS thread then reads them all: each wake is a context switch, which costs this VM
 * 14-20 µs of copy's CPU, and at 34,000 keep-alive req/s the look woke 3,500 times a second for about 10
 * answers each (bench/RESULTS.md, fourteenth round).
 */
const GATHER_MAX_US = 400;
/** A pause shorter than this saves less than it delays: none then. */
const GATHER_MIN_US = 50;
/** How long each connection's writes are counted, to fit the pause to the busiest one's pace. */
const PACE_WINDOW_MS = 100;
/** The most one send(2) or recv(2) passes (`StreamSocket`'s limit too). */
const IO_BYTES = 65536;
/** Sends or receives of one io_uring batch at most, and the bytes sent: more go in a second batch. */
const RING_ENTRIES = 256;
const RING_BYTES = 256 * 1024;
/**
 * The buffers connections keep their unsent bytes in: this size unless a turn writes more, and this many
 * kept for the next connections written to (a turn's worth), so that a write costs no new buffer.
 */
const UNSENT_BYTES = 4096;
const SPARE_BUFFERS_KEPT = 512;
const NO_BYTES = new Uint8Array(0);

/**
 * The pause before a look after news, in µs, for a busiest connection that wrote `busiestWrites` times in
 * `elapsedMs`. Each of its turns may wait out one pause, so the pause takes at most half the time between
 * its writes: a connection that writes thousands of times a second (a pipelining client, a pool's
 * connection) is not held below its pace by the pause alone. The target's answer takes the other half:
 * where it takes longer, the session falls behind, and past `--max-lag` pipelines (bench/RESULTS.md,
 * fourteenth round).
 */
export function gatherPause(busiestWrites: number, elapsedMs: number): number {
  const halfInterval = busiestWrites === 0 ? Infinity : elapsedMs * 500 / busiestWrites;
  const pause = Math.min(GATHER_MAX_US, halfInterval);
  return pause < GATHER_MIN_US ? 0 : pause;
}

interface Connection {
  readonly session: ConnectSession;
  readonly socket: StreamSocket;
  /**
   * Its connect(2) is queued for the connect thread, not made yet: not watched (a socket not connecting
   * polls as hung up), and a close waits for it (`closeOnceMade`), so that its descriptor is not taken by
   * another socket before the connect is made.
   */
  connecting: boolean;
  /** Closed or reset while `connecting`: how, once its connect is made. */
  closeOnceMade: "close" | "reset" | undefined;
  connected: boolean;
  /**
   * Bytes written and not sent yet (the kernel had no room, or the turn of the event loop is not over):
   * the first `unsentLength` of this buffer, copied in (the session's stream reuses what it wrote once
   * `write` returns), `NO_BYTES` while there are none.
   */
  unsent: Uint8Array<ArrayBuffer>;
  unsentLength: number;
  /** Shut the writing side once `unsent` is sent. */
  shutdownPending: boolean;
  /** In `#written` now: once only, or the ring would send its bytes twice in one batch. */
  written: boolean;
  /** The target closed its side: nothing more to read. */
  ended: boolean;
  /** The pace window its `paceWrites` were counted in (see `#fitPause`). */
  paceWindow: number;
  paceWrites: number;
}

/** Every open connection of a `copy --connect` run. */
export class ConnectTransport implements ConnectionSink {
  /** Writes handed to the kernel. */
  writes = 0;
  /** Reads of the target's bytes. */
  reads = 0;
  /** Connections that could not be opened from a `--bind` address (not there, or out of ports). */
  bindFailures = 0;

  readonly #connections = new Map<ConnectSession, Connection>();
  /**
   * The `--bind` addresses of each family as socket addresses, taken in turn by the connections to targets
   * of that family.
   */
  readonly #bind: Readonly<Record<4 | 6, readonly Uint8Array<ArrayBuffer>[]>>;
  /** Each target's socket address by address and port, made at its first connection. */
  readonly #targets = new Map<Address, Map<number, Uint8Array<ArrayBuffer>>>();
  readonly #nextBind = { 4: 0, 6: 0 };
  readonly #poller = new SocketPoller();
  /** The connects, made on a thread of their own: the JS thread makes the sockets only. */
  readonly #connects: ConnectQueue<Connection>;
  readonly #buffer = new Uint8Array(IO_BYTES);
  /** `UNSENT_BYTES` buffers no connection holds now. */
  readonly #spareBuffers: Uint8Array<ArrayBuffer>[] = [];
  /**
   * Connections written to in this turn of the event loop, sent at its end: the first `#writtenCount`.
   * This list, `#inRing` and the loop's own are filled and emptied by turns, hundreds of times a second,
   * and never emptied by `length = 0`, which gives an array's backing store up: growing them again each
   * time was about a quarter of the bytes `--connect` allocated (bench/RESULTS.md, thirteenth round).
   */
  readonly #written: (Connection | undefined)[] = [];
  #writtenCount = 0;
  /**
   * The sends of such a turn, all in one system call where the kernel offers io_uring (`undefined`: one
   * send(2) each); with the connections of the batch in flight, in the order queued.
   */
  readonly #ring = SocketRing.open(RING_ENTRIES, RING_BYTES);
  /** Sockets closed in this turn of the event loop, closed by the kernel at its end. */
  readonly #closing: StreamSocket[] = [];
  #turnEndQueued = false;
  /** The connections of the ring's sends or receives in flight, in the order queued: the first `#inRingCount`. */
  readonly #inRing: (Connection | undefined)[] = [];
  #inRingCount = 0;
  /** The news of each connection with a receive in the ring, by its place in `#inRing`. */
  readonly #readyInRing = new Int32Array(RING_ENTRIES);
  #closed = false;
  /**
   * How long a look after news may sleep: `LOOK_MS` while a live capture's descriptors can end it
   * (`endLooksOn`), else 0: a file replay feeds its packets from this very thread, which must not sit idle.
   */
  #lookMs = 0;
  /** The pause before a look after news, in µs (see `GATHER_MAX_US`), fitted each `PACE_WINDOW_MS`. */
  #pauseUs = GATHER_MAX_US;
  /** The pace window now (a running count), since when, and the most writes a connection made in it. */
  #paceWindow = 0;
  #paceWindowStart = performance.now();
  #busiestWrites = 0;
  readonly #loop: Promise<void>;

  /**
   * @param bind local addresses to open connections from, in turn, each connection from one of its
   *   target's family (none of that family: the kernel's choice)
   * @param changed called after a session had news from its connection (the table settles it)
   * @param listener told of the target's bytes and of each turn's end
   * @param connectQueueCapacity connects waiting for the connect thread at most (`ConnectQueue`'s
   *   default unless given); past it they are made on this thread
   */
  constructor(
    bind: readonly Address[],
    readonly changed: (session: ConnectSession) => void,
    readonly listener: AnswerListener,
    connectQueueCapacity?: number,
  ) {
    this.#connects = new ConnectQueue(this.#poller.wakeFd, connectQueueCapacity);
    const bytesOf = (family: 4 | 6) =>
      bind.filter((address) => addressFamily(address) === family).map((address) =>
        socketAddress(addressBytes(address), 0)
      );
    this.#bind = { 4: bytesOf(4), 6: bytesOf(6) };
    this.#loop = this.#run();
  }

  /** Connections open (or opening) now. */
  get open(): number {
    return this.#connections.size;
  }

  connect(session: ConnectSession): void {
    const { targetAddress, targetPort } = session.endpoints;
    const target = this.#targetOf(targetAddress, targetPort);
    const socket = StreamSocket.open(target, this.#localFor(targetAddress));
    if (typeof socket === "number") return this.#failedAtOnce(session, socket);
    const connection: Connection = {
      session,
      socket,
      connecting: true,
      closeOnceMade: undefined,
      connected: false,
      unsent: NO_BYTES,
      unsentLength: 0,
      shutdownPending: false,
      written: false,
      ended: false,
      paceWindow: -1,
      paceWrites: 0,
    };
    if (this.#connects.push(connection, socket.fd, target)) {
      this.#connections.set(session, connection);
      this.#endTurnLater(); // submitted then, with the other connects of this turn of the event loop
      return;
    }
    // The queue is full (the connect thread fell far behind) or there is no such thread: made here.
    const errno = connectDescriptor(socket.fd, target);
    if (errno !== 0) {
      socket.close();
      return this.#failedAtOnce(session, errno);
    }
    connection.connecting = false;
    this.#connections.set(session, connection);
    this.#poller.wake();
  }

  /** A connect that failed at once (a refusal on this host, no free port): told once the session is set up. */
  #failedAtOnce(session: ConnectSession, errno: number): void {
    queueMicrotask(() => this.#connectFailed(session, errno));
  }

  /** Counts a connect that found no local address or port free, and tells its session it failed. */
  #connectFailed(session: ConnectSession, errno: number): void {
    if (errno === EADDRNOTAVAIL || errno === EADDRINUSE) this.bindFailures++;
    session.onConnectFailed(errno, performance.now());
    this.changed(session);
  }

  /**
   * The connects the connect thread made since the last call: their connections are watched from now
   * on, or closed as asked meanwhile, or their sessions told that they failed.
   */
  #takeConnectsMade(): void {
    this.#connects.takeMade((connection, errno) => {
      connection.connecting = false;
      const { session, socket } = connection;
      if (connection.closeOnceMade === "reset") socket.abort();
      else if (connection.closeOnceMade === "close") {
        this.#closing.push(socket);
        this.#endTurnLater();
      } else if (errno !== 0) {
        this.#connections.delete(session);
        socket.close();
        this.#connectFailed(session, errno);
      }
    });
  }

  write(session: ConnectSession, bytes: Uint8Array): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    this.listener.wrote?.(session, session.turn, bytes);
    if (connection.paceWindow !== this.#paceWindow) {
      connection.paceWindow = this.#paceWindow;
      connection.paceWrites = 0;
    }
    if (++connection.paceWrites > this.#busiestWrites) this.#busiestWrites = connection.paceWrites;
    this.#keepUnsent(connection, bytes);
    // Sent when this turn of the event loop is over, with whatever else the session writes in it: a
    // capture batch often holds several requests of a session that fell behind and pipelines, and each
    // send(2) is a system call and a trip through the kernel's TCP. (Bytes waiting from before otherwise:
    // the kernel had no room, and the poller says when it has.)
    if (connection.connected && connection.unsentLength === bytes.length) this.#sendAtTurnEnd(connection);
  }

  /** Copies `bytes` after `connection`'s unsent ones, into a spare buffer or a larger one as needed. */
  #keepUnsent(connection: Connection, bytes: Uint8Array): void {
    const kept = connection.unsentLength;
    const length = kept + bytes.length;
    if (length > connection.unsent.length) {
      const larger = length <= UNSENT_BYTES
        ? this.#spareBuffers.pop() ?? new Uint8Array(UNSENT_BYTES)
        : new Uint8Array(Math.max(length, 2 * connection.unsent.length));
      if (kept > 0) larger.set(connection.unsent.subarray(0, kept));
      this.#dropUnsent(connection);
      connection.unsent = larger;
    }
    connection.unsent.set(bytes, kept);
    connection.unsentLength = length;
  }

  /** Forgets `connection`'s unsent bytes, its buffer kept for another connection if it is a spare's size. */
  #dropUnsent(connection: Connection): void {
    const buffer = connection.unsent;
    if (buffer.length === UNSENT_BYTES && this.#spareBuffers.length < SPARE_BUFFERS_KEPT) {
      this.#spareBuffers.push(buffer);
    }
    connection.unsent = NO_BYTES;
    connection.unsentLength = 0;
  }

  /** Has `connection`'s writes (and FIN) of this turn of the event loop go when it is over. */
  #sendAtTurnEnd(connection: Connection): void {
    if (connection.written) return;
    connection.written = true;
    this.#written[this.#writtenCount++] = connection;
    this.#endTurnLater();
  }

  #endTurnLater(): void {
    if (this.#turnEndQueued) return;
    this.#turnEndQueued = true;
    queueMicrotask(this.#flushWritten);
  }

  /**
   * Hands the connect thread the connects of this turn of the event loop, sends what the connections
   * written to in it wait to send, then closes the sockets closed in it: the sends and closes in one system
   * call where there is a ring and more than one of them.
   */
  readonly #flushWritten = (): void => {
    this.#turnEndQueued = false;
    this.#connects.submit();
    const ring = this.#ring;
    const closing = this.#closing;
    // A lone send costs less by send(2) than through the ring (bench/RESULTS.md, ninth round).
    const batched = ring !== undefined && this.#writtenCount + closing.length > 1;
    let staged = 0;
    for (let i = 0; i < this.#writtenCount; i++) {
      const connection = this.#written[i]!;
      connection.written = false;
      if (this.#connections.get(connection.session) !== connection) continue;
      if (!batched || connection.unsentLength === 0) {
        this.#flush(connection);
        continue;
      }
      const length = Math.min(connection.unsentLength, IO_BYTES);
      if (ring.count === ring.capacity || (staged > 0 && staged + length > ring.staging.length)) {
        this.#submitRing();
        staged = 0;
      }
      const { unsent } = connection;
      // The whole buffer where it fits (no view made; what follows its bytes is written over next).
      ring.staging.set(
        staged + unsent.length <= ring.staging.length ? unsent : unsent.subarray(0, length),
        staged,
      );
      ring.queueSend(connection.socket.fd, staged, length);
      this.#inRing[this.#inRingCount++] = connection;
      staged += length;
    }
    this.#written.fill(undefined, 0, this.#writtenCount);
    this.#writtenCount = 0;
    if (closing.length === 0) {
      if (batched) this.#submitRing();
      return;
    }
    // After the sends: the ring makes its entries in the order queued.
    for (const socket of closing) {
      if (!batched) socket.close();
      else {
        if (ring.count === ring.capacity) this.#submitRing();
        socket.closeIn(ring);
      }
    }
    if (batched) this.#submitRing();
    closing.length = 0;
    this.#endWait();
  };

  /** Makes the ring's sends, then does for each connection what a send(2)'s result would have it do. */
  #submitRing(): void {
    const ring = this.#ring!;
    ring.submit();
    for (let i = 0; i < this.#inRingCount; i++) {
      const connection = this.#inRing[i]!;
      // Everything offered was sent: the rest, if any (more than one send takes), goes by send(2).
      if (this.#sent(connection, ring.result(i), ring.length(i))) this.#flush(connection);
    }
    this.#emptyRingList();
  }

  /** Lets go of the connections of the ring's batch just made (the list's array stays). */
  #emptyRingList(): void {
    this.#inRing.fill(undefined, 0, this.#inRingCount);
    this.#inRingCount = 0;
  }

  shutdown(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    connection.shutdownPending = true;
    // At the end of the turn, after its writes: a session that ends in the same turn (the target had
    // closed already, as with HTTP's `Connection: close`) closes instead, and close(2) sends the FIN, so
    // the shutdown(2) is saved. (Writes waiting for room: the poller sends the FIN after them.)
    if (connection.connected && connection.unsentLength === 0) this.#sendAtTurnEnd(connection);
  }

  unacknowledged(session: ConnectSession): number {
    const connection = this.#connections.get(session);
    if (connection === undefined) return 0;
    return connection.unsentLength + connection.socket.unacknowledged();
  }

  reset(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    if (connection.connected) this.#flush(connection); // what was written before goes first, as it would have
    this.#connections.delete(session);
    this.#dropUnsent(connection);
    if (connection.connecting) connection.closeOnceMade = "reset";
    else connection.socket.abort();
    this.#endWait();
  }

  close(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    connection.shutdownPending = false; // close(2) sends the FIN, after what is unsent
    if (connection.connected) this.#flush(connection);
    this.#connections.delete(session);
    this.#dropUnsent(connection);
    // At the end of the turn, with the other closes and sends of the turn: its descriptor stays taken
    // until then, so no socket opened meanwhile gets it.
    if (connection.connecting) connection.closeOnceMade = "close";
    else {
      this.#closing.push(connection.socket);
      this.#endTurnLater();
    }
  }

  /**
   * Ends the poll in flight after a close: poll(2) holds a reference to every socket it watches, so the
   * kernel closes a connection (its FIN or RST) only once the wait is over, up to `POLL_MS` later.
   */
  #endWait(): void {
    this.#poller.wake();
  }

  turnOver(session: ConnectSession, turn: number, end: TurnEnd): void {
    this.listener.turnOver(session, turn, end);
  }

  turnEnded(session: ConnectSession, turn: number, expected: number): void {
    this.listener.turnEnded?.(session, turn, expected);
  }

  /**
   * Descriptors whose readiness ends the loop's look on the JS thread (the live capture's): it waits
   * there only while nothing else has work for the thread.
   */
  endLooksOn(fds: readonly number[]): void {
    this.#poller.endLooksOn(fds);
    this.#lookMs = fds.length > 0 ? LOOK_MS : 0;
  }

  /** Resets every connection still open and stops watching (shutdown, after the sessions were abandoned). */
  async closeAll(): Promise<void> {
    await this.#connects.close();
    this.#takeConnectsMade();
    for (const socket of this.#closing) socket.close();
    this.#closing.length = 0;
    for (const connection of this.#connections.values()) connection.socket.abort();
    this.#connections.clear();
    this.#closed = true;
    this.#poller.wake();
    await this.#loop;
    this.#poller.close();
    this.#ring?.close();
  }

  /** The socket address of `address`:`port`, made once. */
  #targetOf(address: Address, port: number): Uint8Array<ArrayBuffer> {
    let byPort = this.#targets.get(address);
    if (byPort === undefined) this.#targets.set(address, byPort = new Map());
    let target = byPort.get(port);
    if (target === undefined) byPort.set(port, target = socketAddress(addressBytes(address), port));
    return target;
  }

  /** The next `--bind` address of `target`'s family, or `undefined` (the kernel chooses) if it has none. */
  #localFor(target: Address): Uint8Array<ArrayBuffer> | undefined {
    const family = addressFamily(target);
    const addresses = this.#bind[family];
    return addresses.length === 0 ? undefined : addresses[this.#nextBind[family]++ % addresses.length];
  }

  /** Sends what waits, several writes at once; once all of it went, the FIN if the client's came. */
  #flush(connection: Connection): void {
    const { socket } = connection;
    while (connection.unsentLength > 0) {
      const offered = Math.min(connection.unsentLength, IO_BYTES);
      if (!this.#sent(connection, socket.send(connection.unsent, offered), offered)) return;
    }
    if (connection.shutdownPending) {
      connection.shutdownPending = false;
      socket.shutdownWrite();
    }
  }

  /**
   * Takes what a send of `offered` bytes of `connection`'s sent (`sent`: bytes, or the errno negated) off
   * its unsent writes; whether all of them went (if not, the poller watches for room, or reports the
   * broken connection).
   */
  #sent(connection: Connection, sent: number, offered: number): boolean {
    if (sent < 0) return false; // the connection broke: the poller reports it
    if (sent === 0) {
      this.#poller.wake(); // watch for room to write
      return false;
    }
    this.writes++;
    if (sent === connection.unsentLength) this.#dropUnsent(connection);
    else {
      connection.unsent.copyWithin(0, sent, connection.unsentLength);
      connection.unsentLength -= sent;
    }
    if (sent < offered) {
      this.#poller.wake(); // the kernel took what it had room for: watch for room for the rest
      return false;
    }
    return true;
  }

  async #run(): Promise<void> {
    const fds: number[] = [];
    const writable: boolean[] = [];
    const ready: number[] = [];
    const watched: Connection[] = [];
    for (let busy = false; !this.#closed;) {
      // The last news' writes go before the wait, which would otherwise find their connections writable.
      this.#flushWritten();
      this.#takeConnectsMade();
      let count = 0;
      for (const connection of this.#connections.values()) {
        if (connection.connecting) continue;
        if (connection.ended && connection.connected && connection.unsentLength === 0) continue;
        watched[count] = connection;
        fds[count] = connection.socket.fd;
        writable[count++] = !connection.connected || connection.unsentLength > 0;
      }
      // Written over in place, shortened only (see `#written`).
      fds.length = writable.length = watched.length = count;
      // After news more is likely soon: a look on this thread, which waits there up to LOOK_MS (less if
      // the capture has packets; not at all without a live capture). Only when it finds nothing does a worker thread wait: each hand-off to
      // it and back is two context switches and a wake of the event loop, which cost this VM more than a
      // poll(2) that sleeps (a third of the system calls per keep-alive request; bench/RESULTS.md,
      // eleventh round), and on busy CPUs a wait for one.
      if (busy && this.#lookMs > 0) {
        this.#fitPause(performance.now());
        if (this.#pauseUs > 0) this.#poller.pause(this.#pauseUs);
      }
      if (!busy || this.#poller.check(fds, writable, ready, this.#lookMs) === 0) {
        await this.#poller.wait(fds, writable, ready, POLL_MS);
      }
      busy = false;
      // The news in passes of at most PASS_NEWS connections, each followed by a turn of the event loop (the
      // capture's, the timers', a close that came) before the next pass or the look: one pass over all of
      // it took up to 445 ms with new connections, the capture unread meanwhile (bench/RESULTS.md).
      for (let from = 0; from < watched.length;) {
        const now = performance.now();
        let to = from;
        for (let news = 0; to < watched.length && news < PASS_NEWS; to++) {
          const connection = watched[to];
          // Closed meanwhile (its descriptor may even belong to a newer socket now): not ours any more.
          if (ready[to] === 0 || this.#connections.get(connection.session) !== connection) ready[to] = 0;
          else {
            this.#onReady(connection, ready[to], now);
            news++;
          }
        }
        this.#submitReceives(now);
        // The sessions settle once the pass's news was read: nothing between a receive queued in the ring
        // and its submission runs the table, which might close its connection.
        let settled = false;
        for (let i = from; i < to; i++) {
          if (ready[i] === 0) continue;
          this.changed(watched[i].session);
          settled = true;
        }
        from = to;
        if (!settled) continue;
        busy = true;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /** Fits the pause to the busiest connection's pace (`gatherPause`) once a pace window is over. */
  #fitPause(now: number): void {
    const elapsed = now - this.#paceWindowStart;
    if (elapsed < PACE_WINDOW_MS) return;
    this.#pauseUs = gatherPause(this.#busiestWrites, elapsed);
    this.#paceWindow++;
    this.#paceWindowStart = now;
    this.#busiestWrites = 0;
  }

  #onReady(connection: Connection, ready: number, now: number): void {
    const { session, socket } = connection;
    if (!connection.connected) {
      // A connect that failed reports an error (POLLERR, POLLHUP); one that went through, room to write:
      // only then is SO_ERROR worth a system call.
      const error = ready & POLL_ERROR ? socket.connectError() : 0;
      if (error !== 0) {
        this.#connections.delete(session);
        socket.close();
        session.onConnectFailed(error, now);
        return;
      }
      if (!(ready & (POLL_WRITE | POLL_ERROR))) return;
      connection.connected = true;
      session.onConnected(now);
      if (this.#connections.get(session) !== connection) return;
      // With the sends of the other connections that opened in this news: in one io_uring_enter.
      if (connection.unsentLength > 0 || connection.shutdownPending) this.#sendAtTurnEnd(connection);
    } else if (ready & POLL_WRITE) {
      this.#flush(connection);
    }
    if (!(ready & (POLL_READ | POLL_ERROR)) || connection.ended) return;
    // One read per news: the poll reports the socket again while bytes wait, so no further recv(2) only
    // to hear EAGAIN, and one busy connection does not hold up the others. Answers nothing inspects are
    // read through the ring, those of all the connections with news in one system call.
    const ring = this.#ring;
    if (ring === undefined || this.listener.readsAnswers(session)) {
      return this.#receive(connection, ready, now);
    }
    if (ring.count === ring.capacity) this.#submitReceives(now);
    ring.queueDiscardingReceive(socket.fd, IO_BYTES);
    this.#readyInRing[this.#inRingCount] = ready;
    this.#inRing[this.#inRingCount++] = connection;
  }

  /** Makes the ring's receives, then tells each session what its read brought. */
  #submitReceives(now: number): void {
    const ring = this.#ring;
    if (ring === undefined || ring.count === 0) return;
    if (ring.count === 1) {
      // A lone read costs less by recv(2) than through the ring, as a lone send does.
      ring.clear();
      const connection = this.#inRing[0]!;
      this.#emptyRingList();
      this.#receive(connection, this.#readyInRing[0], now);
      return;
    }
    ring.submit();
    for (let i = 0; i < this.#inRingCount; i++) {
      const connection = this.#inRing[i]!;
      const ready = this.#readyInRing[i];
      if (this.#received(connection, ready, ring.result(i), false, now)) {
        this.#receive(connection, ready, now);
      }
    }
    this.#emptyRingList();
  }

  /** Reads `connection` by recv(2), once, or on to the target's FIN when its news had it. */
  #receive(connection: Connection, ready: number, now: number): void {
    for (let more = true; more;) {
      const reads = this.listener.readsAnswers(connection.session);
      more = this.#received(connection, ready, connection.socket.receive(this.#buffer, !reads), reads, now);
    }
  }

  /**
   * Tells `connection`'s session what a read brought (`received`: bytes, 0 at the end of the stream, or the
   * errno negated; the bytes in `#buffer` if `reads`), and whether to read again: once the target's FIN
   * came (POLL_END in `ready`), reads go on to it, so that the answer and the end come in the same news, as
   * they were sent; a read shorter than asked took everything before the FIN, and the end needs no read of
   * its own.
   */
  #received(connection: Connection, ready: number, received: number, reads: boolean, now: number): boolean {
    const { session } = connection;
    if (received === -EAGAIN) return false;
    if (received < 0) {
      session.onTargetReset(now);
      return false;
    }
    if (received === 0) {
      connection.ended = true;
      session.onTargetClosed(now);
      return false;
    }
    this.reads++;
    // The listener first: the bytes may end the turn, and whoever compares turns needs them in it.
    this.listener.answer(
      session,
      session.turn,
      received,
      reads ? this.#buffer.subarray(0, received) : undefined,
    );
    session.onAnswer(received, now);
    if (!(ready & POLL_END) || this.#connections.get(session) !== connection) return false;
    if (received < IO_BYTES) {
      connection.ended = true;
      session.onTargetClosed(now);
      return false;
    }
    return true;
  }
}
