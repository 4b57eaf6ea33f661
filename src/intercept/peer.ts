/**
 * One copy connection as intercept sees it: the decoder of what copy sends, the encoder of the replies
 * routed to it, and the loop that writes them.
 */
import { RegistrationDecoder, REPLY6_RECORD_LENGTH, ReplyFrameEncoder } from "../protocol/mod.ts";
import type { ReplySink } from "./registry.ts";

/** What one connected copy got so far. */
export interface PeerCounters {
  /** `host:port` of the copy connection. */
  readonly name: string;
  /** Reply records queued for it. */
  readonly forwarded: number;
  /** Reply records it was too far behind to take. */
  readonly dropped: number;
}

/**
 * Where a connection is in its greeting: waiting for the hello, proving the shared secret (only with
 * `--secret-file`), or ready for registrations.
 */
export type PeerPhase = "hello" | "auth" | "ready";

/** One copy connection: a sink for its replies and the loop that writes them. */
export class CopyPeer implements ReplySink, PeerCounters {
  readonly encoder = new ReplyFrameEncoder();
  readonly decoder = new RegistrationDecoder();
  phase: PeerPhase = "hello";
  /** Closes the connection if its greeting is not over in time; cleared once it is. */
  greetingTimer: ReturnType<typeof setTimeout> | undefined;
  /** The nonce of this connection's auth challenge (with `--secret-file`). */
  challenge: Uint8Array | undefined;
  /** Registrations refused because another connection holds the client. */
  takeoversRefused = 0;
  /** Whether it was granted IPv6 registrations and replies. */
  ipv6 = false;
  #writing: Promise<void> | undefined;
  closed = false;
  /** Refused (auth): read no more, close once the refusal is written. */
  refused = false;
  forwarded = 0;
  dropped = 0;

  constructor(readonly connection: Deno.TcpConn, readonly name: string, readonly address: string) {}

  /** Takes a 64-byte IPv4 reply record, or an 84-byte IPv6 one (routed here only if granted). */
  add(record: Uint8Array): boolean {
    const taken = !this.closed &&
      (record.length === REPLY6_RECORD_LENGTH ? this.encoder.add6(record) : this.encoder.add(record));
    if (taken) this.forwarded++;
    else this.dropped++;
    return taken;
  }

  /** Starts writing what is pending, unless a write loop already runs. */
  flush(onFailure: (peer: CopyPeer, error: unknown) => void): void {
    if (this.#writing !== undefined || this.closed || !this.encoder.hasPending) return;
    this.#writing = this.#writeAll().catch((error) => onFailure(this, error)).finally(() =>
      this.#writing = undefined
    );
  }

  /** Resolves once everything queued so far is written (or its write failed). */
  async drain(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
    if (this.closed || !this.encoder.hasPending) return;
    await this.#writeAll().catch(() => {});
  }

  async #writeAll(): Promise<void> {
    for (let chunk; !this.closed && (chunk = this.encoder.take()) !== undefined;) {
      for (let written = 0; written < chunk.length;) {
        written += await this.connection.write(chunk.subarray(written));
      }
      this.encoder.release(chunk);
    }
  }
}
