import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** What one load run measured, as the load generator saw it. */
export interface LoadResult {
  /** Answers per second that were OK (h2load and wrk: every completed answer; see `notOk`). */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** Answers the generator itself saw fail (gRPC status for the Go driver, HTTP status for wrk). */
  readonly notOk: number;
  /** Every latency, for merging runs (h2load and the Go driver only; empty otherwise). */
  readonly latenciesMs: number[];
}

export interface Concurrency {
  readonly connections: number;
  readonly streams: number;
  readonly seconds: number;
}

/** The nearest-rank percentile of sorted values. */
export const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

/** A gRPC request body as sent on the wire: the 5-byte frame header and the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * h2load (Debian nghttp2-client) sending one pre-encoded gRPC request body
 * over and over. It counts an HTTP 200 as a success whatever the grpc-status,
 * so `notOk` counts only calls without a complete answer: the caller checks
 * statuses on the server.
 */
export async function h2load(url: string, body: Buffer, load: Concurrency, dir: string): Promise<LoadResult> {
  const bodyFile = join(dir, "h2load-body.bin");
  const logFile = join(dir, "h2load.log");
  writeFileSync(bodyFile, body);
  rmSync(logFile, { force: true });
  const { stdout } = await run("h2load", [
    "-D", String(load.seconds),
    "-c", String(load.connections),
    "-m", String(load.streams),
    "-H", "content-type: application/grpc",
    "-H", "te: trailers",
    "-d", bodyFile,
    "--log-file", logFile,
    url,
  ], { maxBuffer: 16 * 1024 * 1024 });
  const done = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(stdout)?.[1] ?? 0);
  // Calls that got no complete answer; h2load's "failed" includes its "errored" and "timeout".
  const failed = Number(/(\d+) failed/.exec(stdout)?.[1] ?? 0);
  // Each log line: start time (µs since the run began), HTTP status, duration (µs).
  const latenciesMs = readFileSync(logFile, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => Number(line.split("\t")[2]) / 1000)
    .sort((a, b) => a - b);
  return {
    rps: done / load.seconds,
    p50Ms: percentile(latenciesMs, 50),
    p99Ms: percentile(latenciesMs, 99),
    requests: done,
    notOk: failed,
    latenciesMs,
  };
}

/**
 * Builds bench/driver (Go, in GOPATH mode with Debian's grpc-go: no module
 * proxy is reachable here) into `dir`; returns the binary's path.
 */
export async function buildGoDriver(root: string, dir: string): Promise<string> {
  const binary = join(dir, "driver");
  await run("go", ["build", "-o", binary, "."], {
    cwd: join(root, "bench/driver"),
    env: { ...process.env, GO111MODULE: "off", GOPATH: `${join(dir, "gopath")}:/usr/share/gocode`, GOCACHE: join(dir, "gocache") },
  });
  return binary;
}

/** Writes request messages for the Go driver: each preceded by its length. */
export function writeBodies(path: string, messages: readonly Uint8Array[]): void {
  const parts: Buffer[] = [];
  for (const message of messages) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(message.length);
    parts.push(length, Buffer.from(message));
  }
  writeFileSync(path, Buffer.concat(parts));
}

/**
 * The Go driver: unary gRPC calls over grpc-go with request messages picked
 * at random from `bodiesFile`, each call's status checked.
 */
export async function goDriver(binary: string, address: string, method: string, bodiesFile: string, load: Concurrency): Promise<LoadResult> {
  const { stdout } = await run(binary, [
    "-addr", address,
    "-method", method,
    "-bodies", bodiesFile,
    "-c", String(load.connections),
    "-m", String(load.streams),
    "-d", String(load.seconds),
  ], { maxBuffer: 16 * 1024 * 1024 });
  const result = JSON.parse(stdout) as { requests: number; codes: Record<string, number>; rps: number; p50Ms: number; p99Ms: number };
  const notOk = Object.entries(result.codes).reduce((sum, [code, n]) => sum + (code === "OK" ? 0 : n), 0);
  return { rps: result.rps, p50Ms: result.p50Ms, p99Ms: result.p99Ms, requests: result.requests, notOk, latenciesMs: [] };
}

/**
 * wrk (Debian) posting one JSON body as a Connect unary call over HTTP/1.1.
 * Connect answers errors with HTTP error statuses, which wrk counts.
 */
export async function wrk(url: string, json: string, load: Concurrency, dir: string): Promise<LoadResult> {
  const script = join(dir, "wrk.lua");
  writeFileSync(script, `wrk.method = "POST"
wrk.body = ${JSON.stringify(json)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connect-Protocol-Version"] = "1"
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\":%d,\\"p50\\":%d,\\"p99\\":%d}\\n", summary.requests, latency:percentile(50), latency:percentile(99)))
end
`);
  const { stdout } = await run("wrk", ["-t", "1", "-c", String(load.connections * load.streams), "-d", `${load.seconds}s`, "-s", script, url], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const summary = JSON.parse(/^JSON (.*)$/m.exec(stdout)![1]!) as { requests: number; p50: number; p99: number };
  const notOk = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  return {
    rps: (summary.requests - notOk) / load.seconds,
    p50Ms: summary.p50 / 1000,
    p99Ms: summary.p99 / 1000,
    requests: summary.requests,
    notOk,
    latenciesMs: [],
  };
}
