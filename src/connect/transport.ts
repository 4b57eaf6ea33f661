/**
 * The connections of `copy --connect`: one ordinary TCP connection from this host to the target per
 * copied session, opened, written, shut and reset as its `ConnectSession` asks, and its news (open,
 * bytes, FIN, reset) handed back to the session. No raw socket and no privilege: the kernel does TCP.
 *
 * Sockets are libc's, non-blocking, through `ffi/` (`StreamSocket`), all watched by one poll per batch
 * of events (`SocketPoller`). `Deno.connect` and `node:net` were measured first (bench/RESULTS.md):
 * under a live capture's load their connects waited in the event loop for seconds (no SYN left while
 * the capture kept it busy), and `Deno.connect` can neither bind a local address (`--bind`) nor close
 * with a RST. Here connect(2) and send(2) run when the session asks, on the JS thread.
 */
import { POLL_ERROR, POLL_READ, POLL_WRITE, SocketPoller, StreamSocket } from "../../ffi/mod.ts";
import { type Address, addressBytes, addressFamily } from "../wire/mod.ts";
import type { ConnectionSink, ConnectSession } from "./session.ts";
import type { TurnEnd } from "./turns.ts";

/** The target's answers as they arrive, for counting and for comparing them with the online server's. */
export interface AnswerListener {
  /** `bytes` (valid during the call only) the target sent in turn `turn` of `session`. */
  answer(session: ConnectSession, turn: number, bytes: Uint8Array): void;
  /** Turn `turn` of `session` is over, and why. */
  turnOver(session: ConnectSession, turn: number, end: TurnEnd): void;
  /** `bytes` (valid during the call only) of the client's that went to the target in turn `turn`. */
  wrote?(session: ConnectSession, turn: number, bytes: Uint8Array): void;
  /** Every turn's end, with the online server's bytes up to it (see `ConnectionSink.turnEnded`). */
  turnEnded?(session: ConnectSession, turn: number, expected: number): void;
}

const ECONNREFUSED = 111;
const EADDRNOTAVAIL = 99;
const EADDRINUSE = 98;
/** The longest a poll waits when nothing happens (a wake ends it sooner). */
const POLL_MS = 1000;
/** Reads of one connection per batch, so that one busy connection does not hold up the others. */
const READS_PER_BATCH = 16;

interface Connection {
  readonly session: ConnectSession;
  readonly socket: StreamSocket;
  connected: boolean;
  /** Bytes the kernel had no room for yet, in order. */
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
  readonly #buffer = new Uint8Array(65536);
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
    if (connection.connected && connection.unsent.length === 1) this.#flush(connection);
  }

  shutdown(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    connection.shutdownPending = true;
    if (connection.connected) this.#flush(connection);
  }

  reset(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
    this.#connections.delete(session);
    connection.socket.abort();
  }

  close(session: ConnectSession): void {
    const connection = this.#connections.get(session);
    if (connection === undefined) return;
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

  /** Sends what waits; once all of it went, the FIN if the client's came. */
  #flush(connection: Connection): void {
    const { unsent, socket } = connection;
    while (unsent.length > 0) {
      const result = socket.send(unsent[0]);
      if ("errno" in result) return; // the connection broke: the poller reports it
      if (result.bytes === 0) {
        this.#poller.wake(); // watch for room to write
        return;
      }
      this.writes++;
      if (result.bytes === unsent[0].length) unsent.shift();
      else unsent[0] = unsent[0].subarray(result.bytes);
    }
    if (connection.shutdownPending) {
      connection.shutdownPending = false;
      socket.shutdownWrite();
    }
  }

  async #run(): Promise<void> {
    const fds: number[] = [];
    const writable: boolean[] = [];
    const ready: number[] = [];
    const watched: Connection[] = [];
    while (!this.#closed) {
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
    for (let reads = 0; reads < READS_PER_BATCH; reads++) {
      const result = socket.receive(this.#buffer);
      if (result === undefined) return;
      if ("errno" in result) {
        session.onTargetReset(now);
        return;
      }
      if (result.bytes === 0) {
        connection.ended = true;
        session.onTargetClosed(now);
        return;
      }
      this.reads++;
      // The listener first: the bytes may end the turn, and whoever compares turns needs them in it.
      this.listener.answer(session, session.turn, this.#buffer.subarray(0, result.bytes));
      session.onAnswer(result.bytes, now);
      if (this.#connections.get(session) !== connection) return;
    }
  }
}
