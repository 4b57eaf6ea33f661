/**
 * HTTP/2 over `copy --connect`: a copy keeps within the target's SETTINGS_MAX_CONCURRENT_STREAMS, and the
 * streams the target refuses are counted. Pure: the client's bytes and the target's come in, bytes for the
 * connection go out.
 *
 * A copy that has fallen behind delivers the client's frames in bursts: requests the client spread out
 * arrive at the target together and a server with a lower limit than the online one refuses the excess
 * (RST_STREAM REFUSED_STREAM). So each connection whose client's stream begins with the connection preface
 * (h2c with prior knowledge) goes through an `Http2Gate`: it splits the client's bytes into frames and reads
 * the target's, and a frame that would open a stream beyond the target's limit is held until one of the
 * open streams closes. HPACK's state depends on header blocks arriving in order, so HEADERS and
 * CONTINUATION frames never pass one another, and a stream's frames keep their order; frames of the
 * connection (stream 0: SETTINGS, PING, WINDOW_UPDATE, GOAWAY) and of streams already open pass other
 * streams' held frames, or target and copy could wait on each other (a request body, flow control).
 * The target's SETTINGS are read even when they come before the client's preface. Frames that pass are written as the client's bytes came, in one piece per stretch;
 * held ones are kept as views of those bytes (the sink never changes bytes it was given).
 */
import type { ConnectionSink, ConnectSession } from "./session.ts";
import type { TurnEnd } from "./turns.ts";

/** The client's connection preface (RFC 9113 §3.4), which h2c with prior knowledge begins with. */
export const HTTP2_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Whether `bytes` begin with the whole HTTP/2 preface: how the packet transport, which sees only the
 * client's side, tells HTTP/2 sessions (a preface cut across two segments is missed).
 */
export function beginsWithHttp2Preface(bytes: Uint8Array): boolean {
  if (bytes.length < HTTP2_PREFACE.length || bytes[0] !== HTTP2_PREFACE[0]) return false;
  for (let i = 1; i < HTTP2_PREFACE.length; i++) if (bytes[i] !== HTTP2_PREFACE[i]) return false;
  return true;
}

/** Frame header layout (RFC 9113 §4.1): length (24 bits), type, flags, stream id (31 bits). */
const FRAME_HEADER = 9;
const TYPE = 3;
const FLAGS = 4;
const STREAM_ID = 5;

/** Frame types this module acts on. */
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const GOAWAY = 0x7;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTING_SIZE = 6;
const REFUSED_STREAM = 0x7;
const NO_ERROR = 0x0;

/** A stream's halves that ended (END_STREAM), as bits of the open streams' map. */
const CLIENT_ENDED = 1;
const TARGET_ENDED = 2;

/** What the gates of a run counted, summed over every HTTP/2 connection. */
export interface Http2Counts {
  /** Connections whose client began with the HTTP/2 preface. */
  sessions: number;
  /** Streams the copy opened on the target. */
  streamsOpened: number;
  /** Streams whose opening frames waited: the target's limit was reached, or its SETTINGS had not come. */
  streamsHeld: number;
  /** Streams the target refused: RST_STREAM REFUSED_STREAM, or beyond a GOAWAY's last stream id. */
  streamsRefused: number;
  /** Streams the target reset with another error code. */
  streamsReset: number;
  /** Streams still held when their connection ended (the target closed or reset it): never sent. */
  streamsUnsent: number;
}

/** Every count at 0. */
export function noHttp2Counts(): Http2Counts {
  return {
    sessions: 0,
    streamsOpened: 0,
    streamsHeld: 0,
    streamsRefused: 0,
    streamsReset: 0,
    streamsUnsent: 0,
  };
}

/** Where a gate's bytes go: the connection's writing side. */
export interface GateOutput {
  write(bytes: Uint8Array): void;
  /** The client closed and every held frame went: the connection's writing side may shut. */
  shutdown(): void;
}

