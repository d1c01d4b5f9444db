import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { CloseReason, Session } from "../session/session.js";
import type { InsertLimits, InsertOutcome, SessionStore, UpdateOutcome } from "../session/session-store.js";
import { migrate } from "./migrations.js";
import {
  ALL_COLUMNS,
  CREDENTIAL_COLUMNS,
  INFO_COLUMNS,
  newSessionRow,
  rowToCredentials,
  rowToSession,
  rowToSessionInfo,
  stringifyJson,
  type CredentialsRow,
  type SessionRow,
} from "./session-row.js";
import * as sql from "./session-sql.js";

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
  /** Told, after each commit, how many sessions it closed and why (for metrics). */
  readonly onClosed?: (reason: CloseReason, count: number) => void;
  /** Told of each session inserted (for metrics). */
  readonly onOpened?: () => void;
  /** Told of every SQLite error a store method meets, by SQLite code (for metrics). */
  readonly onSqliteError?: (code: string) => void;
}

/**
 * The SQLite implementation of the session store. Each method runs as one
 * synchronous transaction (writes as BEGIN IMMEDIATE), so it is atomic even
 * with other processes writing the same file.
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

  const statements = new Map<string, Database.Statement>();
  /** Prepares each distinct SQL text once. */
  const prepare = (text: string) => {
    let statement = statements.get(text);
    if (statement === undefined) {
      statement = db.prepare(text);
      statements.set(text, statement);
    }
    return statement;
  };
  const selectById = db.prepare<[string], SessionRow>(`SELECT ${ALL_COLUMNS} FROM sessions WHERE id = ?`);
  const getRow = (id: string) => selectById.get(id);
  const getSession = (id: string) => {
    const row = getRow(id);
    return row === undefined ? undefined : rowToSession(row);
  };
  /** Close reasons of the current transaction, reported once it has committed. */
  let closedInTransaction: CloseReason[] = [];
  const closing = (rows: unknown[]) => {
    for (const row of rows as { close_reason: CloseReason }[]) closedInTransaction.push(row.close_reason);
    return rows.length;
  };
  const closeOne = (id: string, closeTime: number, reason: CloseReason) =>
    closing(prepare(sql.CLOSE_SQL).all({ id, closeTime, reason }));

  const insert = db.transaction(
    (session: Session, tokenHash: Uint8Array, { limits, policy }: InsertLimits, now: number): InsertOutcome => {
      const evictedIds: string[] = [];
      for (const limit of limits) {
        const byClient = limit.client !== undefined;
        const scope = { userId: session.userId, now, ...(byClient && { client: limit.client }) };
        const { n: live } = prepare(sql.countLiveSql(byClient)).get(scope) as { n: number };
        if (live < limit.max) continue;
        if (policy === "deny") return { status: "limit_reached", limit };
        const victims = prepare(
          sql.evictionVictimsSql(byClient, policy === "evict_least_recently_used"),
        ).all({ ...scope, n: live - limit.max + 1 }) as { id: string }[];
        for (const { id } of victims) {
          closeOne(id, now, "evicted");
          evictedIds.push(id);
        }
      }
      prepare(sql.INSERT_SQL).run(newSessionRow(session, tokenHash));
      return { status: "inserted", evictedIds };
    },
  );

  const list = db.transaction((query: Parameters<SessionStore["list"]>[0]) => {
    const { page, count, params } = sql.listSql(query.filter, query.includeData);
    const rows = prepare(page).all({ ...params, take: query.take, skip: query.skip }) as SessionRow[];
    const items = rows.map(query.includeData ? rowToSession : rowToSessionInfo);
    if (!query.includeTotal) return { items };
    const { total } = prepare(count).get(params) as { total: number };
    return { items, total };
  });

  const update = db.transaction(
    (...[id, change, requestTime, expectedVersion]: Parameters<SessionStore["update"]>): UpdateOutcome => {
      const { changes } = prepare(sql.UPDATE_CONTENT_SQL).run({
        id,
        requestTime,
        expectedVersion: expectedVersion ?? null,
        setUser: change.user !== undefined ? 1 : 0,
        user: change.user === undefined ? null : stringifyJson(change.user),
        setData: change.data !== undefined ? 1 : 0,
        data: change.data === undefined ? null : stringifyJson(change.data),
      });
      if (changes === 1) return { status: "updated", session: getSession(id)! };
      const reason = closeIfExpired(id, requestTime);
      const session = getSession(id);
      if (session === undefined) return { status: "not_found" };
      if (reason !== undefined) return { status: "expired", reason, session };
      return session.active ? { status: "version_mismatch", session } : { status: "closed", session };
    },
  );

  const closeIfExpired = (id: string, now: number) => {
    const row = prepare(sql.CLOSE_IF_EXPIRED_SQL).get({ id, closeTime: now }) as { close_reason: CloseReason } | undefined;
    if (row !== undefined) closedInTransaction.push(row.close_reason);
    return row?.close_reason;
  };

  const rotateToken = db.transaction(
    (...[id, rotation, seen]: Parameters<SessionStore["rotateToken"]>): boolean => {
      const retiring = prepare(sql.PREVIOUS_TOKEN_SQL).get(id) as { prev_token_hash: Buffer | null } | undefined;
      const { changes } = prepare(sql.ROTATE_TOKEN_SQL).run({
        id,
        currentHash: rotation.currentHash,
        nextHash: rotation.nextHash,
        requestTime: rotation.now,
        previousValidUntil: rotation.previousValidUntil,
        ...seen,
      });
      if (changes === 1 && retiring?.prev_token_hash != null) {
        prepare(sql.RETIRE_TOKEN_SQL).run(id, retiring.prev_token_hash);
      }
      return changes === 1;
    },
  );

  const close = db.transaction((id: string, closeTime: number, reason: CloseReason) => {
    closeOne(id, closeTime, reason);
    return getSession(id);
  });

  const remove = db.transaction((id: string) => {
    const session = getSession(id);
    if (session !== undefined) prepare("DELETE FROM sessions WHERE id = ?").run(id);
    return session;
  });

  const selectForValidation = (includeData: boolean) =>
    prepare(`SELECT ${includeData ? ALL_COLUMNS : INFO_COLUMNS}, ${CREDENTIAL_COLUMNS} FROM sessions WHERE id = ?`);

  const store: SessionStore = {
    async insert(session, tokenHash, limits, now) {
      return insert.immediate(session, tokenHash, limits, now);
    },
    async get(id) {
      return getSession(id);
    },
    async getForValidation(id, includeData) {
      const row = selectForValidation(includeData).get(id) as (SessionRow & CredentialsRow) | undefined;
      if (row === undefined) return undefined;
      return {
        session: includeData ? rowToSession(row) : rowToSessionInfo(row),
        credentials: rowToCredentials(row),
      };
    },
    async list(query) {
      return list(query);
    },
    async update(id, change, requestTime, expectedVersion) {
      return update.immediate(id, change, requestTime, expectedVersion);
    },
    async touch(id, requestTime, seen) {
      return prepare(sql.TOUCH_SQL).run({ id, requestTime, ...seen }).changes === 1;
    },
    async rotateToken(id, rotation, seen) {
      return rotateToken.immediate(id, rotation, seen);
    },
    async isRetiredToken(id, tokenHash) {
      return prepare(sql.IS_RETIRED_TOKEN_SQL).get(id, tokenHash) !== undefined;
    },
    async close(id, closeTime, reason) {
      return close.immediate(id, closeTime, reason);
    },
    async closeIfExpired(id, now) {
      return closeIfExpired(id, now);
    },
    async closeExpired(now, limit) {
      return closing(prepare(sql.CLOSE_EXPIRED_SQL).all({ closeTime: now, limit }));
    },
    async closeMatching(filter, reason, now, limit, exceptId) {
      const statement = sql.closeMatchingSql(filter, exceptId !== undefined);
      return closing(
        prepare(statement.sql).all({
          ...statement.params,
          reason,
          closeTime: now,
          limit,
          ...(exceptId !== undefined && { exceptId }),
        }),
      );
    },
    async countActive(filter) {
      const statement = sql.countActiveSql(filter);
      return (prepare(statement.sql).get(statement.params) as { n: number }).n;
    },
    async purgeClosed(closedBefore, limit) {
      return prepare(sql.PURGE_CLOSED_SQL).run({ closedBefore, limit }).changes;
    },
    async delete(id) {
      return remove.immediate(id);
    },
    async ping() {
      prepare("SELECT 1 FROM sessions LIMIT 1").get();
    },
    async dispose() {
      if (db.open) {
        db.pragma("wal_checkpoint(TRUNCATE)");
        db.close();
      }
    },
  };
  return reporting(store, options, () => {
    const closed = closedInTransaction;
    closedInTransaction = [];
    return closed;
  });
}

/**
 * The store with its outcomes reported: after each method, the close reasons
 * it committed (a failed method's are dropped with its rolled-back
 * transaction), and any SQLite error by its code.
 */
function reporting(
  store: SessionStore,
  options: SqliteSessionStoreOptions,
  takeClosed: () => CloseReason[],
): SessionStore {
  const { onClosed, onOpened, onSqliteError } = options;
  if (onClosed === undefined && onOpened === undefined && onSqliteError === undefined) return store;
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(store) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    wrapped[name] = async (...args: unknown[]) => {
      // Every method does its work synchronously before its promise settles,
      // so what it closed is known here, before any other call can run.
      const pending = method(...args);
      const closed = takeClosed();
      try {
        const result = await pending;
        const counts = new Map<CloseReason, number>();
        for (const reason of closed) counts.set(reason, (counts.get(reason) ?? 0) + 1);
        counts.forEach((count, reason) => onClosed?.(reason, count));
        if (name === "insert" && (result as { status: string }).status === "inserted") onOpened?.();
        return result;
      } catch (error) {
        if (error instanceof Database.SqliteError) onSqliteError?.(error.code);
        throw error;
      }
    };
  }
  return wrapped as unknown as SessionStore;
}
