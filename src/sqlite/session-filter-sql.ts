import type { SessionFilter } from "../session/session.js";

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
