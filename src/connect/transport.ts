/**
 * The connections of `copy --connect`: one ordinary TCP connection from this host to the target per
 * copied session, opened, written, shut and reset as its `ConnectSession` asks, and its news (open,
 * bytes, FIN, reset) handed back to the session. No raw socket and no privilege: the kernel does TCP.
 *
 * Sockets are libc's, non-blocking, through `ffi/` (`StreamSocket`), all watched by one poll per batch
 * of events (`SocketPoller`). `Deno.connect` and `node:net` were measured first (bench/RESULTS.md):
 * under a live capture's load their connects waited in the event loop for seconds (no SYN left while
 * the capture kept it busy), and `Deno.connect` can neither bind a local address (`--bind`) nor close
 * with a RST. Here connect(2) runs when the session asks, on the JS thread, and send(2) once that turn of
 * the event loop is over, with all the connection's writes of the turn.
 */
import { POLL_END, POLL_ERROR, POLL_READ, POLL_WRITE, SocketPoller, StreamSocket } from "../../ffi/mod.ts";
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
const ECONNREFUSED = 111;
const EADDRNOTAVAIL = 99;
const EADDRINUSE = 98;
/** The longest a poll waits when nothing happens (a wake ends it sooner). */
const POLL_MS = 1000;
/** The most one send(2) or recv(2) passes (`StreamSocket`'s limit too). */
const IO_BYTES = 65536;

interface Connection {
  readonly session: ConnectSession;
  readonly socket: StreamSocket;
  connected: boolean;
  /** Bytes written and not sent yet (the kernel had no room, or the turn of the event loop is not over). */
  readonly unsent: Uint8Array<ArrayBuffer>[];
  /** Shut the writing side once `unsent` is sent. */
  shutdownPending: boolean;
  /** The target closed its side: nothing more to read. */
  ended: boolean;
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
  /** The `--bind` addresses of each family, taken in turn by the connections to targets of that family. */
  readonly #bind: Readonly<Record<4 | 6, readonly Uint8Array[]>>;
  readonly #nextBind = { 4: 0, 6: 0 };
  readonly #poller = new SocketPoller();
  readonly #buffer = new Uint8Array(IO_BYTES);
  /** Several writes of one connection, copied together for one send. */
  readonly #gathered = new Uint8Array(IO_BYTES);
  /** Connections written to in this turn of the event loop, sent at its end. */
  readonly #written: Connection[] = [];
  #closed = false;
  readonly #loop: Promise<void>;

  /**
   * @param bind local addresses to open connections from, in turn, each connection from one of its
   *   target's family (none of that family: the kernel's choice)
   * @param changed called after a session had news from its connection (the table settles it)
   * @param listener told of the target's bytes and of each turn's end
   */
  constructor(
    bind: readonly Address[],
    readonly changed: (session: ConnectSession) => void,
    readonly listener: AnswerListener,
  ) {
    const bytesOf = (family: 4 | 6) =>
      bind.filter((address) => addressFamily(address) === family).map(addressBytes);
    this.#bind = { 4: bytesOf(4), 6: bytesOf(6) };
    this.#loop = this.#run();
  }

  /** Connections open (or opening) now. */
  get open(): number {
    return this.#connections.size;
  }

