import type { SessionFilter } from "../session/session.js";
import { ALL_COLUMNS, INFO_COLUMNS } from "./session-row.js";

/** Activity never moves request_time backwards, whatever another process's clock says. */
const REQUEST_TIME_AFTER_ACTIVITY = "max(request_time, @requestTime)";

/** A session's expiry after activity at @requestTime (SET reads the row's old values). */
const EXPIRY_AFTER_ACTIVITY = `min(open_time + absolute_timeout_ms, ${REQUEST_TIME_AFTER_ACTIVITY} + idle_timeout_ms)`;

/** An active session that has not expired by @requestTime: the one rule for "live". */
const LIVE_AT_REQUEST_TIME = "active = 1 AND expire_time > @requestTime";

/** The assignments that close a session at @closeTime. */
const CLOSE_ASSIGNMENTS = `active = 0, close_time = @closeTime, expire_time = NULL,
  user_json = NULL, data_json = NULL, version = version + 1`;

/** Why an expired session closes: its absolute deadline first, else idle. */
const EXPIRED_REASON = `CASE WHEN open_time + absolute_timeout_ms <= @closeTime
  THEN 'expired_absolute' ELSE 'expired_idle' END`;

/** @reason, unless the session had already expired: then the expiry is why it closed. */
const CLOSE_REASON = `CASE WHEN expire_time <= @closeTime THEN ${EXPIRED_REASON} ELSE @reason END`;

export const INSERT_SQL = `INSERT INTO sessions (${ALL_COLUMNS}, expire_time, token_hash, token_time)
  VALUES (@id, @user_id, @user_name, @active, @open_time, @close_time, @close_reason, @request_time,
          @address, @client, @version, @idle_timeout_ms, @absolute_timeout_ms, @last_address,
          @last_client, @user_json, @data_json,
          min(@open_time + @absolute_timeout_ms, @request_time + @idle_timeout_ms),
          @token_hash, @token_time)`;

/** Active, unexpired sessions of @userId (and of @client, for a client-scoped limit). */
export const countLiveSql = (byClient: boolean) =>
  `SELECT count(*) AS n FROM sessions
   WHERE user_id = @userId AND active = 1 AND expire_time > @now
   ${byClient ? "AND client = @client" : ""}`;

/**
 * The @n sessions a limit evicts first. Ties within a millisecond go by
 * rowid, which grows with every insert: the one opened first goes first.
 */
export const evictionVictimsSql = (byClient: boolean, leastRecentlyUsed: boolean) =>
  `SELECT id FROM sessions
   WHERE user_id = @userId AND active = 1 AND expire_time > @now
   ${byClient ? "AND client = @client" : ""}
   ORDER BY ${leastRecentlyUsed ? "request_time" : "open_time"}, rowid LIMIT @n`;

export const UPDATE_CONTENT_SQL = `UPDATE sessions
  SET request_time = ${REQUEST_TIME_AFTER_ACTIVITY},
      expire_time = ${EXPIRY_AFTER_ACTIVITY},
      user_json = CASE WHEN @setUser THEN @user ELSE user_json END,
      data_json = CASE WHEN @setData THEN @data ELSE data_json END,
      version = version + 1
  WHERE id = @id AND ${LIVE_AT_REQUEST_TIME}
    AND (@expectedVersion IS NULL OR version = @expectedVersion)`;

/**
 * What a validation saw of its caller; an empty one is "not known" and keeps
 * what was seen before. Decided here, in the write, not from an earlier read:
 * two validations at once (one with only a client, one with only an address)
 * must not erase each other's trace.
 */
const LAST_SEEN = `last_address = coalesce(nullif(@address, ''), last_address),
      last_client = coalesce(nullif(@client, ''), last_client)`;

export const TOUCH_SQL = `UPDATE sessions
  SET request_time = ${REQUEST_TIME_AFTER_ACTIVITY}, expire_time = ${EXPIRY_AFTER_ACTIVITY},
      ${LAST_SEEN}
  WHERE id = @id AND ${LIVE_AT_REQUEST_TIME}`;

/** The token hash a rotation is about to retire for good, if any. */
export const PREVIOUS_TOKEN_SQL = "SELECT prev_token_hash FROM sessions WHERE id = ?";

export const ROTATE_TOKEN_SQL = `UPDATE sessions
  SET prev_token_hash = token_hash, prev_token_valid_until = @previousValidUntil,
      token_hash = @nextHash, token_time = @requestTime,
      request_time = ${REQUEST_TIME_AFTER_ACTIVITY}, expire_time = ${EXPIRY_AFTER_ACTIVITY},
      ${LAST_SEEN}
  WHERE id = @id AND ${LIVE_AT_REQUEST_TIME} AND token_hash = @currentHash
  RETURNING user_id, client, address, version`;

export const RETIRE_TOKEN_SQL = "INSERT OR IGNORE INTO retired_tokens (session_id, token_hash) VALUES (?, ?)";

