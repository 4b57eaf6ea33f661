/**
 * `copy`'s connections to intercept: the session table's client events out as registrations (TCPCopy's
 * protocol), the target's reply headers in. Several connections per intercept spread the load; a
 * client's registrations always use the same one, and every intercept hears every registration (the
 * target may route replies to any of them).
 *
 * With a shared secret (`--secret-file`) a connection asks for auth in its hello, and sends no registration
 * and takes no reply until the intercept proved the secret (`src/protocol/auth.ts`).
 */
import { FatalError } from "../errors.ts";
import type { Logger } from "../ops/mod.ts";
import {
  AUTH_NONCE_LENGTH,
  authMac,
  authNonce,
  authProofValid,
  Capability,
  encodeAuthResponse,
  encodeExtensionRecord,
  encodeHello,
  encodeRegistration,
  encodeRegistration6,
  ExtensionFrameType,
  ExtensionRecordType,
  type Registration,
  type Registration6,
  REGISTRATION6_LENGTH,
  REGISTRATION_LENGTH,
  RegistrationType,
  REPLY6_RECORD_LENGTH,
  ReplyFrameDecoder,
} from "../protocol/mod.ts";
import type { SessionEndpoints } from "../session/mod.ts";
import { addressHash, writeIpv6Address } from "../wire/mod.ts";
import type { InterceptAddress } from "./options.ts";
import { sleep } from "../sleep.ts";

const RECONNECT_MS = 1000;
/**
 * How long a copy with IPv6 targets waits at start for each intercept to grant IPv6. tcpshadow's
 * intercept answers the hello at once; a C intercept never does.
 */
const GRANT_WAIT_MS = 1000;
/** The extensions copy asks every intercept for. */
const ASKED = Capability.IPV6;
const READ_BUFFER = 64 * 1024;
/** Registrations a link's buffers hold before they grow. */
const INITIAL_REGISTRATIONS = 1024;
/** How long a connection waits for the intercept's side of the auth exchange. */
export const AUTH_DEADLINE_MS = 3000;

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
  /** Called once the intercept answered the hello (or the connection was lost). */
  answered: () => void;
  /** Whether registrations may go and replies come: at once without a secret, after auth with one. */
  ready: boolean;
  /** The auth exchange under way on this connection, with both nonces once copy answered. */
  auth: LinkAuth | undefined;
  /** Why the intercept ended this connection, when it said so or failed auth. */
  closeReason: string | undefined;
  /** Why the last connection was lost, so a lasting problem is logged once, not on every retry. */
  lastProblem: string | undefined;
}

/** One connection's auth: settles when the intercept proved the secret, or failed to. */
interface LinkAuth {
  readonly settled: Promise<void>;
  readonly resolve: () => void;
  readonly fail: (problem: string) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  accepted: boolean;
  interceptNonce: Uint8Array | undefined;
  copyNonce: Uint8Array | undefined;
}

/** The connections to every intercept, kept up while `copy` runs. */
export class InterceptLinks {
  /** Registrations that could not be sent because their connection was down. */
  registrationsLost = 0;

  readonly #links: Link[][];
  #closed = false;
  /** Whether `connect` is over: until then a failure is its error, not a log line. */
  #started = false;

