import Database from "better-sqlite3";
import { create, fromJson, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import {
  GetSessionByIdRequestSchema,
  GetSessionsRequestSchema,
  OpenSessionRequestSchema,
  StoreSessionDataRequestSchema,
  ValidateSessionRequestSchema,
} from "../gen/sessions/v1/sessions_pb.js";
import { newSessionId } from "../src/session/session-id.js";
import { createTokenHasher } from "../src/session/session-token.js";
import { createSqliteSessionStore } from "../src/sqlite/sqlite-session-store.js";

/**
 * The benchmark harness (`npm run bench -- [--sessions N] [--duration S]
 * [--rounds R] [--scenarios a,b]`): starts the production build of the
 * service on a file database preloaded with N sessions, and a no-op
 * reference server built from the same proto (bench/reference-server.ts),
 * drives each with h2load using pre-encoded gRPC requests, alternating
 * reference and service runs (A B A B ...), and writes bench/RESULTS.md.
 * For each run: throughput, latency p50/p99 (from h2load's per-request log),
 * server CPU per request (/proc), peak RSS, and a check that the service
 * answered OK (its own counters), since h2load counts HTTP 200 whatever the
 * gRPC status.
 */

const ROOT = new URL("../..", import.meta.url).pathname;
const run = promisify(execFile);

interface Options {
  sessions: number;
  durationS: number;
  rounds: number;
  connections: number;
  streams: number;
  scenarios: string[];
}

function parseArgs(argv: string[]): Options {
  const options: Options = { sessions: 10_000, durationS: 10, rounds: 3, connections: 4, streams: 8, scenarios: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1] ?? ""];
    const number = Number(value.replace(/k$/i, "000").replace(/m$/i, "000000"));
    if (flag === "--sessions") options.sessions = number;
    else if (flag === "--duration") options.durationS = number;
    else if (flag === "--rounds") options.rounds = number;
    else if (flag === "--connections") options.connections = number;
    else if (flag === "--streams") options.streams = number;
    else if (flag === "--scenarios") options.scenarios = value.split(",");
    else throw new Error(`unknown option ${flag}`);
  }
  return options;
}

/** A gRPC request body: the 5-byte frame header and the message. */
function grpcBody<S extends DescMessage>(schema: S, init: MessageInitShape<S>): Buffer {
  const message = toBinary(schema, create(schema, init));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

interface Preloaded {
  readonly dbPath: string;
  /** A token and the id of a preloaded session, and a user with 100 sessions. */
  readonly token: string;
  readonly id: string;
  readonly userId: string;
}

/** A database with `n` active sessions, 100 per user, written in one transaction. */
async function preload(dir: string, n: number): Promise<Preloaded> {
  const dbPath = join(dir, "sessions.db");
  await createSqliteSessionStore({ path: dbPath }).dispose(); // the schema
  const db = new Database(dbPath);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  const hasher = createTokenHasher();
  const now = Date.now();
  const insert = db.prepare(`INSERT INTO sessions (id, user_id, user_name, active, open_time, request_time, address,
      client, version, idle_timeout_ms, absolute_timeout_ms, expire_time, data_json, token_hash, token_time)
    VALUES (?, ?, '', 1, ?, ?, '10.0.0.1', 'web', 1, 86400000, 2592000000, ?, '{"theme":"dark"}', ?, ?)`);
  let sample = { token: "", id: "", userId: "" };
  const pick = Math.floor(n / 2);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = newSessionId();
      const secret = randomBytes(32).toString("base64url");
      const userId = `user-${Math.floor(i / 100)}`;
      insert.run(id, userId, now, now, now + 86_400_000, hasher(secret), now);
      if (i === pick) sample = { token: `${id}.${secret}`, id, userId };
    }
  })();
  db.close();
  return { dbPath, ...sample };
}

interface Server {
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort?: number;
}

