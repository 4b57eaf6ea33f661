/**
 * `copy --compare`: each copied session's turns compared as they end, the target's answer with the online
 * server's (and, with `--baseline`, with a production build's, to tell noise from regressions). The
 * judging is `src/compare/`'s; this is the wiring: the online server's packets reassembled per session,
 * the target's bytes and the client's requests gathered per turn within a bound, the results counted,
 * written to `--diff-file` as they come and to `--report` at the end.
 */
import {
  Answer,
  type CompareMode,
  Comparison,
  type ComparisonCounters,
  renderReport,
  ResponseFraming,
  type Sample,
} from "../compare/mod.ts";
import type { ConnectSession } from "../connect/mod.ts";
import { ClientStream, type CopiedSession, type SegmentIn, seqOffset } from "../session/mod.ts";
import { type Address, TcpFlag } from "../wire/mod.ts";
import type { Logger } from "../ops/mod.ts";

/** What `--compare` and the flags that go with it ask. */
export interface CompareOptions {
  readonly mode: CompareMode;
  /** A second target that runs the production build, to learn noise from. */
  readonly baseline: { readonly address: Address; readonly port: number } | undefined;
  readonly ignoreHeaders: readonly string[];
  readonly ignoreJsonPaths: readonly string[];
  /** Where each kept difference goes as a JSON line, as it is found. */
  readonly diffFile: string | undefined;
  /** Where the HTML report goes at the end. */
  readonly report: string | undefined;
  /** Differences kept per endpoint, for the diff file and the report. */
  readonly samplesPerEndpoint: number;
}

/** Samples the report shows at most, whatever the endpoints: the page stays one a person reads. */
const MAX_REPORT_SAMPLES = 200;
/** How long a session whose connections are over waits for the online server's last packets. */
const ONLINE_GRACE_MS = 1000;
/** Rows of the endpoint table in the log at the end. */
const LOGGED_ROWS = 20;

/** The comparison of a whole run. */
export class CompareRun {
  readonly comparison: Comparison;
  /** Turns whose online answer could not be had whole (its packets lost by the capture, or too many held). */
  turnsUncompared = 0;
  readonly #samples: Sample[] = [];
  readonly #diffFile: Deno.FsFile | undefined;
  #diffFileFailed = false;
  readonly #encoder = new TextEncoder();

