import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { randomString } from "../src/session/entropy.js";
import { newSessionId } from "../src/session/session-id.js";
import { createSqliteSessionStore } from "../src/sqlite/sqlite-session-store.js";

export interface PreloadOptions {
  /** Active sessions, 100 per user, idle timeout 1 day. */
  readonly live: number;
  /** Active sessions whose idle timeout passed a day ago: the sweeper's work. */
  readonly expired?: number;
  /** How many tokens (and their ids) to keep for the load generators, spread over the table. */
  readonly sample?: number;
}

export interface Preloaded {
  readonly dbPath: string;
  /** Tokens of live sessions, spread evenly over the insert order. */
  readonly tokens: string[];
  /** The session ids of `tokens`, in the same order. */
  readonly ids: string[];
  /** Users with 100 live sessions each. */
  readonly users: string[];
  /** Seconds the preload took. */
  readonly seconds: number;
}

const DAY = 86_400_000;

/**
 * Writes a database of sessions as fast as SQLite can take them: the schema
 * from the store itself, then plain INSERTs with no syncs
 * (the journal in memory: the file is thrown away if this fails), then back
 * to WAL for the service.
 * Token hashes are what the service stores (SHA-256: the bench runs without
 * a pepper).
 */
export async function preload(dbPath: string, options: PreloadOptions): Promise<Preloaded> {
  const started = performance.now();
  await createSqliteSessionStore({ path: dbPath }).dispose();
  const db = new Database(dbPath);
  // Out of WAL (which only DELETE may follow), then the rollback journal in memory.
  for (const mode of ["delete", "memory"]) {
    const set = db.pragma(`journal_mode = ${mode}`, { simple: true });
    if (set !== mode) throw new Error(`could not set journal_mode = ${mode} (got ${String(set)})`);
  }
  db.pragma("synchronous = OFF");
  db.pragma("cache_size = -1048576"); // 1 GiB, for the random-order id index
  const insert = db.prepare(`INSERT INTO sessions (id, user_id, user_name, active, open_time, request_time, address,
      client, version, idle_timeout_ms, absolute_timeout_ms, expire_time, data_json, token_hash, token_time)
    VALUES (?, ?, '', 1, ?, ?, '10.0.0.1', 'web', 1, ?, ?, ?, '{"theme":"dark"}', ?, ?)`);
  const now = Date.now();
  const every = Math.max(1, Math.floor(options.live / (options.sample ?? 20_000)));
  const tokens: string[] = [];
  const ids: string[] = [];
  const users = new Set<string>();
  const chunk = db.transaction((from: number, to: number, expired: boolean) => {
    for (let i = from; i < to; i++) {
      const id = newSessionId();
      const secret = randomString(32, "base64url");
      const hash = createHash("sha256").update(secret).digest();
      if (expired) {
        const seen = now - 2 * DAY;
        insert.run(id, `gone-${Math.floor(i / 100)}`, seen, seen, DAY, 30 * DAY, seen + DAY, hash, seen);
        continue;
      }
      const userId = `user-${Math.floor(i / 100)}`;
      insert.run(id, userId, now, now, DAY, 30 * DAY, now + DAY, hash, now);
      if (i % every === 0) {
        tokens.push(`${id}.${secret}`);
        ids.push(id);
        users.add(userId);
      }
    }
  });
  const step = 100_000;
  for (let from = 0; from < options.live; from += step) chunk(from, Math.min(options.live, from + step), false);
  for (let from = 0; from < (options.expired ?? 0); from += step) chunk(from, Math.min(options.expired!, from + step), true);
  db.pragma("journal_mode = WAL");
  db.close();
  return { dbPath, tokens, ids, users: [...users], seconds: (performance.now() - started) / 1000 };
}