  connect(session: ConnectSession): void {
    const { targetAddress, targetPort } = session.endpoints;
    const socket = StreamSocket.connect(
      addressBytes(targetAddress),
      targetPort,
      this.#localFor(targetAddress),
    );
    if (typeof socket === "number") {
      // Failed at once (a refusal on this host, no free port): told once the session is set up.
      if (socket === EADDRNOTAVAIL || socket === EADDRINUSE) this.bindFailures++;
      queueMicrotask(() => {
        session.onConnectFailed(socket === ECONNREFUSED, performance.now());
        this.changed(session);
      });
      return;
    }
    this.#connections.set(session, {
      session,
      socket,
      connected: false,
      unsent: [],
      shutdownPending: false,
      ended: false,
    });
    this.#poller.wake();
  }

  write(session: ConnectSession, bytes: Uint8Array): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    this.listener.wrote?.(session, session.turn, bytes);
    connection.unsent.push(bytes as Uint8Array<ArrayBuffer>);
    // Sent when this turn of the event loop is over, with whatever else the session writes in it: a
    // capture batch often holds several requests of a session that fell behind and pipelines, and each
    // send(2) is a system call and a trip through the kernel's TCP. (More than one waiting otherwise: the
    // kernel had no room, and the poller says when it has.)
    if (connection.connected && connection.unsent.length === 1) {
      if (this.#written.length === 0) queueMicrotask(this.#flushWritten);
      this.#written.push(connection);
    }
  }

  /** Sends what the connections written to in this turn of the event loop wait to send. */
  readonly #flushWritten = (): void => {
    for (const connection of this.#written) {
      if (this.#connections.get(connection.session) === connection) this.#flush(connection);
    }
    this.#written.length = 0;
  };

  shutdown(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    connection.shutdownPending = true;
    if (connection.connected) this.#flush(connection);
  }

  reset(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    if (connection.connected) this.#flush(connection); // what was written before goes first, as it would have
    this.#connections.delete(session);
    connection.socket.abort();
  }

  close(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    if (connection.connected) this.#flush(connection);
    this.#connections.delete(session);
    connection.socket.close();
  }

  turnOver(session: ConnectSession, turn: number, end: TurnEnd): void {
    this.listener.turnOver(session, turn, end);
  }

  turnEnded(session: ConnectSession, turn: number, expected: number): void {
    this.listener.turnEnded?.(session, turn, expected);
  }

  /** Resets every connection still open and stops watching (shutdown, after the sessions were abandoned). */
  async closeAll(): Promise<void> {
    for (const connection of this.#connections.values()) connection.socket.abort();
    this.#connections.clear();
    this.#closed = true;
    this.#poller.wake();
    await this.#loop;
    this.#poller.close();
  }

  /** The next `--bind` address of `target`'s family, or `undefined` (the kernel chooses) if it has none. */
  #localFor(target: Address): Uint8Array | undefined {
    const family = addressFamily(target);
    const addresses = this.#bind[family];
    return addresses.length === 0 ? undefined : addresses[this.#nextBind[family]++ % addresses.length];
  }

  /** Sends what waits, several writes at once; once all of it went, the FIN if the client's came. */
  #flush(connection: Connection): void {
    const { unsent, socket } = connection;
    while (unsent.length > 0) {
      const gathered = unsent.length > 1 ? this.#gather(unsent) : 0;
      const offered = gathered > 0 ? gathered : Math.min(unsent[0].length, IO_BYTES);
      const sent = gathered > 0 ? socket.send(this.#gathered, gathered) : socket.send(unsent[0]);
      if (sent < 0) return; // the connection broke: the poller reports it
      if (sent === 0) {
        this.#poller.wake(); // watch for room to write
        return;
      }
      this.writes++;
      for (let left = sent; left > 0;) {
        if (left >= unsent[0].length) left -= unsent.shift()!.length;
        else {
          unsent[0] = unsent[0].subarray(left);
          left = 0;
        }
      }
      if (sent < offered) {
        this.#poller.wake(); // the kernel took what it had room for: watch for room for the rest
        return;
      }
    }
    if (connection.shutdownPending) {
      connection.shutdownPending = false;
      socket.shutdownWrite();
    }
  }

  /** Copies the first of `unsent`'s writes that fit into `#gathered`; returns their length (0: none fit). */
  #gather(unsent: readonly Uint8Array[]): number {
    const into = this.#gathered;
    let length = 0;
    for (const bytes of unsent) {
      if (length + bytes.length > into.length) break;
      into.set(bytes, length);
      length += bytes.length;
    }
    return length;
  }

  async #run(): Promise<void> {
    const fds: number[] = [];
    const writable: boolean[] = [];
    const ready: number[] = [];
    const watched: Connection[] = [];
    while (!this.#closed) {
      // The last news' writes go before the wait, which would otherwise find their connections writable.
      this.#flushWritten();
      fds.length = writable.length = watched.length = 0;
      for (const connection of this.#connections.values()) {
        if (connection.ended && connection.connected && connection.unsent.length === 0) continue;
        watched.push(connection);
        fds.push(connection.socket.fd);
        writable.push(!connection.connected || connection.unsent.length > 0);
      }
      await this.#poller.wait(fds, writable, ready, POLL_MS);
      const now = performance.now();
      for (let i = 0; i < watched.length; i++) {
        const connection = watched[i];
        // Closed meanwhile (its descriptor may even belong to a newer socket now): not ours any more.
        if (ready[i] === 0 || this.#connections.get(connection.session) !== connection) continue;
        this.#onReady(connection, ready[i], now);
        this.changed(connection.session);
      }
    }
  }

  #onReady(connection: Connection, ready: number, now: number): void {
    const { session, socket } = connection;
    if (!connection.connected) {
      const error = socket.connectError();
      if (error !== 0) {
        this.#connections.delete(session);
        socket.close();
        session.onConnectFailed(error === ECONNREFUSED, now);
        return;
      }
      if (!(ready & (POLL_WRITE | POLL_ERROR))) return;
      connection.connected = true;
      session.onConnected(now);
      if (this.#connections.get(session) !== connection) return;
      this.#flush(connection);
    } else if (ready & POLL_WRITE) {
      this.#flush(connection);
    }
    if (!(ready & (POLL_READ | POLL_ERROR)) || connection.ended) return;
    // One read per news: the poll reports the socket again while bytes wait, so no further recv(2) only
    // to hear EAGAIN, and one busy connection does not hold up the others. Once the target's FIN came
    // (POLL_END), reads go on to it: the answer and the end come in the same news, as they were sent.
    for (;;) {
      const reads = this.listener.readsAnswers(session);
      const received = socket.receive(this.#buffer, !reads);
      if (received === -EAGAIN) return;
      if (received < 0) {
        session.onTargetReset(now);
        return;
      }
      if (received === 0) {
        connection.ended = true;
        session.onTargetClosed(now);
        return;
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
      if (!(ready & POLL_END) || this.#connections.get(session) !== connection) return;
    }
  }
}
