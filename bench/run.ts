import { create, fromJson, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import {
  CloseExpiredSessionsRequestSchema,
  GetSessionByIdRequestSchema,
  GetSessionsRequestSchema,
  OpenSessionRequestSchema,
  StoreSessionDataRequestSchema,
  ValidateSessionRequestSchema,
} from "../gen/sessions/v1/sessions_pb.js";
import { renderChart } from "./chart.js";
import { buildGoDriver, goDriver, grpcFrame, h2load, percentile, wrk, writeBodies, type Concurrency, type LoadResult } from "./load.js";
import { preload, type Preloaded } from "./preload.js";

/**
 * The benchmark harness (`npm run bench -- [options]`, see parseArgs): the
 * production build of the service on file databases preloaded with sessions,
 * measured side by side with no-op reference servers built from the same
 * proto, runs alternating reference and service (A B A B ...). Writes
 * bench/RESULTS.md and bench/results.svg.
 */

const ROOT = new URL("../..", import.meta.url).pathname;
const SERVICE = "/sessions.v1.SessionsService";

interface Options {
  sessions: number;
  seconds: number;
  rounds: number;
  connections: number;
  streams: number;
  /** Scenario names (or a prefix of them) to run; empty: all. */
  only: string[];
  /** Expired sessions for the sweeper scenario; 0 skips it. */
  sweep: number;
  /** Sessions of the large database for the scale scenarios; 0 skips them. */
  scale: number;
}

const count = (value: string) => Number(value.replace(/k$/i, "000").replace(/m$/i, "000000"));

function parseArgs(argv: string[]): Options {
  const options: Options = { sessions: 10_000, seconds: 10, rounds: 3, connections: 4, streams: 8, only: [], sweep: 1_000_000, scale: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1] ?? ""];
    if (flag === "--sessions") options.sessions = count(value);
    else if (flag === "--duration") options.seconds = Number(value);
    else if (flag === "--rounds") options.rounds = Number(value);
    else if (flag === "--connections") options.connections = Number(value);
    else if (flag === "--streams") options.streams = Number(value);
    else if (flag === "--only") options.only = value.split(",");
    else if (flag === "--sweep") options.sweep = count(value);
    else if (flag === "--scale") options.scale = count(value);
    else throw new Error(`unknown option ${flag} (see the README, "Performance")`);
  }
  return options;
}

const message = <S extends DescMessage>(schema: S, init: MessageInitShape<S>) => toBinary(schema, create(schema, init));
const log = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);

// --- processes -------------------------------------------------------------