/** Starts a node process and waits for the JSON line that names its port. */
function startProcess(args: string[], env: Record<string, string>, portOf: (line: Record<string, unknown>) => number | undefined): Promise<Server> {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let found = false;
    createInterface({ input: child.stdout! }).on("line", (text) => {
      if (found) return; // keep draining the service's request logs
      const line = JSON.parse(text) as Record<string, unknown>;
      const port = portOf(line);
      if (port !== undefined) {
        found = true;
        resolve({ child, port, ...(typeof line.httpPort === "number" && { httpPort: line.httpPort }) });
      }
    });
    child.once("exit", (code) => !found && reject(new Error(`exited with ${code} before listening`)));
  });
}

/** User plus system CPU time of a process, in microseconds, and its peak RSS in bytes. */
function processStats(pid: number): { cpuUs: number; peakRss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return { cpuUs: (ticks / 100) * 1e6, peakRss: hwm * 1024 };
}

/** Answers other than OK the service has counted for a procedure, from its /metrics. */
async function failedCount(httpPort: number, procedure: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`sessions_rpc_requests_total{procedure="${procedure}",`) && !l.includes('code="OK"'))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

interface Measurement {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerRequest: number;
  readonly peakRss: number;
  readonly requests: number;
  /** For the service: the answers it counted as other than OK. */
  readonly failed?: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** One h2load run against a server; its figures. */
async function drive(server: Server, path: string, body: Buffer, options: Options, dir: string): Promise<Measurement> {
  const bodyFile = join(dir, "body.bin");
  const logFile = join(dir, "h2load.log");
  writeFileSync(bodyFile, body);
  rmSync(logFile, { force: true });
  const before = processStats(server.child.pid!);
  const failedBefore = server.httpPort === undefined ? 0 : await failedCount(server.httpPort, path);
  const { stdout } = await run("h2load", [
    "-D", String(options.durationS),
    "-c", String(options.connections),
    "-m", String(options.streams),
    "-H", "content-type: application/grpc",
    "-H", "te: trailers",
    "-d", bodyFile,
    "--log-file", logFile,
    `http://127.0.0.1:${server.port}${path}`,
  ], { maxBuffer: 16 * 1024 * 1024 });
  const after = processStats(server.child.pid!);
  const done = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(stdout)?.[1] ?? 0);
  const durations = readFileSync(logFile, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => Number(line.split("\t")[2]) / 1000)
    .sort((a, b) => a - b);
  const failedAfter = server.httpPort === undefined ? 0 : await failedCount(server.httpPort, path);
  return {
    rps: done / options.durationS,
    p50Ms: percentile(durations, 50),
    p99Ms: percentile(durations, 99),
    cpuUsPerRequest: (after.cpuUs - before.cpuUs) / Math.max(1, done),
    peakRss: after.peakRss,
    requests: done,
    ...(server.httpPort !== undefined && { failed: failedAfter - failedBefore }),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), "sessions-bench-"));
  const started = new Date();
  console.error(`preloading ${options.sessions} sessions...`);
  const data = await preload(dir, options.sessions);
  const service = await startProcess([join(ROOT, "dist/src/main.js")], {
    SESSIONS_DB: data.dbPath,
    SESSIONS_GRPC_PORT: "0",
    SESSIONS_HTTP_PORT: "0",
  }, (line) => (line.msg === "listening" ? (line.grpcPort as number) : undefined));
  const reference = await startProcess([join(ROOT, "dist/bench/reference-server.js")], {}, (line) => line.port as number | undefined);

  const kib = fromJson(ValueSchema, { blob: "x".repeat(1000) });
  const scenarios: { name: string; method: string; body: Buffer }[] = [
    { name: "ValidateSession", method: "ValidateSession", body: grpcBody(ValidateSessionRequestSchema, { token: data.token, client: "web" }) },
    { name: "GetSessionById", method: "GetSessionById", body: grpcBody(GetSessionByIdRequestSchema, { id: data.id }) },
    { name: "OpenSession", method: "OpenSession", body: grpcBody(OpenSessionRequestSchema, { userId: "bench-open", client: "web" }) },
    { name: "StoreSessionData 1 KiB", method: "StoreSessionData", body: grpcBody(StoreSessionDataRequestSchema, { id: data.id, data: kib }) },
    { name: "GetSessions page of 50", method: "GetSessions", body: grpcBody(GetSessionsRequestSchema, { filter: { userId: data.userId }, take: 50 }) },
  ].filter((scenario) => options.scenarios.length === 0 || options.scenarios.includes(scenario.method));

  const results: { name: string; reference: Measurement[]; service: Measurement[] }[] = [];
  try {
    for (const scenario of scenarios) {
      const path = `/sessions.v1.SessionsService/${scenario.method}`;
      const result = { name: scenario.name, reference: [] as Measurement[], service: [] as Measurement[] };
      for (let round = 0; round < options.rounds; round++) {
        result.reference.push(await drive(reference, path, scenario.body, options, dir));
        result.service.push(await drive(service, path, scenario.body, options, dir));
        console.error(`${scenario.name} round ${round + 1}: reference ${Math.round(result.reference.at(-1)!.rps)}/s, service ${Math.round(result.service.at(-1)!.rps)}/s`);
      }
      results.push(result);
    }
  } finally {
    service.child.kill("SIGTERM");
    reference.child.kill("SIGTERM");
  }
  const report = render(results, options, started, process.argv.slice(2));
  writeFileSync(join(ROOT, "bench/RESULTS.md"), report);
  console.log(report);
  rmSync(dir, { recursive: true, force: true });
}

