import type { CloseReason, JsonValue, Session, SessionInfo } from "../session/session.js";
import type { SessionCredentials } from "../session/session-store.js";

/** A row of the sessions table, as better-sqlite3 returns it. */
export interface SessionRow {
  id: string;
  user_id: string;
  user_name: string;
  active: number;
  open_time: number;
  close_time: number | null;
  close_reason: string | null;
  request_time: number;
  address: string;
  client: string;
  version: number;
  idle_timeout_ms: number;
  absolute_timeout_ms: number;
  last_address: string;
  last_client: string;
  user_json?: string | null;
  data_json?: string | null;
}

/** The credential columns, read only for validation. */
export interface CredentialsRow {
  token_hash: Buffer | null;
  token_time: number;
  prev_token_hash: Buffer | null;
  prev_token_valid_until: number;
}

/** The columns of a session without its cached content. */
export const INFO_COLUMNS =
  "id, user_id, user_name, active, open_time, close_time, close_reason, request_time, " +
  "address, client, version, idle_timeout_ms, absolute_timeout_ms, last_address, last_client";

/** Every public column of a session. */
export const ALL_COLUMNS = `${INFO_COLUMNS}, user_json, data_json`;

/** The token hash columns. */
export const CREDENTIAL_COLUMNS = "token_hash, token_time, prev_token_hash, prev_token_valid_until";

export function rowToSessionInfo(row: SessionRow): SessionInfo {
  return {
    id: row.id,
    userId: row.user_id,
    userName: row.user_name,
    active: row.active === 1,
    openTime: row.open_time,
    closeTime: row.close_time,
    closeReason: row.close_reason as CloseReason | null,
    requestTime: row.request_time,
    address: row.address,
    client: row.client,
    version: row.version,
    idleTimeoutMs: row.idle_timeout_ms,
    absoluteTimeoutMs: row.absolute_timeout_ms,
    lastAddress: row.last_address,
    lastClient: row.last_client,
  };
}

export function rowToSession(row: SessionRow): Session {
  return {
    ...rowToSessionInfo(row),
    user: parseJson(row.user_json),
    data: parseJson(row.data_json),
  };
}

export function rowToCredentials(row: CredentialsRow): SessionCredentials {
  return {
    tokenHash: row.token_hash,
    tokenTime: row.token_time,
    previousTokenHash: row.prev_token_hash,
    previousTokenValidUntil: row.prev_token_valid_until,
  };
}

/** The insert parameters of a new session and its first token. */
export function newSessionRow(session: Session, tokenHash: Uint8Array) {
  return {
    id: session.id,
    user_id: session.userId,
    user_name: session.userName,
    active: session.active ? 1 : 0,
    open_time: session.openTime,
    close_time: session.closeTime,
    close_reason: session.closeReason,
    request_time: session.requestTime,
    address: session.address,
    client: session.client,
    version: session.version,
    idle_timeout_ms: session.idleTimeoutMs,
    absolute_timeout_ms: session.absoluteTimeoutMs,
    last_address: session.lastAddress,
    last_client: session.lastClient,
    user_json: stringifyJson(session.user),
    data_json: stringifyJson(session.data),
    token_hash: tokenHash,
    token_time: session.openTime,
  };
}

/** JSON null is stored as SQL NULL, so "no data" has one representation. */
export function stringifyJson(value: JsonValue): string | null {
  return value === null ? null : JSON.stringify(value);
}

function parseJson(text: string | null | undefined): JsonValue {
  return text == null ? null : (JSON.parse(text) as JsonValue);
}