/** A client frame kept back, as views of the client's bytes. */
interface HeldFrame {
  readonly streamId: number;
  readonly type: number;
  readonly flags: number;
  /** Whether it is the HEADERS frame that opens its stream. */
  readonly opens: boolean;
  readonly pieces: Uint8Array[];
  /** Its bytes that came. */
  bytes: number;
  /** Whether all of its bytes came. */
  complete: boolean;
}

/**
 * Reads the 9-byte frame headers of a byte stream that arrives in pieces cut anywhere. A header wholly in
 * one piece is read where it lies; one cut in two is gathered here.
 */
class FrameHeaderReader {
  readonly bytes = new Uint8Array(FRAME_HEADER);
  /** Header bytes gathered so far. */
  filled = 0;
  length = 0;
  type = 0;
  flags = 0;
  streamId = 0;

  /** Takes header bytes from `chunk` at `at`; returns how many. The header is whole once `filled` is 9. */
  take(chunk: Uint8Array, at: number): number {
    const n = Math.min(FRAME_HEADER - this.filled, chunk.length - at);
    for (let i = 0; i < n; i++) this.bytes[this.filled + i] = chunk[at + i]; // no view made per frame
    this.filled += n;
    if (this.filled === FRAME_HEADER) {
      const b = this.bytes;
      this.length = (b[0] << 16) | (b[1] << 8) | b[2];
      this.type = b[TYPE];
      this.flags = b[FLAGS];
      this.streamId = ((b[STREAM_ID] & 0x7f) << 24 | b[STREAM_ID + 1] << 16 | b[STREAM_ID + 2] << 8 |
        b[STREAM_ID + 3]) >>> 0;
    }
    return n;
  }
}

/**
 * Pieces of the client's bytes written in order, those that lay side by side joined into one write: held
 * frames released together go as one piece when nothing passed between them.
 */
class WriteRun {
  #run: Uint8Array | undefined;

  constructor(readonly output: GateOutput) {}

  add(piece: Uint8Array): void {
    const run = this.#run;
    if (run === undefined) {
      this.#run = piece;
    } else if (piece.buffer === run.buffer && run.byteOffset + run.length === piece.byteOffset) {
      this.#run = new Uint8Array(run.buffer, run.byteOffset, run.length + piece.length);
    } else {
      this.output.write(run);
      this.#run = piece;
    }
  }

