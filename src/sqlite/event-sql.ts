import type { CloseReason } from "../session/session.js";
import type { SessionEvent, SessionEventFilter, SessionEventType } from "../session/session-events.js";

/** A row of the session_events table. */
export interface EventRow {
  seq: number;
  type: string;
  session_id: string;
  user_id: string;
  client: string;
  address: string;
  close_reason: string | null;
  time: number;
  version: number;
}

const EVENT_COLUMNS = "seq, type, session_id, user_id, client, address, close_reason, time, version";

export const APPEND_EVENT_SQL = `INSERT INTO session_events
  (type, session_id, user_id, client, address, close_reason, time, version)
  VALUES (@type, @sessionId, @userId, @client, @address, @closeReason, @time, @version)`;

/** The log's id and how far retention has removed it. */
export const EVENT_LOG_SQL = "SELECT log_id, purged_through FROM event_log WHERE id = 1";

/**
 * The newest seq. A new event's seq is one more than the largest in the
 * table, so committed seqs have no gaps (a rolled-back insert takes its seq
 * back), and retention never removes the newest event, so no seq is ever
 * given twice.
 */
export const HEAD_SQL = "SELECT max(seq) AS seq FROM session_events";

/**
 * Up to @limit events in (@after, @upTo] matching a filter, by a range scan
 * of the primary key. Only the shape of the filter changes the text, so at
 * most four statements are prepared; the types travel as one ",a,b," list.
 */
export function readEventsSql(filter: SessionEventFilter): string {
  return `SELECT ${EVENT_COLUMNS} FROM session_events
    WHERE seq > @after AND seq <= @upTo
    ${filter.userId !== undefined ? "AND user_id = @userId" : ""}
    ${filter.types !== undefined && filter.types.length > 0 ? "AND instr(@types, ',' || type || ',') > 0" : ""}
    ORDER BY seq LIMIT @limit`;
}

export function readEventsParams(filter: SessionEventFilter): Record<string, string> {
  return {
    ...(filter.userId !== undefined && { userId: filter.userId }),
    ...(filter.types !== undefined && filter.types.length > 0 && { types: `,${filter.types.join(",")},` }),
  };
}

export const EVENT_AT_SQL = `SELECT ${EVENT_COLUMNS} FROM session_events WHERE seq = ?`;

/** The oldest events but the newest, for retention to remove a prefix of them. */
export const OLDEST_EVENTS_SQL = `SELECT seq, time FROM session_events
  WHERE seq < (SELECT max(seq) FROM session_events)
  ORDER BY seq LIMIT @limit`;

export const PURGE_EVENTS_SQL = "DELETE FROM session_events WHERE seq <= @upTo";

export const SET_PURGED_THROUGH_SQL = "UPDATE event_log SET purged_through = @upTo WHERE id = 1";

export function rowToEvent(row: EventRow): SessionEvent {
  return {
    seq: row.seq,
    type: row.type as SessionEventType,
    sessionId: row.session_id,
    userId: row.user_id,
    client: row.client,
    address: row.address,
    closeReason: row.close_reason as CloseReason | null,
    time: row.time,
    version: row.version,
  };
}
