/** Any JSON value: what a session keeps as its data and its cached user record. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Why a session was closed. */
export type CloseReason =
  | "logout"
  | "expired_idle"
  | "expired_absolute"
  | "revoked"
  | "evicted"
  | "token_reuse";

/** A session without its cached content: what a list returns by default. */
export interface SessionInfo {
  /** Public handle, 32 lowercase hex characters from a CSPRNG. Safe to log. */
  readonly id: string;
  readonly userId: string;
  readonly userName: string;
  readonly active: boolean;
  /** Milliseconds since the Unix epoch, as every time in the domain. */
  readonly openTime: number;
  /** Null while the session is active. */
  readonly closeTime: number | null;
  /** Null while the session is active. */
  readonly closeReason: CloseReason | null;
  /** The last recorded activity. */
  readonly requestTime: number;
  readonly address: string;
  readonly client: string;
  /** Increases with every change except recording activity. */
  readonly version: number;
  /** This session's idle timeout (ms). */
  readonly idleTimeoutMs: number;
  /** This session's lifetime since openTime (ms). */
  readonly absoluteTimeoutMs: number;
  /** Address and client of the last validation that recorded activity. */
  readonly lastAddress: string;
  readonly lastClient: string;
}

/** A whole session. `null` user or data means there is none. */
export interface Session extends SessionInfo {
  readonly user: JsonValue;
  readonly data: JsonValue;
}

/**
 * When a session expires unless used again: the earlier of its idle and
 * absolute deadlines. Null once it is closed.
 */
export function expireTime(session: SessionInfo): number | null {
  if (!session.active) return null;
  return Math.min(
    session.requestTime + session.idleTimeoutMs,
    session.openTime + session.absoluteTimeoutMs,
  );
}

/** Which sessions a list returns; every field that is set must match. */
export interface SessionFilter {
  readonly userId?: string;
  readonly active?: boolean;
  /** Inclusive lower bound on requestTime. */
  readonly fromTime?: number;
  /** Exclusive upper bound on requestTime. */
  readonly toTime?: number;
  readonly address?: string;
  readonly client?: string;
  readonly closeReason?: CloseReason;
}

/** A validated list request, as the store receives it. */
export interface SessionQuery {
  readonly filter: SessionFilter;
  readonly skip: number;
  readonly take: number;
  readonly includeTotal: boolean;
  readonly includeData: boolean;
}

/** One page of a list, ordered by requestTime descending, then id ascending. */
export interface SessionPage {
  /** Whole sessions when the query asked for data, otherwise SessionInfo only. */
  readonly items: readonly (Session | SessionInfo)[];
  /** Set when the query asked for the total count of matches. */
  readonly total?: number;
}
