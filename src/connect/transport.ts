/**
 * The connections of `copy --connect`: one ordinary TCP connection from this host to the target per
 * copied session, opened, written, shut and reset as its `ConnectSession` asks, and its news (open,
 * bytes, FIN, reset) handed back to the session. No raw socket and no privilege: the kernel does TCP.
 *
 * Sockets are `node:net`'s: `Deno.connect` binds no local address (`--bind`) and cannot close with a
 * RST, which a client's reset must become; `node:net` does both (`localAddress`, `resetAndDestroy`).
 */
import { connect, type Socket } from "node:net";
import { formatIpv4 } from "../wire/mod.ts";
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

/** Connection errors that mean the target (or the way to it) refused. */
const REFUSED = new Set(["ECONNREFUSED"]);

/** Every open connection of a `copy --connect` run. */
export class ConnectTransport implements ConnectionSink {
  /** Writes handed to the kernel. */
  writes = 0;
  /** Reads of the target's bytes. */
  reads = 0;
  /** Connections that could not be opened from a `--bind` address (not there, or out of ports). */
  bindFailures = 0;

  readonly #sockets = new Map<ConnectSession, Socket>();
  readonly #bind: readonly string[];
  #nextBind = 0;

  /**
   * @param bind local addresses to open connections from, in turn (empty: the kernel's choice)
   * @param changed called after a session had news from its connection (the table settles it)
   * @param listener told of the target's bytes and of each turn's end
   */
  constructor(
    bind: readonly string[],
    readonly changed: (session: ConnectSession) => void,
    readonly listener: AnswerListener,
  ) {
    this.#bind = bind;
  }

  /** Connections open (or opening) now. */
  get open(): number {
    return this.#sockets.size;
  }

  connect(session: ConnectSession): void {
    const { targetAddress, targetPort } = session.endpoints;
    const localAddress = this.#bind.length === 0
      ? undefined
      : this.#bind[this.#nextBind++ % this.#bind.length];
    const socket = connect({
      host: formatIpv4(targetAddress),
      port: targetPort,
      localAddress,
      allowHalfOpen: true,
      noDelay: true,
    });
    this.#sockets.set(session, socket);
    let connected = false;
    socket.on("connect", () => {
      connected = true;
      session.onConnected(performance.now());
      this.changed(session);
    });
    socket.on("data", (chunk: Uint8Array) => {
      this.reads++;
      // The listener first: the bytes may end the turn, and whoever compares turns needs them in it.
      this.listener.answer(session, session.turn, chunk);
      session.onAnswer(chunk.length, performance.now());
      this.changed(session);
    });
    socket.on("end", () => {
      session.onTargetClosed(performance.now());
      this.changed(session);
    });
    socket.on("error", (error: Error & { code?: string }) => {
      const now = performance.now();
      if (connected) session.onTargetReset(now);
      else {
        if (error.code === "EADDRNOTAVAIL" || error.code === "EADDRINUSE") this.bindFailures++;
        session.onConnectFailed(REFUSED.has(error.code ?? ""), now);
      }
      this.changed(session);
    });
    socket.on("close", () => {
      if (this.#sockets.get(session) === socket) this.#sockets.delete(session);
    });
  }

  write(session: ConnectSession, bytes: Uint8Array): void {
    this.writes++;
    this.listener.wrote?.(session, session.turn, bytes);
    this.#sockets.get(session)?.write(bytes);
  }

  shutdown(session: ConnectSession): void {
    this.#sockets.get(session)?.end();
  }

  reset(session: ConnectSession): void {
    const socket = this.#sockets.get(session);
    if (socket === undefined) return;
    this.#sockets.delete(session);
    if (socket.connecting || socket.destroyed) socket.destroy();
    else socket.resetAndDestroy();
  }

  close(session: ConnectSession): void {
    const socket = this.#sockets.get(session);
    if (socket === undefined) return;
    this.#sockets.delete(session);
    // Both sides closed, or the target is gone: what is left in the kernel goes, then a FIN (a socket
    // already ended both ways, or destroyed, is simply closed).
    socket.end();
  }

  turnOver(session: ConnectSession, turn: number, end: TurnEnd): void {
    this.listener.turnOver(session, turn, end);
  }

  turnEnded(session: ConnectSession, turn: number, expected: number): void {
    this.listener.turnEnded?.(session, turn, expected);
  }

  /** Resets every connection still open (shutdown, after the sessions were abandoned). */
  closeAll(): void {
    for (const socket of this.#sockets.values()) socket.destroy();
    this.#sockets.clear();
  }
}
