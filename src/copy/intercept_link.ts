/**
 * `copy`'s connections to intercept: the session table's client events out as registrations (TCPCopy's
 * protocol), the target's reply headers in. Several connections per intercept spread the load; a
 * client's registrations always use the same one, and every intercept hears every registration (the
 * target may route replies to any of them).
 */
import { FatalError } from "../errors.ts";
import type { Logger } from "../ops/mod.ts";
import {
  encodeHello,
  encodeRegistration,
  ExtensionFrameType,
  type Registration,
  REGISTRATION_LENGTH,
  RegistrationType,
  ReplyFrameDecoder,
} from "../protocol/mod.ts";
import type { SessionEndpoints } from "../session/mod.ts";
import type { InterceptAddress } from "./options.ts";
import { sleep } from "../sleep.ts";

const RECONNECT_MS = 1000;
const READ_BUFFER = 64 * 1024;
/** Registrations a link's buffers hold before they grow. */
const INITIAL_REGISTRATIONS = 1024;

interface Link {
  readonly address: InterceptAddress;
  connection: Deno.TcpConn | undefined;
  /** Registrations encoded back to back, waiting for the write loop; `pendingLength` bytes used. */
  pending: Uint8Array;
  pendingLength: number;
  /** The other buffer: the one being written while `pending` fills. */
  spare: Uint8Array;
  writing: boolean;
  /** Extension capabilities the intercept granted: 0 for a C intercept, which never answers the hello. */
  capabilities: number;
}

/** The connections to every intercept, kept up while `copy` runs. */
export class InterceptLinks {
  /** Registrations that could not be sent because their connection was down. */
  registrationsLost = 0;

  readonly #links: Link[][];
  #closed = false;