function render(
  results: { name: string; reference: Measurement[]; service: Measurement[] }[],
  options: Options,
  started: Date,
  args: string[],
): string {
  const fmt = (n: number, digits = 0) => n.toFixed(digits);
  const rows = results.map(({ name, reference, service }) => {
    const m = (list: Measurement[], key: keyof Measurement) => median(list.map((x) => x[key] as number));
    const failed = service.reduce((sum, x) => sum + (x.failed ?? 0), 0);
    return `| ${name} | ${fmt(m(reference, "rps"))} | ${fmt(m(service, "rps"))} | **${fmt(m(service, "rps") / m(reference, "rps"), 2)}** | ` +
      `${fmt(m(reference, "p50Ms"), 2)} / ${fmt(m(reference, "p99Ms"), 2)} | ${fmt(m(service, "p50Ms"), 2)} / ${fmt(m(service, "p99Ms"), 2)} | ` +
      `**${fmt(m(service, "p99Ms") / m(reference, "p99Ms"), 2)}** | ${fmt(m(reference, "cpuUsPerRequest"))} | ${fmt(m(service, "cpuUsPerRequest"))} | ` +
      `${fmt(Math.max(...service.map((x) => x.peakRss)) / 2 ** 20)} | ${failed} |`;
  });
  return `# Benchmark results

Written by \`npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}\` on ${started.toISOString()}.

Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Shared and noisy:
read the ratios, which compare runs made side by side, not the absolute figures.

Setup: the production build (\`node dist/src/main.js\`, default settings: \`synchronous=FULL\`,
request logging on) on a file database preloaded with ${options.sessions} sessions; the reference is a
no-op server on @grpc/grpc-js built from the same proto (\`bench/reference-server.ts\`). h2load
with ${options.connections} connections × ${options.streams} concurrent streams, ${options.durationS} s per run, ${options.rounds} rounds
alternating reference and service; medians. CPU is the server process's user + system time
per request; latency percentiles come from h2load's per-request log. "not OK" counts the
answers the service itself counted as anything but OK over all rounds (from its metrics: h2load
counts HTTP 200 whatever the gRPC status).

| scenario | reference req/s | service req/s | ratio | reference p50 / p99 ms | service p50 / p99 ms | p99 ratio | reference CPU µs/req | service CPU µs/req | service peak RSS MiB | not OK |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

Every request of a run carries the same body: one token, one id, one user (h2load sends a
fixed body), not tokens of preloaded sessions in random order as issue 7 asks.
`;
}

await main();
