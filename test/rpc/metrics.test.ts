import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connectJsonHttp1, grpcJsClient } from "../support/clients.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

describe("Prometheus metrics at /metrics", () => {
  let server: TestServer;
  afterEach(() => server.stop());

  const scrape = async () => {
    const response = await fetch(`http://127.0.0.1:${server.app.httpPort}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  };

  it("count calls by procedure and code on both ports, time them, and count active sessions", async () => {
    server = await startTestServer({ sweepIntervalMs: 20, sessions: { idleTimeoutMs: 2000, touchIntervalMs: 0 } });
    const grpc = grpcJsClient(server.app.grpcPort);
    const http = connectJsonHttp1(server.app.httpPort);
    await grpc.call("openSession", { userId: "u1" });
    await http.call("openSession", { userId: "u2" });
    await http.call("getSessionById", { id: "0".repeat(32) }).catch(() => undefined);
    grpc.close();

    const text = await scrape();
    const open = 'procedure="/sessions.v1.SessionsService/OpenSession",code="OK"';
    expect(text).toContain(`sessions_rpc_requests_total{${open}} 2`);
    expect(text).toContain('sessions_rpc_requests_total{procedure="/sessions.v1.SessionsService/GetSessionById",code="NOT_FOUND"} 1');
    expect(text).toContain(`sessions_rpc_duration_seconds_count{${open}} 2`);
    expect(text).toContain(`sessions_rpc_duration_seconds_bucket{le="+Inf",${open}} 2`);
    expect(text).toContain("sessions_active_sessions 2");
    expect(text).toMatch(/sessions_nodejs_eventloop_lag_seconds \d/);

    expect(text).toContain("sessions_opened_total 2");

    server.clock.advance(2000);
    await expect.poll(async () => (await scrape()).includes('sessions_swept_total{action="closed"} 2'), { timeout: 5000 }).toBe(true);
    const after = await scrape();
    expect(after).toContain("sessions_active_sessions 0");
    expect(after).toMatch(/sessions_sweeps_total [1-9]/);
    expect(after).toContain('sessions_closed_total{reason="expired_idle"} 2');
    expect(after).toMatch(/sessions_sweep_size_bucket\{le="10",action="closed"\} [1-9]/);
  });

  it("count closes by reason and SQLite errors by code", async () => {
    server = await startTestServer({ sessions: { maxSessionsPerUser: 1, sessionLimitPolicy: "evict_oldest" } });
    const http = connectJsonHttp1(server.app.httpPort);
    const first = await http.call("openSession", { userId: "u1" });
    const second = await http.call("openSession", { userId: "u1" }); // evicts the first
    await http.call("closeSession", { id: second.session!.id });
    await http.call("closeSession", { id: first.session!.id }); // already closed: not counted again
    const text = await scrape();
    expect(text).toContain('sessions_closed_total{reason="evicted"} 1');
    expect(text).toContain('sessions_closed_total{reason="logout"} 1');
    expect(text).toContain("sessions_opened_total 2");
    expect(text).toContain('sessions_events_total{type="opened"} 2');
    expect(text).toContain('sessions_events_total{type="evicted"} 1');
    expect(text).toContain('sessions_events_total{type="closed"} 1');
    await server.stop();

    const dir = tempDir();
    const dbPath = join(dir.path, "errors.db");
    server = await startTestServer({ dbPath });
    const other = new Database(dbPath);
    other.exec("ALTER TABLE sessions RENAME TO away; ALTER TABLE session_counts RENAME TO counts_away");
    other.close();
    await connectJsonHttp1(server.app.httpPort).call("openSession", { userId: "u1" }).catch(() => undefined);
    // The failed open, and the scrape's own count of active sessions, which fails too but
    // must not fail the scrape.
    expect(await scrape()).toContain('sessions_sqlite_errors_total{code="SQLITE_ERROR"} 2');
    dir.remove();
  });

  it("count event streams, and events the sweeper purges", async () => {
    server = await startTestServer({ sweepIntervalMs: 20, eventRetentionMs: 1000 });
    const http = connectJsonHttp1(server.app.httpPort);
    await http.call("openSession", { userId: "u1" });
    await http.call("openSession", { userId: "u2" });
    const watching = new AbortController();
    const stream = http.watch({}, watching.signal)[Symbol.asyncIterator]();
    await stream.next();
    expect(await scrape()).toContain("sessions_event_streams 1");
    watching.abort();
    await stream.return?.();
    await expect.poll(async () => (await scrape()).includes("sessions_event_streams 0")).toBe(true);
    server.clock.advance(2000);
    // Both are old enough; the newest event is always kept.
    await expect.poll(async () => (await scrape()).includes("sessions_events_purged_total 1"), { timeout: 5000 }).toBe(true);
  });
});
