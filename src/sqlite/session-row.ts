import type { JsonValue, Session, SessionInfo } from "../session/session.js";

/** A row of the sessions table, as better-sqlite3 returns it. */
export interface SessionRow {
  id: string;
  user_id: string;
  user_name: string;
  active: number;
  open_time: number;
  close_time: number | null;
  request_time: number;
  address: string;
  client: string;
  user_json?: string | null;
  data_json?: string | null;
}

/** The columns of a session without its cached content. */
export const INFO_COLUMNS =
  "id, user_id, user_name, active, open_time, close_time, request_time, address, client";

/** Every column of a session. */
export const ALL_COLUMNS = `${INFO_COLUMNS}, user_json, data_json`;

export function rowToSessionInfo(row: SessionRow): SessionInfo {
  return {
    id: row.id,
    userId: row.user_id,
    userName: row.user_name,
    active: row.active === 1,
    openTime: row.open_time,
    closeTime: row.close_time,
    requestTime: row.request_time,
    address: row.address,
    client: row.client,
  };
}

export function rowToSession(row: SessionRow): Session {
  return {
    ...rowToSessionInfo(row),
    user: parseJson(row.user_json),
    data: parseJson(row.data_json),
  };
}

export function sessionToRow(session: Session): Required<SessionRow> {
  return {
    id: session.id,
    user_id: session.userId,
    user_name: session.userName,
    active: session.active ? 1 : 0,
    open_time: session.openTime,
    close_time: session.closeTime,
    request_time: session.requestTime,
    address: session.address,
    client: session.client,
    user_json: stringifyJson(session.user),
    data_json: stringifyJson(session.data),
  };
}

/** JSON null is stored as SQL NULL, so "no data" has one representation. */
export function stringifyJson(value: JsonValue): string | null {
  return value === null ? null : JSON.stringify(value);
}

function parseJson(text: string | null | undefined): JsonValue {
  return text == null ? null : (JSON.parse(text) as JsonValue);
}
