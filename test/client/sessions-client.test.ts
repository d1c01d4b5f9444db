import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CloseReason,
  createSessionsClient,
  fromJsonValue,
  jsonValue,
  SessionEventType,
  SessionsError,
  type SessionsClient,
  type SessionsClientOptions,
  type SessionsTransport,
  type WatchSessionEventsResponse,
} from "../../src/client/index.js";
import { makeCertificates } from "../support/certificates.js";
import { ROOT } from "../support/server-process.js";
import { startTestServer, tempDir, type TestConfig, type TestServer } from "../support/test-server.js";

const servers: TestServer[] = [];
const clients: SessionsClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((client) => client.close());
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function serve(config: TestConfig = {}) {
  const server = await startTestServer(config);
  servers.push(server);
  return server;
}

function client(options: SessionsClientOptions) {
  const made = createSessionsClient(options);
  clients.push(made);
  return made;
}

/** The three ways the SDK reaches a server. */
const TRANSPORTS: [string, (server: TestServer, scheme?: string) => SessionsTransport][] = [
  ["grpc-js on the gRPC port", (server) => ({ kind: "grpc", address: `127.0.0.1:${server.app.grpcPort}` })],
  ["Connect over HTTP/2", (server, scheme = "http") => ({ kind: "connect", baseUrl: `${scheme}://localhost:${server.app.httpPort}` })],
  [
    "Connect over HTTP/1.1",
    (server, scheme = "http") => ({ kind: "connect", baseUrl: `${scheme}://localhost:${server.app.httpPort}`, httpVersion: "1.1" }),
  ],
];

