import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { migrate, SCHEMA_VERSION } from "../../src/sqlite/migrations.js";
import { readEventsSql } from "../../src/sqlite/event-sql.js";
import { CLOSE_EXPIRED_SQL, listSql } from "../../src/sqlite/session-sql.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { describeStoreContract, sessionRecord } from "../support/store-contract.js";
import { tempDir } from "../support/test-server.js";

describeStoreContract("SQLite :memory:", () => createSqliteSessionStore({ path: ":memory:" }));

const dirs: { remove: () => void }[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => dir.remove()));
const newDbPath = (name = "sessions.db") => {
  const dir = tempDir();
  dirs.push(dir);
  return join(dir.path, "nested", name);
};

describeStoreContract("SQLite file", () => createSqliteSessionStore({ path: newDbPath() }));

/** The query plan of `sql`, one step per line. */
function explain(db: Database.Database, sql: string, params: Record<string, unknown>): string {
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[];
  return rows.map((row) => row.detail).join("\n");
}

describe("SQLite session store on a file", () => {
  it("creates the folder, and keeps sessions across a close and reopen", async () => {
    const path = newDbPath();
    const session = sessionRecord();
    const first = createSqliteSessionStore({ path });
    await first.insert(session, Buffer.alloc(32), { limits: [], policy: "deny" }, session.openTime);
    await first.dispose();
    const second = createSqliteSessionStore({ path });
    expect(await second.get(session.id)).toEqual(session);
    await second.dispose();
  });

  it("uses WAL and records the schema version", async () => {
    const path = newDbPath();
    await createSqliteSessionStore({ path, synchronous: "NORMAL" }).dispose();
    const db = new Database(path, { readonly: true });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
  });

  it("migrates a version 1 database, keeping its sessions", async () => {
    const path = newDbPath();
    await createSqliteSessionStore({ path: path.replace("sessions.db", "init.db") }).dispose(); // creates the folder
    const old = new Database(path);
    migrate(old, 1);
    old
      .prepare(
        `INSERT INTO sessions (id, user_id, user_name, active, open_time, close_time, request_time,
                               address, client, user_json, data_json)
         VALUES (?, 'u1', 'User', 1, 1000, NULL, 2000, 'a', 'c', NULL, '{"x":1}'),
                (?, 'u2', 'User', 0, 1000, 3000, 2000, 'a', 'c', NULL, NULL)`,
      )
      .run("a".repeat(32), "b".repeat(32));
    old.close();

    const store = createSqliteSessionStore({ path });
    expect(await store.get("a".repeat(32))).toEqual({
      id: "a".repeat(32),
      userId: "u1",
      userName: "User",
      active: true,
      openTime: 1000,
      closeTime: null,
      closeReason: null,
      requestTime: 2000,
      address: "a",
      client: "c",
      version: 1,
      idleTimeoutMs: 86_400_000, // the 24 h idle expiry it was opened under
      absoluteTimeoutMs: 30 * 86_400_000,
      lastAddress: "",
      lastClient: "",
      user: null,
      data: { x: 1 },
    });
    // Its expiry was computed, so the sweeper finds it: idle deadline 2000 + 24 h.
    expect(await store.closeExpired(2000 + 86_400_000 - 1, 10)).toBe(0);
    expect(await store.closeExpired(2000 + 86_400_000, 10)).toBe(1);
    expect((await store.get("b".repeat(32)))?.active).toBe(false);
    await store.dispose();
  });

  it("refuses a database written by a newer schema", () => {
    const path = newDbPath();
    const db = new Database(path.replace("nested/", ""));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => createSqliteSessionStore({ path: path.replace("nested/", "") })).toThrow(
      /schema version .* is newer than this server supports/,
    );
  });

  it.each([
    ["all sessions", {}, /USING INDEX sessions_by_request_time/],
    ["one user", { userId: "a" }, /USING INDEX sessions_by_user/],
    ["one user's active sessions", { userId: "a", active: true }, /USING INDEX sessions_by_user/],
    ["a time range", { fromTime: 1, toTime: 2 }, /USING INDEX sessions_by_request_time/],
  ])("lists %s from an index, without sorting", async (_name, filter, index) => {
    const path = newDbPath();
    await createSqliteSessionStore({ path }).dispose();
    const db = new Database(path, { readonly: true });
    const { page, params } = listSql(filter, true);
    const plan = explain(db, page, { ...params, take: 50, skip: 0 });
    expect(plan).toMatch(index);
    expect(plan).not.toMatch(/TEMP B-TREE/);
    db.close();
  });

  it("finds expired sessions to close through the partial index of active sessions", async () => {
    const path = newDbPath();
    await createSqliteSessionStore({ path }).dispose();
    const db = new Database(path, { readonly: true });
    expect(explain(db, CLOSE_EXPIRED_SQL, { closeTime: 1, limit: 10 })).toMatch(
      /USING INDEX sessions_active_by_expire_time/,
    );
    db.close();
  });

  it.each([
    ["every event", {}, /SEARCH session_events USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/],
    ["one user's events", { userId: "a" }, /SEARCH session_events USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/],
    ["events of some types", { types: ["closed" as const] }, /SEARCH session_events USING INTEGER PRIMARY KEY/],
  ])("reads %s by range, in seq order without sorting", async (_name, filter, plan) => {
    const path = newDbPath();
    await createSqliteSessionStore({ path }).dispose();
    const db = new Database(path, { readonly: true });
    const explained = explain(db, readEventsSql(filter), { after: 0, upTo: 10, limit: 10, userId: "a", types: ",closed," });
    expect(explained).toMatch(plan);
    expect(explained).not.toMatch(/TEMP B-TREE/);
    db.close();
  });

  it("bounds how much of the log one filtered read looks at, and says how far it got", async () => {
    const store = createSqliteSessionStore({ path: newDbPath(), synchronous: "NORMAL" });
    const insert = (userId: string) => store.insert(sessionRecord({ userId }), Buffer.alloc(32), { limits: [], policy: "deny" }, 0);
    for (let i = 0; i < 12_000; i++) await insert("crowd");
    await insert("rare");
    const read = (after: number) => store.readEvents(after, { userId: "rare" }, 500);
    expect(await read(0)).toMatchObject({ status: "ok", events: [], through: 5000, more: true, atThrough: { seq: 5000 } });
    expect(await read(5000)).toMatchObject({ status: "ok", events: [], through: 10_000, more: true });
    const last = await read(10_000);
    expect(last.status === "ok" && [last.events.map((e) => e.seq), last.through, last.more]).toEqual([[12_001], 12_001, false]);
    await store.dispose();
  });

  it("gives each database its own event log id, and starts it empty when migrating", async () => {
    const [first, second] = [newDbPath(), newDbPath()].map((path) => createSqliteSessionStore({ path }));
    const [a, b] = [await first!.eventLog(), await second!.eventLog()];
    expect(a).toMatchObject({ head: 0, purgedThrough: 0 });
    expect(a.logId).not.toBe(b.logId);
    await Promise.all([first!.dispose(), second!.dispose()]);
  });

  it("tells a listener of another connection's events within the poll interval", async () => {
    const path = newDbPath();
    const watcher = createSqliteSessionStore({ path, eventPollIntervalMs: 10 });
    const writer = createSqliteSessionStore({ path });
    let told = 0;
    const stop = watcher.onEvents(() => told++);
    const session = sessionRecord();
    await writer.insert(session, Buffer.alloc(32), { limits: [], policy: "deny" }, session.openTime);
    await expect.poll(() => told, { timeout: 2000, interval: 5 }).toBeGreaterThan(0);
    const read = await watcher.readEvents(0, {}, 10);
    expect(read.status === "ok" && read.events.map((e) => [e.type, e.sessionId])).toEqual([["opened", session.id]]);
    stop();
    await Promise.all([watcher.dispose(), writer.dispose()]);
  });
});
