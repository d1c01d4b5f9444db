import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Session, SessionPage, SessionQuery } from "../session/session.js";
import type { SessionChange, SessionStore, UpdateOutcome } from "../session/session-store.js";
import { migrate } from "./migrations.js";
import { CLOSE_IDLE_SQL, listSql } from "./session-sql.js";
import {
  ALL_COLUMNS,
  rowToSession,
  rowToSessionInfo,
  sessionToRow,
  stringifyJson,
  type SessionRow,
} from "./session-row.js";

export interface SqliteSessionStoreOptions {
  /** A file path (its folder is created), or ":memory:". */
  readonly path: string;
  /**
   * FULL syncs the WAL on every commit, so an acknowledged write survives a
   * power loss; NORMAL only survives a process crash. Default FULL.
   */
  readonly synchronous?: "FULL" | "NORMAL";
  /** How long a write waits for another process's lock (ms). Default 5000. */
  readonly busyTimeoutMs?: number;
}

/**
 * The SQLite implementation of the session store. Each method runs as one
 * synchronous transaction, so it is atomic even with other processes writing
 * the same file.
 */
export function createSqliteSessionStore(options: SqliteSessionStoreOptions): SessionStore {
  if (options.path !== ":memory:") {
    mkdirSync(dirname(options.path), { recursive: true });
  }
  const db = new Database(options.path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    migrate(db);
  } catch (error) {
    db.close();
    throw error;
  }

  const insert = db.prepare(
    `INSERT INTO sessions (${ALL_COLUMNS}) VALUES
     (@id, @user_id, @user_name, @active, @open_time, @close_time, @request_time,
      @address, @client, @user_json, @data_json)`,
  );
  const selectById = db.prepare<[string], SessionRow>(
    `SELECT ${ALL_COLUMNS} FROM sessions WHERE id = ?`,
  );
  const updateContent = db.prepare<[number, number, string | null, number, string | null, string]>(
    `UPDATE sessions
     SET request_time = ?,
         user_json = CASE WHEN ? THEN ? ELSE user_json END,
         data_json = CASE WHEN ? THEN ? ELSE data_json END
     WHERE id = ? AND active = 1`,
  );
  const closeById = db.prepare<[number, string]>(
    `UPDATE sessions SET active = 0, close_time = ?, user_json = NULL, data_json = NULL
     WHERE id = ? AND active = 1`,
  );
  const closeIdle = db.prepare<[{ closeTime: number; idleSince: number; limit: number }]>(
    CLOSE_IDLE_SQL,
  );
  const deleteById = db.prepare<[string]>("DELETE FROM sessions WHERE id = ?");

  const listStatements = new Map<string, Database.Statement>();
  const prepareList = (sql: string) => {
    let statement = listStatements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      listStatements.set(sql, statement);
    }
    return statement;
  };

  const getRow = (id: string) => selectById.get(id);

  const list = db.transaction((query: SessionQuery): SessionPage => {
    const { page, count, params } = listSql(query.filter, query.includeData);
    const rows = prepareList(page).all({ ...params, take: query.take, skip: query.skip }) as SessionRow[];
    const items = rows.map(query.includeData ? rowToSession : rowToSessionInfo);
    if (!query.includeTotal) {
      return { items };
    }
    const counted = prepareList(count).get(params) as { total: number };
    return { items, total: counted.total };
  });

  const update = db.transaction(
    (id: string, change: SessionChange, requestTime: number): UpdateOutcome => {
      const hasUser = change.user !== undefined ? 1 : 0;
      const hasData = change.data !== undefined ? 1 : 0;
      const result = updateContent.run(
        requestTime,
        hasUser,
        change.user === undefined ? null : stringifyJson(change.user),
        hasData,
        change.data === undefined ? null : stringifyJson(change.data),
        id,
      );
      const row = getRow(id);
      if (row === undefined) return { status: "not_found" };
      const session = rowToSession(row);
      return result.changes === 1 ? { status: "updated", session } : { status: "closed", session };
    },
  );

  const close = db.transaction((id: string, closeTime: number): Session | undefined => {
    closeById.run(closeTime, id);
    const row = getRow(id);
    return row === undefined ? undefined : rowToSession(row);
  });

  const remove = db.transaction((id: string): Session | undefined => {
    const row = getRow(id);
    if (row === undefined) return undefined;
    deleteById.run(id);
    return rowToSession(row);
  });

  return {
    async insert(session) {
      insert.run(sessionToRow(session));
    },
    async get(id) {
      const row = getRow(id);
      return row === undefined ? undefined : rowToSession(row);
    },
    async list(query) {
      return list(query);
    },
    async update(id, change, requestTime) {
      return update.immediate(id, change, requestTime);
    },
    async close(id, closeTime) {
      return close.immediate(id, closeTime);
    },
    async closeIdle(idleSince, closeTime, limit) {
      return closeIdle.run({ closeTime, idleSince, limit }).changes;
    },
    async delete(id) {
      return remove.immediate(id);
    },
    async dispose() {
      if (db.open) {
        db.pragma("wal_checkpoint(TRUNCATE)");
        db.close();
      }
    },
  };
}
