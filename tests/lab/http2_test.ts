/**
 * `copy --connect` with HTTP/2 (h2c, prior knowledge): Debian's nginx serves online and on the target,
 * Debian's h2load is the client. A copy that falls behind must not burst past the target's
 * SETTINGS_MAX_CONCURRENT_STREAMS, and the streams a target refuses are counted.
 */
import assert from "node:assert/strict";
import { agentCommand, type Host, type LabProcess, waitForLine } from "./lab.ts";
import { type CopyLab, FAKE_CLIENTS, tcpshadow, waitForStderr, withCopyLab } from "./copy_lab.ts";
import { sleep } from "../../src/sleep.ts";

/** Ports of this test's servers, beside copy_lab's own on 80 and 8080. */
const ONLINE_PORT = 8081;
const TARGET_PORT = 8082;
/** Distinct paths, which h2load asks in turn: the logs then tell requests apart by path. */
const PATHS = Array.from({ length: 10 }, (_, i) => `/r${i}`);

/**
 * Starts nginx on `host` serving h2c on `port` (`listen ... http2;`, nginx 1.22), at most
 * `maxStreams` concurrent streams per connection; one line per request in `<dir>/access.log`.
 */
async function startNginx(host: Host, dir: string, port: number, maxStreams: number): Promise<LabProcess> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  log_format requests '$request_uri $server_protocol $status';
  access_log ${dir}/access.log requests;
  client_body_temp_path ${dir}/body;
  fastcgi_temp_path ${dir}/fastcgi;
  proxy_temp_path ${dir}/proxy;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${host.address}:${port} http2;
    http2_max_concurrent_streams ${maxStreams};
    keepalive_requests 1000000;
    location / { return 200 "ok $request_uri\\n"; }
  }
}
`,
  );
  const nginx = host.spawn(["nginx", "-e", "stderr", "-p", dir, "-c", `${dir}/nginx.conf`]);
  // nginx writes its pid file once it listens.
  for (let tries = 0; !(await exists(`${dir}/nginx.pid`)); tries++) {
    if (tries > 100) throw new Error(`nginx did not start:\n${nginx.stderrText()}`);
    await sleep(50);
  }
  return nginx;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The lines of a file, empty ones left out. */
async function lines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((line) => line !== "");
}

/** Runs h2load on the client host against the online nginx; returns its report. */
async function h2load(lab: CopyLab, args: string[]): Promise<string> {
  const urls = PATHS.map((path) => `http://${lab.online.address}:${ONLINE_PORT}${path}`);
  const result = await lab.client.run(["h2load", ...args, ...urls], { timeoutMs: 60_000 });
  return result.stdout;
}

/** Starts `copy --connect` from the online nginx's port to the target's. */
async function startCopy(lab: CopyLab): Promise<LabProcess> {
  const copy = lab.online.spawn(
    tcpshadow(["copy", "-x", `${ONLINE_PORT}-${lab.target.address}:${TARGET_PORT}`, "--connect"]),
    { stdout: "piped", stderr: "piped" },
  );
  await waitForStderr(copy, "copying");
  return copy;
}

/** Waits until `path` has at least `count` lines (or `timeoutMs` passed); returns them. */
async function waitForLines(path: string, count: number, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await lines(path);
    if (found.length >= count || Date.now() > deadline) return found;
    await sleep(100);
  }
}

