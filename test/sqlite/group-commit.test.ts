import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { SessionEvent } from "../../src/session/session-events.js";
import { SessionError } from "../../src/session/errors.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { sessionRecord } from "../support/store-contract.js";
import { tempDir } from "../support/test-server.js";

const dirs: { remove: () => void }[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => dir.remove()));
const newDbPath = () => {
  const dir = tempDir();
  dirs.push(dir);
  return join(dir.path, "sessions.db");
};
const noLimits = { limits: [], policy: "deny" } as const;
const hash = () => Buffer.alloc(32, 7);

describe("SQLite group commit", () => {
  it("commits the writes of one turn of the event loop in one transaction, and settles none before it", async () => {
    const commits: (readonly SessionEvent[])[] = [];
    const store = createSqliteSessionStore({ path: newDbPath(), onCommitted: (events) => commits.push(events) });
    const sessions = Array.from({ length: 50 }, () => sessionRecord());
    let settled = 0;
    const writes = sessions.map((s) => store.insert(s, hash(), noLimits, s.openTime).then(() => settled++));
    // Nothing is committed, nor acknowledged, before the turn ends.
    await Promise.resolve();
    expect(settled).toBe(0);
    expect(commits).toHaveLength(0);
    await Promise.all(writes);
    expect(commits).toHaveLength(1);
    expect(commits[0]!.map((e) => e.sessionId)).toEqual(sessions.map((s) => s.id));
    // A write of a later turn is its own transaction.
    await store.close(sessions[0]!.id, sessions[0]!.openTime + 1, "logout");
    expect(commits).toHaveLength(2);
    await store.dispose();
  });

  it("undoes a write that fails half-way alone, with its events, and commits the others of its batch", async () => {
    const commits: SessionEvent[] = [];
    const store = createSqliteSessionStore({ path: newDbPath(), onCommitted: (events) => commits.push(...events) });
    const first = sessionRecord({ userId: "limited" });
    await store.insert(first, hash(), noLimits, first.openTime);
    commits.length = 0;
    const before = sessionRecord();
    const after = sessionRecord();
    // Evicts `first` (limit 1), then fails inserting a row whose id exists.
    const duplicate = sessionRecord({ id: first.id, userId: "limited" });
    const results = await Promise.allSettled([
      store.insert(before, hash(), noLimits, before.openTime),
      store.insert(duplicate, hash(), { limits: [{ max: 1 }], policy: "evict_oldest" }, first.openTime + 1),
      store.insert(after, hash(), noLimits, after.openTime),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await store.get(first.id))?.active).toBe(true); // the eviction was undone
    expect(commits.map((e) => [e.type, e.sessionId])).toEqual([
      ["opened", before.id],
      ["opened", after.id],
    ]);
    expect((await store.eventLog()).head).toBe(3); // first's, before's and after's: no gap, no evicted event
    await store.dispose();
  });

  it("settles every write of a batch even if the SQLite error callback throws", async () => {
    const store = createSqliteSessionStore({
      path: newDbPath(),
      onSqliteError: () => {
        throw new Error("metrics are down");
      },
    });
    const first = sessionRecord();
    await store.insert(first, hash(), noLimits, first.openTime);
    const other = sessionRecord();
    const results = await Promise.allSettled([
      store.insert(sessionRecord({ id: first.id }), hash(), noLimits, first.openTime), // duplicate id
      store.insert(other, hash(), noLimits, other.openTime),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: "SQLITE_CONSTRAINT_PRIMARYKEY" });
    await store.dispose();
  });

  it("acknowledges exactly the writes that were committed when the database is full", async () => {
    const path = newDbPath();
    const codes: string[] = [];
    const store = createSqliteSessionStore({ path, maxPageCount: 60, onSqliteError: (code) => codes.push(code) });
    const sessions = Array.from({ length: 120 }, (_, i) => sessionRecord({ data: { blob: `${i}`.repeat(1500) } }));
    // Ten turns of 12 writes each: the file fills during one of them.
    const outcomes: PromiseSettledResult<unknown>[] = [];
    for (let turn = 0; turn < 10; turn++) {
      const batch = sessions.slice(turn * 12, turn * 12 + 12);
      outcomes.push(...(await Promise.allSettled(batch.map((s) => store.insert(s, hash(), noLimits, s.openTime)))));
    }
    await store.dispose();
    expect(codes).toContain("SQLITE_FULL");
    const acknowledged = sessions.filter((_, i) => outcomes[i]!.status === "fulfilled").map((s) => s.id);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(acknowledged.length).toBeLessThan(sessions.length);

    const db = new Database(path, { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    const rows = (db.prepare("SELECT id FROM sessions").pluck().all() as string[]).sort();
    const opened = (db.prepare("SELECT session_id FROM session_events WHERE type = 'opened'").pluck().all() as string[]).sort();
    db.close();
    expect(rows).toEqual([...acknowledged].sort());
    expect(opened).toEqual([...acknowledged].sort());

    // Without the cap, writes go through again.
    const reopened = createSqliteSessionStore({ path });
    const later = sessionRecord();
    await reopened.insert(later, hash(), noLimits, later.openTime);
    expect((await reopened.get(later.id))?.active).toBe(true);
    await reopened.dispose();
  });

  it("waits out another process's lock in short tries, letting other work run meanwhile, then commits", async () => {
    const path = newDbPath();
    const store = createSqliteSessionStore({ path });
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE"); // holds the write lock, as another server's commit would
    const session = sessionRecord();
    let done = false;
    const written = store.insert(session, hash(), noLimits, session.openTime).then(() => (done = true));
    // The event loop keeps turning while the write waits for the lock.
    let turns = 0;
    const deadline = Date.now() + 300;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      turns++;
    }
    expect(done).toBe(false);
    expect(turns).toBeGreaterThan(5);
    // A write still within its budget is not a failure: the health check does not flap.
    await store.ping();
    other.exec("COMMIT");
    await written;
    expect((await store.get(session.id))?.active).toBe(true);
    other.close();
    await store.dispose();
  });

  it("fails a write with UNAVAILABLE once its lock budget is spent, changing nothing", async () => {
    const path = newDbPath();
    const codes: string[] = [];
    const store = createSqliteSessionStore({ path, busyTimeoutMs: 150, onSqliteError: (code) => codes.push(code) });
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    const session = sessionRecord();
    const error = await store.insert(session, hash(), noLimits, session.openTime).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionError);
    expect(error).toMatchObject({ kind: "unavailable", message: expect.stringMatching(/locked by another process.*retry/) });
    expect(codes).toContain("SQLITE_BUSY");
    // Unusable for writes while it lasts: the health check says so.
    await expect(store.ping()).rejects.toMatchObject({ code: "SQLITE_BUSY" });
    other.exec("ROLLBACK");
    other.close();
    expect(await store.get(session.id)).toBeUndefined();
    await store.ping();
    await store.insert(session, hash(), noLimits, session.openTime);
    expect((await store.get(session.id))?.active).toBe(true);
    await store.dispose();
  });

  it("fails a write with RESOURCE_EXHAUSTED when the database is full, and is usable again once there is room", async () => {
    const path = newDbPath();
    const store = createSqliteSessionStore({ path, maxPageCount: 40 });
    const written: string[] = [];
    let full: unknown;
    for (let i = 0; i < 200 && full === undefined; i++) {
      const session = sessionRecord({ data: { blob: "x".repeat(3000) } });
      await store.insert(session, hash(), noLimits, session.openTime).then(
        () => written.push(session.id),
        (error: unknown) => (full = error),
      );
    }
    expect(full).toBeInstanceOf(SessionError);
    expect(full).toMatchObject({ kind: "resource_exhausted", message: expect.stringContaining("database is full") });
    await expect(store.ping()).rejects.toMatchObject({ code: "SQLITE_FULL" });
    // A small write that still fits says nothing about the one that did not: still unusable.
    const first = (await store.get(written[0]!))!;
    expect(await store.touch(first.id, first.openTime + 1, { address: "", client: "" })).toBe(true);
    await expect(store.ping()).rejects.toMatchObject({ code: "SQLITE_FULL" });
    // Room is made (here: sessions removed by another process); the health check sees it.
    const other = new Database(path);
    other.prepare("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions LIMIT 20)").run();
    other.close();
    await store.ping();
    const later = sessionRecord();
    await store.insert(later, hash(), noLimits, later.openTime);
    expect((await store.get(later.id))?.active).toBe(true);
    await store.dispose();
  });
});