  /**
   * @param onRecord called with each 64-byte reply record (a view valid during the call)
   * @param openClients the client endpoints copies hold now, registered again after a reconnect
   * @param lonely an intercept unreachable at start is retried like a lost one, not fatal (`-L`)
   */
  constructor(
    addresses: InterceptAddress[],
    connectionsPerHost: number,
    readonly onRecord: (record: Uint8Array) => void,
    readonly openClients: () => Iterable<SessionEndpoints>,
    readonly log: Logger,
    readonly lonely = false,
  ) {
    this.#links = addresses.map((address) =>
      Array.from(
        { length: connectionsPerHost },
        () => ({
          address,
          connection: undefined,
          pending: new Uint8Array(INITIAL_REGISTRATIONS * REGISTRATION_LENGTH),
          pendingLength: 0,
          spare: new Uint8Array(INITIAL_REGISTRATIONS * REGISTRATION_LENGTH),
          writing: false,
          capabilities: 0,
        }),
      )
    );
  }

  /**
   * Connects everything once; an intercept that cannot be reached at start is fatal, unless `lonely`.
   * None to connect when every target is `udp:`.
   */
  async connect(): Promise<void> {
    if (this.#links.length === 0) return;
    await Promise.all(
      this.#links.flat().map(async (link) => {
        try {
          this.#attach(link, await Deno.connect({ hostname: link.address.host, port: link.address.port }));
        } catch (error) {
          const problem = `cannot connect to intercept at ${link.address.host}:${link.address.port}: ${
            reason(error)
          }`;
          if (!this.lonely) throw new FatalError(problem);
          this.log.warn(`${problem}; retrying (--lonely)`);
          this.#reconnect(link);
        }
      }),
    );
    this.log.info(
      `connected to ${this.#links.length} intercept(s), ${this.#links[0].length} connection(s) each`,
    );
  }

  /** A copy took a client address and port: every intercept is to route the target's replies to us. */
  clientOpened(endpoints: SessionEndpoints): void {
    this.#register({ type: RegistrationType.ADD, ...endpoints });
  }

  /** A copy let go of a client address and port: no intercept needs to route its replies any more. */
  clientClosed(endpoints: SessionEndpoints): void {
    this.#register({ type: RegistrationType.DELETE, ...endpoints });
  }

  /** Sends one registration to every intercept, on the connection that owns its client. */
  #register(registration: Registration): void {
    for (const links of this.#links) {
      const link = ownerOf(links, registration);
      if (link.connection === undefined) {
        this.registrationsLost++;
        continue;
      }
      enqueue(link, registration);
      if (!link.writing) {
        // Written at the end of this task, with every other registration it makes: one write, not one each.
        link.writing = true;
        queueMicrotask(() => this.#flush(link));
      }
    }
  }

  /** Closes every connection and stops reconnecting. */
  close(): void {
    this.#closed = true;
    for (const link of this.#links.flat()) {
      try {
        link.connection?.close();
      } catch {
        // already closed by the peer
      }
      link.connection = undefined;
    }
  }

  /** Sends what is pending and resolves once written (for shutdown). */
  async drain(): Promise<void> {
    for (let i = 0; i < 50 && this.#links.flat().some((link) => link.writing); i++) {
      await sleep(10);
    }
  }

  /** Takes a new connection into use: its hello goes first, before any registration. */
  #attach(link: Link, connection: Deno.TcpConn): void {
    connection.setNoDelay(true);
    link.connection = connection;
    link.capabilities = 0;
    link.pendingLength = 0;
    encodeHello(link.pending, 0, 0);
    link.pendingLength = REGISTRATION_LENGTH;
    if (!link.writing) {
      link.writing = true;
      queueMicrotask(() => this.#flush(link));
    }
    this.#read(link, connection);
  }

  async #flush(link: Link): Promise<void> {
    link.writing = true;
    try {
      while (link.pendingLength > 0 && link.connection !== undefined) {
        // Swap the buffers: registrations made during the write go to the other one.
        const filled = link.pending;
        const bytes = filled.subarray(0, link.pendingLength);
        link.pending = link.spare;
        link.spare = filled;
        link.pendingLength = 0;
        let written = 0;
        while (written < bytes.length) written += await link.connection.write(bytes.subarray(written));
      }
    } catch {
      // the reader notices the loss and reconnects
    } finally {
      link.writing = false;
    }
  }

  async #read(link: Link, connection: Deno.TcpConn): Promise<void> {
    const decoder = new ReplyFrameDecoder((type, body) => {
      if (type === ExtensionFrameType.ACCEPTED && body.length >= 2) {
        link.capabilities = body[0] << 8 | body[1];
      }
    });
    const buffer = new Uint8Array(READ_BUFFER);
    let problem = "closed by intercept";
    try {
      for (;;) {
        const count = await connection.read(buffer);
        if (count === null) break;
        const error = decoder.push(buffer.subarray(0, count), this.onRecord);
        if (error !== undefined) {
          problem = `garbage from intercept (${error.message})`;
          break;
        }
      }
    } catch (error) {
      problem = reason(error);
    }
    if (this.#closed) return;
    try {
      connection.close();
    } catch {
      // already closed
    }
    link.connection = undefined;
    link.pendingLength = 0;
    this.log.warn(`lost intercept ${link.address.host}:${link.address.port}: ${problem}; reconnecting`);
    this.#reconnect(link);
  }

  async #reconnect(link: Link): Promise<void> {
    while (!this.#closed) {
      await sleep(RECONNECT_MS);
      if (this.#closed) return;
      try {
        const connection = await Deno.connect({ hostname: link.address.host, port: link.address.port });
        if (this.#closed) {
          connection.close();
          return;
        }
        this.#attach(link, connection);
        this.log.info(`reconnected to intercept ${link.address.host}:${link.address.port}`);
        const links = this.#links.find((group) => group.includes(link))!;
        for (const endpoints of this.openClients()) {
          if (ownerOf(links, endpoints) === link) enqueue(link, { type: RegistrationType.ADD, ...endpoints });
        }
        if (!link.writing) this.#flush(link);
        return;
      } catch {
        // still down: try again
      }
    }
  }
}

/** The connection of a group that carries a client's registrations: always the same one. */
function ownerOf(links: Link[], client: { clientAddress: number; clientPort: number }): Link {
  return links[((client.clientAddress ^ client.clientPort) >>> 0) % links.length];
}

function enqueue(link: Link, registration: Registration): void {
  if (link.pendingLength + REGISTRATION_LENGTH > link.pending.length) {
    const grown = new Uint8Array(link.pending.length * 2);
    grown.set(link.pending.subarray(0, link.pendingLength));
    link.pending = grown;
  }
  encodeRegistration(registration, link.pending, link.pendingLength);
  link.pendingLength += REGISTRATION_LENGTH;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}
