import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import {
  CLIENTS,
  connectBinaryHttp2,
  connectJsonHttp1,
  grpcJsClient,
  grpcOverH2c,
  RpcError,
  type TestClient,
} from "../support/clients.js";
import { brief, collectEvents, collectN, seqOf, streamError } from "../support/event-streams.js";
import { T } from "../support/store-contract.js";
import { startTestServer, tempDir, type TestConfig, type TestServer } from "../support/test-server.js";

const SECOND = 1000;
const DAY = 86_400_000;

const servers: TestServer[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((client) => client.close());
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function serve(config: TestConfig = {}) {
  const server = await startTestServer({
    eventHeartbeatMs: 60_000,
    ...config,
    sessions: {
      renewalIntervalMs: 60 * SECOND,
      renewalGraceMs: SECOND,
      maxSessionsPerClient: { kiosk: 1 },
      sessionLimitPolicy: "evict_oldest",
      ...config.sessions,
    },
  });
  servers.push(server);
  return server;
}

const connect = <C extends TestClient>(client: C) => {
  clients.push(client);
  return client;
};

/**
 * Makes one change of every kind a caller can cause, and returns the events
 * they must write, in order (TYPE:sessionId:version[:REASON]).
 */
async function everyKindOfChange(server: TestServer, client: TestClient) {
  const expected: string[] = [];
  const open = async (request: Record<string, unknown> = {}) => {
    const opened = await client.call("openSession", { userId: "u", address: "10.0.0.1", client: "web", ...request });
    expected.push(`OPENED:${opened.session!.id}:1`);
    return opened;
  };
  const a = (await open()).session!.id;
  await client.call("storeSessionData", { id: a, data: { cart: 1 } });
  expected.push(`DATA_STORED:${a}:2`);
  await client.call("updateSessionUser", { id: a, user: { name: "U" } });
  expected.push(`USER_UPDATED:${a}:3`);
  const b = await open();
  server.clock.advance(61 * SECOND);
  const renewed = await client.call("validateSession", { token: b.token });
  expect(renewed.newToken).toBeDefined();
  expected.push(`RENEWED:${b.session!.id}:1`);
  server.clock.advance(2 * SECOND);
  await expect(client.call("validateSession", { token: b.token })).rejects.toMatchObject({ reason: "ERROR_REASON_TOKEN_REUSED" });
  expected.push(`TOKEN_REUSED:${b.session!.id}:2:TOKEN_REUSE`);
  const c = (await open()).session!.id;
  await client.call("closeSession", { id: c });
  expected.push(`CLOSED:${c}:2:LOGOUT`);
  const d = (await open({ idleTimeout: 120 * SECOND })).session!.id;
  const g = (await open({ client: "kiosk" })).session!.id;
  const h = await client.call("openSession", { userId: "u", client: "kiosk" });
  expect(h.evictedSessionIds).toEqual([g]);
  expected.push(`EVICTED:${g}:2:EVICTED`, `OPENED:${h.session!.id}:1`);
  server.clock.advance(121 * SECOND);
  expect((await client.call("closeExpiredSessions")).closedCount).toBe(1);
  expected.push(`EXPIRED:${d}:2:EXPIRED_IDLE`);
  await client.call("closeUserSessions", { userId: "u", exceptSessionId: a });
  expected.push(`CLOSED:${h.session!.id}:2:REVOKED`);
  await client.call("deleteSessionById", { id: a });
  expected.push(`DELETED:${a}:3`);
  // Refused calls write nothing.
  await expect(client.call("storeSessionData", { id: c, data: 1 })).rejects.toBeInstanceOf(RpcError);
  await expect(client.call("storeSessionData", { id: "f".repeat(32), data: 1 })).rejects.toBeInstanceOf(RpcError);
  return expected;
}

describe.each(CLIENTS)("WatchSessionEvents via $name", ({ make }) => {
  it("streams the backlog, then live events, exactly one per change, in commit order", async () => {
    const server = await serve();
    const client = connect(make(server.app));
    const backlog = await everyKindOfChange(server, client);
    let received = 0;
    const stream = collectEvents(client, { fromOldest: true }, ({ events }) => (received = events.length) >= backlog.length + 2);
    // Once the backlog has come, changes made now arrive live.
    await expect.poll(() => received).toBe(backlog.length);
    const late = await client.call("openSession", { userId: "late", address: "10.9.9.9", client: "cli" });
    await client.call("closeSession", { id: late.session!.id });
    const { events, batches } = await stream;
    expect(events.map(brief)).toEqual([
      ...backlog,
      `OPENED:${late.session!.id}:1`,
      `CLOSED:${late.session!.id}:2:LOGOUT`,
    ]);
    const seqs = events.map((event) => seqOf(event.cursor));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(batches.at(-1)!.cursor).toBe(events.at(-1)!.cursor);
    expect(events.at(-2)).toMatchObject({
      userId: "late",
      client: "cli",
      address: "10.9.9.9",
      time: server.clock.now(),
    });
    expect(events.at(-2)).not.toHaveProperty("closeReason");
  });

  it("resumes after every position with nothing missed and nothing twice", async () => {
    const server = await serve();
    const client = connect(make(server.app));
    await everyKindOfChange(server, client);
    const { events: all } = await collectEvents(client, { fromOldest: true }, ({ events }) => events.length >= 14);
    for (let k = 0; k < all.length; k++) {
      const rest = all.length - k - 1;
      const { events, batches } = await collectN(client, { afterCursor: all[k]!.cursor }, rest);
      expect(events.map(brief), `after event ${k}`).toEqual(all.slice(k + 1).map(brief));
      if (rest === 0) expect(batches[0]).toEqual({ events: [], cursor: all[k]!.cursor });
    }
  });

  it("starts at the live tail without a cursor, with a first message that holds it", async () => {
    const server = await serve();
    const client = connect(make(server.app));
    const before = await client.call("openSession", { userId: "u" });
    const { batches } = await collectEvents(client, {}, ({ batches }) => batches.length > 0);
    const { events } = await collectN(client, { afterCursor: batches[0]!.cursor }, 0);
    expect(events).toEqual([]);
    const after = await client.call("openSession", { userId: "u" });
    const resumed = await collectN(client, { afterCursor: batches[0]!.cursor }, 1);
    expect(resumed.events.map((e) => e.sessionId)).toEqual([after.session!.id]);
    expect(before.session!.id).not.toBe(after.session!.id);
  });

  it("refuses bad requests and foreign cursors with the right codes and reasons", async () => {
    const server = await serve();
    const client = connect(make(server.app));
    await client.call("openSession", { userId: "u" });
    expect(await streamError(client, { afterCursor: "12" })).toMatchObject({ code: 3, message: expect.stringMatching(/^after_cursor: /) });
    expect(await streamError(client, { afterCursor: "0123456789abcdef-1-00000000", fromOldest: true })).toMatchObject({ code: 3, message: expect.stringMatching(/^from_oldest: /) });
    expect(await streamError(client, { types: ["SESSION_EVENT_TYPE_UNSPECIFIED"] })).toMatchObject({ code: 3, message: expect.stringMatching(/^types\[0\]: /) });
    const { batches } = await collectEvents(client, {}, ({ batches }) => batches.length > 0);
    const [logId] = batches[0]!.cursor.split("-");
    const foreign = `${logId === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef"}-1-00000000`;
    // Another database's, one beyond this log's newest event, one whose event is not the one at its seq.
    for (const afterCursor of [foreign, `${logId}-1000-00000000`, `${logId}-1-00000000`]) {
      expect(await streamError(client, { afterCursor })).toMatchObject({ code: 11, reason: "ERROR_REASON_CURSOR_UNKNOWN" });
    }
  });

  it("ends a stream with UNAVAILABLE when the server shuts down", async () => {
    const server = await serve();
    const client = connect(make(server.app));
    let started = false;
    const failure = collectEvents(client, {}, () => ((started = true), false), 10_000).catch((error: unknown) => error);
    await expect.poll(() => started).toBe(true);
    await server.stop();
    expect(await failure).toMatchObject({ code: 14, message: expect.stringMatching(/shutting down; reconnect and resume/) });
  });
});

describe("WatchSessionEvents", () => {
  it("answers OUT_OF_RANGE (CURSOR_EXPIRED) once retention has removed events after the cursor", async () => {
    const server = await serve({ sweepIntervalMs: 20, eventRetentionMs: DAY });
    const client = connect(grpcJsClient(server.app.grpcPort));
    for (let i = 0; i < 3; i++) await client.call("openSession", { userId: "u" });
    const { events } = await collectN(client, { fromOldest: true }, 3);
    server.clock.advance(2 * DAY);
    await client.call("openSession", { userId: "u" });
    await expect.poll(async () => (await collectN(client, { fromOldest: true }, 1)).events[0]!.cursor).not.toBe(events[0]!.cursor);
    expect(await streamError(client, { afterCursor: events[0]!.cursor })).toMatchObject({
      code: 11,
      reason: "ERROR_REASON_CURSOR_EXPIRED",
      message: expect.stringMatching(/removed by the event retention; resynchronise/),
    });
    // Nothing after the newest purged event is gone: resuming from it works.
    const resumed = await collectN(client, { afterCursor: events[2]!.cursor }, 1);
    expect(resumed.events.length).toBeGreaterThan(0);
    expect(resumed.events.every((event) => seqOf(event.cursor) > seqOf(events[2]!.cursor))).toBe(true);
  });

  it("filters by user and type, and heartbeats carry the cursor past skipped events", async () => {
    const server = await serve({ eventHeartbeatMs: 100 });
    const client = connect(connectJsonHttp1(server.app.httpPort));
    const mine = await client.call("openSession", { userId: "me" });
    const watching = collectEvents(
      client,
      { userId: "me", types: ["SESSION_EVENT_TYPE_CLOSED", "SESSION_EVENT_TYPE_EXPIRED"] },
      ({ events }) => events.length > 0,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const other = await client.call("openSession", { userId: "other" });
    await client.call("closeSession", { id: other.session!.id });
    const { batches: beats } = await collectEvents(
      client,
      { userId: "me", types: ["SESSION_EVENT_TYPE_CLOSED"] },
      ({ batches }) => batches.length >= 2,
    );
    const { events: all } = await collectN(client, { fromOldest: true }, 3);
    expect(beats[1]).toEqual({ events: [], cursor: all[2]!.cursor });
    await client.call("closeSession", { id: mine.session!.id });
    const { events } = await watching;
    expect(events.map(brief)).toEqual([`CLOSED:${mine.session!.id}:2:LOGOUT`]);
  });

  it("refuses more streams than allowed with RESOURCE_EXHAUSTED", async () => {
    const server = await serve({ maxEventStreams: 1 });
    const client = connect(grpcJsClient(server.app.grpcPort));
    const holding = new AbortController();
    const first = client.watch({}, holding.signal)[Symbol.asyncIterator]();
    await first.next();
    expect(await streamError(client, {})).toMatchObject({ code: 8, message: expect.stringMatching(/already serves 1 event streams/) });
    holding.abort();
    await first.return?.();
    await expect.poll(async () => (await collectEvents(client, {}, () => true).then(() => "ok", () => "refused"))).toBe("ok");
  });

  it("needs an admin API key when keys are configured", async () => {
    const key = (name: string) => createHash("sha256").update(name).digest("hex");
    const server = await serve({
      apiKeys: [
        { name: "edge", role: "gateway", sha256: key("gateway-key") },
        { name: "ops", role: "admin", sha256: key("admin-key") },
      ],
    });
    const gateway = connect(grpcJsClient(server.app.grpcPort, { authorization: "Bearer gateway-key" }));
    const admin = connect(connectJsonHttp1(server.app.httpPort, { authorization: "Bearer admin-key" }));
    expect(await streamError(gateway, {})).toMatchObject({ code: 7, message: expect.stringMatching(/may not call WatchSessionEvents/) });
    expect((await collectEvents(admin, {}, () => true)).batches).toHaveLength(1);
  });

  it.each([
    ["grpc-js on the gRPC port", (server: TestServer) => grpcJsClient(server.app.grpcPort)],
    ["Connect JSON over HTTP/1.1", (server: TestServer) => connectJsonHttp1(server.app.httpPort)],
  ])("via %s: ends a stream at its deadline, as a deadline or a cancel, never an internal error", async (_name, make) => {
    const server = await serve();
    const client = connect(make(server));
    const error = await collectEvents(client, {}, () => false, 10_000, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 4 });
    const ended = () => server.logs.find((line) => line.procedure === "/sessions.v1.SessionsService/WatchSessionEvents");
    await expect.poll(ended).toMatchObject({ msg: "rpc", messages: 1 });
    // The server's own deadline, or the client's cancel at its deadline, whichever it heard first.
    expect(["DEADLINE_EXCEEDED", "CANCELLED"]).toContain(ended()!.code);
    expect(server.logs.filter((line) => line.level === "error")).toEqual([]);
  });

  it("splits a read into messages well under a client's 4 MiB limit, however long the events' fields", async () => {
    const server = await serve();
    const client = connect(grpcJsClient(server.app.grpcPort));
    const long = (c: string) => c.repeat(1024);
    for (let i = 0; i < 500; i++) {
      await client.call("openSession", { userId: `${i}${long("€")}`.slice(0, 1024), client: long("ü"), address: long("€") });
    }
    const { events, batches } = await collectN(client, { fromOldest: true }, 500, 20_000);
    expect(events).toHaveLength(500);
    expect(batches.length).toBeGreaterThan(4);
    expect(new Set(events.map((event) => event.cursor)).size).toBe(500);
  });

  it("logs each stream once when it ends, with the messages it sent", async () => {
    const server = await serve();
    const client = connect(grpcJsClient(server.app.grpcPort));
    await client.call("openSession", { userId: "u" });
    await collectN(client, { fromOldest: true }, 1);
    await expect
      .poll(() => server.logs.find((line) => line.procedure === "/sessions.v1.SessionsService/WatchSessionEvents"))
      .toMatchObject({ msg: "rpc", code: "CANCELLED", messages: 1 });
  });
});

describe("a slow WatchSessionEvents consumer", () => {
  const dir = tempDir();
  const TOTAL = 100_000;
  let dbPath: string;
  // A database whose log holds TOTAL events (about 10 MB as messages), written
  // straight into the table: quicker than that many calls, and the same rows.
  beforeAll(async () => {
    dbPath = join(dir.path, "backlog.db");
    await createSqliteSessionStore({ path: dbPath }).dispose();
    const db = new Database(dbPath);
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${TOTAL})
             INSERT INTO session_events (type, session_id, user_id, client, address, close_reason, time, version)
             SELECT 'opened', printf('%032x', i), 'user-' || (i % 100), 'web', '10.0.0.1', NULL, ${T}, 1 FROM n`);
    db.close();
  });
  afterAll(() => dir.remove());

  it.each(CLIENTS.map(({ name, make }) => [name, make] as const))(
    "via %s: a client that stops reading stops the server's reads of the log",
    async (_name, make) => {
      const server = await serve({ dbPath });
      const client = connect(make(server.app));
      // A cancelled stream is routine: nothing goes to the console, nothing is logged as an error.
      const consoleError = vi.spyOn(console, "error");
      const aborter = new AbortController();
      const stream = client.watch({ fromOldest: true }, aborter.signal)[Symbol.asyncIterator]();
      const first = await stream.next();
      expect(first.value?.events).toHaveLength(500);
      // The client stops reading. Whatever its buffers and the network's take,
      // the server must stop reading the log long before its end.
      await new Promise((resolve) => setTimeout(resolve, 500));
      aborter.abort();
      await stream.return?.();
      const ended = () => server.logs.find((line) => line.procedure === "/sessions.v1.SessionsService/WatchSessionEvents");
      await expect.poll(ended).toBeDefined();
      expect(ended()!.messages).toBeLessThan(TOTAL / 500 / 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(consoleError).not.toHaveBeenCalled();
      expect(server.logs.filter((line) => line.level === "error")).toEqual([]);
      consoleError.mockRestore();
    },
  );
});