  flush(): void {
    if (this.#run === undefined) return;
    this.output.write(this.#run);
    this.#run = undefined;
  }
}

/** Whether frames of `type` carry a header block, whose order HPACK's state depends on. */
function isHeaderBlock(type: number): boolean {
  return type === HEADERS || type === CONTINUATION || type === PUSH_PROMISE;
}

/** Where the gate is in the client's byte stream. */
type ClientPhase = "preface" | "frames" | "plain";

/**
 * One connection's HTTP/2 gate: the client's bytes in (`fromClient`), the target's in (`fromTarget`), the
 * bytes the connection may carry now out, in an order the target accepts.
 */
export class Http2Gate {
  /** "plain" once the client's bytes turned out not to begin with the preface: they all pass. */
  phase: ClientPhase = "preface";
  /** The target's limit on open streams: none unless its SETTINGS say (RFC 9113 §6.5.2). */
  maxConcurrentStreams = Infinity;
  /** Whether the target's first SETTINGS came: until then no stream opens, its limit is unknown. */
  #settingsKnown = false;
  /** Streams opened on the target and not yet closed, with the halves that ended. */
  readonly #open = new Map<number, number>();
  /** The highest stream id whose opening HEADERS went to the target. */
  #highestOpened = 0;
  /** The highest stream id whose opening HEADERS the client sent. */
  #highestSeen = 0;
  /** The client's preface bytes seen, until it is whole. */
  #prefaceSeen = 0;
  /** The lowest last-stream-id of the target's GOAWAYs. */
  #goawayLast = Infinity;
  /** Held client frames, in the client's order. */
  readonly #held: HeldFrame[] = [];
  /** Bytes of the held frames. */
  #heldBytes = 0;
  /** Held frames per stream: no frame passes a held one of its own stream. */
  readonly #heldByStream = new Map<number, number>();
  /** Held frames that are not part of a header block. */
  #heldOthers = 0;
  /** Streams with a frame kept back during a release (emptied after each). */
  readonly #kept = new Set<number>();
  /** Whether a stream closed (or the limit moved) since the last release: held frames may go. */
  #releaseWanted = false;
  #shutdownPending = false;

  // The client's side: the frame being read, and whether it goes now or is held.
  readonly #client = new FrameHeaderReader();
  /** Payload bytes of the current client frame still to come. */
  #clientRemaining = 0;
  /** The current client frame, when held; `undefined` when it passes. */
  #clientHeldFrame: HeldFrame | undefined;
  /** Whether a passing frame is partly written: nothing may go in between. */
  #midFrame = false;

  // The target's side: the frame being read, and the part of its payload this gate reads.
  readonly #target = new FrameHeaderReader();
  #targetRemaining = 0;
  /** Payload bytes read of the current target frame. */
  #targetRead = 0;
  readonly #scratch = new Uint8Array(8);
  #scratchFilled = 0;
  /** Held frames on their way out, joined where they lay side by side in the client's bytes. */
  readonly #run: WriteRun;

  /**
   * @param output where the connection's bytes go
   * @param counts the run's counts, which this gate adds to
   * @param maxHeldBytes client bytes held at most; past them held frames go whatever the target's limit
   */
  constructor(readonly output: GateOutput, readonly counts: Http2Counts, readonly maxHeldBytes: number) {
    this.#run = new WriteRun(output);
  }

  /** Whether client frames wait for the target. */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /** Streams open on the target now. */
  get openStreams(): number {
    return this.#open.size;
  }

  /** The client's bytes, in order (never changed afterwards: held frames keep views of them). */
  fromClient(bytes: Uint8Array): void {
    let at = 0;
    if (this.phase === "preface") at = this.#readPreface(bytes);
    if (this.phase !== "frames") {
      this.output.write(bytes); // all of it, or all of it the preface so far: it passes
      return;
    }
    // Where the bytes that pass begin (the preface's too): they go in one write per stretch.
    let passFrom = 0;
    const header = this.#client;
    while (at < bytes.length) {
      if (this.#clientRemaining > 0) {
        const n = Math.min(this.#clientRemaining, bytes.length - at);
        const held = this.#clientHeldFrame;
        if (held !== undefined) {
          held.pieces.push(bytes.subarray(at, at + n));
          held.bytes += n;
          this.#heldBytes += n;
        }
        at += n;
        this.#clientRemaining -= n;
        if (held !== undefined) passFrom = at;
        if (this.#clientRemaining === 0) passFrom = this.#clientFrameEnd(bytes, passFrom, at);
        continue;
      }
      const begun = header.filled;
      const headerStart = at;
      at += header.take(bytes, at);
      if (header.filled < FRAME_HEADER) {
        // The rest of this header comes with the next bytes: the part here waits in the reader.
        this.#flush(bytes, passFrom, headerStart);
        return;
      }
      header.filled = 0;
      this.#clientRemaining = header.length;
      const { type, flags, streamId } = header;
      const opens = type === HEADERS && streamId > this.#highestSeen;
      if (opens) this.#highestSeen = streamId;
      if (this.#clientPasses(type, streamId, opens)) {
        if (begun > 0) {
          // The header was cut between two writes: its first part waited here, so it goes as a copy.
          this.output.write(header.bytes.slice());
          passFrom = at;
        }
        this.#wrote(type, flags, streamId, opens);
        this.#midFrame = true;
      } else {
        this.#flush(bytes, passFrom, headerStart);
        // A frame wholly in these bytes is kept as one view of them; else its pieces gather as they come.
        const whole = begun === 0 && at + header.length <= bytes.length;
        const first = begun > 0
          ? header.bytes.slice()
          : bytes.subarray(headerStart, whole ? at + header.length : at);
        this.#clientHeldFrame = {
          streamId,
          type,
          flags,
          opens,
          pieces: [first],
          bytes: first.length,
          complete: false,
        };
        this.#hold(this.#clientHeldFrame);
        this.#heldBytes += first.length;
        if (whole) {
          at += header.length;
          this.#clientRemaining = 0;
        }
        passFrom = at;
      }
      if (this.#clientRemaining === 0) passFrom = this.#clientFrameEnd(bytes, passFrom, at);
    }
    this.#flush(bytes, passFrom, at);
  }

  /** The connection ended: the streams whose opening frames are still held never reach the target. */
  abandon(): void {
    for (const frame of this.#held) if (frame.opens) this.counts.streamsUnsent++;
  }

  /** The client closed: its FIN goes once nothing is held. */
  shutdown(): void {
    if (this.holding) this.#shutdownPending = true;
    else this.output.shutdown();
  }

  /** The target's bytes, in order (read during the call only). */
  fromTarget(bytes: Uint8Array): void {
    // A server may send its SETTINGS before it has the client's preface: they are read meanwhile.
    if (this.phase === "plain") return;
    const header = this.#target;
    let at = 0;
    while (at < bytes.length) {
      if (this.#targetRemaining > 0) {
        const n = Math.min(this.#targetRemaining, bytes.length - at);
        this.#targetPayload(bytes, at, at + n);
        at += n;
        this.#targetRemaining -= n;
        if (this.#targetRemaining === 0) this.#targetFrameEnd();
        continue;
      }
      at += header.take(bytes, at);
      if (header.filled < FRAME_HEADER) break;
      header.filled = 0;
      this.#targetRemaining = header.length;
      this.#targetRead = 0;
      this.#scratchFilled = 0;
      this.#targetFrameBegins();
      if (this.#targetRemaining === 0) this.#targetFrameEnd();
    }
    // Once per piece of the target's bytes, not per frame: streams that closed together let their
    // successors go in one write.
    if (this.holding && this.#releaseWanted) this.#release();
  }

  /**
   * Matches the preface; returns where the client's bytes leave it (0 and the phase "plain" where they
   * differ). The preface itself always passes.
   */
  #readPreface(bytes: Uint8Array): number {
    const seen = this.#prefaceSeen;
    let at = 0;
    while (at < bytes.length && seen + at < HTTP2_PREFACE.length) {
      if (bytes[at] !== HTTP2_PREFACE[seen + at]) {
        this.phase = "plain";
        return 0;
      }
      at++;
    }
    this.#prefaceSeen = seen + at;
    if (this.#prefaceSeen === HTTP2_PREFACE.length) {
      this.phase = "frames";
      this.counts.sessions++;
    }
    return at;
  }

  /**
   * Whether a client frame goes now; a frame that must wait is held by the caller. Header blocks keep
   * their order (HPACK), and a stream's frames theirs; any other frame goes, those of open streams too.
   */
  #clientPasses(type: number, streamId: number, opens: boolean): boolean {
    if (streamId === 0) return true;
    if (this.#heldByStream.has(streamId)) {
      if (opens) this.counts.streamsHeld++;
      return false;
    }
    if (!isHeaderBlock(type)) return true;
    if (this.#held.length > this.#heldOthers || (opens && !this.#mayOpen())) {
      if (opens) this.counts.streamsHeld++;
      return false;
    }
    return true;
  }

  #hold(frame: HeldFrame): void {
    if (this.#held.length === 0) this.#releaseWanted = false; // it was held as things are now
    this.#held.push(frame);
    this.#heldByStream.set(frame.streamId, (this.#heldByStream.get(frame.streamId) ?? 0) + 1);
    if (!isHeaderBlock(frame.type)) this.#heldOthers++;
  }

  /** Whether a new stream may open on the target now. */
  #mayOpen(): boolean {
    if (this.#goawayLast !== Infinity) return true; // refused whatever: holding it would gain nothing
    // A target that never sends SETTINGS, or never closes a stream, must not grow copy's memory without
    // bound: past the limit the oldest frames go, and the target's refusals, if any, are counted.
    if (this.#heldBytes > this.maxHeldBytes) return true;
    return this.#settingsKnown && this.#open.size < this.maxConcurrentStreams;
  }

  /** A client frame went to the target (its header is enough to know what it does to its stream). */
  #wrote(type: number, flags: number, streamId: number, opens: boolean): void {
    if (streamId === 0) return;
    if (opens) {
      this.#highestOpened = streamId;
      this.counts.streamsOpened++;
      if (streamId > this.#goawayLast) {
        this.counts.streamsRefused++;
        return;
      }
      this.#open.set(streamId, flags & END_STREAM ? CLIENT_ENDED : 0);
      return;
    }
    if (type === RST_STREAM) {
      if (this.#open.delete(streamId)) this.#releaseWanted = true;
      return;
    }
    if ((type === DATA || type === HEADERS) && flags & END_STREAM) this.#ended(streamId, CLIENT_ENDED);
  }

  /** One half of a stream ended; with both, the stream is closed. */
  #ended(streamId: number, half: number): void {
    const halves = this.#open.get(streamId);
    if (halves === undefined) return;
    if ((halves | half) === (CLIENT_ENDED | TARGET_ENDED)) {
      this.#open.delete(streamId);
      this.#releaseWanted = true;
    } else {
      this.#open.set(streamId, halves | half);
    }
  }

  /**
   * The current client frame is whole (its last byte before `at`); returns where the bytes that pass
   * begin now. Frames held may go between whole frames.
   */
  #clientFrameEnd(bytes: Uint8Array, passFrom: number, at: number): number {
    if (this.#clientHeldFrame !== undefined) {
      this.#clientHeldFrame.complete = true;
      this.#clientHeldFrame = undefined;
      if (this.#heldBytes > this.maxHeldBytes) {
        this.#releaseWanted = true;
        this.#release(); // between whole frames: in order
      }
      return at;
    }
    this.#midFrame = false;
    if (!this.holding || !this.#releaseWanted) return passFrom;
    this.#flush(bytes, passFrom, at);
    this.#release();
    return at;
  }

  /**
   * Sends the held frames that may go now, in the client's order, and keeps the others in theirs: a
   * header block goes once the ones before it went (and, opening a stream, once the target has room),
   * any other frame once the frames of its stream before it went. So the bodies of streams that opened
   * go on while a request waits for room, or the target and the copy could wait on each other.
   */
  #release(): void {
    // A frame that goes may close a stream (the client's RST_STREAM): then frames passed over may go.
    while (this.#releaseWanted && this.holding && !this.#midFrame) this.#releaseOnce();
    this.#run.flush();
    if (this.#held.length === 0 && this.#shutdownPending) {
      this.#shutdownPending = false;
      this.output.shutdown();
    }
  }

  /** One pass over the held frames. */
  #releaseOnce(): void {
    this.#releaseWanted = false;
    const held = this.#held;
    const kept = this.#kept;
    const run = this.#run;
    const others = this.#heldOthers;
    let keep = 0;
    let headerBlocksWait = false;
    let othersSeen = 0;
    let at = 0;
    for (; at < held.length; at++) {
      // Past this point only header blocks, and they wait: nothing more can go.
      if (headerBlocksWait && othersSeen === others) break;
      const frame = held[at];
      const headerBlock = isHeaderBlock(frame.type);
      if (!headerBlock) othersSeen++;
      let goes = !kept.has(frame.streamId);
      if (goes && headerBlock) goes = !headerBlocksWait && (!frame.opens || this.#mayOpen());
      if (!goes) {
        if (headerBlock) headerBlocksWait = true;
        kept.add(frame.streamId);
        held[keep++] = frame;
        continue;
      }
      this.#heldBytes -= frame.bytes;
      if (!headerBlock) this.#heldOthers--;
      const count = this.#heldByStream.get(frame.streamId)!;
      if (count === 1) this.#heldByStream.delete(frame.streamId);
      else this.#heldByStream.set(frame.streamId, count - 1);
      for (const piece of frame.pieces) run.add(piece);
      this.#wrote(frame.type, frame.flags, frame.streamId, frame.opens);
      if (!frame.complete) {
        // The frame the client is still sending (the last held): the rest of it passes as it comes.
        this.#clientHeldFrame = undefined;
        this.#midFrame = true;
      }
    }
    if (keep < at) {
      held.copyWithin(keep, at);
      held.length = keep + held.length - at;
    }
    kept.clear();
  }

  /** Writes the client's bytes from `from` to `to`, if any. */
  #flush(bytes: Uint8Array, from: number, to: number): void {
    if (to > from) this.output.write(from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to));
  }

  /** A target frame's header is read. */
  #targetFrameBegins(): void {
    const { type, flags, streamId } = this.#target;
    if ((type === DATA || type === HEADERS) && flags & END_STREAM) this.#ended(streamId, TARGET_ENDED);
  }

  /**
   * Part of a target frame's payload, `bytes` from `from` to `to`: SETTINGS, RST_STREAM and GOAWAY are
   * read, the rest skipped.
   */
  #targetPayload(bytes: Uint8Array, from: number, to: number): void {
    const { type, flags } = this.#target;
    const wanted = type === SETTINGS && !(flags & ACK)
      ? SETTING_SIZE
      : type === RST_STREAM
      ? 4
      : type === GOAWAY
      ? 8
      : 0;
    if (wanted === 0) return;
    let at = from;
    while (at < to) {
      if (type !== SETTINGS && this.#targetRead >= wanted) return;
      const n = Math.min(wanted - this.#scratchFilled, to - at);
      for (let i = 0; i < n; i++) this.#scratch[this.#scratchFilled + i] = bytes[at + i];
      this.#scratchFilled += n;
      this.#targetRead += n;
      at += n;
      if (this.#scratchFilled < wanted) return;
      this.#scratchFilled = 0;
      if (type === SETTINGS) this.#setting();
      else if (type === RST_STREAM) this.#targetReset();
      else this.#goaway();
    }
  }

  /** One setting of the target's SETTINGS frame, in the scratch bytes. */
  #setting(): void {
    const s = this.#scratch;
    if (((s[0] << 8) | s[1]) !== SETTINGS_MAX_CONCURRENT_STREAMS) return;
    this.maxConcurrentStreams = ((s[2] << 24) | (s[3] << 16) | (s[4] << 8) | s[5]) >>> 0;
    this.#releaseWanted = true;
  }

  #targetReset(): void {
    const s = this.#scratch;
    const code = ((s[0] << 24) | (s[1] << 16) | (s[2] << 8) | s[3]) >>> 0;
    const streamId = this.#target.streamId;
    if (!this.#open.delete(streamId)) return;
    this.#releaseWanted = true;
    if (code === REFUSED_STREAM) this.counts.streamsRefused++;
    else if (code !== NO_ERROR) this.counts.streamsReset++;
  }

  #goaway(): void {
    const s = this.#scratch;
    const last = ((s[0] & 0x7f) << 24 | s[1] << 16 | s[2] << 8 | s[3]) >>> 0;
    if (last >= this.#goawayLast) return;
    this.#goawayLast = last;
    this.#releaseWanted = true;
    for (const streamId of this.#open.keys()) {
      if (streamId <= last) continue;
      this.#open.delete(streamId);
      this.counts.streamsRefused++;
    }
  }

  /** A target frame is whole (held frames may go once the piece of bytes it came in is read). */
  #targetFrameEnd(): void {
    const { type, flags } = this.#target;
    if (type === SETTINGS && !(flags & ACK) && !this.#settingsKnown) {
      // Before its first SETTINGS a server's limit is unknown: RFC 9113 lets a client assume none, but a
      // target with a lower one than production's would refuse the excess. So nothing opened until now.
      this.#settingsKnown = true;
      this.#releaseWanted = true;
    }
  }
}

/**
 * The connections' sink seen through HTTP/2 gates: each connection whose client begins with the preface
 * gets a gate of its own, every other connection's bytes go straight on. The target's bytes come in
 * through `answer`.
 */
export class Http2Sink implements ConnectionSink {
  readonly counts: Http2Counts = noHttp2Counts();
  /** Each connection's gate once its first bytes came; `null` when they were not the preface. */
  readonly #gates = new Map<ConnectSession, Http2Gate | null>();

  /** @param maxHeldBytes client bytes each connection's gate holds at most (`Http2Gate`) */
  constructor(readonly inner: ConnectionSink, readonly maxHeldBytes: number) {}

  connect(session: ConnectSession): void {
    this.inner.connect(session);
  }

  write(session: ConnectSession, bytes: Uint8Array): void {
    let gate = this.#gates.get(session);
    if (gate === undefined) {
      gate = bytes[0] === HTTP2_PREFACE[0] ? this.#gate(session) : null;
      this.#gates.set(session, gate);
    }
    if (gate === null) return this.inner.write(session, bytes);
    gate.fromClient(bytes.slice()); // the gate may hold frames, and the bytes are ours during the call only
    if (gate.phase === "plain") this.#gates.set(session, null);
  }

  shutdown(session: ConnectSession): void {
    const gate = this.#gates.get(session);
    if (gate) gate.shutdown();
    else this.inner.shutdown(session);
  }

  /** The connection's (frames the gate holds are not written yet: its shutdown waits for them). */
  unacknowledged(session: ConnectSession): number {
    return this.inner.unacknowledged(session);
  }

  reset(session: ConnectSession): void {
    this.#forget(session);
    this.inner.reset(session);
  }

  close(session: ConnectSession): void {
    this.#forget(session);
    this.inner.close(session);
  }

  turnOver(session: ConnectSession, turn: number, end: TurnEnd): void {
    this.inner.turnOver?.(session, turn, end);
  }

  turnEnded(session: ConnectSession, turn: number, expected: number): void {
    this.inner.turnEnded?.(session, turn, expected);
  }

  /**
   * Whether `answer` needs the target's bytes on `session`'s connection: not once the client's first bytes
   * said it is no HTTP/2 (or its gate stepped aside).
   */
  readsAnswers(session: ConnectSession): boolean {
    return this.#gates.get(session) !== null;
  }

  /** The target's bytes on `session`'s connection (read during the call only). */
  answer(session: ConnectSession, bytes: Uint8Array): void {
    let gate = this.#gates.get(session);
    if (gate === undefined) {
      // The target spoke before the client's first bytes said whether this is HTTP/2: a server may
      // send its SETTINGS at once, and they must not be missed.
      gate = this.#gate(session);
      this.#gates.set(session, gate);
    }
    gate?.fromTarget(bytes);
  }

  #forget(session: ConnectSession): void {
    this.#gates.get(session)?.abandon();
    this.#gates.delete(session);
  }

  #gate(session: ConnectSession): Http2Gate {
    const inner = this.inner;
    return new Http2Gate(
      {
        write: (bytes) => inner.write(session, bytes),
        shutdown: () => inner.shutdown(session),
      },
      this.counts,
      this.maxHeldBytes,
    );
  }
}
