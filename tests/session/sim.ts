/**
 * A deterministic world for the session engine: captured client conversations, a lossy network and
 * a simulated target TCP that serves request/response traffic. A seed replays a run exactly.
 */
import {
  type CopiedSession,
  defaultSessionConfig,
  type SegmentIn,
  type SessionEndpoints,
  type SessionOutcome,
  SessionTable,
} from "../../src/session/mod.ts";
import { DeadlineHeap } from "../../src/session/heap.ts";
import { port80Plan } from "./_plan.ts";
import { keptSegment } from "./_segment.ts";
import { seededRandom } from "../wire/_fixtures.ts";
import { TcpFlag, type TcpOptions, type TcpRepr } from "../../src/wire/mod.ts";

/** Fault rates of one simulated run. */
export interface Faults {
  /** Probability a packet between copy and target (either way) is lost. */
  loss: number;
  duplicate: number;
  /** Extra random delay in ms on top of 1 ms, which reorders packets. */
  jitterMs: number;
  /** Probability a captured client packet is captured twice. */
  captureDuplicate: number;
  /** Probability two neighbouring captured packets swap places. */
  captureReorder: number;
}

/** A captured packet as the engine sees it. */
class Seg implements SegmentIn {
  constructor(
    readonly srcPort: number,
    readonly dstPort: number,
    readonly seq: number,
    readonly ack: number,
    readonly flags: number,
    readonly window: number,
    readonly data: Uint8Array,
    readonly opts: TcpOptions,
    readonly payloadLength = data.length,
  ) {}
  payload(): Uint8Array {
    return this.data;
  }
  options(): TcpOptions {
    return this.opts;
  }
}

const ONLINE = 0xc6120001 | 0; // 198.18.0.1
const TARGET = 0xc6120002 | 0;
const CLIENT = 0xc6130000 | 0;
const MSS = 1448;
const REORDER_WITHIN_MS = 100;

/** One conversation the simulated client had with the online server. */
interface Conversation {
  port: number;
  isn: number;
  requests: Uint8Array[];
  responseSizes: number[];
  takeOverAt: number; // index of the first captured request; > 0: the handshake was not captured
  /** When each request's first byte was captured (before capture faults, which only delay). */
  requestCapturedAt: number[];
  /** The client ends with a RST instead of a FIN. */
  endsWithReset: boolean;
  /**
   * The port came back from an earlier conversation, and the online server answered the SYN from
   * TIME_WAIT with an ACK of that one: the client reset it and sent its SYN again a second later.
   */
  strayReset: boolean;
  timestamps: boolean;
  windowScale: number | undefined;
  start: number;
}

interface TargetConnection {
  conv: Conversation;
  clientPort: number;
  isn: number;
  clientIsn: number;
  rcvNxt: number;
  /** The client bytes the target should get: the captured requests, concatenated. */
  expected: Uint8Array;
  /** Bytes delivered in order (each checked against `expected` on arrival). */
  received: number;
  outOfOrder: Map<number, Uint8Array>;
  window: number;
  shift: number;
  peerShift: number;
  requestBoundaries: number[]; // cumulative request ends the app expects
  answered: number;
  respQueue: number; // response bytes queued
  sndUna: number;
  sndNxt: number;
  finQueued: boolean;
  finSent: boolean;
  clientFin: boolean;
  closed: boolean;
  reset: boolean;
  /** Bytes received in order when the RST came. */
  receivedAtReset: number;
  rtoAt: number;
  timestamps: boolean;
  tsRecent: number;
  violations: string[];
  peerWindow: number;
}

/** What a run found, per conversation and overall. */
export interface SimulationReport {
  sessions: number;
  /**
   * Session objects the table used: fewer than `sessions` when ended sessions were recycled into new
   * ones (`Session.recycle`), whose bytes are checked like every other's.
   */
  sessionObjects: number;
  outcomes: Partial<Record<SessionOutcome, number>>;
  violations: string[];
  undelivered: number;
  simulatedMs: number;
}

/**
 * Runs `count` random conversations through a `SessionTable` against simulated targets.
 * Returns what went wrong; an empty `violations` list and all sessions completed is a pass.
 */
