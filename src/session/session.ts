/**
 * One copied TCP session: the client's side of a conversation with the target, replayed from what the
 * client sent the online server. Pure: segments and the clock come in, segments go out through a sink.
 *
 * Offsets count from the client's ISN (the SYN is 0) and from the target's ISN for what the target
 * sends; `seq.ts` maps them to wire values. The target's payload is never seen (intercept sends headers
 * only), so the session acknowledges everything the target says it sent.
 *
 * Its `phase` says where it stands toward the target and is where its behaviour branches; when the next
 * request may go (`Turns`) and how much may be in flight (`NewReno`) are policies of their own it asks.
 */
import {
  type Address,
  isWireError,
  TcpFlag,
  type TcpOptions,
  type TcpRepr,
  TcpView,
  type WireError,
} from "../wire/mod.ts";
import { type CongestionControl, NewReno } from "./congestion.ts";
import { RtoEstimator } from "./rto.ts";
import { seqOffset, wireSeq } from "./seq.ts";
import { ClientStream, type StreamError, StreamPool } from "./stream.ts";
import { Turns } from "./turns.ts";

/** The TCP header fields the session reads; `TcpView` has them all. */
export interface SegmentIn {
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly window: number;
  readonly payloadLength: number;
  payload(): Uint8Array;
  options(): TcpOptions | WireError;
}

/**
 * Where a session's segments go: the shell turns them into packets for the target. The segment is the
 * sink's only during the call (sessions reuse one object for the next, and the payload's bytes go back to
 * a pool once the target has them): a sink that keeps it copies it, payload bytes included.
 */
export interface SegmentSink {
  (endpoints: SessionEndpoints, tcp: TcpRepr): void;
}

/**
 * Adds `segment`'s payload (it has some) to `stream` at client offset `start`: a captured header
 * (`TcpView`) hands its frame over in place, with no view made per packet. `capture-cut` when the capture
 * kept less than the packet carried (snaplen): the stream would have a hole for good.
 */
export function addPayload(
  stream: ClientStream,
  segment: SegmentIn,
  start: number,
  ack: number | undefined,
  now: number,
): StreamError | "capture-cut" | undefined {
  const length = segment.payloadLength;
  const captured = segment instanceof TcpView;
  const payload = captured ? segment.bytes : segment.payload();
  const payloadStart = captured ? segment.payloadOffset : 0;
  if ((captured ? segment.capturedPayloadLength : payload.length) < length) return "capture-cut";
  return stream.add(start, payload, ack, now, payloadStart, length);
}

/** Every way a session can end. */
export const SESSION_OUTCOMES = [
  "completed",
  "reset-by-client",
  "reset-by-target",
  "closed-by-target",
  "refused",
  "no-answer",
  "timed-out",
  "abandoned",
  "half-open",
  "buffer-full",
  "too-fragmented",
  "capture-cut",
] as const;

/** How a session ended. */
export type SessionOutcome = typeof SESSION_OUTCOMES[number];

/** Limits and timings of a session; `defaultSessionConfig` holds the usual values. */
export interface SessionConfig {
  /** Bytes of client data held per session (with a per-piece overhead) before it is given up. */
  readonly maxBuffered: number;
  /** How long the next request waits for the target's answer to the previous one before it goes anyway. */
  readonly responseWaitMs: number;
  /**
   * How far behind the client a session may fall: a request captured this long ago goes without
   * waiting for the answer to the previous one (pipelined), so a slow target or a slow turn through
   * intercept cannot make the copy lag further and further, holding more and more.
   */
  readonly maxLagMs: number;
  /** No captured packet and no target reply for this long: the session is reset on the target. */
  readonly idleTimeoutMs: number;
  /**
   * The idle timeout while the client has not completed its handshake online: a spoofed SYN never
   * does, and must not hold a place for long (a real client answers the SYN-ACK within a round trip,
   * or sends its SYN again within seconds).
   */
  readonly halfOpenTimeoutMs: number;
  /** SYN retransmissions before the target counts as not answering. */
  readonly synRetries: number;
  /** Consecutive data timeouts before the session is reset. */
  readonly maxRetransmits: number;
  /** How long a finished session stays to re-acknowledge a retransmitted FIN. */
  readonly lingerMs: number;
  /** Largest segment payload sent, whatever the MSS. */
  readonly maxSegment: number;
  /**
   * Added to the clock to make TCP timestamps. One clock for every session (the shell passes the
   * wall clock's offset) keeps a client port's next connection's timestamps above its last one's, so
   * the target's TIME-WAIT (PAWS) accepts the new SYN.
   */
  readonly timestampBaseMs: number;
}

/** The values `copy` uses unless told otherwise. */
export const defaultSessionConfig: SessionConfig = {
  // 16 MiB of payload in full-size segments, as before each piece counted its overhead (stream.ts).
  maxBuffered: 18 << 20,
  responseWaitMs: 3000,
  maxLagMs: 200,
  idleTimeoutMs: 120_000,
  halfOpenTimeoutMs: 3000,
  synRetries: 4,
  maxRetransmits: 8,
  lingerMs: 2000,
  maxSegment: 1460,
  timestampBaseMs: 0,
};

