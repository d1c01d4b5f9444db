import type { Database } from "better-sqlite3";

/**
 * Schema migrations, in order. The database's `user_version` pragma records how
 * many have been applied; each new one is appended, never edited.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     id           TEXT    NOT NULL PRIMARY KEY,
     user_id      TEXT    NOT NULL,
     user_name    TEXT    NOT NULL,
     active       INTEGER NOT NULL,
     open_time    INTEGER NOT NULL,
     close_time   INTEGER,
     request_time INTEGER NOT NULL,
     address      TEXT    NOT NULL,
     client       TEXT    NOT NULL,
     user_json    TEXT,
     data_json    TEXT
   );
   CREATE INDEX sessions_by_request_time ON sessions (request_time DESC, id);
   CREATE INDEX sessions_by_user ON sessions (user_id, request_time DESC, id);
   CREATE INDEX sessions_active_by_request_time ON sessions (request_time) WHERE active = 1;`,

  // Lifecycle: token hashes, per-session timeouts, expiry, close reasons, versions.
  `ALTER TABLE sessions ADD COLUMN close_reason TEXT;
   ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE sessions ADD COLUMN idle_timeout_ms INTEGER NOT NULL DEFAULT 1800000;
   ALTER TABLE sessions ADD COLUMN absolute_timeout_ms INTEGER NOT NULL DEFAULT 86400000;
   ALTER TABLE sessions ADD COLUMN expire_time INTEGER;
   ALTER TABLE sessions ADD COLUMN last_address TEXT NOT NULL DEFAULT '';
   ALTER TABLE sessions ADD COLUMN last_client TEXT NOT NULL DEFAULT '';
   ALTER TABLE sessions ADD COLUMN token_hash BLOB;
   ALTER TABLE sessions ADD COLUMN token_time INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE sessions ADD COLUMN prev_token_hash BLOB;
   ALTER TABLE sessions ADD COLUMN prev_token_valid_until INTEGER NOT NULL DEFAULT 0;
   UPDATE sessions SET expire_time = min(open_time + absolute_timeout_ms, request_time + idle_timeout_ms)
     WHERE active = 1;
   DROP INDEX sessions_active_by_request_time;
   CREATE INDEX sessions_active_by_expire_time ON sessions (expire_time) WHERE active = 1;
   CREATE INDEX sessions_closed_by_close_time ON sessions (close_time) WHERE active = 0;`,

  // Every token a session has retired, so that reuse is caught however many
  // renewals ago it was; and legacy sessions keep the 24 h idle expiry they
  // were opened with (they have no token, so they can only expire or close).
  `CREATE TABLE retired_tokens (
     session_id TEXT NOT NULL,
     token_hash BLOB NOT NULL,
     PRIMARY KEY (session_id, token_hash)
   ) WITHOUT ROWID;
   CREATE TRIGGER sessions_forget_retired_tokens AFTER DELETE ON sessions
   BEGIN
     DELETE FROM retired_tokens WHERE session_id = old.id;
   END;
   UPDATE sessions
     SET idle_timeout_ms = 86400000, absolute_timeout_ms = 2592000000,
         expire_time = min(open_time + 2592000000, request_time + 86400000)
     WHERE token_hash IS NULL AND active = 1;`,

  // The event log (an outbox): every change appends its event in its own
  // transaction. seq is the cursor (see event-sql.ts for why none is ever
  // reused). event_log holds the log's random id (cursors of another database
  // are refused) and how far retention has removed events.
  `CREATE TABLE session_events (
     seq          INTEGER PRIMARY KEY,
     type         TEXT    NOT NULL,
     session_id   TEXT    NOT NULL,
     user_id      TEXT    NOT NULL,
     client       TEXT    NOT NULL,
     address      TEXT    NOT NULL,
     close_reason TEXT,
     time         INTEGER NOT NULL,
     version      INTEGER NOT NULL
   );
   CREATE TABLE event_log (
     id             INTEGER PRIMARY KEY CHECK (id = 1),
     log_id         TEXT    NOT NULL,
     purged_through INTEGER NOT NULL
   );
   INSERT INTO event_log (id, log_id, purged_through) VALUES (1, lower(hex(randomblob(8))), 0);`,

  // The number of active sessions, kept by triggers in the same transaction
  // as each change (so exact across processes): counting 10M index entries
  // took 200 ms (3.5 s cold), on the event loop, at every metrics scrape.
  `CREATE TABLE session_counts (
     id     INTEGER PRIMARY KEY CHECK (id = 1),
     active INTEGER NOT NULL
   );
   INSERT INTO session_counts (id, active) VALUES (1, (SELECT count(*) FROM sessions WHERE active = 1));
   CREATE TRIGGER sessions_count_inserted AFTER INSERT ON sessions WHEN new.active = 1
   BEGIN
     UPDATE session_counts SET active = active + 1 WHERE id = 1;
   END;
   CREATE TRIGGER sessions_count_changed AFTER UPDATE OF active ON sessions WHEN new.active <> old.active
   BEGIN
     UPDATE session_counts SET active = active + (new.active - old.active) WHERE id = 1;
   END;
   CREATE TRIGGER sessions_count_deleted AFTER DELETE ON sessions WHEN old.active = 1
   BEGIN
     UPDATE session_counts SET active = active - 1 WHERE id = 1;
   END;`,

  // Where the health check writes, after a write failed for lack of space, a
  // lock or I/O, to see whether the database takes writes again; the probe
  // deletes its row (left behind only if that delete fails, until the next
  // probe).
  `CREATE TABLE write_probe (
     id  INTEGER PRIMARY KEY CHECK (id = 1),
     pad BLOB    NOT NULL
   );`,
];

/** The schema version this code expects. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema up to date (or to `target`, for tests) in one transaction. Refuses a database written
 * by a newer version of the service rather than guess at its schema.
 */
export function migrate(db: Database, target = SCHEMA_VERSION): void {
  // Up to date: no write at all, so a database whose disk is full, or whose
  // lock another process holds, still opens.
  if ((db.pragma("user_version", { simple: true }) as number) === target) return;
  db.transaction(() => {
    const current = db.pragma("user_version", { simple: true }) as number;
    if (current > target) {
      throw new Error(
        `database schema version ${current} is newer than this server supports (${target})`,
      );
    }
    for (const sql of MIGRATIONS.slice(current, target)) {
      db.exec(sql);
    }
    db.pragma(`user_version = ${Math.max(current, target)}`);
  }).immediate();
}