export function simulate(seed: number, count: number, faults: Faults): SimulationReport {
  const random = seededRandom(seed);
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  let now = 0;
  const events = new DeadlineHeap<() => void>();
  const schedule = (at: number, run: () => void) => events.push(at, run);
  const violations: string[] = [];
  const targets = new Map<number, TargetConnection>(); // by the client port the target sees
  const targetOf = new Map<Conversation, TargetConnection>();
  /** By the ISN its copy's SYN carries: a copy's port differs from the client's once a port comes back. */
  const conversationByIsn = new Map<number, Conversation>();

  const plan = port80Plan(TARGET, { session: { ...defaultSessionConfig, idleTimeoutMs: 60_000 } });
  const conversations: Conversation[] = [];
  const table = new SessionTable(plan, {
    segment: (endpoints: SessionEndpoints, tcp: TcpRepr) => {
      if (endpoints.targetAddress !== TARGET) violations.push("segment to the wrong address");
      // Delivered later: a copy of its own, payload bytes too (they go when the target acknowledges them).
      const copy = { ...keptSegment(tcp), payload: tcp.payload?.slice() };
      network(() => targetReceive(copy));
    },
    clientOpened: () => {},
    clientClosed: () => {},
    ended: (_address, _port, _endpoints, _outcome, session) => void sessionObjects.add(session),
  });
  const sessionObjects = new Set<CopiedSession>();

  const network = (deliver: () => void) => {
    if (random() < faults.loss) return;
    const copies = random() < faults.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) schedule(now + 1 + random() * faults.jitterMs, deliver);
  };

  // The simulated target's TCP.
  function targetReceive(tcp: TcpRepr): void {
    const port = tcp.srcPort;
    let conn = targets.get(port);
    if (tcp.flags & TcpFlag.SYN) {
      if (conn !== undefined && conn.clientIsn !== tcp.seq && !conn.closed) {
        // The port's last connection is not over here (its last ACK was lost): Linux answers a SYN in
        // a synchronized state with an ACK of that connection (RFC 5961).
        ackNow(conn);
        return;
      }
      if (conn === undefined || conn.clientIsn !== tcp.seq) {
        const conv = conversationByIsn.get(tcp.seq);
        if (conv === undefined) {
          violations.push(`port ${port}: a SYN with ISN ${tcp.seq}, which no captured conversation began`);
          return;
        }
        const opts = tcp.options ?? {};
        const captured = conv.requests.slice(conv.takeOverAt);
        const boundaries: number[] = [];
        let sum = 0;
        for (const request of captured) boundaries.push(sum += request.length);
        const expected = new Uint8Array(sum);
        captured.reduce((at, request) => (expected.set(request, at), at + request.length), 0);
        conn = {
          conv,
          clientPort: port,
          isn: int(0, 0xffffffff),
          clientIsn: tcp.seq,
          rcvNxt: 1,
          expected,
          received: 0,
          outOfOrder: new Map(),
          window: int(2, 64) * 1024,
          shift: opts.windowScale !== undefined ? int(0, 3) : 0,
          peerShift: opts.windowScale ?? 0,
          requestBoundaries: boundaries,
          answered: 0,
          respQueue: 0,
          sndUna: 1,
          sndNxt: 1,
          finQueued: false,
          finSent: false,
          clientFin: false,
          closed: false,
          reset: false,
          receivedAtReset: 0,
          rtoAt: Infinity,
          timestamps: opts.timestamp !== undefined,
          tsRecent: opts.timestamp?.value ?? 0,
          violations: [],
          peerWindow: tcp.window,
        };
        targets.set(port, conn);
        targetOf.set(conv, conn);
      }
      reply(conn, TcpFlag.SYN | TcpFlag.ACK, conn.isn, 0, {
        mss: MSS,
        windowScale: tcp.options?.windowScale !== undefined ? conn.shift : undefined,
        sackPermitted: true,
        timestamp: conn.timestamps ? { value: Math.floor(now), echo: conn.tsRecent } : undefined,
      });
      return;
    }
    if (conn === undefined || conn.closed) return;
    if (tcp.flags & TcpFlag.RST) {
      // Only a reset in the window counts: one for an earlier connection on this port (the network may
      // bring it late) does not end this one.
      const offset = (tcp.seq - conn.clientIsn) >>> 0;
      if (offset < conn.rcvNxt || offset >= conn.rcvNxt + Math.max(conn.window, 1)) return;
      conn.reset = true;
      conn.receivedAtReset = conn.received;
      conn.closed = true;
      return;
    }
    if (conn.timestamps && tcp.options?.timestamp) conn.tsRecent = tcp.options.timestamp.value;
    const offset = (tcp.seq - conn.clientIsn) >>> 0;
    const data = tcp.payload ?? new Uint8Array(0);
    if (tcp.flags & TcpFlag.ACK) {
      const acked = (tcp.ack - conn.isn) >>> 0;
      if (acked > conn.sndNxt) conn.violations.push(`acked ${acked} beyond sent ${conn.sndNxt}`);
      else if (acked > conn.sndUna) {
        conn.sndUna = acked;
        conn.rtoAt = Infinity; // restarted by targetSend while anything is outstanding
      }
      conn.peerWindow = tcp.window << conn.peerShift;
    }
    if (data.length > 0) {
      if (offset + data.length > conn.rcvNxt + conn.window) {
        conn.violations.push(`data past the window: ${offset + data.length} > ${conn.rcvNxt + conn.window}`);
      }
      checkBytes(conn, offset, data);
      // Pacing: nothing of a request may arrive before the target has the whole previous one, unless
      // the request was captured maxLagMs ago (the session fell that far behind: it pipelines).
      const incomplete = conn.requestBoundaries.findIndex((end) => conn.received < end);
      const incompleteEnd = conn.requestBoundaries[incomplete] + 1;
      if (incomplete >= 0 && offset + data.length > incompleteEnd) {
        const nextCapturedAt = conn.conv.requestCapturedAt[conn.conv.takeOverAt + incomplete + 1];
        if (now < nextCapturedAt + plan.session.maxLagMs) {
          conn.violations.push(
            `bytes up to ${offset + data.length} sent ${
              now - nextCapturedAt
            } ms after their capture, before the request ending at ${incompleteEnd} was whole`,
          );
        }
      }
      if (offset <= conn.rcvNxt) {
        deliver(conn, offset, data);
        let next;
        while ((next = conn.outOfOrder.get(conn.rcvNxt)) !== undefined) {
          conn.outOfOrder.delete(conn.rcvNxt);
          deliver(conn, conn.rcvNxt, next);
        }
        for (const [start, bytes] of conn.outOfOrder) {
          if (start + bytes.length <= conn.rcvNxt) conn.outOfOrder.delete(start);
        }
      } else {
        conn.outOfOrder.set(offset, data);
      }
    }
    if (tcp.flags & TcpFlag.FIN && offset + data.length === conn.rcvNxt && !conn.clientFin) {
      conn.clientFin = true;
      conn.rcvNxt++;
      conn.finQueued = true;
    }
    if (data.length > 0 || tcp.flags & TcpFlag.FIN) ackNow(conn);
    targetSend(conn);
    if (conn.finSent && conn.sndUna === conn.sndNxt && conn.clientFin) conn.closed = true;
  }

  function checkBytes(conn: TargetConnection, offset: number, data: Uint8Array): void {
    if (offset + data.length > conn.expected.length + 1) {
      conn.violations.push(`data beyond the client's stream: ${offset + data.length}`);
      return;
    }
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== conn.expected[offset - 1 + i]) {
        conn.violations.push(`byte ${offset + i} differs`);
        return;
      }
    }
  }

  function deliver(conn: TargetConnection, offset: number, data: Uint8Array): void {
    conn.rcvNxt = Math.max(conn.rcvNxt, offset + data.length);
    conn.received = Math.max(conn.received, offset + data.length - 1);
    // The app answers each request once it has all of it.
    while (
      conn.answered < conn.requestBoundaries.length && conn.received >= conn.requestBoundaries[conn.answered]
    ) {
      conn.respQueue += conn.conv.responseSizes[conn.conv.takeOverAt + conn.answered];
      conn.answered++;
    }
  }

  function targetSend(conn: TargetConnection): void {
    const limit = 1 + conn.respQueue;
    while (conn.sndNxt < limit && conn.sndNxt < conn.sndUna + Math.max(conn.peerWindow, 1)) {
      const length = Math.min(
        MSS,
        limit - conn.sndNxt,
        conn.sndUna + Math.max(conn.peerWindow, 1) - conn.sndNxt,
      );
      reply(conn, TcpFlag.ACK | TcpFlag.PSH, (conn.isn + conn.sndNxt) >>> 0, length);
      conn.sndNxt += length;
    }
    if (conn.finQueued && !conn.finSent && conn.sndNxt === limit) {
      reply(conn, TcpFlag.ACK | TcpFlag.FIN, (conn.isn + conn.sndNxt) >>> 0, 0);
      conn.sndNxt++;
      conn.finSent = true;
    }
    if (conn.sndUna < conn.sndNxt && conn.rtoAt === Infinity) {
      conn.rtoAt = now + 300;
      const at = conn.rtoAt;
      schedule(at, () => targetTimeout(conn, at));
    }
  }

  function targetTimeout(conn: TargetConnection, at: number): void {
    if (conn.closed || conn.rtoAt !== at) return;
    if (conn.sndUna < conn.sndNxt) {
      const dataEnd = conn.finSent ? conn.sndNxt - 1 : conn.sndNxt;
      if (conn.sndUna < dataEnd) {
        reply(conn, TcpFlag.ACK, (conn.isn + conn.sndUna) >>> 0, Math.min(MSS, dataEnd - conn.sndUna));
      } else {
        reply(conn, TcpFlag.ACK | TcpFlag.FIN, (conn.isn + conn.sndUna) >>> 0, 0);
      }
      conn.rtoAt = now + 300;
      const next = conn.rtoAt;
      schedule(next, () => targetTimeout(conn, next));
    } else {
      conn.rtoAt = Infinity;
    }
  }

  function ackNow(conn: TargetConnection): void {
    reply(conn, TcpFlag.ACK, (conn.isn + conn.sndNxt) >>> 0, 0);
  }

  function reply(
    conn: TargetConnection,
    flags: number,
    seq: number,
    length: number,
    synOptions?: TcpOptions,
  ): void {
    const window = flags & TcpFlag.SYN ? Math.min(conn.window, 0xffff) : conn.window >> conn.shift;
    const options: TcpOptions = synOptions ??
      (conn.timestamps ? { timestamp: { value: Math.floor(now), echo: conn.tsRecent } } : {});
    const segment = new Seg(
      8080,
      conn.clientPort,
      seq,
      (conn.clientIsn + conn.rcvNxt) >>> 0,
      flags,
      window,
      new Uint8Array(0),
      options,
      length,
    );
    network(() => table.onReply(CLIENT, segment, now));
  }

  // The captured conversations.
  const portFreeAt = new Map<number, number>(); // when each client port's last conversation ended online
  for (let i = 0; i < count; i++) {
    const requests: Uint8Array[] = [];
    const responseSizes: number[] = [];
    const n = int(1, 6);
    for (let r = 0; r < n; r++) {
      const size = random() < 0.1 ? int(20_000, 200_000) : int(1, 3000);
      const bytes = new Uint8Array(size);
      for (let b = 0; b < size; b++) bytes[b] = int(0, 255);
      requests.push(bytes);
      responseSizes.push(random() < 0.2 ? int(5000, 50_000) : int(1, 2000));
    }
    // A fifth of the clients come back on the port of an earlier conversation once that one is over
    // online (its copy may still be at work); half of them first reset a TIME_WAIT ACK.
    const reused = i > 0 && random() < 0.2 ? conversations[int(0, i - 1)].port : undefined;
    const conv: Conversation = {
      port: reused ?? 10_000 + i,
      isn: int(0, 0xffffffff),
      requests,
      responseSizes,
      takeOverAt: reused === undefined && random() < 0.1 ? int(0, n - 1) || 0 : 0,
      requestCapturedAt: [],
      endsWithReset: random() < 0.15,
      strayReset: reused !== undefined && random() < 0.5,
      timestamps: random() < 0.7,
      windowScale: random() < 0.8 ? int(0, 9) : undefined,
      start: reused === undefined ? random() * 2000 : portFreeAt.get(reused)! + 1 + random() * 30,
    };
    conversations.push(conv);
    portFreeAt.set(conv.port, captureConversation(conv));
    const skipped = requests.slice(0, conv.takeOverAt).reduce((sum, request) => sum + request.length, 0);
    conversationByIsn.set((conv.isn + skipped) >>> 0, conv);
  }

  /** Schedules the capture of `conv`; returns when its last packet was captured. */
  function captureConversation(conv: Conversation): number {
    const packets: Array<{ at: number; seg: Seg }> = [];
    const ts = (t: number) => conv.timestamps ? { timestamp: { value: Math.floor(t), echo: 1 } } : {};
    let t = conv.start;
    let serverAck = 1000;
    const takeOver = conv.takeOverAt > 0;
    if (!takeOver) {
      const syn = new Seg(conv.port, 80, conv.isn, 0, TcpFlag.SYN, 29200, new Uint8Array(0), {
        mss: 1460,
        windowScale: conv.windowScale,
        sackPermitted: true,
        ...ts(t),
      });
      packets.push({ at: t, seg: syn });
      if (conv.strayReset) {
        const reset = new Seg(conv.port, 80, int(0, 0xffffffff), 0, TcpFlag.RST, 0, new Uint8Array(0), {});
        packets.push({ at: t + 0.5, seg: reset });
        t += 1000;
        packets.push({ at: t, seg: syn });
      }
      t += 1;
      packets.push({
        at: t,
        seg: new Seg(
          conv.port,
          80,
          (conv.isn + 1) >>> 0,
          serverAck,
          TcpFlag.ACK,
          502,
          new Uint8Array(0),
          ts(t),
        ),
      });
    }
    let offset = 1;
    for (let r = 0; r < conv.requests.length; r++) {
      const request = conv.requests[r];
      conv.requestCapturedAt.push(t);
      for (let at = 0; at < request.length; at += MSS) {
        const chunk = request.subarray(at, Math.min(at + MSS, request.length));
        if (r >= conv.takeOverAt) {
          packets.push({
            at: t,
            seg: new Seg(
              conv.port,
              80,
              (conv.isn + offset) >>> 0,
              serverAck,
              TcpFlag.ACK | TcpFlag.PSH,
              502,
              chunk,
              ts(t),
            ),
          });
        }
        offset += chunk.length;
        t += 0.1;
      }
      serverAck = (serverAck + conv.responseSizes[r]) >>> 0;
      t += 5 + random() * 50;
    }
    packets.push({
      at: t,
      seg: new Seg(
        conv.port,
        80,
        (conv.isn + offset) >>> 0,
        serverAck,
        TcpFlag.ACK | (conv.endsWithReset ? TcpFlag.RST : TcpFlag.FIN),
        502,
        new Uint8Array(0),
        ts(t),
      ),
    });
    // Capture faults: duplicates and neighbours swapped (never the SYN: a real capture sees it first).
    const captured: typeof packets = [];
    for (const packet of packets) {
      captured.push(packet);
      if (random() < faults.captureDuplicate) captured.push({ at: packet.at + 0.05, seg: packet.seg });
    }
    for (let k = 1; k + 1 < captured.length; k++) {
      // A path reorders packets sent close together, not a RST and the SYN its client sent again 1 s later.
      const close = captured[k + 1].at - captured[k].at < REORDER_WITHIN_MS;
      if (close && random() < faults.captureReorder) {
        [captured[k], captured[k + 1]] = [captured[k + 1], captured[k]];
      }
    }
    let last = 0;
    for (const packet of captured) {
      const at = Math.max(packet.at, last);
      last = at;
      schedule(at, () => table.onCapture(CLIENT, ONLINE, packet.seg, now));
    }
    return last;
  }

  // Run the world.
  const horizon = 600_000;
  let steps = 0;
  while (now < horizon && steps < 20_000_000) {
    steps++;
    const nextEvent = events.nextAt;
    const nextTick = table.nextDeadline;
    if (nextEvent === Infinity && (table.active === 0 || nextTick === Infinity)) break;
    if (nextTick < nextEvent) {
      now = Math.max(now, nextTick);
      table.tick(now);
      continue;
    }
    now = Math.max(now, events.nextAt);
    events.pop()();
  }

  let undelivered = 0;
  for (const conv of conversations) {
    const conn = targetOf.get(conv);
    if (conn === undefined) {
      violations.push(`port ${conv.port}: the target never saw the session`);
      undelivered++;
      continue;
    }
    for (const v of conn.violations) violations.push(`port ${conv.port}: ${v}`);
    // A RST lost on the way is not sent again (nor is one in TCP): then the bytes count as they are.
    const received = conn.reset ? conn.receivedAtReset : conn.received;
    if (received !== conn.expected.length) {
      undelivered++;
      violations.push(`port ${conv.port}: target received ${received} of ${conn.expected.length} bytes`);
    }
    if (!conv.endsWithReset && !conn.clientFin) {
      violations.push(`port ${conv.port}: the target never saw the FIN`);
    }
  }
  const outcomes: Partial<Record<SessionOutcome, number>> = {};
  for (const [name, value] of Object.entries(table.counters.outcomes)) {
    if (value > 0) outcomes[name as SessionOutcome] = value;
  }
  return {
    sessions: count,
    sessionObjects: sessionObjects.size,
    outcomes,
    violations,
    undelivered,
    simulatedMs: now,
  };
}
