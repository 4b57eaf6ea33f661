/**
 * One copy connection as intercept sees it: the decoder of what copy sends, the encoder of the replies
 * routed to it, and the loop that writes them.
 */
import { RegistrationDecoder, ReplyFrameEncoder } from "../protocol/mod.ts";
import type { ReplySink } from "./routes.ts";

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
  #writing = false;
  closed = false;
  forwarded = 0;
  dropped = 0;

  constructor(readonly connection: Deno.TcpConn, readonly name: string, readonly address: string) {}

  add(record: Uint8Array): boolean {
    const taken = !this.closed && this.encoder.add(record);
    if (taken) this.forwarded++;
    else this.dropped++;
    return taken;
  }

  /** Starts writing what is pending, unless a write loop already runs. */
  flush(onFailure: (peer: CopyPeer, error: unknown) => void): void {
    if (this.#writing || this.closed || !this.encoder.hasPending) return;
    this.#writing = true;
    this.#writeAll().catch((error) => onFailure(this, error)).finally(() => this.#writing = false);
  }

  /** Writes `bytes` now, ahead of anything queued (used before the peer may register, when nothing is). */
  async writeNow(bytes: Uint8Array): Promise<void> {
    for (let written = 0; written < bytes.length;) {
      written += await this.connection.write(bytes.subarray(written));
    }
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