/**
 * Where a copied session stands toward the target, as smoltcp's `State` (the client's side of TCP):
 * - `syn-sent`: our SYN went; the target has not answered it yet.
 * - `established`: both directions open; the client's requests go in their turns.
 * - `client-closed`: the target acknowledged the client's FIN; its own is still to come (FIN-WAIT-2).
 * - `target-closed`: the target sent its FIN; the client's is still to be delivered (CLOSE-WAIT).
 * - `closed`: both FINs went through; the session completes once the segment that did it is handled.
 * - `ended`: over, `outcome` says how; what lingers of it (`lingersUntil`) the table keeps apart.
 */
export type SessionPhase =
  | "syn-sent"
  | "established"
  | "client-closed"
  | "target-closed"
  | "closed"
  | "ended";

/** The addresses a copied session uses toward the target (as the target sees them). */
export interface SessionEndpoints {
  /** IPv4 as a number, IPv6 as a group string (`wire/address_key.ts`); the same family as the target's. */
  readonly clientAddress: Address;
  readonly clientPort: number;
  readonly targetAddress: Address;
  readonly targetPort: number;
  /**
   * IPv6 only: the client's traffic class and flow label (the low 28 bits of the header's first word),
   * which the copy's packets keep.
   */
  readonly flowInfo?: number;
}

/** A segment `Session` fills, and the options it carries when the session uses timestamps. */
interface SegmentBuffer {
  readonly repr: TcpRepr;
  readonly options: { readonly timestamp: { value: number; echo: number } };
}

/** A segment with every field `#segment` sets (one shape for all of them). */
function newSegment(): SegmentBuffer {
  const repr = {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    options: undefined,
    payload: undefined,
  };
  return { repr, options: { timestamp: { value: 0, echo: 0 } } };
}

/**
 * The segment every session's data and ACKs are made in, one after another: the sink is done with it
 * when it returns (`SegmentSink`), so a segment sent costs no allocation.
 */
const emitted = newSegment();

/**
 * `emitted`, made the segment of `endpoints`' client with these fields: the 32-bit ones (`seq`, `ack`,
 * the timestamp's) signed as the engine keeps them (`seq.ts`), in the segment too: an unsigned value
 * above 2**31 stored there was a new heap number, about one per segment sent. Lingering copies' last ACKs
 * are made in it too (lingering.ts).
 */
export function fillSegment(
  endpoints: SessionEndpoints,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  timestamps: boolean,
  tsValue: number,
  tsEcho: number,
  payload: Uint8Array | undefined,
): TcpRepr {
  const repr = emitted.repr;
  repr.srcPort = endpoints.clientPort;
  repr.dstPort = endpoints.targetPort;
  repr.seq = seq;
  repr.ack = ack;
  repr.flags = flags;
  repr.window = window;
  if (timestamps) {
    emitted.options.timestamp.value = tsValue;
    emitted.options.timestamp.echo = tsEcho;
    repr.options = emitted.options;
  } else {
    repr.options = undefined;
  }
  repr.payload = payload;
  return repr;
}

/**
 * The options of the SYN a session sends, filled from its fields for each one (the sink's only during the
 * call, with the segment): an object of its own per session was about 90 bytes held while it was open.
 */
const synOptions: TcpOptions = { mss: 0, windowScale: undefined, sackPermitted: false, timestamp: undefined };
const synTimestamp = { value: 0, echo: 0 };

/** Idle bytes the sessions' shared `StreamPool` keeps for the next requests: a burst's worth, not more. */
const STREAM_POOL_IDLE_BYTES = 2 << 20;
/**
 * Every session's stream takes its pieces from this pool and gives them back: a session reads its
 * stream only to build a segment, which the sink is done with when it returns (`SegmentSink`).
 */
const streamPool = new StreamPool(STREAM_POOL_IDLE_BYTES);

const TIMESTAMP_OPTION_LENGTH = 12;
const DELAYED_ACK_MS = 40;
const DEFAULT_MSS = 536;
/** How long a session whose target closed waits for the client's FIN (Linux's tcp_fin_timeout is 60 s). */
const HALF_CLOSED_TIMEOUT_MS = 10_000;

/**
 * Sessions over that the table forgot, kept to be opened again as new ones (`Session.open`): with a new
 * connection per request, sessions come and go by the thousand per second, and a session made anew (its
 * stream with its queues and tree, its turns, congestion and RTO state) was kilobytes of garbage each.
 */
const recycledSessions: Session[] = [];
/** Sessions kept for reuse, at most: a burst's worth of ends. */
const KEPT_SESSIONS = 1024;