  constructor(readonly options: CompareOptions, readonly log: Logger) {
    this.comparison = new Comparison(options, (sample) => this.#keep(sample));
    this.#diffFile = options.diffFile === undefined
      ? undefined
      : Deno.openSync(options.diffFile, { write: true, create: true, truncate: true });
  }

  /** The counters for stats, the summary and metrics (see `TRANSPORT_COUNTERS`). */
  stats() {
    const t: ComparisonCounters = this.comparison.totals;
    return {
      "turns-compared": t.compared,
      "turns-same": t.same,
      "turns-different": t.different,
      "turns-noise": t.noise,
      "turns-no-answer": t["no-answer"],
      "turns-extra-answer": t["extra-answer"],
      "turns-uncompared": this.turnsUncompared,
    };
  }

  /** Closes the diff file, writes the report, and logs the endpoint table. */
  async finish(target: string): Promise<void> {
    this.#diffFile?.close();
    const rows = this.comparison.rows();
    for (const row of rows.slice(0, LOGGED_ROWS)) {
      this.log.always(
        `compared ${row.endpoint}: ${row.compared} turns, ${row.same} same, ${row.different} different` +
          `, ${row.noise} noise, ${row["no-answer"]} no answer, ${row["extra-answer"]} extra answer` +
          (row.fields.size === 0 ? "" : ` (${[...row.fields.keys()].join(", ")})`),
      );
    }
    if (rows.length > LOGGED_ROWS) this.log.always(`compared ${rows.length - LOGGED_ROWS} more endpoints`);
    if (this.options.report === undefined) return;
    const baseline = this.options.baseline === undefined ? "" : ", noise learnt from a baseline";
    const html = renderReport({
      title: "tcpshadow: did the target answer like production?",
      subtitle: `--compare ${this.options.mode} against ${target}${baseline}, ${new Date().toISOString()}`,
      totals: this.comparison.totals,
      rows,
      samples: this.#samples,
    });
    try {
      await Deno.writeTextFile(this.options.report, html);
      this.log.always(`report written to ${this.options.report}`);
    } catch (error) {
      this.log.error(`cannot write the report ${this.options.report}: ${(error as Error).message}`);
    }
  }

  #keep(sample: Sample): void {
    if (this.#samples.length < MAX_REPORT_SAMPLES) this.#samples.push(sample);
    if (this.#diffFile === undefined || this.#diffFileFailed) return;
    try {
      const line = this.#encoder.encode(JSON.stringify(sample) + "\n");
      for (let written = 0; written < line.length;) {
        written += this.#diffFile.writeSync(line.subarray(written));
      }
    } catch (error) {
      // A full disk must not stop the copy: the file stops, the counters and the report go on.
      this.#diffFileFailed = true;
      this.log.error(
        `cannot write ${this.options.diffFile}: ${(error as Error).message}; no more lines there`,
      );
    }
  }
}

/** One turn as it is gathered: the request, and each side's answer. */
interface TurnState {
  readonly request: Answer;
  readonly target: Answer;
  readonly baseline: Answer | undefined;
  /** The client's bytes of the turn as they went to the baseline, which may be a turn ahead of the target. */
  readonly baselineRequest: Answer | undefined;
  /** Where the target's and the baseline's answers stand in their HTTP responses (`--compare http`). */
  readonly targetFraming: ResponseFraming;
  readonly baselineFraming: ResponseFraming | undefined;
  /** The online server's bytes up to the end of the turn, once the candidate's turn ended. */
  expected: number | undefined;
  baselineEnded: boolean;
}

/**
 * A copied session whose turns are compared: the candidate's connection (the target), and the baseline's
 * when there is one, fed the same client packets; the online server's packets reassembled beside them.
 */
export class ComparedSession implements CopiedSession {
  readonly retransmissions = 0;
  readonly #server: ClientStream;
  /** The online server's first sequence number after its SYN: where the turns' `expected` counts from. */
  #serverBase: number | undefined;
  #serverFin = false;
  /** Whether the online answer went past what may be held: the rest of the session is not compared. */
  #overflowed = false;
  /** Where the next turn's online answer starts, in the online server's bytes. */
  #onlineFrom = 0;
  readonly #turns = new Map<number, TurnState>();
  #nextTurn = 0;
  #over = false;
  /**
   * Once the connections are over: until when the online server's last answers may still come (a live
   * capture hands the server's packets over apart from the clients', a moment later at times).
   */
  #onlineDeadline = Infinity;

  /** @param onOver called once, when both connections' sessions are over and every turn is judged */
  constructor(
    readonly candidate: ConnectSession,
    readonly baseline: ConnectSession | undefined,
    readonly run: CompareRun,
    readonly onOver: (session: ComparedSession) => void,
  ) {
    this.#server = new ClientStream(candidate.config.maxBuffered);
  }

  get endpoints() {
    return this.candidate.endpoints;
  }

  get outcome() {
    return this.candidate.outcome;
  }

  /** Over once its connections are, and every turn is judged or no more of the online answers will come. */
  get finished(): boolean {
    return this.#over;
  }

  get nextDeadline(): number {
    if (this.#over) return Infinity;
    if (this.#connectionsOver) return this.#onlineDeadline;
    return Math.min(this.candidate.nextDeadline, this.baseline?.nextDeadline ?? Infinity);
  }

  /** Whether both connections' sessions are over. */
  get #connectionsOver(): boolean {
    return this.candidate.finished && (this.baseline?.finished ?? true);
  }

  get buffered(): number {
    return this.candidate.buffered + (this.baseline?.buffered ?? 0) + this.#server.buffered;
  }

  onClient(segment: SegmentIn, now: number): void {
    this.candidate.onClient(segment, now);
    this.baseline?.onClient(segment, now);
    this.settle(now);
  }

  onTarget(): void {}

  onServer(segment: SegmentIn, now: number): void {
    if (segment.flags & TcpFlag.SYN) {
      this.#serverBase ??= (segment.seq + 1) >>> 0;
      return;
    }
    const base = this.#serverBase ?? this.candidate.ackBase;
    if (base === undefined || this.#overflowed) return;
    this.#serverBase = base;
    const start = seqOffset((base - 1) >>> 0, segment.seq, this.#server.end);
    const length = segment.payloadLength;
    if (length > 0) {
      const payload = segment.payload();
      if (this.#server.add(start, payload.subarray(0, length), undefined, 0) !== undefined) {
        this.#overflowed = true;
      }
    }
    if (segment.flags & TcpFlag.FIN) this.#serverFin = true;
    this.settle(now);
  }

  onTick(now: number): void {
    this.candidate.onTick(now);
    this.baseline?.onTick(now);
    this.settle(now);
  }

  abandon(now: number): void {
    this.candidate.abandon(now);
    this.baseline?.abandon(now);
    this.#onlineDeadline = now;
    this.settle(now);
  }

  /** `bytes` of the client went to `session`'s target in `turn`. */
  wrote(session: ConnectSession, turn: number, bytes: Uint8Array): void {
    const state = this.#turn(turn);
    if (session === this.candidate) state.request.push(bytes);
    else state.baselineRequest?.push(bytes);
  }

  /**
   * `session`'s target sent `bytes` in `turn` (before the session counts them). Comparing HTTP, the turn
   * must not end inside a response: a slow target's pause, or as many bytes as the online server's in a
   * longer answer, would put the rest of it in the next turn, judged against the next request's answer.
   */
  answer(session: ConnectSession, turn: number, bytes: Uint8Array): void {
    const state = this.#turn(turn);
    const [request, answer, framing] = session === this.candidate
      ? [state.request, state.target, state.targetFraming]
      : [state.baselineRequest, state.baseline, state.baselineFraming];
    if (request === undefined || answer === undefined || framing === undefined) return;
    answer.push(bytes);
    // Past what is kept the answer cannot be read: its length and pauses decide, as without comparing.
    if (this.run.options.mode === "http") {
      session.answerUnfinished(answer.whole && framing.unfinished(request.bytes, answer.bytes));
    }
  }

  /** `session`'s turn `turn` is over, the online server having said `expected` bytes by then. */
  turnEnded(session: ConnectSession, turn: number, expected: number): void {
    const state = this.#turn(turn);
    if (session === this.candidate) state.expected = expected;
    else state.baselineEnded = true;
    this.settle(performance.now());
  }

  #turn(turn: number): TurnState {
    let state = this.#turns.get(turn);
    if (state === undefined) {
      state = {
        request: new Answer(),
        target: new Answer(),
        baseline: this.baseline === undefined ? undefined : new Answer(),
        baselineRequest: this.baseline === undefined ? undefined : new Answer(),
        targetFraming: new ResponseFraming(),
        baselineFraming: this.baseline === undefined ? undefined : new ResponseFraming(),
        expected: undefined,
        baselineEnded: false,
      };
      this.#turns.set(turn, state);
    }
    return state;
  }

  /** Compares the turns that are over on every side, in order; once all is over, says so. */
  settle(now: number): void {
    if (this.#over) return;
    if (this.#connectionsOver && this.#onlineDeadline === Infinity) {
      this.#onlineDeadline = now + ONLINE_GRACE_MS;
    }
    this.#compareTurns(now >= this.#onlineDeadline);
    if (this.#connectionsOver && (this.#turns.size === 0 || now >= this.#onlineDeadline)) {
      this.#over = true;
      if (this.#turns.size > 0) this.run.turnsUncompared += this.#turns.size;
      this.#turns.clear();
      this.onOver(this);
    }
  }

  /** `late`: no more of the online answers will come, so a turn short of them is not compared. */
  #compareTurns(late: boolean): void {
    for (
      let state = this.#turns.get(this.#nextTurn);
      state !== undefined;
      state = this.#turns.get(this.#nextTurn)
    ) {
      const expected = state.expected;
      if (expected === undefined) return;
      const baselineDone = state.baseline === undefined || state.baselineEnded ||
        this.baseline?.outcome !== undefined;
      if (!baselineDone) return;
      // The online answer is whole once its bytes are in (its FIN counts one), or nothing more can come.
      const have = this.#server.end - 1;
      const whole = have >= expected || (this.#serverFin && have >= expected - 1);
      if (!whole && !this.#overflowed && !late) return;
      this.#turns.delete(this.#nextTurn);
      this.#nextTurn++;
      if (this.#overflowed || (!whole && expected > have)) {
        this.run.turnsUncompared++;
        this.#onlineFrom = Math.max(this.#onlineFrom, expected);
        continue;
      }
      const end = Math.min(expected, have);
      const online = new Answer();
      if (end > this.#onlineFrom) {
        online.push(this.#server.read(this.#onlineFrom + 1, end - this.#onlineFrom));
      }
      this.#server.release(end + 1);
      this.#onlineFrom = Math.max(this.#onlineFrom, expected);
      // A turn in which nobody said anything (no banner before the first request) is no turn to judge.
      const silent = online.length === 0 && state.target.length === 0 && (state.baseline?.length ?? 0) === 0;
      if (silent && state.request.length === 0) continue;
      this.run.comparison.compare({
        request: state.request.bytes,
        online,
        target: state.target,
        baseline: state.baseline,
      });
    }
  }
}
