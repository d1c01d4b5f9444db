import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { SessionError } from "../session/errors.js";
import type { CloseReason, Session } from "../session/session.js";
import { closingEventType, type EventRead, type SessionEvent, type SessionEventType } from "../session/session-events.js";
import type { InsertLimits, InsertOutcome, SessionStore, UpdateOutcome } from "../session/session-store.js";
import * as eventSql from "./event-sql.js";
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
  /**
   * How long, in all, a write may wait for another process's lock (ms) before
   * failing with UNAVAILABLE. Default 2000. It waits in short blocking tries
   * with pauses between them, so the event loop is never held for long.
   */
  readonly busyTimeoutMs?: number;
  /**
   * How often, while anyone listens for events, the store looks for commits
   * by other processes (ms). Default 100.
   */
  readonly eventPollIntervalMs?: number;
  /** SQLite's page cache for this connection, in MiB. Default 32; SQLite's own default is 2. */
  readonly cacheMib?: number;
  /** A cap on the database's size, in pages (PRAGMA max_page_count); writes past it fail with SQLITE_FULL. */
  readonly maxPageCount?: number;
  /** Told, after each commit, of the events it wrote (for metrics). */
  readonly onCommitted?: (events: readonly SessionEvent[]) => void;
  /** Told of every SQLite error a store method meets, by SQLite code (for metrics). */
  readonly onSqliteError?: (code: string) => void;
}

/** What a close returns of each session it closed. */
interface ClosedRow {
  id: string;
  user_id: string;
  client: string;
  address: string;
  close_reason: CloseReason;
  close_time: number;
  version: number;
}

/** The session an event is about, in the names either a row or a Session has. */
interface EventSubject {
  readonly id: string;
  readonly userId: string;
  readonly client: string;
  readonly address: string;
  readonly version: number;
}

/** Most writes one group commit holds. */
const MAX_BATCH = 256;

/**
 * SQLite's own wait for another process's lock, per try (busy_timeout). It
 * blocks the event loop, so it is short; a group commit that still finds the
 * lock taken is tried again after a pause, until its writes' budget is spent.
 */
const LOCK_TRY_MS = 20;
/** The pause before a group commit is tried again: random in [min, max) ms, so two processes do not keep colliding. */
const LOCK_PAUSE_MS = { min: 5, max: 30 };

/** How much the write probe writes: the database must be able to grow by this much to count as writable. */
const WRITE_PROBE_BYTES = 64 * 1024;

const isLockError = (error: unknown): error is Database.SqliteError =>
  error instanceof Database.SqliteError && /^SQLITE_(BUSY|LOCKED)/.test(error.code);

/**
 * Whether an error opening the database is one that time or an operator can
 * fix without another server version: a lock, a full disk, I/O, a file or
 * folder that cannot be opened or created. A schema newer than this server,
 * or a file that is no database, is not.
 */
export function isTransientOpenError(error: unknown): boolean {
  if (error instanceof Database.SqliteError) return /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|PERM)/.test(error.code);
  // The file system's own (EACCES, ENOTDIR, ENOSPC...), from creating the folder.
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && /^E[A-Z]+$/.test(code);
}

/**
 * SQLite's failures that a caller can act on, as domain errors: UNAVAILABLE
 * (retry) while another process holds the lock, RESOURCE_EXHAUSTED when the
 * database cannot grow. Anything else stays as it is (INTERNAL, logged).
 */
function forCaller(error: unknown): unknown {
  if (isLockError(error)) {
    return new SessionError("unavailable", "the database is locked by another process; nothing was changed; retry");
  }
  if (error instanceof Database.SqliteError && error.code === "SQLITE_FULL") {
    return new SessionError(
      "resource_exhausted",
      "the database is full (its disk or its size limit); nothing was changed",
    );
  }
  return error;
}

/** Most events one read looks at (more when its limit is higher). */
const EVENT_SCAN_WINDOW = 5000;

const subjectOfRow = (row: Omit<ClosedRow, "close_reason" | "close_time">): EventSubject => ({
  id: row.id,
  userId: row.user_id,
  client: row.client,
  address: row.address,
  version: row.version,
});