/** A copied session's state machine. */
export class Session {
  /** Set once the session is over (`ended`). */
  outcome: SessionOutcome | undefined;
  /** Segments sent again after a loss. */
  retransmissions = 0;
  /** Addresses and ports toward the target. */
  endpoints!: SessionEndpoints;
  config!: SessionConfig;
  sink!: SegmentSink;

  // Made once per Session object, and started again with it (`open`).
  readonly #stream = new ClientStream(0, undefined, streamPool);
  /** When each of the client's requests may go. */
  readonly #turns = new Turns(defaultSessionConfig);
  readonly #congestion: CongestionControl = new NewReno();
  readonly #rto = new RtoEstimator();

  // Every field below is set again by `open`; the initial values give V8 the field's kind. A number
  // field that starts `undefined` holds each new fractional value (the clock, deadlines) in a new heap
  // number: bytes per packet on the keep-alive path.
  #phase: SessionPhase = "syn-sent";
  #clientIsn = 0;
  /** What our SYN offers (`synOptions` is made of them as each SYN goes): MSS, window scale (-1: none), SACK. */
  #synMss = 0;
  #synWindowScale = -1;
  #synSackPermitted = false;
  /** Whether the client's SYN had timestamps: ours then has them too. */
  #timestamps = false;
  #clientWindow = 0;
  /** Whether the client's own window values mean to the target what they meant to the online server. */
  #mirrorWindow = false;
  /** The latest clock value seen: timestamps must never go back. */
  #now = 0;

  // Toward the target, in client offsets.
  #sndUna = 0;
  #sndNxt = 0;
  #maxSent = 0;
  #sndWnd = 0;
  #mss = DEFAULT_MSS;
  #targetWindowShift = 0;
  #rtoDeadline = Infinity;
  #timedEnd = -1;
  #timedAt = 0;

  // From the target, in target offsets (its ISN is known once `established`).
  #targetIsn = 0;
  #rcvNxt = 0;
  #ackedRcv = 0;
  #ackDeadline = Infinity;
  #useTimestamps = false;
  #tsRecent = 0;

  /** Whole milliseconds, rounded up: a fractional clock value held here was a heap number per session. */
  #lastActivity = 0;
  /**
   * Where in the client's stream its reset came, once it reset, and when it was captured. The online
   * server had everything the client sent before and answered it, so the target gets that first (the
   * capture may even hand over the last of it after the reset), and the reset takes the turn a FIN would.
   */
  #clientResetOffset = Infinity;
  #clientResetAt = 0;
  /** Whether the client acknowledged anything yet (the online server's SYN-ACK, or data taken over). */
  #clientAcked = false;
  /** Once `ended`: when (whole milliseconds), and whether both FINs went through (its last ACK may be needed again). */
  #endedAt = 0;
  #closedWithFins = false;

  /** Sessions are made by `open`, which gives them their endpoints and first segment. */
  private constructor() {}

  /**
   * A new session, in a session `recycle`d if there is one (every field set again).
   * @param endpoints addresses and ports toward the target
   * @param first the client's SYN as captured, or with `takeOver` the first captured data segment of a
   *   session already open
   */
  static open(
    endpoints: SessionEndpoints,
    config: SessionConfig,
    sink: SegmentSink,
    first: SegmentIn,
    takeOver: boolean,
    now: number,
  ): Session {
    const session = recycledSessions.pop() ?? new Session();
    // Every field as a new session has it, then its SYN goes (and for a take-over its first data).
    session.outcome = undefined;
    session.retransmissions = 0;
    session.endpoints = endpoints;
    session.config = config;
    session.sink = sink;
    session.#stream.restart(config.maxBuffered);
    session.#turns.restart(config);
    session.#congestion.restart();
    session.#rto.restart();
    session.#phase = "syn-sent";
    const captured = optionsOf(first);
    session.#clientIsn = sessionIsn(first);
    session.#timestamps = captured.timestamp !== undefined;
    session.#synMss = takeOver ? config.maxSegment : Math.min(captured.mss ?? DEFAULT_MSS, config.maxSegment);
    session.#synWindowScale = takeOver ? -1 : captured.windowScale ?? -1;
    session.#synSackPermitted = takeOver || captured.sackPermitted === true;
    // Without the client's window scale the window it advertises means nothing: offer the largest.
    session.#mirrorWindow = !takeOver;
    session.#clientWindow = takeOver ? 0xffff : first.window;
    session.#now = now;
    session.#sndUna = 0;
    session.#sndNxt = 0;
    session.#maxSent = 0;
    session.#sndWnd = 0;
    session.#mss = DEFAULT_MSS;
    session.#targetWindowShift = 0;
    session.#rtoDeadline = Infinity;
    session.#timedEnd = -1;
    session.#timedAt = 0;
    session.#targetIsn = 0;
    session.#rcvNxt = 0;
    session.#ackedRcv = 0;
    session.#ackDeadline = Infinity;
    session.#useTimestamps = false;
    session.#tsRecent = 0;
    session.#lastActivity = Math.ceil(now);
    session.#clientResetOffset = Infinity;
    session.#clientResetAt = 0;
    session.#clientAcked = false;
    session.#endedAt = 0;
    session.#closedWithFins = false;
    session.#sendSyn(now);
    if (takeOver) session.onClient(first, now);
    return session;
  }