/** The SessionsError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<SessionsError> {
  const error = await promise.then(() => expect.unreachable("no error"), (e: unknown) => e);
  expect(error).toBeInstanceOf(SessionsError);
  return error as SessionsError;
}

describe.each(TRANSPORTS)("the TypeScript SDK via %s", (_name, transport) => {
  it("calls every RPC with typed requests and responses", async () => {
    const server = await serve({ sessions: { maxSessionsPerUser: 5 } });
    const sessions = client({ transport: transport(server) });
    const watching = new AbortController();
    const live = sessions.watchSessionEvents({}, { signal: watching.signal })[Symbol.asyncIterator]();
    expect((await live.next()).value?.cursor).toMatch(/-0-0{8}$/);

    const opened = await sessions.openSession({ userId: "u1", client: "web", data: jsonValue({ cart: [1] }) });
    const session = opened.session!;
    expect(session).toMatchObject({ userId: "u1", client: "web", active: true, version: 1n });
    expect(fromJsonValue(session.data)).toEqual({ cart: [1] });
    expect((await sessions.validateSession({ token: opened.token })).session!.id).toBe(session.id);
    expect((await sessions.getSessionById({ id: session.id })).session!.id).toBe(session.id);
    expect(await sessions.getSessions({ filter: { userId: "u1" }, total: true })).toMatchObject({ total: 1 });
    const stored = await sessions.storeSessionData({ id: session.id, data: jsonValue({ cart: [1, 2] }), expectedVersion: 1n });
    expect(stored.session!.version).toBe(2n);
    const updated = await sessions.updateSessionUser({ id: session.id, user: jsonValue({ name: "U" }) });
    expect(fromJsonValue(updated.session!.user)).toEqual({ name: "U" });
    expect((await sessions.closeSession({ id: session.id })).session!.closeReason).toBe(CloseReason.LOGOUT);
    expect((await sessions.closeExpiredSessions({})).closedCount).toBe(0);
    expect((await sessions.deleteSessionById({ id: session.id })).session!.id).toBe(session.id);
    const other = await sessions.openSession({ userId: "u2" });
    expect((await sessions.closeUserSessions({ userId: "u2" })).closedCount).toBe(1);
    await sessions.openSession({ userId: "u3" });
    expect((await sessions.closeSessions({ filter: { userId: "u3" }, dryRun: true })).closedCount).toBe(1);

    // The stream opened before all this saw each change as it committed.
    const types: string[] = [];
    while (types.length < 8) {
      const { value } = await live.next();
      const batch = value as WatchSessionEventsResponse;
      types.push(...batch.events.map((event) => SessionEventType[event.type]!));
    }
    expect(types).toEqual(["OPENED", "DATA_STORED", "USER_UPDATED", "CLOSED", "DELETED", "OPENED", "CLOSED", "OPENED"]);
    watching.abort();
    await live.return?.();
    const oldest = await sessions.watchSessionEvents({ fromOldest: true })[Symbol.asyncIterator]().next();
    expect(oldest.value?.events[5]?.sessionId).toBe(other.session!.id);
  });

  it("ends the call on the server when a consumer breaks out of a stream", async () => {
    const server = await serve();
    const sessions = client({ transport: transport(server) });
    for await (const batch of sessions.watchSessionEvents({})) {
      expect(batch.cursor).not.toBe("");
      break;
    }
    const ended = () => server.logs.find((line) => line.procedure === "/sessions.v1.SessionsService/WatchSessionEvents");
    await expect.poll(ended, { timeout: 3000 }).toMatchObject({ code: "CANCELLED" });
  });

  it("throws SessionsError with the status code and the reason", async () => {
    const server = await serve({ sessions: { maxSessionsPerUser: 1 } });
    const sessions = client({ transport: transport(server) });
    expect(await failure(sessions.getSessionById({ id: "0".repeat(32) }))).toMatchObject({
      code: "NOT_FOUND",
      reason: undefined,
      message: `session ${"0".repeat(32)} not found`,
    });
    expect(await failure(sessions.validateSession({ token: "nope" }))).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_UNKNOWN" });
    await sessions.openSession({ userId: "u1" });
    expect(await failure(sessions.openSession({ userId: "u1" }))).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SESSION_LIMIT" });
    expect(await failure(sessions.getSessions({ skip: -1 }))).toMatchObject({ code: "INVALID_ARGUMENT", message: "skip: must not be negative" });
    const stream = sessions.watchSessionEvents({ afterCursor: "0123456789abcdef-1-00000000" });
    expect(await failure(stream[Symbol.asyncIterator]().next())).toMatchObject({ code: "OUT_OF_RANGE", reason: "CURSOR_UNKNOWN" });
  });

  it("sends the API key, and the server refuses a client without one", async () => {
    const sha256 = createHash("sha256").update("admin-key").digest("hex");
    const server = await serve({ apiKeys: [{ name: "ops", role: "admin", sha256 }] });
    const keyed = client({ transport: transport(server), apiKey: "admin-key" });
    expect((await keyed.openSession({ userId: "u1" })).session?.userId).toBe("u1");
    const keyless = client({ transport: transport(server) });
    expect(await failure(keyless.openSession({ userId: "u1" }))).toMatchObject({ code: "UNAUTHENTICATED" });
  });
});

describe("the TypeScript SDK's deadlines, retries and TLS", () => {
  const dir = tempDir();
  let silent: net.Server;
  let silentPort: number;
  // A server that accepts connections and never answers.
  beforeAll(async () => {
    silent = net.createServer(() => undefined).listen(0, "127.0.0.1");
    await once(silent, "listening");
    silentPort = (silent.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    silent.close();
    dir.remove();
  });

  it.each(TRANSPORTS)("via %s, gives a stream no deadline of its own, and takes 0 as no deadline", async (_name, transport) => {
    const server = await serve();
    const sessions = client({ transport: transport(server), timeoutMs: 200 });
    const stream = sessions.watchSessionEvents({})[Symbol.asyncIterator]();
    await stream.next();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const opened = await sessions.openSession({ userId: "u1" }, { timeoutMs: 0 });
    const { value } = await stream.next();
    expect((value as WatchSessionEventsResponse).events[0]?.sessionId).toBe(opened.session!.id);
  });

  it.each(["grpc", "connect"] as const)("gives every unary call of the %s transport the default deadline", async (kind) => {
    const transport: SessionsTransport =
      kind === "grpc" ? { kind, address: `127.0.0.1:${silentPort}` } : { kind, baseUrl: `http://127.0.0.1:${silentPort}` };
    const sessions = client({ transport, timeoutMs: 300 });
    const started = performance.now();
    expect(await failure(sessions.getSessionById({ id: "0".repeat(32) }))).toMatchObject({ code: "DEADLINE_EXCEEDED" });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(await failure(sessions.getSessionById({ id: "0".repeat(32) }, { timeoutMs: 100 }))).toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });

  /** A port nothing listens on, for now. */
  async function freePort(): Promise<number> {
    const probe = net.createServer().listen(0, "127.0.0.1");
    await once(probe, "listening");
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return port;
  }

  it.each(["grpc", "connect"] as const)("retries an idempotent call on UNAVAILABLE until the %s server is up, and never a non-idempotent one", async (kind) => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const transport: SessionsTransport =
      kind === "grpc" ? { kind, address: `127.0.0.1:${grpcPort}` } : { kind, baseUrl: `http://127.0.0.1:${httpPort}` };
    const sessions = client({ transport, timeoutMs: 5000, retry: { maxAttempts: 50, initialBackoffMs: 20, maxBackoffMs: 100 } });

    // Both start while the server is down; only the one without side effects is retried.
    const opening = failure(sessions.openSession({ userId: "u1" }));
    const reading = failure(sessions.getSessionById({ id: "0".repeat(32) }));
    expect(await opening).toMatchObject({ code: "UNAVAILABLE" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const server = await serve({ grpcPort, httpPort });
    expect(await reading).toMatchObject({ code: "NOT_FOUND" });
    expect((await sessions.getSessions({ total: true })).total).toBe(0);
    expect(server.app.grpcPort).toBe(grpcPort);
  });

  it.each(["grpc", "connect"] as const)("gives up retrying at the deadline, and at once when the caller aborts (%s)", async (kind) => {
    const port = await freePort();
    const transport: SessionsTransport =
      kind === "grpc" ? { kind, address: `127.0.0.1:${port}` } : { kind, baseUrl: `http://127.0.0.1:${port}` };
    const sessions = client({ transport, timeoutMs: 400, retry: { maxAttempts: 1000, initialBackoffMs: 50, maxBackoffMs: 50 } });
    let started = performance.now();
    expect(await failure(sessions.getSessionById({ id: "0".repeat(32) }))).toMatchObject({ code: "UNAVAILABLE" });
    expect(performance.now() - started).toBeLessThan(1500);

    const patient = client({ transport, timeoutMs: 60_000, retry: { maxAttempts: 1000, initialBackoffMs: 2000, maxBackoffMs: 2000 } });
    const aborter = new AbortController();
    started = performance.now();
    setTimeout(() => aborter.abort(), 100);
    expect(await failure(patient.getSessionById({ id: "0".repeat(32) }, { signal: aborter.signal }))).toMatchObject({ code: "CANCELLED" });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it.each(TRANSPORTS)("via %s, refuses a stream whose signal is already aborted", async (_name, transport) => {
    const server = await serve();
    const sessions = client({ transport: transport(server) });
    const aborted = AbortSignal.abort();
    expect(await failure(sessions.watchSessionEvents({}, { signal: aborted })[Symbol.asyncIterator]().next())).toMatchObject({
      code: "CANCELLED",
    });
  });

  it("sends binary (-bin) headers as gRPC binary metadata", async () => {
    const server = await serve();
    const sessions = client({ transport: { kind: "grpc", address: `127.0.0.1:${server.app.grpcPort}` } });
    const opened = await sessions.openSession({ userId: "u1" }, { headers: { "x-trace-bin": Buffer.from([0, 1, 2]).toString("base64") } });
    expect(opened.session!.userId).toBe("u1");
  });

  it.each(["grpc", "connect-h2", "connect-h1"] as const)("lets a process exit after close(), even with a stream left by a break (%s)", async (kind) => {
    const server = await serve();
    const transport = {
      grpc: { kind: "grpc", address: `127.0.0.1:${server.app.grpcPort}` },
      "connect-h2": { kind: "connect", baseUrl: `http://127.0.0.1:${server.app.httpPort}` },
      "connect-h1": { kind: "connect", baseUrl: `http://127.0.0.1:${server.app.httpPort}`, httpVersion: "1.1" },
    }[kind];
    const script = `
      import { createSessionsClient } from "sessions";
      const client = createSessionsClient({ transport: ${JSON.stringify(transport)} });
      await client.openSession({ userId: "u1" });
      for await (const batch of client.watchSessionEvents({ fromOldest: true })) break;
      const left = client.watchSessionEvents({})[Symbol.asyncIterator]();
      await left.next();
      client.close();
      console.log("closed");`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, timeout: 8000 });
    expect(stdout).toBe("closed\n");
  });

  it.each(TRANSPORTS)("speaks TLS via %s, trusting the given CA", async (_name, transport) => {
    const certs = makeCertificates(dir.path);
    const server = await serve({ tlsCertFile: certs.serverCert, tlsKeyFile: certs.serverKey });
    const made = transport(server, "https");
    const sessions = client({
      transport: made.kind === "grpc" ? { kind: "grpc", address: `localhost:${server.app.grpcPort}` } : made,
      tls: { ca: certs.pem.ca },
    });
    expect((await sessions.openSession({ userId: "u1" })).session?.userId).toBe("u1");
    const untrusting = client({ transport: made.kind === "grpc" ? { kind: "grpc", address: `localhost:${server.app.grpcPort}` } : made, tls: {} });
    expect((await failure(untrusting.openSession({ userId: "u1" }))).code).toMatch(/UNAVAILABLE|INTERNAL|UNKNOWN/);
  });

  it.each(TRANSPORTS)("speaks mutual TLS via %s with a client certificate", async (_name, transport) => {
    const certs = makeCertificates(dir.path);
    const server = await serve({ tlsCertFile: certs.serverCert, tlsKeyFile: certs.serverKey, tlsClientCaFile: certs.caCert });
    const made = transport(server, "https");
    const target: SessionsTransport = made.kind === "grpc" ? { kind: "grpc", address: `localhost:${server.app.grpcPort}` } : made;
    const sessions = client({ transport: target, tls: { ca: certs.pem.ca, cert: certs.pem.clientCert, key: certs.pem.clientKey } });
    expect((await sessions.openSession({ userId: "u1" })).session?.userId).toBe("u1");
    // Without one, the handshake fails: UNAVAILABLE on grpc-js, INTERNAL or UNKNOWN on Connect.
    const anonymous = client({ transport: target, tls: { ca: certs.pem.ca }, timeoutMs: 2000 });
    expect((await failure(anonymous.openSession({ userId: "u1" }))).code).toMatch(target.kind === "grpc" ? /^UNAVAILABLE$/ : /^(INTERNAL|UNKNOWN|UNAVAILABLE)$/);
  });

  it("runs the README's example over both ports, as the package's users import it", async () => {
    const server = await serve();
    const run = (kind: string, target: string) =>
      promisify(execFile)(process.execPath, ["examples/typescript/example.mjs", kind, target], { cwd: ROOT });
    for (const [kind, target] of [
      ["grpc", `127.0.0.1:${server.app.grpcPort}`],
      ["connect", `http://127.0.0.1:${server.app.httpPort}`],
    ]) {
      const { stdout } = await run(kind!, target!);
      expect(stdout).toMatch(
        /^opened [0-9a-f]{32} for 123\nvalidated [0-9a-f]{32}\nstored \{"theme":"light"\}, version 2\nlisted 1 of 1\nclosed: active=false\ndeleted\nrefused: UNAUTHENTICATED TOKEN_UNKNOWN\n$/,
      );
    }
  });
});
