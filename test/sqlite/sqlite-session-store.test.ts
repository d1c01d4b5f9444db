import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SCHEMA_VERSION } from "../../src/sqlite/migrations.js";
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

describe("SQLite session store on a file", () => {
  it("creates the folder, and keeps sessions across a close and reopen", async () => {
    const path = newDbPath();
    const session = sessionRecord();
    const first = createSqliteSessionStore({ path });
    await first.insert(session);
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

  it("refuses a database written by a newer schema", () => {
    const path = newDbPath();
    const db = new Database(path.replace("nested/", ""));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => createSqliteSessionStore({ path: path.replace("nested/", "") })).toThrow(
      /schema version .* is newer than this server supports/,
    );
  });

  it("answers list queries from an index, not a table scan", async () => {
    const path = newDbPath();
    await createSqliteSessionStore({ path }).dispose();
    const db = new Database(path, { readonly: true });
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join("; ");
    expect(plan("SELECT * FROM sessions WHERE user_id = 'a' ORDER BY request_time DESC, id LIMIT 50")).toMatch(
      /USING INDEX sessions_by_user/,
    );
    expect(plan("SELECT * FROM sessions ORDER BY request_time DESC, id LIMIT 50")).toMatch(
      /USING INDEX sessions_by_request_time/,
    );
    expect(
      plan("SELECT * FROM sessions WHERE active = 1 AND request_time < 5 ORDER BY request_time LIMIT 10"),
    ).toMatch(/USING INDEX sessions_active_by_request_time/);
    db.close();
  });
});