  /**
   * Gives a session that is over to `open` to start again as another: only once nothing refers to it any
   * more (the table, which keeps what lingers of it apart: `lingersUntil`, `finalAck`; a session ends with
   * its stream given back already). A session not over is left alone.
   */
  recycle(): void {
    if (this.#phase !== "ended" || recycledSessions.length >= KEPT_SESSIONS) return;
    recycledSessions.push(this);
  }

  /**
   * Once over: until when its client address and port stay taken toward the target, as TCP's TIME-WAIT
   * (`lingerMs` after its end, whole milliseconds), so that no late packet of it meets a new copy there.
   */
  get lingersUntil(): number | undefined {
    return this.#phase === "ended" ? this.#endedAt + this.config.lingerMs : undefined;
  }

  /**
   * Once over with both FINs through: its last ACK, to send again while it lingers when the target repeats
   * its FIN because ours was lost (the shared segment: the caller's only during the call).
   */
  finalAck(): TcpRepr | undefined {
    if (!this.#closedWithFins) return undefined;
    return fillSegment(
      this.endpoints,
      wireSeq(this.#clientIsn, this.#sndNxt),
      wireSeq(this.#targetIsn, this.#rcvNxt),
      TcpFlag.ACK,
      this.#clientWindow,
      this.#useTimestamps,
      this.#tsValue(),
      this.#tsRecent,
      undefined,
    );
  }

  /** Where the session stands toward the target. */
  get phase(): SessionPhase {
    return this.#phase;
  }

  /** Whether the client has not completed its handshake online yet (a SYN and nothing more). */
  get halfOpen(): boolean {
    return !this.#clientAcked;
  }

  /** Whether the session is over (what lingers of it, `lingersUntil`, the table keeps apart). */
  get finished(): boolean {
    return this.#phase === "ended";
  }

  /** Client bytes held for the target. */
  get buffered(): number {
    return this.#stream.buffered;
  }

  /** The earliest time `onTick` has something to do. */
  get nextDeadline(): number {
    if (this.#phase === "ended") return Infinity;
    const deadline = Math.min(
      this.#rtoDeadline,
      this.#ackDeadline,
      this.#lastActivity + this.#idleLimitMs(),
    );
    // Rounded up to whole milliseconds: an integer comes back as a small integer, where a fractional
    // deadline (the clock is `performance.now()`) came back as a new heap number on every packet.
    return Math.ceil(Math.min(deadline, this.#releaseTime(), this.#resetTime()));
  }

  /** A packet the client sent the online server. */
  onClient(segment: SegmentIn, now: number): void {
    if (this.#phase === "ended") return;
    this.#now = Math.max(this.#now, now);
    this.#lastActivity = Math.ceil(now);
    const flags = segment.flags;
    const start = seqOffset(this.#clientIsn, segment.seq, this.#stream.end);
    if (flags & TcpFlag.RST) {
      // Before its handshake ACK the client's own reset sits right after the SYN (it answers a SYN-ACK
      // after an aborted connect). Another answers a segment of an older connection on this port, such
      // as the online server's challenge ACK from TIME_WAIT when the port comes back; the server drops
      // it and the client sends its SYN again.
      if (!this.#clientAcked && start !== this.#stream.end) return;
      if (this.#clientResetOffset === Infinity) {
        // A reset's sequence number may be anything but where the stream ended: then it ends where it is.
        const plausible = start >= this.#stream.end && start <= this.#stream.end + this.config.maxBuffered;
        this.#clientResetOffset = plausible ? start : this.#stream.end;
        this.#clientResetAt = now;
      }
      this.#maybeResetForClient(now);
      return;
    }
    if (start >= this.#clientResetOffset) return; // nothing the client sent after its reset counts
    if (flags & TcpFlag.SYN) return; // a retransmitted SYN: ours has its own timer
    if (this.#mirrorWindow) this.#clientWindow = segment.window;
    const ack = flags & TcpFlag.ACK ? segment.ack | 0 : undefined; // signed, as the engine keeps it (seq.ts)
    if (ack !== undefined) this.#clientAcked = true;
    const length = segment.payloadLength;
    if (length > 0) {
      const refused = addPayload(this.#stream, segment, start, ack, now);
      if (refused !== undefined) {
        this.#sendReset();
        this.#end(refused, now, false);
        return;
      }
    } else if (ack !== undefined && !(flags & TcpFlag.FIN)) {
      this.#stream.noteHandshakeAck(ack);
    }
    if (flags & TcpFlag.FIN) this.#stream.addFin(start + length, ack, now);
    this.#transmit(now);
  }

  /** A reply header the target sent to this session's client address, as intercept forwarded it. */
  onTarget(segment: SegmentIn, now: number): void {
    this.#now = Math.max(this.#now, now);
    if (this.#phase === "ended") return;
    this.#lastActivity = Math.ceil(now);
    const flags = segment.flags;
    if (this.#phase === "syn-sent") {
      this.#onHandshakeReply(segment, now);
      return;
    }
    if (flags & TcpFlag.RST) {
      // Once the target has the client's FIN, the conversation was whole: its reset is how it ends.
      this.#end(this.#phase === "client-closed" ? "completed" : "reset-by-target", now, false);
      return;
    }
    if (flags & TcpFlag.SYN) {
      this.#sendAck(); // our handshake ACK was lost
      return;
    }
    this.#readTimestamp(segment);
    if (flags & TcpFlag.ACK) this.#onAck(segment, now);
    this.#onTargetData(segment, now);
    this.#transmit(now);
    this.#maybeComplete(now);
    this.#maybeResetForClient(now);
  }

  /** Runs the timers that are due. */
  onTick(now: number): void {
    this.#now = Math.max(this.#now, now);
    if (this.#phase === "ended") return;
    if (now >= this.#lastActivity + this.#idleLimitMs()) {
      this.#sendReset();
      this.#end(this.#clientAcked ? "timed-out" : "half-open", now, false);
      return;
    }
    if (now >= this.#rtoDeadline) this.#onRetransmitTimeout(now);
    if (this.finished) return; // the SYN or the data went unanswered too often
    if (now >= this.#ackDeadline) this.#sendAck();
    this.#transmit(now);
    this.#maybeResetForClient(now);
  }

  /**
   * Ends the session from outside (shutdown, or the client reused the port; `half-open` when it makes
   * room for a newer session at the cap): resets the target side.
   */
  abandon(now: number, outcome: "abandoned" | "half-open" = "abandoned"): void {
    if (this.#phase === "ended") return;
    this.#sendReset();
    this.#end(outcome, now, false);
  }

  #onHandshakeReply(segment: SegmentIn, now: number): void {
    const flags = segment.flags;
    const acksSyn = (flags & TcpFlag.ACK) !== 0 && (segment.ack | 0) === wireSeq(this.#clientIsn, 1);
    if (flags & TcpFlag.RST) {
      if (acksSyn || !(flags & TcpFlag.ACK)) this.#end("refused", now, false);
      return;
    }
    if (flags & TcpFlag.ACK && !acksSyn) {
      // The target still holds an older connection on this port (TIME-WAIT answers our SYN with its
      // own ACK): reset that one, as RFC 793 says for an unacceptable ACK, and ask again at once.
      this.#sendBareReset(segment.ack);
      this.#sendSyn(now);
      return;
    }
    if (!(flags & TcpFlag.SYN)) return;
    const options = optionsOf(segment);
    this.#phase = "established";
    this.#targetIsn = segment.seq | 0;
    this.#rcvNxt = 1;
    this.#ackedRcv = 0;
    const scaling = options.windowScale !== undefined && this.#synWindowScale >= 0;
    if (scaling) this.#targetWindowShift = Math.min(options.windowScale!, 14);
    if (this.#synWindowScale >= 0 && !scaling) {
      this.#mirrorWindow = false;
      this.#clientWindow = 0xffff;
    }
    const timestamps = this.#timestamps && options.timestamp !== undefined;
    this.#mss = Math.max(
      64,
      Math.min(options.mss ?? DEFAULT_MSS, this.config.maxSegment) -
        (timestamps ? TIMESTAMP_OPTION_LENGTH : 0),
    );
    this.#useTimestamps = timestamps;
    if (options.timestamp) this.#tsRecent = options.timestamp.value | 0;
    this.#sndWnd = segment.window; // never scaled in a SYN
    this.#congestion.onEstablished(this.#mss);
    if (this.#rto.backoffs === 0) this.#rto.sample(now - this.#timedAt);
    this.#rto.resetBackoff();
    this.#sndUna = 1;
    this.#turns.delivered(1, now);
    this.#sndNxt = Math.max(this.#sndNxt, 1);
    this.#maxSent = Math.max(this.#maxSent, 1);
    this.#rtoDeadline = Infinity;
    this.#timedEnd = -1;
    this.#turns.sent(now); // what the target says from now on answers the client
    this.#transmit(now);
    // The handshake's ACK rides on the first data segment when the client's request is already here.
    if (this.#ackedRcv < this.#rcvNxt) this.#sendAck();
  }

  #readTimestamp(segment: SegmentIn): void {
    if (!this.#useTimestamps) return;
    // A captured header (`TcpView`) is read in place: every reply has this option, and parsing them all allocates.
    const value = segment instanceof TcpView
      ? segment.timestampValue()
      : optionsOf(segment).timestamp?.value ?? -1;
    if (value >= 0) this.#tsRecent = value | 0;
  }

  /** The ack's timestamp echo, if it has one; a captured header (`TcpView`) is read in place. */
  #timestampEcho(segment: SegmentIn): number | undefined {
    if (!(segment instanceof TcpView)) return optionsOf(segment).timestamp?.echo;
    const echo = segment.timestampEcho();
    return echo >= 0 ? echo | 0 : undefined;
  }

  #onAck(segment: SegmentIn, now: number): void {
    const acked = seqOffset(this.#clientIsn, segment.ack, this.#sndUna);
    if (acked > this.#maxSent || acked < this.#sndUna) return; // acks what was never sent, or old news
    const window = segment.window << this.#targetWindowShift;
    if (acked > this.#sndUna) {
      const newlyAcked = acked - this.#sndUna;
      if (this.#timedEnd > 0 && acked >= this.#timedEnd) {
        this.#rto.sample(now - this.#timedAt);
        this.#timedEnd = -1;
      }
      this.#rto.resetBackoff();
      this.#sndUna = acked;
      this.#turns.delivered(acked, now);
      const fin = this.#stream.finOffset;
      if (fin !== undefined && acked > fin) this.#closed("client");
      // An ack beyond what went again since a timeout's go-back: the originals got through, so the
      // go-back resumes where sending had reached rather than resending what the target has.
      if (this.#sndNxt < acked) this.#sndNxt = this.#maxSent;
      this.#stream.release(Math.min(acked, this.#stream.end));
      const echo = this.#useTimestamps ? this.#timestampEcho(segment) : undefined;
      const verdict = this.#congestion.onAck(acked, newlyAcked, echo);
      if (verdict === "retransmit") this.#retransmitFirst(now);
      else if (verdict === "resume") this.#sndNxt = this.#maxSent;
      this.#rtoDeadline = Infinity;
    } else if (
      // A duplicate as RFC 5681 counts them: nothing new, no data, no FIN, the same window, data outstanding.
      segment.payloadLength === 0 && !(segment.flags & TcpFlag.FIN) && this.#sndUna < this.#sndNxt &&
      window === this.#sndWnd
    ) {
      if (this.#congestion.onDuplicateAck(this.#sndUna, this.#maxSent)) this.#retransmitFirst(now);
    }
    this.#sndWnd = window;
  }

  #onTargetData(segment: SegmentIn, now: number): void {
    const fin = (segment.flags & TcpFlag.FIN) !== 0;
    const length = segment.payloadLength + (fin ? 1 : 0);
    if (length === 0) return;
    const start = seqOffset(this.#targetIsn, segment.seq, this.#rcvNxt);
    const end = start + length;
    if (end <= this.#rcvNxt) {
      this.#sendAck(); // a retransmission: our ack was lost
      return;
    }
    // Missing replies were lost on the way to intercept, not by the target: acknowledge past them.
    this.#rcvNxt = end;
    this.#turns.answered(now);
    if (fin) this.#closed("target");
    if (fin || this.#rcvNxt - this.#ackedRcv >= 2 * this.#mss) this.#sendAck();
    else if (this.#ackDeadline === Infinity) this.#ackDeadline = now + DELAYED_ACK_MS;
  }

  #onRetransmitTimeout(now: number): void {
    this.#rto.backOff();
    this.#timedEnd = -1;
    this.#rtoDeadline = Infinity;
    if (this.#phase === "syn-sent") {
      if (this.#rto.backoffs > this.config.synRetries) {
        this.#end("no-answer", now, false);
        return;
      }
      this.retransmissions++;
      this.#sendSyn(now);
      return;
    }
    if (this.#rto.backoffs > this.config.maxRetransmits) {
      this.#sendReset();
      this.#end("timed-out", now, false);
      return;
    }
    if (this.#sndUna < this.#sndNxt) {
      this.#congestion.onTimeout(
        this.#sndUna,
        this.#maxSent,
        this.#useTimestamps ? this.#tsValue() : undefined,
      );
      this.#sndNxt = this.#sndUna; // go back: resend from the first unacknowledged byte
      this.retransmissions++;
      this.#transmit(now, true);
    } else {
      this.#transmit(now, true); // the window is shut: probe it with one byte
    }
  }

  #retransmitFirst(now: number): void {
    const saved = this.#sndNxt;
    this.#sndNxt = this.#sndUna;
    this.retransmissions++;
    this.#sendData(now, Math.min(this.#mss, this.#sendLimit() - this.#sndUna), true);
    this.#sndNxt = Math.max(saved, this.#sndNxt);
  }

  /** Releases requests that may go, then sends what the windows allow. */
  #transmit(now: number, probe = false): void {
    if (this.#phase === "syn-sent" || this.#phase === "ended") return;
    this.#turns.release(this.#stream, now);
    const limit = this.#sendLimit();
    const windowEnd = this.#sndUna + Math.max(Math.min(this.#sndWnd, this.#congestion.window), probe ? 1 : 0);
    let sentSomething = false;
    while (this.#sndNxt < limit && this.#sndNxt < windowEnd) {
      const length = Math.min(this.#mss, limit - this.#sndNxt, windowEnd - this.#sndNxt);
      this.#sendData(now, length, this.#sndNxt < this.#maxSent);
      sentSomething = true;
    }
    if (
      !sentSomething && this.#sndNxt === limit && this.#finAllowed() &&
      this.#sndNxt === this.#stream.finOffset
    ) {
      this.#sendData(now, 0, this.#sndNxt < this.#maxSent);
    }
    this.#armRetransmitTimer(now, limit);
  }

  /**
   * Keeps the retransmission timer running while anything is unacknowledged, and while data waits
   * behind a shut window (then it fires a window probe).
   */
  #armRetransmitTimer(now: number, limit: number): void {
    const waiting = this.#sndUna < this.#sndNxt || this.#sndNxt < limit;
    if (!waiting) this.#rtoDeadline = Infinity;
    else if (this.#rtoDeadline === Infinity) this.#rtoDeadline = now + this.#rto.timeout;
  }

  /** Sends `length` bytes from `sndNxt`, with FIN when they end the stream and the FIN may go. */
  #sendData(now: number, length: number, retransmission: boolean): void {
    const start = this.#sndNxt;
    const fin = this.#finAllowed() && start + length === this.#stream.finOffset;
    const payload = length > 0 ? this.#stream.readShared(start, length) : undefined;
    let flags = TcpFlag.ACK | (fin ? TcpFlag.FIN : 0);
    if (payload !== undefined && start + length === this.#sendLimit()) flags |= TcpFlag.PSH;
    this.#emit(wireSeq(this.#clientIsn, start), flags, payload);
    this.#sndNxt = start + length + (fin ? 1 : 0);
    if (this.#sndNxt > this.#maxSent) {
      this.#maxSent = this.#sndNxt;
      this.#turns.sent(now);
    }
    if (!retransmission && this.#timedEnd < 0) {
      this.#timedEnd = this.#sndNxt;
      this.#timedAt = now;
    }
  }

  /** The offset up to which data may be sent now: the end of the released requests. */
  #sendLimit(): number {
    return this.#stream.nextRequestStart ?? this.#stream.end;
  }

  #finAllowed(): boolean {
    return this.#stream.finOffset !== undefined && this.#stream.nextRequestStart === undefined;
  }

  /** When the next request may go (a time already past: now); `Infinity` while nothing waits. */
  #releaseTime(): number {
    return this.#phase === "syn-sent" ? Infinity : this.#turns.nextRelease(this.#stream);
  }

  /** When the client's reset may go to the target: after what it sent before, in its turn. */
  #resetTime(): number {
    if (this.#clientResetOffset === Infinity) return Infinity;
    if (this.#clientResetOffset <= 1) return -Infinity; // the client sent nothing before it
    if (this.#phase === "syn-sent") return Infinity; // the handshake first (or its failure)
    // Bytes from before the reset still missing: captured late, or lost by the capture (then wait no more).
    const sent = this.#stream.finOffset === undefined ? this.#stream.end : this.#stream.finOffset + 1;
    if (sent < this.#clientResetOffset) return this.#clientResetAt + this.config.responseWaitMs;
    return this.#stream.nextRequestStart === undefined ? this.#turns.closeDueAt(this.#stream.end) : Infinity;
  }

  /**
   * How long the session may stay silent. Once the target closed its side and has everything the client
   * sent, only the client's FIN is missing; when the capture dropped it, waiting the whole idle timeout
   * would keep the session for minutes, so a shorter wait applies, as Linux's FIN-WAIT-2 timeout does.
   */
  #idleLimitMs(): number {
    if (!this.#clientAcked) return Math.min(this.config.idleTimeoutMs, this.config.halfOpenTimeoutMs);
    const closedByTarget = this.#phase === "target-closed" && this.#sndUna >= this.#stream.end;
    return closedByTarget
      ? Math.min(this.config.idleTimeoutMs, HALF_CLOSED_TIMEOUT_MS)
      : this.config.idleTimeoutMs;
  }

  #maybeResetForClient(now: number): void {
    if (this.#phase === "ended" || this.#resetTime() > now) return;
    this.#sendReset();
    this.#end("reset-by-client", now, false);
  }

  /** One side's FIN went through: the client's (the target acknowledged it) or the target's. */
  #closed(side: "client" | "target"): void {
    if (this.#phase === "established") this.#phase = side === "client" ? "client-closed" : "target-closed";
    else if (this.#phase === (side === "client" ? "target-closed" : "client-closed")) this.#phase = "closed";
  }

  #maybeComplete(now: number): void {
    if (this.#phase !== "closed") return;
    if (this.#ackedRcv < this.#rcvNxt) this.#sendAck();
    this.#end("completed", now, true);
  }

  /** Ends the session; `closed` when both FINs went through, so the last ACK may be needed again. */
  #end(outcome: SessionOutcome, now: number, closed: boolean): void {
    this.#phase = "ended";
    this.outcome = outcome;
    this.#stream.dispose(); // nothing reads it any more: its pieces serve the next sessions
    this.#rtoDeadline = Infinity;
    this.#ackDeadline = Infinity;
    // Whole milliseconds, as `nextDeadline`'s: a fractional one would come back from it a heap number.
    this.#endedAt = Math.ceil(now);
    this.#closedWithFins = closed;
  }

  #sendSyn(now: number): void {
    synOptions.mss = this.#synMss;
    synOptions.windowScale = this.#synWindowScale >= 0 ? this.#synWindowScale : undefined;
    synOptions.sackPermitted = this.#synSackPermitted;
    synTimestamp.value = this.#tsValue();
    synOptions.timestamp = this.#timestamps ? synTimestamp : undefined;
    const window = Math.min(this.#clientWindow, 0xffff);
    const syn = fillSegment(this.endpoints, this.#clientIsn, 0, TcpFlag.SYN, window, false, 0, 0, undefined);
    syn.options = synOptions;
    this.sink(this.endpoints, syn);
    this.#sndNxt = Math.max(this.#sndNxt, 1);
    this.#maxSent = Math.max(this.#maxSent, 1);
    this.#timedAt = now;
    this.#rtoDeadline = now + this.#rto.timeout;
  }

  #sendAck(): void {
    this.#emit(wireSeq(this.#clientIsn, this.#sndNxt), TcpFlag.ACK, undefined);
  }

  #sendReset(): void {
    const seq = wireSeq(this.#clientIsn, Math.max(this.#sndNxt, 1));
    if (this.#phase === "syn-sent") this.#sendBareReset(seq);
    else this.#emit(seq, TcpFlag.RST | TcpFlag.ACK, undefined);
  }

  /** A RST without ACK: before the target's ISN is known there is nothing to acknowledge. */
  #sendBareReset(seq: number): void {
    this.sink(this.endpoints, {
      srcPort: this.endpoints.clientPort,
      dstPort: this.endpoints.targetPort,
      seq,
      ack: 0,
      flags: TcpFlag.RST,
      window: 0,
    });
  }

  #emit(seq: number, flags: number, payload: Uint8Array | undefined): void {
    this.#ackedRcv = this.#rcvNxt;
    this.#ackDeadline = Infinity;
    this.sink(this.endpoints, this.#segment(seq, flags, payload));
  }

  /** `emitted`, made a segment acknowledging everything the target sent. */
  #segment(seq: number, flags: number, payload: Uint8Array | undefined): TcpRepr {
    const ack = wireSeq(this.#targetIsn, this.#rcvNxt);
    return fillSegment(
      this.endpoints,
      seq,
      ack,
      flags,
      this.#clientWindow,
      this.#useTimestamps,
      this.#tsValue(),
      this.#tsRecent,
      payload,
    );
  }

  #tsValue(): number {
    return Math.floor(this.config.timestampBaseMs + this.#now) | 0;
  }
}

/**
 * The client ISN of a session whose first captured packet is `first`: a SYN's own, or for a session taken
 * over from its data, the number just before that data; signed, as the engine keeps wire values (`seq.ts`).
 */
export function sessionIsn(first: { readonly seq: number; readonly flags: number }): number {
  return (first.flags & TcpFlag.SYN ? first.seq : first.seq - 1) | 0;
}

/**
 * Whether a client's packet starts a session, given the ISN of the session its address and port have
 * now (`undefined` for none): a SYN with another ISN (a new connection, perhaps on a reused port), or,
 * without a session, data (a connection open before the capture began, taken over).
 */
export function startsSession(
  knownIsn: number | undefined,
  tcp: { readonly seq: number; readonly flags: number; readonly payloadLength: number },
): boolean {
  const flags = tcp.flags;
  if (flags & TcpFlag.SYN && !(flags & TcpFlag.ACK)) return (tcp.seq | 0) !== knownIsn;
  return knownIsn === undefined && tcp.payloadLength > 0 && !(flags & TcpFlag.RST);
}

/**
 * A segment's options, the caller's until the next call; unreadable ones count as none (the segment itself
 * is still good).
 */
function optionsOf(segment: SegmentIn): TcpOptions {
  // A captured header (`TcpView`) is parsed into two objects, reused: callers are done with them at once.
  const options = segment instanceof TcpView
    ? segment.optionsInto(parsedOptions, parsedTimestamp)
    : segment.options();
  return isWireError(options) ? NO_OPTIONS : options;
}

/** What `optionsOf` parses a captured header's options into. */
const parsedOptions: TcpOptions = {};
/** Where `optionsOf` parses a captured header's timestamp option. */
const parsedTimestamp = { value: 0, echo: 0 };
const NO_OPTIONS: TcpOptions = Object.freeze({});
