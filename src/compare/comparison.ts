/**
 * Every compared turn of a run: its verdict (same, different, noise, no answer, extra answer), counters in
 * all and per endpoint, and the first differences of each endpoint kept as samples.
 *
 * Noise is learnt the way Diffy does it: with a baseline (a second target that runs the production build),
 * a field in which the baseline's answer also differs from the online server's is noise for that endpoint
 * (timestamps, random ids, host names), then and from then on; only differences the candidate alone shows
 * are regressions.
 */
import { Answer } from "./answer.ts";
import { parseRequests, parseResponses } from "./http.ts";
import { Differ, type Difference, type DifferOptions, readable } from "./differ.ts";
import { endpointOf } from "./endpoint.ts";
import { generalPath } from "./json_diff.ts";

/** What became of one turn. */
export type Verdict = "same" | "different" | "noise" | "no-answer" | "extra-answer";

/** The counters of a comparison, in all or for one endpoint. */
export interface ComparisonCounters {
  compared: number;
  same: number;
  different: number;
  noise: number;
  "no-answer": number;
  "extra-answer": number;
}

/** One turn, as the transport saw it. */
export interface Turn {
  /** The client's bytes of the turn. */
  readonly request: Uint8Array;
  /** The online server's answer, from the capture. */
  readonly online: Answer;
  /** The target's (the candidate's) answer. */
  readonly target: Answer;
  /** The baseline's answer, when there is a baseline. */
  readonly baseline?: Answer;
}

/** A kept difference: what `--diff-file` writes, one JSON line each, and the report shows. */
export interface Sample {
  readonly endpoint: string;
  readonly verdict: Verdict;
  readonly request: string;
  readonly online: string;
  readonly target: string;
  readonly differences: readonly Difference[];
}

/** One endpoint's line of the table. */
export interface EndpointRow extends ComparisonCounters {
  readonly endpoint: string;
  /** The fields that differed (not noise), with how often. */
  readonly fields: ReadonlyMap<string, number>;
  /** The fields learnt as noise. */
  readonly noisyFields: ReadonlySet<string>;
}

/** What a `Comparison` is told. */
export interface ComparisonOptions extends DifferOptions {
  /** Samples kept per endpoint (default 5). */
  readonly samplesPerEndpoint?: number;
  /** Most endpoints told apart; past it, turns count under `(other)` (default 1000). */
  readonly maxEndpoints?: number;
}

const ANSWER_SHOWN = 4096;

interface EndpointState extends ComparisonCounters {
  readonly fields: Map<string, number>;
  readonly noisyFields: Set<string>;
  samples: number;
}

/** The comparison of a run. */
export class Comparison {
  readonly totals: ComparisonCounters = emptyCounters();
  readonly #differ: Differ;
  readonly #endpoints = new Map<string, EndpointState>();
  readonly #samplesPerEndpoint: number;
  readonly #maxEndpoints: number;

  constructor(readonly options: ComparisonOptions, readonly onSample: (sample: Sample) => void = () => {}) {
    this.#differ = new Differ(options);
    this.#samplesPerEndpoint = options.samplesPerEndpoint ?? 5;
    this.#maxEndpoints = options.maxEndpoints ?? 1000;
  }

  /**
   * Judges one turn, counts it, and keeps it as a sample if it is among its endpoint's first differences.
   * In `http` mode a turn of pipelined requests is judged request by request, each answer with its own.
   */
  compare(turn: Turn): Verdict {
    const split = this.options.mode === "http" ? splitPipelined(turn) : undefined;
    if (split === undefined) return this.#compareOne(turn);
    let worst: Verdict = "same";
    for (const part of split) {
      const verdict = this.#compareOne(part);
      if (VERDICT_RANK[verdict] > VERDICT_RANK[worst]) worst = verdict;
    }
    return worst;
  }

