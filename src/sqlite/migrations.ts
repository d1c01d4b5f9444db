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
];

/** The schema version this code expects. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema up to date in one transaction. Refuses a database written
 * by a newer version of the service rather than guess at its schema.
 */
export function migrate(db: Database): void {
  db.transaction(() => {
    const current = db.pragma("user_version", { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `database schema version ${current} is newer than this server supports (${SCHEMA_VERSION})`,
      );
    }
    for (const sql of MIGRATIONS.slice(current)) {
      db.exec(sql);
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