Deno.test("--connect, HTTP/2: h2load's 2,000 requests, 32 at a time, reach an nginx that allows 4 at a time", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    await startNginx(lab.online, `${lab.dir}/online-nginx`, ONLINE_PORT, 128);
    const targetDir = `${lab.dir}/target-nginx`;
    await startNginx(lab.target, targetDir, TARGET_PORT, 4);
    const copy = await startCopy(lab);
    const report = await h2load(lab, ["-c", "4", "-m", "32", "-n", "2000"]);
    assert.match(report, /2000 succeeded, 0 failed/, report);
    const online = await lines(`${lab.dir}/online-nginx/access.log`);
    assert.equal(online.length, 2000);
    const target = await waitForLines(`${targetDir}/access.log`, 2000, 30_000);
    const summary = await lab.stopCopy(copy);
    const facts = JSON.stringify(summary);
    // Every request the online server logged, the target logged: same path, HTTP/2, answered 200.
    assert.deepEqual(target.sort(), online.sort(), facts);
    assert.ok(online.every((line) => line.endsWith(" HTTP/2.0 200")), online[0]);
    // The target never had to refuse one (nginx logs each refusal at info level).
    const errors = await Deno.readTextFile(`${targetDir}/error.log`);
    assert.doesNotMatch(errors, /concurrent streams exceeded/);
    assert.equal(summary["h2-sessions"], 4, facts);
    assert.equal(summary["h2-streams-opened"], 2000, facts);
    assert.equal(summary["h2-streams-refused"], 0, facts);
    assert.equal(summary["h2-streams-reset"], 0, facts);
    // 32 requests in flight online, 4 allowed on the target: streams waited.
    assert.ok(summary["h2-streams-held"] > 0, facts);
    assert.equal(summary["sessions-completed"], 4, facts);
  });
});

Deno.test("--connect, HTTP/2: the streams a target refuses (RST_STREAM REFUSED_STREAM) are counted, each once", async () => {
  await withCopyLab({ transport: "connect" }, async (lab) => {
    await startNginx(lab.online, `${lab.dir}/online-nginx`, ONLINE_PORT, 128);
    const refuserLog = `${lab.dir}/refuser.jsonl`;
    // Every 4th stream of each connection refused, the others answered.
    const refuser = lab.target.spawn(
      agentCommand("h2_refuser", ["--port", String(TARGET_PORT), "--log", refuserLog, "--refuse-every", "4"]),
    );
    await waitForLine(refuser, "listening");
    const copy = await startCopy(lab);
    const report = await h2load(lab, ["-c", "2", "-m", "8", "-n", "400"]);
    assert.match(report, /400 succeeded, 0 failed/, report);
    const streams = (await waitForLines(refuserLog, 400, 30_000)).map((line) => JSON.parse(line));
    const summary = await lab.stopCopy(copy);
    const facts = JSON.stringify(summary);
    assert.equal(streams.length, 400, facts);
    const refused = streams.filter((stream) => stream.refused).length;
    assert.equal(refused, 100);
    assert.equal(summary["h2-streams-refused"], refused, facts);
    assert.equal(summary["h2-streams-reset"], 0, facts);
    assert.equal(summary["h2-streams-opened"], 400, facts);
    assert.equal(summary["h2-sessions"], 2, facts);
  });
});

Deno.test("packets, HTTP/2: copy tells h2c sessions by their preface; the target's frames it cannot see", async () => {
  // The target's nginx on 8080, where copy_lab routes replies to the assistant and intercept listens.
  await withCopyLab({ targetDown: true }, async (lab) => {
    await startNginx(lab.online, `${lab.dir}/online-nginx`, ONLINE_PORT, 128);
    const targetDir = `${lab.dir}/target-nginx`;
    await startNginx(lab.target, targetDir, 8080, 128);
    const copy = lab.online.spawn(
      tcpshadow([
        "copy",
        "-x",
        `${ONLINE_PORT}-${lab.target.address}:8080`,
        "-s",
        lab.assistant.address,
        "-c",
        FAKE_CLIENTS,
      ]),
      { stdout: "piped", stderr: "piped" },
    );
    await waitForStderr(copy, "copying");
    const report = await h2load(lab, ["-c", "3", "-m", "4", "-n", "300"]);
    assert.match(report, /300 succeeded, 0 failed/, report);
    const online = await lines(`${lab.dir}/online-nginx/access.log`);
    const target = await waitForLines(`${targetDir}/access.log`, 300, 30_000);
    const summary = await lab.stopCopy(copy);
    const facts = JSON.stringify(summary);
    assert.deepEqual(target.sort(), online.sort(), facts);
    assert.equal(summary["h2-sessions"], 3, facts);
    // Intercept returns the target's headers only: no stream is seen, none held, none refused.
    assert.equal(summary["h2-streams-opened"], 0, facts);
    assert.equal(summary["h2-streams-refused"], 0, facts);
  });
});