/**
 * The SQLite implementation of the session store. Reads run at once; writes
 * are committed in groups, one transaction (BEGIN IMMEDIATE) per turn of the
 * event loop with each write in its own savepoint (see `write`), so each is
 * atomic even with other processes writing the same file. Each change
 * appends its event to session_events in that same savepoint.
 */
export function createSqliteSessionStore(options: SqliteSessionStoreOptions): SessionStore {
  if (options.path !== ":memory:") {
    mkdirSync(dirname(options.path), { recursive: true });
  }
  const lockBudgetMs = options.busyTimeoutMs ?? 2000;
  const db = new Database(options.path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    // Opening may wait out another process's lock for the whole budget (once,
    // at start-up); after that, each try of a write is short.
    db.pragma(`busy_timeout = ${lockBudgetMs}`);
    db.pragma(`cache_size = ${-1024 * (options.cacheMib ?? 32)}`);
    migrate(db);
    db.pragma(`busy_timeout = ${Math.min(LOCK_TRY_MS, lockBudgetMs)}`);
    if (options.maxPageCount !== undefined) db.pragma(`max_page_count = ${options.maxPageCount}`);
  } catch (error) {
    db.close();
    throw error;
  }
  const { onCommitted } = options;
  /** Counts an SQLite error; a failing callback must not fail a call, nor leave a batch unsettled. */
  const onSqliteError = (code: string) => {
    try {
      options.onSqliteError?.(code);
    } catch {
      // Metrics only.
    }
  };

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

  // Events of the transaction in progress; told to listeners once it commits,
  // dropped with it if it rolls back.
  let uncommitted: SessionEvent[] = [];
  const appendStatement = db.prepare(eventSql.APPEND_EVENT_SQL);
  const append = (type: SessionEventType, subject: EventSubject, time: number, closeReason: CloseReason | null = null) => {
    const event = {
      type,
      sessionId: subject.id,
      userId: subject.userId,
      client: subject.client,
      address: subject.address,
      closeReason,
      time,
      version: subject.version,
    };
    const { lastInsertRowid } = appendStatement.run(event);
    uncommitted.push({ seq: Number(lastInsertRowid), ...event });
  };
  /** Appends the closing event of each session a statement closed; returns how many. */
  const closing = (rows: unknown[]) => {
    for (const row of rows as ClosedRow[]) {
      append(closingEventType(row.close_reason), subjectOfRow(row), row.close_time, row.close_reason);
    }
    return rows.length;
  };
  const closeOne = (id: string, closeTime: number, reason: CloseReason) =>
    closing(prepare(sql.CLOSE_SQL).all({ id, closeTime, reason }));

  const listeners = new Set<() => void>();
  const notify = () =>
    listeners.forEach((listener) => {
      try {
        listener();
      } catch {
        // One listener's failure must not keep the others from hearing.
      }
    });

  /** Tells listeners and onCommitted of the events just committed. */
  const committed = () => {
    if (uncommitted.length === 0) return;
    const events = uncommitted;
    uncommitted = [];
    // Committed: nothing after this point may fail the call.
    notify();
    try {
      onCommitted?.(events);
    } catch {
      // A metrics callback's failure must not turn a committed change into an error.
    }
  };

  /** Runs a read (or the data_version poll) at once, reporting its SQLite errors as they are. */
  const runRaw = <T>(work: () => T): T => {
    try {
      return work();
    } catch (error) {
      if (error instanceof Database.SqliteError) onSqliteError(error.code);
      throw error;
    }
  };
  /** Runs a read at once; a lock it could not get is UNAVAILABLE to the caller (see forCaller). */
  const run = <T>(work: () => T): T => {
    try {
      return runRaw(work);
    } catch (error) {
      throw forCaller(error);
    }
  };

  // Group commit. Writes queue up during a turn of the event loop and are
  // committed together at its end: one BEGIN IMMEDIATE ... COMMIT (and so
  // one WAL sync under synchronous=FULL) for all of them, each write in its
  // own savepoint (better-sqlite3 nests transaction functions that way), so
  // a write that fails is undone alone. No write's promise settles before
  // the COMMIT has returned: nothing is acknowledged that is not committed.
  // An idle server commits a lone write at the end of the turn that asked.
  // While another process holds the lock, the group is tried again after a
  // pause: its writes ran in a transaction that was rolled back, so running
  // them again is safe, until each write's lock budget is spent.
  interface WriteJob {
    readonly work: () => unknown;
    readonly resolve: (value: unknown) => void;
    readonly reject: (error: unknown) => void;
    /** When it was queued (performance.now(), which the wall clock's changes do not move), for its lock budget. */
    readonly since: number;
  }
  type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
  /** Thrown out of a batch when a write's error ended the whole transaction (SQLITE_FULL, SQLITE_IOERR...). */
  class TransactionLost {
    constructor(readonly cause: unknown) {}
  }
  let queued: WriteJob[] = [];
  let flushScheduled = false;
  let retryTimer: NodeJS.Timeout | undefined;
  /**
   * Why the last write that failed for lack of space, a lock or I/O failed.
   * Cleared only by the write probe (see ping): a small commit going through
   * says nothing about the write that failed, and the health would flap.
   */
  let writeFailure: unknown;

  // The only transaction functions among the writes: each write (a plain
  // function below) gets its savepoint here, nested in the batch's transaction.
  const inSavepoint = db.transaction((work: () => unknown) => work());
  const runBatch = db.transaction((jobs: readonly WriteJob[], outcomes: Outcome[]) => {
    for (const job of jobs) {
      const mark = uncommitted.length;
      try {
        outcomes.push({ ok: true, value: inSavepoint(job.work) });
      } catch (error) {
        uncommitted.length = mark; // its savepoint was rolled back, and its events with it
        if (!db.inTransaction) throw new TransactionLost(error);
        outcomes.push({ ok: false, error });
      }
    }
  });

  /** Whether an error says the database cannot take writes now (as opposed to one bad write). */
  const isStorageFailure = (error: unknown) =>
    error instanceof Database.SqliteError && /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB)/.test(error.code);

  /** Puts writes back at the head of the queue, to be tried again after a short pause. */
  const retryLater = (jobs: readonly WriteJob[]) => {
    queued = [...jobs, ...queued];
    flushScheduled = true; // new writes join the retry rather than trying at once
    const { min, max } = LOCK_PAUSE_MS;
    retryTimer = setTimeout(flushWrites, min + Math.floor(Math.random() * (max - min)));
  };

  const flushWrites = () => {
    flushScheduled = false;
    retryTimer = undefined;
    while (queued.length > 0) {
      const jobs = queued.length <= MAX_BATCH ? queued : queued.slice(0, MAX_BATCH);
      queued = jobs === queued ? [] : queued.slice(MAX_BATCH);
      const outcomes: Outcome[] = [];
      try {
        // Inside a transaction, runBatch would only make a savepoint, and the
        // writes would be acknowledged before any COMMIT. No path leads there.
        if (db.inTransaction) throw new Error("a group commit began inside another transaction");
        runBatch.immediate(jobs, outcomes);
      } catch (thrown) {
        // Nothing of this batch was committed.
        const error = thrown instanceof TransactionLost ? thrown.cause : thrown;
        uncommitted = [];
        if (error instanceof Database.SqliteError) onSqliteError(error.code);
        if (isLockError(error) && db.open) {
          const now = performance.now();
          const again: WriteJob[] = [];
          for (const job of jobs) {
            if (now - job.since < lockBudgetMs) {
              again.push(job);
            } else {
              // A lock is a failure once a write has waited its whole budget, not at every try.
              writeFailure = error;
              job.reject(forCaller(error));
            }
          }
          if (again.length > 0) {
            retryLater(again);
            return;
          }
          continue;
        }
        if (isStorageFailure(error)) writeFailure = error;
        for (const job of jobs) job.reject(forCaller(error));
        continue;
      }
      committed();
      jobs.forEach((job, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) {
          job.resolve(outcome.value);
        } else {
          if (outcome.error instanceof Database.SqliteError) onSqliteError(outcome.error.code);
          if (isStorageFailure(outcome.error)) writeFailure = outcome.error;
          job.reject(forCaller(outcome.error));
        }
      });
    }
  };

  /**
   * Whether the database takes writes again after a write failed for lack of
   * space, a lock or I/O: commits a WRITE_PROBE_BYTES row, then deletes it.
   */
  const probeWrite = () => {
    db.transaction(() => prepare("INSERT OR REPLACE INTO write_probe (id, pad) VALUES (1, zeroblob(?))").run(WRITE_PROBE_BYTES)).immediate();
    db.transaction(() => prepare("DELETE FROM write_probe").run()).immediate();
  };

  /** Queues a write for the end of this turn's group commit; settles once committed (or failed). */
  const write = <T>(work: () => T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queued.push({ work, resolve: resolve as (value: unknown) => void, reject, since: performance.now() });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushWrites);
      }
    });

  const insert = (session: Session, tokenHash: Uint8Array, { limits, policy }: InsertLimits, now: number): InsertOutcome => {
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
    append("opened", session, session.openTime);
    return { status: "inserted", evictedIds };
  };

  const list = db.transaction((query: Parameters<SessionStore["list"]>[0]) => {
    const { page, count, params } = sql.listSql(query.filter, query.includeData);
    const rows = prepare(page).all({ ...params, take: query.take, skip: query.skip }) as SessionRow[];
    const items = rows.map(query.includeData ? rowToSession : rowToSessionInfo);
    if (!query.includeTotal) return { items };
    const { total } = prepare(count).get(params) as { total: number };
    return { items, total };
  });

  const update = (...[id, change, requestTime, expectedVersion]: Parameters<SessionStore["update"]>): UpdateOutcome => {
    if ((change.user === undefined) === (change.data === undefined)) {
      throw new Error("an update changes exactly one of user and data");
    }
    const { changes } = prepare(sql.UPDATE_CONTENT_SQL).run({
      id,
      requestTime,
      expectedVersion: expectedVersion ?? null,
      setUser: change.user !== undefined ? 1 : 0,
      user: change.user === undefined ? null : stringifyJson(change.user),
      setData: change.data !== undefined ? 1 : 0,
      data: change.data === undefined ? null : stringifyJson(change.data),
    });
    if (changes === 1) {
      const session = getSession(id)!;
      append(change.data !== undefined ? "data_stored" : "user_updated", session, requestTime);
      return { status: "updated", session };
    }
    const reason = closeIfExpired(id, requestTime);
    const session = getSession(id);
    if (session === undefined) return { status: "not_found" };
    if (reason !== undefined) return { status: "expired", reason, session };
    return session.active ? { status: "version_mismatch", session } : { status: "closed", session };
  };

  /** Closes the session if it has expired by `now`; returns why, if it did. */
  const closeIfExpired = (id: string, now: number) => {
    const row = prepare(sql.CLOSE_IF_EXPIRED_SQL).get({ id, closeTime: now }) as ClosedRow | undefined;
    if (row === undefined) return undefined;
    closing([row]);
    return row.close_reason;
  };

  const rotateToken = (...[id, rotation, seen]: Parameters<SessionStore["rotateToken"]>): boolean => {
    const retiring = prepare(sql.PREVIOUS_TOKEN_SQL).get(id) as { prev_token_hash: Buffer | null } | undefined;
    const rotated = prepare(sql.ROTATE_TOKEN_SQL).get({
      id,
      currentHash: rotation.currentHash,
      nextHash: rotation.nextHash,
      requestTime: rotation.now,
      previousValidUntil: rotation.previousValidUntil,
      ...seen,
    }) as Omit<ClosedRow, "id" | "close_reason" | "close_time"> | undefined;
    if (rotated === undefined) return false;
    if (retiring?.prev_token_hash != null) {
      prepare(sql.RETIRE_TOKEN_SQL).run(id, retiring.prev_token_hash);
    }
    append("renewed", subjectOfRow({ id, ...rotated }), rotation.now);
    return true;
  };

  const close = (id: string, closeTime: number, reason: CloseReason) => {
    closeOne(id, closeTime, reason);
    return getSession(id);
  };

  const remove = (id: string, now: number) => {
    const session = getSession(id);
    if (session !== undefined) {
      prepare("DELETE FROM sessions WHERE id = ?").run(id);
      append("deleted", session, now);
    }
    return session;
  };

  const closeExpired = (now: number, limit: number) => closing(prepare(sql.CLOSE_EXPIRED_SQL).all({ closeTime: now, limit }));

  const closeMatching = (...[filter, reason, now, limit, exceptId]: Parameters<SessionStore["closeMatching"]>) => {
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
  };

  const purgeClosed = (closedBefore: number, limit: number, now: number) => {
    const rows = prepare(sql.PURGE_CLOSED_SQL).all({ closedBefore, limit }) as Omit<ClosedRow, "close_reason" | "close_time">[];
    for (const row of rows) append("purged", subjectOfRow(row), now);
    return rows.length;
  };

  const eventLogState = () => {
    const { log_id: logId, purged_through: purgedThrough } = prepare(eventSql.EVENT_LOG_SQL).get() as {
      log_id: string;
      purged_through: number;
    };
    // Retention keeps the newest event, so head >= purgedThrough; the max()
    // keeps that true even if events were deleted some other way.
    const newest = (prepare(eventSql.HEAD_SQL).get() as { seq: number | null }).seq ?? 0;
    return { logId, head: Math.max(newest, purgedThrough), purgedThrough };
  };

  // One read transaction, so the bounds and the events are of one snapshot.
  // Seqs after purgedThrough have no gaps, so a seq range of EVENT_SCAN_WINDOW
  // is that many rows at most: a read with a filter that matches little
  // stops there, and says how far it got.
  const readEvents = db.transaction((...[after, filter, limit]: Parameters<SessionStore["readEvents"]>): EventRead => {
    const { head, purgedThrough } = eventLogState();
    if (after > head) return { status: "ahead" };
    if (after < purgedThrough) return { status: "expired" };
    const upTo = Math.min(head, after + Math.max(limit, EVENT_SCAN_WINDOW));
    const rows = prepare(eventSql.readEventsSql(filter)).all({
      ...eventSql.readEventsParams(filter),
      after,
      upTo,
      limit,
    }) as eventSql.EventRow[];
    const full = rows.length === limit;
    const events = rows.map(eventSql.rowToEvent);
    const through = full ? rows[rows.length - 1]!.seq : upTo;
    const last = events.at(-1);
    return {
      status: "ok",
      events,
      through,
      more: full || upTo < head,
      atThrough: last?.seq === through ? last : eventAt(through),
    };
  });

  const eventAt = (seq: number) => {
    const row = prepare(eventSql.EVENT_AT_SQL).get(seq) as eventSql.EventRow | undefined;
    return row === undefined ? undefined : eventSql.rowToEvent(row);
  };

  const purgeEvents = (before: number, limit: number) => {
    const oldest = prepare(eventSql.OLDEST_EVENTS_SQL).all({ limit }) as { seq: number; time: number }[];
    let count = 0;
    while (count < oldest.length && oldest[count]!.time < before) count++;
    if (count === 0) return 0;
    const upTo = oldest[count - 1]!.seq;
    prepare(eventSql.PURGE_EVENTS_SQL).run({ upTo });
    prepare(eventSql.SET_PURGED_THROUGH_SQL).run({ upTo });
    return count;
  };

  // Other processes' commits show as a change of data_version, which is
  // cheap to read: no page of the database is touched.
  const pollIntervalMs = options.eventPollIntervalMs ?? 100;
  let poller: NodeJS.Timeout | undefined;
  let dataVersion = 0;
  const startPolling = () => {
    dataVersion = db.pragma("data_version", { simple: true }) as number;
    poller = setInterval(() => {
      if (!db.open) return;
      let now: number;
      try {
        now = run(() => db.pragma("data_version", { simple: true }) as number);
      } catch {
        // Counted by run(). Tell the listeners anyway: their reads will meet
        // the same error and end their streams, rather than wait in silence.
        notify();
        return;
      }
      if (now !== dataVersion) {
        dataVersion = now;
        notify();
      }
    }, pollIntervalMs);
    poller.unref();
  };

  const selectForValidation = (includeData: boolean) =>
    prepare(`SELECT ${includeData ? ALL_COLUMNS : INFO_COLUMNS}, ${CREDENTIAL_COLUMNS} FROM sessions WHERE id = ?`);

  return {
    async insert(session, tokenHash, limits, now) {
      return write(() => insert(session, tokenHash, limits, now));
    },
    async get(id) {
      return run(() => getSession(id));
    },
    async getForValidation(id, includeData) {
      const row = run(() => selectForValidation(includeData).get(id) as (SessionRow & CredentialsRow) | undefined);
      if (row === undefined) return undefined;
      return {
        session: includeData ? rowToSession(row) : rowToSessionInfo(row),
        credentials: rowToCredentials(row),
      };
    },
    async list(query) {
      return run(() => list(query));
    },
    async update(id, change, requestTime, expectedVersion) {
      return write(() => update(id, change, requestTime, expectedVersion));
    },
    async touch(id, requestTime, seen) {
      return write(() => prepare(sql.TOUCH_SQL).run({ id, requestTime, ...seen }).changes === 1);
    },
    async rotateToken(id, rotation, seen) {
      return write(() => rotateToken(id, rotation, seen));
    },
    async isRetiredToken(id, tokenHash) {
      return run(() => prepare(sql.IS_RETIRED_TOKEN_SQL).get(id, tokenHash) !== undefined);
    },
    async close(id, closeTime, reason) {
      return write(() => close(id, closeTime, reason));
    },
    async closeIfExpired(id, now) {
      return write(() => closeIfExpired(id, now));
    },
    async closeExpired(now, limit) {
      return write(() => closeExpired(now, limit));
    },
    async closeMatching(filter, reason, now, limit, exceptId) {
      return write(() => closeMatching(filter, reason, now, limit, exceptId));
    },
    async countActive(filter) {
      // Every active session: the count the triggers keep (migration 5).
      if (Object.values(filter).every((value) => value === undefined)) {
        return run(() => (prepare("SELECT active AS n FROM session_counts WHERE id = 1").get() as { n: number }).n);
      }
      const statement = sql.countActiveSql(filter);
      return run(() => (prepare(statement.sql).get(statement.params) as { n: number }).n);
    },
    async purgeClosed(closedBefore, limit, now) {
      return write(() => purgeClosed(closedBefore, limit, now));
    },
    async delete(id, now) {
      return write(() => remove(id, now));
    },
    async eventLog() {
      return run(() => db.transaction(eventLogState)());
    },
    async readEvents(after, filter, limit) {
      return run(() => readEvents(after, filter, limit));
    },
    async eventAt(seq) {
      return run(() => eventAt(seq));
    },
    async purgeEvents(before, limit) {
      return write(() => purgeEvents(before, limit));
    },
    onEvents(listener) {
      // Each subscription is its own, even of the same function twice.
      const wrapped = () => listener();
      listeners.add(wrapped);
      if (poller === undefined && db.open) startPolling();
      return () => {
        listeners.delete(wrapped);
        if (listeners.size === 0) {
          clearInterval(poller);
          poller = undefined;
        }
      };
    },
    async ping() {
      // The health check logs what fails here: SQLite's own errors, with their codes.
      runRaw(() => prepare("SELECT 1 FROM sessions LIMIT 1").get());
      // Readable is not enough after a write failed for lack of space, a lock
      // or I/O: usable again once a write goes through.
      if (writeFailure !== undefined) {
        runRaw(probeWrite);
        writeFailure = undefined;
      }
    },
    async dispose() {
      // Writes already queued were accepted: commit them before closing,
      // waiting out another process's lock within their budget.
      clearTimeout(retryTimer);
      while (db.open && queued.length > 0) {
        flushWrites();
        if (queued.length > 0) {
          clearTimeout(retryTimer);
          await new Promise((resolve) => setTimeout(resolve, LOCK_PAUSE_MS.max));
        }
      }
      clearInterval(poller);
      poller = undefined;
      listeners.clear();
      if (db.open) {
        try {
          db.pragma("wal_checkpoint(TRUNCATE)");
        } catch (error) {
          // A full disk, say: the WAL stays, and is read back at the next open.
          if (error instanceof Database.SqliteError) onSqliteError(error.code);
        } finally {
          db.close();
        }
      }
    },
  };
}