  #compareOne(turn: Turn): Verdict {
    const endpoint = this.#endpoint(endpointOf(turn.request, this.options.mode));
    const { verdict, differences } = this.#judge(turn, endpoint);
    for (const counters of [this.totals, endpoint]) {
      counters.compared++;
      counters[verdict]++;
    }
    if (verdict === "different") {
      for (const d of differences) {
        endpoint.fields.set(generalField(d.field), (endpoint.fields.get(generalField(d.field)) ?? 0) + 1);
      }
    }
    if (verdict !== "same" && verdict !== "noise" && endpoint.samples < this.#samplesPerEndpoint) {
      endpoint.samples++;
      this.onSample({
        endpoint: this.#nameOf(endpoint),
        verdict,
        request: readable(turn.request.subarray(0, ANSWER_SHOWN)),
        online: readable(turn.online.bytes.subarray(0, ANSWER_SHOWN)),
        target: readable(turn.target.bytes.subarray(0, ANSWER_SHOWN)),
        differences,
      });
    }
    return verdict;
  }

  /** The table, one row per endpoint, those with differences first. */
  rows(): EndpointRow[] {
    return [...this.#endpoints].map(([name, state]) => ({ ...state, endpoint: name }))
      .sort((a, b) =>
        b.different - a.different || b["no-answer"] - a["no-answer"] || b.compared - a.compared
      );
  }

  #judge(turn: Turn, endpoint: EndpointState): { verdict: Verdict; differences: Difference[] } {
    if (turn.online.length > 0 && turn.target.length === 0) return { verdict: "no-answer", differences: [] };
    if (turn.online.length === 0 && turn.target.length > 0) {
      return { verdict: "extra-answer", differences: [] };
    }
    const differences = this.#differ.diff(turn.request, turn.online, turn.target);
    if (differences.length === 0) return { verdict: "same", differences };
    if (turn.baseline !== undefined) {
      for (const d of this.#differ.diff(turn.request, turn.online, turn.baseline)) {
        endpoint.noisyFields.add(generalField(d.field));
      }
    }
    const real = differences.filter((d) => !endpoint.noisyFields.has(generalField(d.field)));
    return real.length === 0
      ? { verdict: "noise", differences }
      : { verdict: "different", differences: real };
  }

  #endpoint(name: string): EndpointState {
    let state = this.#endpoints.get(name);
    if (state === undefined) {
      if (this.#endpoints.size >= this.#maxEndpoints) return this.#endpoint("(other)");
      state = { ...emptyCounters(), fields: new Map(), noisyFields: new Set(), samples: 0 };
      this.#endpoints.set(name, state);
    }
    return state;
  }

  #nameOf(state: EndpointState): string {
    for (const [name, candidate] of this.#endpoints) if (candidate === state) return name;
    return "(other)";
  }
}

/** Which verdict of a turn's parts stands for the whole turn. */
const VERDICT_RANK: Record<Verdict, number> = {
  same: 0,
  noise: 1,
  "extra-answer": 2,
  "no-answer": 3,
  different: 4,
};

/**
 * A turn of several HTTP requests (pipelined) as one turn per request, each with its own response from
 * every side; `undefined` for a turn of one request, or when a side's responses cannot be told apart.
 */
function splitPipelined(turn: Turn): Turn[] | undefined {
  const requests = parseRequests(turn.request);
  if (requests.length < 2) return undefined;
  const methods = requests.map((request) => request.method ?? "GET");
  const sides = [turn.online, turn.target, ...(turn.baseline === undefined ? [] : [turn.baseline])];
  if (!sides.every((side) => side.whole)) return undefined;
  const responses = sides.map((side) => parseResponses(side.bytes, methods, true));
  if (!responses.every((list) => list.length === requests.length)) return undefined;
  return requests.map((request, i) => {
    const slice = (side: number) =>
      Answer.of(sides[side].bytes.subarray(responses[side][i].start, responses[side][i].end));
    return {
      request: turn.request.subarray(request.start, request.end),
      online: slice(0),
      target: slice(1),
      baseline: turn.baseline === undefined ? undefined : slice(2),
    };
  });
}

/** A field's name for learning and counting: JSON array indexes as `[*]`. */
function generalField(field: string): string {
  return field.startsWith("json:") ? generalPath(field) : field;
}

function emptyCounters(): ComparisonCounters {
  return { compared: 0, same: 0, different: 0, noise: 0, "no-answer": 0, "extra-answer": 0 };
}
