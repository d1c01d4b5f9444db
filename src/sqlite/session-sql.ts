import type { SessionFilter } from "../session/session.js";
import { ALL_COLUMNS, INFO_COLUMNS } from "./session-row.js";

/** Closes up to @limit active sessions idle since before @idleSince, oldest first. */
export const CLOSE_IDLE_SQL = `UPDATE sessions
  SET active = 0, close_time = @closeTime, user_json = NULL, data_json = NULL
  WHERE id IN (SELECT id FROM sessions
               WHERE active = 1 AND request_time < @idleSince
               ORDER BY request_time LIMIT @limit)`;

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

/** A WHERE clause with named parameters, built from a filter. */
export interface FilterSql {
  readonly where: string;
  readonly params: Record<string, string | number>;
}

/**
 * Translates a filter into SQL. Only the clause shape depends on which fields
 * are set, so at most 2^6 distinct statements are ever prepared.
 */
export function filterToSql(filter: SessionFilter): FilterSql {
  const clauses: string[] = [];
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
  return { where: clauses.length === 0 ? "" : `WHERE ${clauses.join(" AND ")}`, params };
}