interface Proc {
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts the service on `dbPath` with its log going to a file (as a process
 * manager would take it; a pipe read by this process would compete for the
 * same two cores). Resolves once /readyz answers 200, with the time that took.
 */
async function startService(dbPath: string, dir: string, env: Record<string, string> = {}): Promise<Proc & { readyMs: number }> {
  const [port, httpPort] = [await freePort(), await freePort()];
  const logFd = openSync(join(dir, `service-${port}.log`), "w");
  const started = performance.now();
  const child = spawn(process.execPath, [join(ROOT, "dist/src/main.js")], {
    env: { PATH: process.env.PATH, SESSIONS_DB: dbPath, SESSIONS_GRPC_PORT: String(port), SESSIONS_HTTP_PORT: String(httpPort), ...env },
    stdio: ["ignore", logFd, "inherit"],
  });
  closeSync(logFd);
  let exited = false;
  child.once("exit", () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`the service exited before it was ready (log: ${dir})`);
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) return { child, port, httpPort, readyMs: performance.now() - started };
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Starts a reference server (a process that prints {"port":N}). */
function startReference(script: string): Promise<Proc> {
  const child = spawn(process.execPath, [join(ROOT, "dist/bench", script)], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve({ child, port: (JSON.parse(line) as { port: number }).port }));
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

const stop = (proc: Proc) => new Promise<void>((resolve) => {
  if (proc.child.exitCode !== null) return resolve();
  proc.child.once("exit", () => resolve());
  proc.child.kill("SIGTERM");
});

/** User plus system CPU time of a process in microseconds, and its peak RSS in bytes. */
function processStats(pid: number): { cpuUs: number; peakRss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return { cpuUs: (ticks / 100) * 1e6, peakRss: hwm * 1024 };
}

/** Calls the service counted as anything but OK, for one procedure, from its /metrics. */
async function serviceNotOk(httpPort: number, procedure: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`sessions_rpc_requests_total{procedure="${procedure}",`) && !l.includes('code="OK"'))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

// --- measurements ----------------------------------------------------------

interface Run extends LoadResult {
  readonly cpuUsPerRequest: number;
  readonly peakRss: number;
  /** Calls that were not OK: as the load generator saw them, plus (for the service) as it counted them. */
  readonly failed: number;
}

/** One load run against `proc`, with the server's CPU per request and status check around it. */
async function measure(proc: Proc, procedure: string, load: () => Promise<LoadResult>): Promise<Run> {
  const before = processStats(proc.child.pid!);
  const notOkBefore = proc.httpPort === undefined ? 0 : await serviceNotOk(proc.httpPort, procedure);
  const result = await load();
  const after = processStats(proc.child.pid!);
  const notOkAfter = proc.httpPort === undefined ? 0 : await serviceNotOk(proc.httpPort, procedure);
  return {
    ...result,
    latenciesMs: [], // not kept: a run's figures are enough here
    cpuUsPerRequest: (after.cpuUs - before.cpuUs) / Math.max(1, result.requests),
    peakRss: after.peakRss,
    // The load generator and the service see the same failed calls (the service misses only
    // those that never reached it): the larger count, not the sum.
    failed: Math.max(result.notOk, notOkAfter - notOkBefore),
  };
}

interface Comparison {
  readonly name: string;
  readonly how: string;
  readonly reference: Run[];
  readonly service: Run[];
  /** The issue's targets: throughput ratio at least, p99 ratio at most. */
  readonly target?: { throughput?: number; p99?: number };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const med = (runs: Run[], key: "rps" | "p50Ms" | "p99Ms" | "cpuUsPerRequest") => median(runs.map((run) => run[key]));
/** The service's median throughput and p99 as ratios to the reference's. */
const ratiosOf = (c: Comparison) => ({
  throughput: med(c.service, "rps") / med(c.reference, "rps"),
  p99: med(c.service, "p99Ms") / med(c.reference, "p99Ms"),
});

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const started = new Date();
  const dir = mkdtempSync(join(tmpdir(), "sessions-bench-"));
  const wanted = (name: string) => options.only.length === 0 || options.only.some((prefix) => name.startsWith(prefix));
  const load: Concurrency = { connections: options.connections, streams: options.streams, seconds: options.seconds };
  const procs: Proc[] = [];
  try {
    log("building the Go load generator");
    const driver = await buildGoDriver(ROOT, dir);
    log(`preloading ${options.sessions} sessions`);
    const data = await preload(join(dir, "sessions.db"), { live: options.sessions });
    const service = await startService(data.dbPath, dir);
    const grpcReference = await startReference("reference-server.js");
    const connectReference = await startReference("reference-connect-server.js");
    procs.push(service, grpcReference, connectReference);

    const token = data.tokens[Math.floor(data.tokens.length / 2)]!;
    const id = data.ids[Math.floor(data.ids.length / 2)]!;
    const validateBodies = join(dir, "validate.bodies");
    writeBodies(validateBodies, data.tokens.map((t) => message(ValidateSessionRequestSchema, { token: t, client: "web" })));
    const loginBodies = join(dir, "login.bodies");
    writeBodies(loginBodies, Array.from({ length: 20_000 }, (_, i) => message(OpenSessionRequestSchema, { userId: `burst-${i}`, client: "web", address: "10.1.0.1" })));
    const kib = fromJson(ValueSchema, { blob: "x".repeat(1000) });
    const burst: Concurrency = { connections: 16, streams: 16, seconds: options.seconds };

    const h2 = (method: string, body: Uint8Array) => (proc: Proc) => h2load(`http://127.0.0.1:${proc.port}${SERVICE}/${method}`, grpcFrame(body), load, dir);
    const scenarios: { name: string; how: string; procedure: string; reference: Proc; run: (proc: Proc) => Promise<LoadResult>; target?: Comparison["target"] }[] = [
      { name: "ValidateSession", how: "h2load, one token", procedure: "ValidateSession", reference: grpcReference,
        run: h2("ValidateSession", message(ValidateSessionRequestSchema, { token, client: "web" })), target: { throughput: 0.85, p99: 1.5 } },
      { name: "ValidateSession, random tokens", how: `Go driver, ${data.tokens.length} tokens in random order`, procedure: "ValidateSession", reference: grpcReference,
        run: (proc) => goDriver(driver, `127.0.0.1:${proc.port}`, `${SERVICE}/ValidateSession`, validateBodies, load), target: { throughput: 0.85, p99: 1.5 } },
      { name: "GetSessionById", how: "h2load, one id", procedure: "GetSessionById", reference: grpcReference,
        run: h2("GetSessionById", message(GetSessionByIdRequestSchema, { id })), target: { throughput: 0.85, p99: 1.5 } },
      { name: "OpenSession", how: "h2load, one user", procedure: "OpenSession", reference: grpcReference,
        run: h2("OpenSession", message(OpenSessionRequestSchema, { userId: "bench-open", client: "web" })), target: { throughput: 0.6 } },
      { name: "StoreSessionData 1 KiB", how: "h2load, one session", procedure: "StoreSessionData", reference: grpcReference,
        run: h2("StoreSessionData", message(StoreSessionDataRequestSchema, { id, data: kib })), target: { throughput: 0.5 } },
      { name: "GetSessions page of 50", how: "h2load, one user's 100 sessions", procedure: "GetSessions", reference: grpcReference,
        run: h2("GetSessions", message(GetSessionsRequestSchema, { filter: { userId: data.users[0]! }, take: 50 })) },
      { name: "Login burst", how: "Go driver, 16 × 16 concurrent OpenSession, 20,000 users", procedure: "OpenSession", reference: grpcReference,
        run: (proc) => goDriver(driver, `127.0.0.1:${proc.port}`, `${SERVICE}/OpenSession`, loginBodies, burst) },
      { name: "Connect JSON over HTTP/1.1", how: `wrk, ${load.connections * load.streams} connections, ValidateSession`, procedure: "ValidateSession", reference: connectReference,
        run: (proc) => wrk(`http://127.0.0.1:${proc.httpPort ?? proc.port}${SERVICE}/ValidateSession`, JSON.stringify({ token, client: "web" }), load, dir),
        target: { throughput: 0.8 } },
    ];

    const comparisons: Comparison[] = [];
    for (const scenario of scenarios.filter((s) => wanted(s.name))) {
      const comparison: Comparison = { name: scenario.name, how: scenario.how, reference: [], service: [], ...(scenario.target && { target: scenario.target }) };
      const procedure = `${SERVICE}/${scenario.procedure}`;
      for (let round = 0; round < options.rounds; round++) {
        comparison.reference.push(await measure(scenario.reference, procedure, () => scenario.run(scenario.reference)));
        comparison.service.push(await measure(service, procedure, () => scenario.run(service)));
        log(`${scenario.name} round ${round + 1}: reference ${Math.round(comparison.reference.at(-1)!.rps)}/s, service ${Math.round(comparison.service.at(-1)!.rps)}/s`);
      }
      comparisons.push(comparison);
    }

    const sweep = options.sweep > 0 && wanted("Sweeper") ? await measureSweep(options, dir) : undefined;
    const scale = options.scale > 0 && wanted("Scale") ? await measureScale(options, dir, data, driver, { ...service, validateBodies }) : undefined;
    const peakRss = processStats(service.child.pid!).peakRss;

    const report = render({ options, started, args: process.argv.slice(2), comparisons, sweep, scale, peakRss });
    writeFileSync(join(ROOT, "bench/RESULTS.md"), report);
    writeFileSync(join(ROOT, "bench/results.svg"), renderChart(comparisons.map((c) => ({
      name: c.name,
      ...ratiosOf(c),
      ...(c.target && { target: c.target }),
    }))));
    console.log(report);
  } finally {
    await Promise.all(procs.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- the sweeper -----------------------------------------------------------

interface SweepResult {
  readonly expired: number;
  readonly seconds: number;
  readonly closed: number;
  readonly quiet: { p50Ms: number; p99Ms: number; requests: number };
  readonly during: { p50Ms: number; p99Ms: number; requests: number };
  readonly failed: number;
}

/**
 * ValidateSession latency while the service closes `sweep` expired sessions
 * (CloseExpiredSessions, the call the sweeper makes), against the same
 * service before and after. h2load runs of 2 s back to back, each put with
 * the quiet or the busy runs by whether the sweep was in progress throughout.
 */
async function measureSweep(options: Options, dir: string): Promise<SweepResult> {
  log(`preloading ${options.sessions} live and ${options.sweep} expired sessions`);
  const data = await preload(join(dir, "sweep.db"), { live: options.sessions, expired: options.sweep });
  const service = await startService(data.dbPath, dir, { SESSIONS_SWEEP_INTERVAL: "0" });
  try {
    const procedure = `${SERVICE}/ValidateSession`;
    const body = grpcFrame(message(ValidateSessionRequestSchema, { token: data.tokens[0]!, client: "web" }));
    const url = `http://127.0.0.1:${service.port}${procedure}`;
    const window: Concurrency = { connections: options.connections, streams: options.streams, seconds: 2 };
    const quiet: number[] = [];
    const during: number[] = [];
    const failedBefore = await serviceNotOk(service.httpPort!, procedure);
    for (let i = 0; i < 3; i++) quiet.push(...(await h2load(url, body, window, dir)).latenciesMs);
    let sweeping = true;
    const sweepStarted = performance.now();
    // node:http, not fetch: fetch gives up on a response that takes over 300 s.
    const sweep = postProto(`http://127.0.0.1:${service.httpPort}${SERVICE}/CloseExpiredSessions`, message(CloseExpiredSessionsRequestSchema, {}))
      .then((status) => {
        if (status !== 200) throw new Error(`CloseExpiredSessions answered ${status}`);
        return performance.now() - sweepStarted;
      })
      .finally(() => (sweeping = false));
    while (sweeping) {
      const result = await h2load(url, body, window, dir);
      if (sweeping) during.push(...result.latenciesMs);
    }
    const sweepMs = await sweep;
    for (let i = 0; i < 3; i++) quiet.push(...(await h2load(url, body, window, dir)).latenciesMs);
    const closed = Number(/sessions_closed_total\{reason="expired_idle"\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${service.httpPort}/metrics`)).text())?.[1] ?? 0);
    const failed = (await serviceNotOk(service.httpPort!, procedure)) - failedBefore;
    const figures = (latencies: number[]) => {
      const sorted = latencies.sort((a, b) => a - b);
      return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), requests: sorted.length };
    };
    log(`sweep of ${options.sweep} took ${(sweepMs / 1000).toFixed(1)} s`);
    return { expired: options.sweep, seconds: sweepMs / 1000, closed, quiet: figures(quiet), during: figures(during), failed };
  } finally {
    await stop(service);
  }
}

/** POSTs a Connect binary unary request and resolves with the HTTP status, however long the answer takes. */
function postProto(url: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: "POST", headers: { "content-type": "application/proto" } }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("error", reject);
    request.end(body);
  });
}

// --- scale -----------------------------------------------------------------

interface ScaleResult {
  readonly sessions: number;
  readonly preloadSeconds: number;
  readonly dbBytes: number;
  readonly readyMs: { small: number; large: number };
  readonly small: Run[];
  readonly large: Run[];
  readonly listP99Ms: number;
  readonly listP50Ms: number;
  readonly listFailed: number;
  readonly largePeakRss: number;
}

/**
 * The same service on the small database and on one of `scale` sessions:
 * time to ready, ValidateSession with random tokens alternating between the
 * two, a GetSessions page of random users one call at a time (latency, not
 * throughput), and the large one's peak RSS.
 */
async function measureScale(
  options: Options,
  dir: string,
  small: Preloaded,
  driver: string,
  /** The main service, and its ValidateSession bodies for the Go driver. */
  smallService: Proc & { validateBodies: string },
): Promise<ScaleResult> {
  log(`preloading ${options.scale} sessions`);
  const data = await preload(join(dir, "scale.db"), { live: options.scale });
  log(`preloaded in ${data.seconds.toFixed(0)} s`);
  const dbBytes = statSync(data.dbPath).size;
  // Time to ready, fresh processes on each database, twice each; the faster counts (a cold page cache is not the service's).
  const readyMs = { small: Infinity, large: Infinity };
  for (let i = 0; i < 2; i++) {
    for (const [key, path] of [["small", small.dbPath], ["large", data.dbPath]] as const) {
      const proc = await startService(path, dir);
      readyMs[key] = Math.min(readyMs[key], proc.readyMs);
      await stop(proc);
    }
  }
  const large = await startService(data.dbPath, dir);
  try {
    const bodies = join(dir, "scale-validate.bodies");
    writeBodies(bodies, data.tokens.map((t) => message(ValidateSessionRequestSchema, { token: t, client: "web" })));
    const load: Concurrency = { connections: options.connections, streams: options.streams, seconds: options.seconds };
    const procedure = `${SERVICE}/ValidateSession`;
    const runs = { small: [] as Run[], large: [] as Run[] };
    for (let round = 0; round < options.rounds; round++) {
      runs.small.push(await measure(smallService, procedure, () => goDriver(driver, `127.0.0.1:${smallService.port}`, procedure, smallService.validateBodies, load)));
      runs.large.push(await measure(large, procedure, () => goDriver(driver, `127.0.0.1:${large.port}`, procedure, bodies, load)));
      log(`scale round ${round + 1}: p99 ${runs.small.at(-1)!.p99Ms} ms at ${options.sessions}, ${runs.large.at(-1)!.p99Ms} ms at ${options.scale}`);
    }
    const listBodies = join(dir, "scale-list.bodies");
    writeBodies(listBodies, data.users.map((userId) => message(GetSessionsRequestSchema, { filter: { userId }, take: 50 })));
    const list = await measure(large, `${SERVICE}/GetSessions`, () =>
      goDriver(driver, `127.0.0.1:${large.port}`, `${SERVICE}/GetSessions`, listBodies, { connections: 1, streams: 1, seconds: options.seconds }),
    );
    return {
      sessions: options.scale,
      preloadSeconds: data.seconds,
      dbBytes,
      readyMs,
      small: runs.small,
      large: runs.large,
      listP50Ms: list.p50Ms,
      listP99Ms: list.p99Ms,
      listFailed: list.failed,
      largePeakRss: processStats(large.child.pid!).peakRss,
    };
  } finally {
    await stop(large);
  }
}

// --- the report ------------------------------------------------------------

interface Report {
  options: Options;
  started: Date;
  args: string[];
  comparisons: Comparison[];
  sweep: SweepResult | undefined;
  scale: ScaleResult | undefined;
  peakRss: number;
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);
const mib = (bytes: number) => fmt(bytes / 2 ** 20);
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");

function render({ options, started, args, comparisons, sweep, scale, peakRss }: Report): string {
  const rows = comparisons.map((c) => {
    const { throughput: ratio, p99: p99Ratio } = ratiosOf(c);
    const failed = c.service.reduce((sum, run) => sum + run.failed, 0);
    return `| ${c.name} | ${c.how} | ${fmt(med(c.reference, "rps"))} | ${fmt(med(c.service, "rps"))} | **${fmt(ratio, 2)}** | ` +
      `${fmt(med(c.reference, "p50Ms"), 2)} / ${fmt(med(c.reference, "p99Ms"), 2)} | ${fmt(med(c.service, "p50Ms"), 2)} / ${fmt(med(c.service, "p99Ms"), 2)} | ` +
      `**${fmt(p99Ratio, 2)}** | ${fmt(med(c.reference, "cpuUsPerRequest"))} | ${fmt(med(c.service, "cpuUsPerRequest"))} | ${failed} |`;
  });
  const targets: string[] = [];
  for (const c of comparisons) {
    const { throughput: ratio, p99: p99Ratio } = ratiosOf(c);
    if (c.target?.throughput !== undefined) targets.push(`| ${c.name}: throughput | ≥ ${c.target.throughput} × reference | ${fmt(ratio, 2)} | ${verdict(ratio >= c.target.throughput)} |`);
    if (c.target?.p99 !== undefined) targets.push(`| ${c.name}: p99 | ≤ ${c.target.p99} × reference | ${fmt(p99Ratio, 2)} | ${verdict(p99Ratio <= c.target.p99)} |`);
  }
  if (sweep !== undefined) {
    const ratio = sweep.during.p99Ms / sweep.quiet.p99Ms;
    targets.push(sweep.during.requests === 0
      ? `| Sweeper closing ${sweep.expired} expired sessions | ValidateSession p99 < 2 × without | the sweep ended within 2 s: nothing measured during it | not measured |`
      : `| Sweeper closing ${sweep.expired} expired sessions | ValidateSession p99 < 2 × without | ${fmt(ratio, 2)} | ${verdict(ratio < 2)} |`);
  }
  if (scale !== undefined) {
    const ratio = median(scale.large.map((r) => r.p99Ms)) / median(scale.small.map((r) => r.p99Ms));
    targets.push(`| Scale: ValidateSession p99 at ${scale.sessions} | ≤ 1.3 × at ${options.sessions} | ${fmt(ratio, 2)} | ${verdict(ratio <= 1.3)} |`);
    targets.push(`| Scale: GetSessions page p99 at ${scale.sessions} | < 5 ms | ${fmt(scale.listP99Ms, 2)} ms | ${verdict(scale.listP99Ms < 5)} |`);
    targets.push(`| Memory: peak RSS with ${scale.sessions} sessions | < 250 MB | ${mib(scale.largePeakRss)} MiB | ${verdict(scale.largePeakRss < 250e6)} |`);
    targets.push(`| Start-up: ready with ${scale.sessions} sessions | < 2 s | ${fmt(scale.readyMs.large)} ms | ${verdict(scale.readyMs.large < 2000)} |`);
  }

  const sweepSection = sweep === undefined ? "" : `
## Sweeper

A second service, on a database of ${options.sessions} live and ${sweep.expired} expired sessions, closes the
expired ones (CloseExpiredSessions, what the sweeper calls every interval) while h2load sends
ValidateSession (${options.connections} × ${options.streams}) in 2 s runs: runs wholly within the sweep against
three runs before it and three after.

| | requests | p50 ms | p99 ms |
| --- | --- | --- | --- |
| without a sweep | ${sweep.quiet.requests} | ${fmt(sweep.quiet.p50Ms, 2)} | ${fmt(sweep.quiet.p99Ms, 2)} |
| during the sweep | ${sweep.during.requests} | ${fmt(sweep.during.p50Ms, 2)} | ${fmt(sweep.during.p99Ms, 2)} |

The sweep closed ${sweep.closed} sessions in ${fmt(sweep.seconds, 1)} s (${fmt(sweep.closed / sweep.seconds)} per second); ValidateSession calls not OK: ${sweep.failed}.
`;
  const scaleSection = scale === undefined ? "" : `
## Scale

A database of ${scale.sessions} sessions (${mib(scale.dbBytes)} MiB, preloaded in ${fmt(scale.preloadSeconds)} s), served by a
second service; ValidateSession with tokens in random order (Go driver, ${options.connections} × ${options.streams}, ${options.seconds} s),
alternating with the service on ${options.sessions} sessions.

| | ${options.sessions} sessions | ${scale.sessions} sessions |
| --- | --- | --- |
| ValidateSession req/s (median) | ${fmt(median(scale.small.map((r) => r.rps)))} | ${fmt(median(scale.large.map((r) => r.rps)))} |
| ValidateSession p50 / p99 ms (median) | ${fmt(median(scale.small.map((r) => r.p50Ms)), 2)} / ${fmt(median(scale.small.map((r) => r.p99Ms)), 2)} | ${fmt(median(scale.large.map((r) => r.p50Ms)), 2)} / ${fmt(median(scale.large.map((r) => r.p99Ms)), 2)} |
| time from start to /readyz 200 (best of 2) | ${fmt(scale.readyMs.small)} ms | ${fmt(scale.readyMs.large)} ms |

GetSessions of a random user's page of 50 on ${scale.sessions} sessions, one call at a time: p50 ${fmt(scale.listP50Ms, 2)} ms,
p99 ${fmt(scale.listP99Ms, 2)} ms (not OK: ${scale.listFailed}). Peak RSS of that service: ${mib(scale.largePeakRss)} MiB.
`;
  return `# Benchmark results

Written by \`npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}\` on ${started.toISOString()}.

Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Shared and noisy:
read the ratios, which compare runs made side by side, not the absolute figures.

Setup: the production build (\`node dist/src/main.js\`, default settings: \`synchronous=FULL\`,
every call logged, to a file) on a file database preloaded with ${options.sessions} sessions. References: no-op
servers built from the same proto that answer a fixed response, on @grpc/grpc-js
(\`bench/reference-server.ts\`) and on connect-node over HTTP/1.1 (\`bench/reference-connect-server.ts\`).
Load generators: h2load (${options.connections} connections × ${options.streams} concurrent streams, one pre-encoded body), the Go
driver in \`bench/driver\` (grpc-go, request messages picked at random), wrk (Connect JSON). Each
run lasts ${options.seconds} s; ${options.rounds} rounds alternate reference and service; the table shows medians.
CPU is the server process's user + system time per request (/proc). "not OK" counts calls that
failed over all of the service's runs, as the load generator saw them and as the service counted
them in its metrics (h2load counts HTTP 200 whatever the grpc-status).

| scenario | how | reference req/s | service req/s | ratio | reference p50 / p99 ms | service p50 / p99 ms | p99 ratio | reference CPU µs/req | service CPU µs/req | not OK |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

Peak RSS of the service over these runs: ${mib(peakRss)} MiB.

![throughput and p99 against the reference](results.svg)
${sweepSection}${scaleSection}
## Targets (issue 7)

| target | wanted | measured | |
| --- | --- | --- | --- |
${targets.join("\n")}
`;
}

await main();
