/**
 * `--compare` turn by turn, on a fake clock: a `ComparedSession` fed the client's and the online server's
 * packets and the target's bytes as the connection transport feeds them (the comparer first, then the
 * session). Each request must be judged with its own answer however slow the target is.
 */
import assert from "node:assert/strict";
import { ComparedSession, CompareRun } from "../../src/copy/comparing.ts";
import { type ConnectionSink, ConnectSession } from "../../src/connect/mod.ts";
import { defaultSessionConfig, type SegmentIn } from "../../src/session/mod.ts";
import { createLogger } from "../../src/ops/log.ts";
import { TcpFlag } from "../../src/wire/mod.ts";
import { bytes, response } from "../compare/_http.ts";

const CLIENT_ISN = 5000;
const SERVER_ISN = 9000;
/** The timings `--compare` runs with: no lag limit, a first byte may take 10 s. */
const CONFIG = { ...defaultSessionConfig, answerGapMs: 200, maxLagMs: Infinity, responseWaitMs: 10_000 };
const ENDPOINTS = {
  clientAddress: 0xc6130005,
  clientPort: 40000,
  targetAddress: 0xc6120002,
  targetPort: 8080,
};

function segment(seq: number, ack: number, flags: number, data: Uint8Array = new Uint8Array(0)): SegmentIn {
  return {
    seq: seq >>> 0,
    ack: ack >>> 0,
    flags,
    window: 65535,
    payloadLength: data.length,
    payload: () => data,
    options: () => ({}),
  };
}

/**
 * A compared HTTP session whose client asked `paths` one after another on one connection, each request
 * captured before the target answered the one before (a slow target); the online server answered each
 * with `online(path)`. Returns the session, the target's side and what was written to it.
 */
function comparedSession(paths: string[], online: (path: string) => Uint8Array) {
  const run = new CompareRun(
    {
      mode: "http",
      baseline: undefined,
      ignoreHeaders: [],
      ignoreJsonPaths: [],
      diffFile: undefined,
      report: undefined,
      samplesPerEndpoint: 5,
    },
    createLogger("copy", { level: "error" }),
  );
  const written: string[] = [];
  /** The compared session, once made: the sink's calls go to it, as the transport's do. */
  const made: { pair?: ComparedSession } = {};
  const sink: ConnectionSink = {
    unacknowledged: () => 0,
    connect: () => {},
    write: (session, data) => {
      written.push(new TextDecoder().decode(data));
      made.pair?.wrote(session, session.turn, data);
    },
    shutdown: () => written.push("FIN"),
    reset: () => written.push("RST"),
    close: () => {},
    turnEnded: (session, turn, expected) => made.pair?.turnEnded(session, turn, expected),
  };
  const candidate = new ConnectSession(
    ENDPOINTS,
    CONFIG,
    sink,
    segment(CLIENT_ISN, 0, TcpFlag.SYN),
    false,
    0,
  );
  const pair = new ComparedSession(candidate, undefined, run, () => {});
  made.pair = pair;
  pair.onServer(segment(SERVER_ISN, CLIENT_ISN + 1, TcpFlag.SYN | TcpFlag.ACK), 0);
  pair.onClient(segment(CLIENT_ISN + 1, SERVER_ISN + 1, TcpFlag.ACK), 1);
  candidate.onConnected(2);
  let clientSeq = CLIENT_ISN + 1;
  let serverSeq = SERVER_ISN + 1;
  let now = 3;
  for (const path of paths) {
    const request = bytes(`GET ${path} HTTP/1.1\r\nHost: shop\r\n\r\n`);
    pair.onClient(segment(clientSeq, serverSeq, TcpFlag.ACK | TcpFlag.PSH, request), now++);
    clientSeq += request.length;
    const answer = online(path);
    pair.onServer(segment(serverSeq, clientSeq, TcpFlag.ACK | TcpFlag.PSH, answer), now++);
    serverSeq += answer.length;
  }
  pair.onClient(segment(clientSeq, serverSeq, TcpFlag.ACK | TcpFlag.FIN), now);
  const target = {
    /** The target sends `data` at `at`, as the transport hands it over. */
    says(data: Uint8Array, at: number) {
      pair.answer(candidate, candidate.turn, data);
      candidate.onAnswer(data.length, at);
    },
    /** The clock reaches `at` with nothing from the target: the session's timers run. */
    tick(at: number) {
      pair.onTick(at);
    },
    /** The target closes after everything. */
    closes(at: number) {
      candidate.onTargetClosed(at);
      pair.settle(at + 2000); // past the wait for the online server's last packets
    },
  };
  return { run, pair, target, written };
}

const json = (path: string) => response(200, { "content-type": "application/json" }, `{"path":"${path}"}`);

Deno.test("a target slower than the answer gap to begin its answer is judged in its own turn", () => {
  const { run, target, written } = comparedSession(["/a", "/b", "/c"], json);
  assert.equal(written.length, 1);
  target.says(json("/a"), 50); // /b goes at 50, the turn of /b begins with /a's last bytes
  assert.equal(written.length, 2);
  target.tick(50 + 3 * CONFIG.answerGapMs);
  assert.equal(written.length, 2, "the target has not begun to answer /b: /c waits");
  target.says(json("/b"), 50 + 4 * CONFIG.answerGapMs);
  target.says(json("/c"), 60 + 4 * CONFIG.answerGapMs);
  assert.deepEqual(written.slice(2), ["GET /c HTTP/1.1\r\nHost: shop\r\n\r\n", "FIN"]);
  target.closes(70 + 4 * CONFIG.answerGapMs);
  assert.deepEqual(run.stats(), {
    "turns-compared": 3,
    "turns-same": 3,
    "turns-different": 0,
    "turns-noise": 0,
    "turns-no-answer": 0,
    "turns-extra-answer": 0,
    "turns-uncompared": 0,
  });
});

Deno.test("an HTTP answer whose rest comes after a pause longer than the answer gap is judged whole", () => {
  const { run, target, written } = comparedSession(["/a", "/b"], json);
  const answer = json("/a");
  const head = answer.indexOf(13, answer.length - 30); // cut inside the body
  target.says(answer.subarray(0, head), 10);
  target.tick(10 + 3 * CONFIG.answerGapMs);
  assert.equal(written.length, 1, "the response to /a is not whole: /b waits");
  target.says(answer.subarray(head), 10 + 4 * CONFIG.answerGapMs);
  assert.equal(written.length, 2);
  target.says(json("/b"), 20 + 4 * CONFIG.answerGapMs);
  target.closes(30 + 4 * CONFIG.answerGapMs);
  assert.equal(run.stats()["turns-same"], 2, JSON.stringify(run.stats()));
});

Deno.test("a longer HTTP answer is not cut where the online server's ended: the next turn stays its own", () => {
  const { run, target, written } = comparedSession(["/a", "/b"], json);
  const longer = response(200, { "content-type": "application/json" }, `{"path":"/a","more":1}`);
  target.says(longer.subarray(0, json("/a").length), 10); // as many bytes as the online answer
  assert.equal(written.length, 1, "the response to /a is not whole: /b waits");
  target.says(longer.subarray(json("/a").length), 11);
  assert.equal(written.length, 2);
  target.says(json("/b"), 20);
  target.closes(30);
  const stats = run.stats();
  assert.deepEqual([stats["turns-compared"], stats["turns-same"], stats["turns-different"]], [2, 1, 1]);
});