export const IS_RETIRED_TOKEN_SQL = "SELECT 1 FROM retired_tokens WHERE session_id = ? AND token_hash = ?";

/** What a close returns of each session it closed: enough for its event. */
const CLOSED_COLUMNS = "id, user_id, client, address, close_reason, close_time, version";

export const CLOSE_SQL = `UPDATE sessions SET ${CLOSE_ASSIGNMENTS}, close_reason = ${CLOSE_REASON}
  WHERE id = @id AND active = 1
  RETURNING ${CLOSED_COLUMNS}`;

export const CLOSE_IF_EXPIRED_SQL = `UPDATE sessions SET ${CLOSE_ASSIGNMENTS}, close_reason = ${EXPIRED_REASON}
  WHERE id = @id AND active = 1 AND expire_time <= @closeTime
  RETURNING ${CLOSED_COLUMNS}`;

/** Closes up to @limit expired active sessions, soonest expired first. */
export const CLOSE_EXPIRED_SQL = `UPDATE sessions SET ${CLOSE_ASSIGNMENTS}, close_reason = ${EXPIRED_REASON}
  WHERE id IN (SELECT id FROM sessions
               WHERE active = 1 AND expire_time <= @closeTime
               ORDER BY expire_time LIMIT @limit)
  RETURNING ${CLOSED_COLUMNS}`;

/** Removes up to @limit sessions closed before @closedBefore. */
export const PURGE_CLOSED_SQL = `DELETE FROM sessions
  WHERE id IN (SELECT id FROM sessions
               WHERE active = 0 AND close_time < @closedBefore
               ORDER BY close_time LIMIT @limit)
  RETURNING id, user_id, client, address, version`;

/** A WHERE clause with named parameters, built from a filter. */
export interface FilterSql {
  readonly where: string;
  readonly params: Record<string, string | number>;
}

/**
 * Translates a filter into SQL, with `extra` conditions ANDed on. Only the
 * clause shape depends on which fields are set, so few distinct statements
 * are ever prepared.
 */
export function filterToSql(filter: SessionFilter, extra: readonly string[] = []): FilterSql {
  const clauses: string[] = [...extra];
  const params: Record<string, string | number> = {};
  if (filter.userId !== undefined) {
    clauses.push("user_id = @userId");
    params.userId = filter.userId;
  }
  if (filter.active !== undefined) {
    clauses.push("active = @active");
    params.active = filter.active ? 1 : 0;
  }
  // Half-open range [from, to) on request_time.
  if (filter.fromTime !== undefined) {
    clauses.push("request_time >= @fromTime");
    params.fromTime = filter.fromTime;
  }
  if (filter.toTime !== undefined) {
    clauses.push("request_time < @toTime");
    params.toTime = filter.toTime;
  }
  if (filter.address !== undefined) {
    clauses.push("address = @address");
    params.address = filter.address;
  }
  if (filter.client !== undefined) {
    clauses.push("client = @client");
    params.client = filter.client;
  }
  if (filter.closeReason !== undefined) {
    clauses.push("close_reason = @closeReason");
    params.closeReason = filter.closeReason;
  }
  return { where: clauses.length === 0 ? "" : `WHERE ${clauses.join(" AND ")}`, params };
}

/** The statements of a list query: one page (@take, @skip), and the count. */
export interface ListSql {
  readonly page: string;
  readonly count: string;
  readonly params: Record<string, string | number>;
}

export function listSql(filter: SessionFilter, includeData: boolean): ListSql {
  const { where, params } = filterToSql(filter);
  const columns = includeData ? ALL_COLUMNS : INFO_COLUMNS;
  return {
    page: `SELECT ${columns} FROM sessions ${where}
           ORDER BY request_time DESC, id ASC LIMIT @take OFFSET @skip`,
    count: `SELECT count(*) AS total FROM sessions ${where}`,
    params,
  };
}

/** A statement and the parameters its filter needs. */
export interface FilteredStatement {
  readonly sql: string;
  readonly params: Record<string, string | number>;
}

/** Closes up to @limit active sessions matching a filter (except @exceptId). */
export function closeMatchingSql(filter: SessionFilter, except: boolean): FilteredStatement {
  const { where, params } = filterToSql(filter, ["active = 1", ...(except ? ["id <> @exceptId"] : [])]);
  return {
    sql: `UPDATE sessions SET ${CLOSE_ASSIGNMENTS}, close_reason = ${CLOSE_REASON}
          WHERE id IN (SELECT id FROM sessions ${where} LIMIT @limit)
          RETURNING ${CLOSED_COLUMNS}`,
    params,
  };
}

/** Counts active sessions matching a filter. */
export function countActiveSql(filter: SessionFilter): FilteredStatement {
  const { where, params } = filterToSql(filter, ["active = 1"]);
  return { sql: `SELECT count(*) AS n FROM sessions ${where}`, params };
}