  /**
   * @param onRecord called with each 64-byte IPv4 reply record or 84-byte IPv6 one (a view valid
   *   during the call)
   * @param openClients the client endpoints copies hold now, registered again after a reconnect
   * @param lonely an intercept unreachable at start is retried like a lost one, not fatal (`-L`)
   * @param ipv6Targets whether IPv6 registrations will be made: then `connect` waits for the grants
   */
  constructor(
    addresses: InterceptAddress[],
    connectionsPerHost: number,
    readonly onRecord: (record: Uint8Array) => void,
    readonly openClients: () => Iterable<SessionEndpoints>,
    readonly log: Logger,
    readonly lonely = false,
    /** The shared secret to prove and to check, if any (`--secret-file`). */
    readonly secret: Uint8Array | undefined = undefined,
    readonly ipv6Targets = false,
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
          ready: false,
          auth: undefined,
          closeReason: undefined,
          lastProblem: undefined,
          answered: () => {},
        }),
      )
    );
  }

  /** Intercepts with at least one connection up. */
  get connectedIntercepts(): number {
    return this.#links.filter((group) => group.some((link) => link.connection !== undefined)).length;
  }

  /**
   * Connects everything once; an intercept that cannot be reached (or fails auth) at start is fatal,
   * unless `lonely`: then one it cannot reach is retried like a lost one.
   * None to connect when every target is `udp:`.
   */
  async connect(): Promise<void> {
    if (this.#links.length === 0) return;
    await Promise.all(
      this.#links.flat().map(async (link) => {
        const where = `${link.address.host}:${link.address.port}`;
        try {
          this.#attach(link, await Deno.connect({ hostname: link.address.host, port: link.address.port }));
        } catch (error) {
          const problem = `cannot connect to intercept at ${where}: ${reason(error)}`;
          if (!this.lonely) throw new FatalError(problem);
          this.log.warn(`${problem}; retrying (--lonely)`);
          this.#reconnect(link);
          return;
        }
        try {
          await link.auth?.settled;
        } catch (error) {
          throw new FatalError(`intercept ${where}: ${reason(error)}`);
        }
      }),
    );
    this.#started = true;
    this.log.info(
      `connected to ${this.#links.length} intercept(s), ${this.#links[0].length} connection(s) each`,
    );
    if (!this.ipv6Targets) return;
    const answers = this.#links.flat().map((link) =>
      link.capabilities !== 0 ? undefined : new Promise<void>((resolve) => link.answered = resolve)
    );
    await Promise.race([Promise.all(answers), sleep(GRANT_WAIT_MS)]);
    for (const links of this.#links) {
      if (links.some((link) => link.capabilities & Capability.IPV6)) continue;
      const { host, port } = links[0].address;
      this.log.warn(
        `intercept ${host}:${port} did not grant IPv6 (TCPCopy's intercept speaks IPv4 only): it gets no ` +
          `IPv6 registrations, and while no intercept has IPv6, sessions toward IPv6 targets are not ` +
          `copied (counted as sessions-without-ipv6-intercept)`,
      );
    }
  }

  /** Whether some intercept connection granted IPv6 registrations. */
  get ipv6Granted(): boolean {
    for (const links of this.#links) {
      for (const link of links) {
        if (link.connection !== undefined && link.capabilities & Capability.IPV6) return true;
      }
    }
    return false;
  }

  /** A copy took a client address and port: every intercept is to route the target's replies to us. */
  clientOpened(endpoints: SessionEndpoints): void {
    this.#register(RegistrationType.ADD, endpoints);
  }

  /** A copy let go of a client address and port: no intercept needs to route its replies any more. */
  clientClosed(endpoints: SessionEndpoints): void {
    this.#register(RegistrationType.DELETE, endpoints);
  }

  /**
   * Sends one registration to every intercept, on the connection that owns its client. An IPv6 one
   * goes only to connections that granted IPv6: a C intercept never sees one.
   */
  #register(type: 1 | 2, endpoints: SessionEndpoints): void {
    const ipv6 = typeof endpoints.clientAddress !== "number";
    for (const links of this.#links) {
      const link = ownerOf(links, endpoints);
      if (ipv6 && !(link.capabilities & Capability.IPV6)) {
        if (links.some((other) => other.capabilities & Capability.IPV6)) this.registrationsLost++;
        continue;
      }
      if (link.connection === undefined || !link.ready) {
        this.registrationsLost++;
        continue;
      }
      enqueue(link, type, endpoints);
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
    link.ready = this.secret === undefined;
    link.closeReason = undefined;
    link.auth = this.secret === undefined ? undefined : this.#startAuth(link, connection);
    encodeHello(link.pending, 0, this.secret === undefined ? ASKED : ASKED | Capability.AUTH);
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

  /**
   * The auth exchange of a new connection: fails on the intercept's refusal, a wrong proof, or silence
   * past `AUTH_DEADLINE_MS` (a C intercept never answers an extended hello), closing the connection.
   */
  #startAuth(link: Link, connection: Deno.TcpConn): LinkAuth {
    let resolve!: () => void, reject!: (error: Error) => void;
    const settled = new Promise<void>((yes, no) => [resolve, reject] = [yes, no]);
    settled.catch(() => {}); // a reconnect's failure is logged by the reader, not awaited
    const auth: LinkAuth = {
      settled,
      resolve: () => {
        clearTimeout(auth.timer);
        link.ready = true;
        link.lastProblem = undefined;
        resolve();
        if (link.capabilities & Capability.IPV6) this.#replayIpv6(link);
      },
      fail: (problem) => {
        clearTimeout(auth.timer);
        if (link.ready || link.closeReason !== undefined) return;
        link.closeReason = problem;
        reject(new Error(problem));
        try {
          connection.close();
        } catch {
          // already closed
        }
      },
      timer: setTimeout(() =>
        auth.fail(
          auth.accepted
            ? `did not finish the auth exchange within ${AUTH_DEADLINE_MS / 1000} s`
            : `no answer to the auth hello within ${AUTH_DEADLINE_MS / 1000} s: a C intercept (it cannot ` +
              "prove a secret: drop --secret-file for it) or not an intercept at all",
        ), AUTH_DEADLINE_MS),
      accepted: false,
      interceptNonce: undefined,
      copyNonce: undefined,
    };
    return auth;
  }

  /** An extension frame from the intercept (`body` valid during the call only). */
  #onExtension(link: Link, type: number, body: Uint8Array): void {
    const auth = link.auth;
    const secret = this.secret;
    if (type === ExtensionFrameType.REPLY6) {
      if (!link.ready) return auth?.fail("sent replies before the auth exchange was over");
      for (let at = 0; at + REPLY6_RECORD_LENGTH <= body.length; at += REPLY6_RECORD_LENGTH) {
        this.onRecord(body.subarray(at, at + REPLY6_RECORD_LENGTH));
      }
    } else if (type === ExtensionFrameType.ACCEPTED && body.length >= 2) {
      link.capabilities = body[0] << 8 | body[1];
      link.answered();
      if (auth === undefined) {
        // Without auth the connection is ready now: the IPv6 clients it carries go once it grants IPv6.
        if (link.capabilities & Capability.IPV6) this.#replayIpv6(link);
        return;
      }
      auth.accepted = true;
      if ((link.capabilities & Capability.AUTH) === 0) {
        auth.fail("it takes no shared secret (start it with the same --secret-file, or drop copy's)");
      }
    } else if (type === ExtensionFrameType.REFUSED) {
      const why = new TextDecoder().decode(body);
      if (auth !== undefined) auth.fail(`refused this copy: ${why}`);
      else link.closeReason = `refused this copy: ${why}`;
    } else if (auth === undefined || secret === undefined || link.ready) {
      return;
    } else if (type === ExtensionFrameType.AUTH_CHALLENGE && auth.copyNonce === undefined) {
      if (body.length !== AUTH_NONCE_LENGTH) return auth.fail(`an auth challenge of ${body.length} bytes`);
      auth.interceptNonce = body.slice();
      auth.copyNonce = authNonce();
      const response = encodeAuthResponse({
        copyNonce: auth.copyNonce,
        mac: authMac(secret, auth.interceptNonce, auth.copyNonce, "copy"),
      });
      reserve(link, REGISTRATION_LENGTH + response.length);
      link.pendingLength += encodeExtensionRecord(
        ExtensionRecordType.AUTH_RESPONSE,
        response,
        link.pending,
        link.pendingLength,
      );
      if (!link.writing) this.#flush(link);
    } else if (type === ExtensionFrameType.AUTH_PROOF && auth.copyNonce !== undefined) {
      if (authProofValid(secret, auth.interceptNonce!, auth.copyNonce, "intercept", body)) auth.resolve();
      else {
        auth.fail(
          "failed to prove the shared secret: its --secret-file differs, or it is not the intercept you think",
        );
      }
    }
  }

  async #read(link: Link, connection: Deno.TcpConn): Promise<void> {
    const decoder = new ReplyFrameDecoder((type, body) => this.#onExtension(link, type, body));
    const auth = link.auth;
    const onRecord = (record: Uint8Array) => {
      if (link.ready) this.onRecord(record);
      else auth?.fail("sent replies before the auth exchange was over");
    };
    const buffer = new Uint8Array(READ_BUFFER);
    let problem = "closed by intercept";
    try {
      for (;;) {
        const count = await connection.read(buffer);
        if (count === null) break;
        const error = decoder.push(buffer.subarray(0, count), onRecord);
        if (error !== undefined) {
          problem = `garbage from intercept (${error.message})`;
          break;
        }
      }
    } catch (error) {
      problem = reason(error);
    }
    if (auth !== undefined) auth.fail(problem);
    problem = link.closeReason ?? problem;
    if (this.#closed) return;
    try {
      connection.close();
    } catch {
      // already closed
    }
    link.connection = undefined;
    link.ready = false;
    link.pendingLength = 0;
    link.answered();
    // A problem that lasts (a refusal, a wrong secret) is logged once, not on every retry.
    if (this.#started && problem !== link.lastProblem) {
      this.log.warn(`lost intercept ${link.address.host}:${link.address.port}: ${problem}; reconnecting`);
    }
    link.lastProblem = problem;
    this.#reconnect(link);
  }

  /** After a (re)connection's grant: the IPv6 clients this connection carries. */
  #replayIpv6(link: Link): void {
    const links = this.#links.find((group) => group.includes(link))!;
    for (const endpoints of this.openClients()) {
      if (typeof endpoints.clientAddress !== "number" && ownerOf(links, endpoints) === link) {
        enqueue(link, RegistrationType.ADD, endpoints);
      }
    }
    if (link.pendingLength > 0 && !link.writing) {
      link.writing = true;
      queueMicrotask(() => this.#flush(link));
    }
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
        try {
          await link.auth?.settled;
        } catch {
          return; // the reader logs why and tries again
        }
        // After a refusal the intercept speaks again only to refuse again, most likely: that is logged.
        if (!link.lastProblem?.startsWith("refused")) {
          this.log.info(`reconnected to intercept ${link.address.host}:${link.address.port}`);
        }
        const links = this.#links.find((group) => group.includes(link))!;
        // IPv4 clients at once; IPv6 ones once the intercept grants IPv6 again (`#replayIpv6`).
        for (const endpoints of this.openClients()) {
          if (typeof endpoints.clientAddress === "number" && ownerOf(links, endpoints) === link) {
            enqueue(link, RegistrationType.ADD, endpoints);
          }
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
function ownerOf(links: Link[], client: SessionEndpoints): Link {
  return links[((addressHash(client.clientAddress) ^ client.clientPort) >>> 0) % links.length];
}

/**
 * What `enqueue` encodes, filled for each registration: with a new connection per request copy makes
 * two registrations per session, thousands a second, and objects for them were garbage by the megabyte.
 */
const registration4: Registration = {
  type: 1,
  clientAddress: 0,
  clientPort: 0,
  targetAddress: 0,
  targetPort: 0,
};
const registration6: Registration6 = {
  type: 1,
  clientAddress: new Uint8Array(16),
  clientPort: 0,
  targetAddress: new Uint8Array(16),
  targetPort: 0,
};

/** Adds the registration of `type` (ADD or DELETE) of `endpoints`' client, as TCPCopy's record or ADD6/DELETE6. */
function enqueue(link: Link, type: 1 | 2, endpoints: SessionEndpoints): void {
  reserve(link, REGISTRATION6_LENGTH);
  link.pendingLength += encodeClientEvent(type, endpoints, link.pending, link.pendingLength);
}

/**
 * Writes the registration of `type` (ADD or DELETE) of `endpoints`' client at `into[offset..]`, TCPCopy's
 * record for IPv4 and ADD6/DELETE6 for IPv6, without an object made; returns its length.
 */
export function encodeClientEvent(
  type: 1 | 2,
  endpoints: SessionEndpoints,
  into: Uint8Array,
  offset: number,
): number {
  const { clientAddress, clientPort, targetAddress, targetPort } = endpoints;
  if (typeof clientAddress === "number") {
    registration4.type = type;
    registration4.clientAddress = clientAddress;
    registration4.clientPort = clientPort;
    registration4.targetAddress = targetAddress as number;
    registration4.targetPort = targetPort;
    encodeRegistration(registration4, into, offset);
    return REGISTRATION_LENGTH;
  }
  registration6.type = type;
  writeIpv6Address(clientAddress, registration6.clientAddress);
  registration6.clientPort = clientPort;
  writeIpv6Address(targetAddress as string, registration6.targetAddress);
  registration6.targetPort = targetPort;
  return encodeRegistration6(registration6, into, offset);
}

/** Makes room for `length` more bytes in the link's pending buffer. */
function reserve(link: Link, length: number): void {
  if (link.pendingLength + length <= link.pending.length) return;
  const grown = new Uint8Array(Math.max(link.pending.length * 2, link.pendingLength + length));
  grown.set(link.pending.subarray(0, link.pendingLength));
  link.pending = grown;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}
