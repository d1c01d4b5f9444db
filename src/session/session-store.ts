import type {
  CloseReason,
  JsonValue,
  Session,
  SessionFilter,
  SessionInfo,
  SessionPage,
  SessionQuery,
} from "./session.js";
import type { EventLogPosition, EventRead, SessionEvent, SessionEventFilter } from "./session-events.js";
import type { SessionLimitPolicy } from "./session-policy.js";

/** What an update replaces: exactly one of the two (each is its own event). */
export interface SessionChange {
  readonly user?: JsonValue;
  readonly data?: JsonValue;
}

/** The result of an update: the session after it, or why nothing changed. */
export type UpdateOutcome =
  | { readonly status: "updated"; readonly session: Session }
  | { readonly status: "not_found" }
  | { readonly status: "closed"; readonly session: Session }
  /** It had expired: the update closed it instead, with this reason. */
  | { readonly status: "expired"; readonly reason: CloseReason; readonly session: Session }
  | { readonly status: "version_mismatch"; readonly session: Session };

/** A cap on a user's active, unexpired sessions; client-scoped when `client` is set. */
export interface SessionLimit {
  readonly max: number;
  readonly client?: string;
}

/** The limits an insert must keep, checked in the same transaction. */
export interface InsertLimits {
  /** Checked in order; the first one reached decides. */
  readonly limits: readonly SessionLimit[];
  readonly policy: SessionLimitPolicy;
}

export type InsertOutcome =
  | { readonly status: "inserted"; readonly evictedIds: readonly string[] }
  | { readonly status: "limit_reached"; readonly limit: SessionLimit };

/** The secret side of a session: hashes only, never a token. */
export interface SessionCredentials {
  readonly tokenHash: Uint8Array | null;
  /** When the current token was issued. */
  readonly tokenTime: number;
  readonly previousTokenHash: Uint8Array | null;
  /** Until when the previous token is still accepted. */
  readonly previousTokenValidUntil: number;
}

/** A renewal: the new token's hash replaces the current one. */
export interface TokenRotation {
  readonly currentHash: Uint8Array;
  readonly nextHash: Uint8Array;
  readonly now: number;
  readonly previousValidUntil: number;
}

/** What a validation saw of the caller, recorded with the activity; an empty field keeps what was recorded before. */
export interface SeenContext {
  readonly address: string;
  readonly client: string;
}

/**
 * Persistence of sessions. Every method is one whole atomic operation, so a
 * backend implements it as a single transaction (or its native equivalent) and
 * the controller never needs to lock.
 *
 * Rules every implementation keeps: a session is live while active and now <
 * its expiry (the earlier of requestTime + idle and openTime + absolute).
 * Only live sessions take writes. Activity moves requestTime forward, never
 * back, and with it the expiry. Version increases with every change to data,
 * user or state, not with activity or token renewal. A session closed after
 * its expiry is closed as expired, whatever the caller's reason.
 *
 * Every change also appends its event (see session-events.ts) to the event
 * log in the same transaction, so an event exists if and only if its change
 * committed: opened (and evicted, for the sessions an insert closes), renewed,
 * data_stored, user_updated, a closing event for each close (by its reason),
 * deleted and purged. Recording activity is not a change. Events get a seq
 * that grows in commit order, across processes sharing the store.
 */
export interface SessionStore {
  /**
   * Adds a new session with the hash of its first token, after closing (as
   * "evicted") or refusing as the limits and policy say, all atomically.
   */
  insert(session: Session, tokenHash: Uint8Array, limits: InsertLimits, now: number): Promise<InsertOutcome>;

  /** The session with this id, if there is one. */
  get(id: string): Promise<Session | undefined>;

  /** The session with its credentials, for validation; user and data only if asked. */
  getForValidation(
    id: string,
    includeData: boolean,
  ): Promise<{ session: Session | SessionInfo; credentials: SessionCredentials } | undefined>;

  /** One page of the sessions matching the query, plus the total if asked. */
  list(query: SessionQuery): Promise<SessionPage>;

  /**
   * Applies a change to a live session whose version is `expectedVersion`
   * (any, if undefined) and records activity at `requestTime`. An expired
   * session is closed instead.
   */
  update(
    id: string,
    change: SessionChange,
    requestTime: number,
    expectedVersion?: number,
  ): Promise<UpdateOutcome>;

  /** Records activity on a live session; false if it is not live. */
  touch(id: string, requestTime: number, seen: SeenContext): Promise<boolean>;

  /**
   * Replaces the token of a live session if its hash is still `currentHash`
   * (compare-and-swap), records activity, keeps the old hash valid until
   * previousValidUntil, and retires the hash that was previous until now.
   * False if another call rotated it first or the session is not live.
   */
  rotateToken(id: string, rotation: TokenRotation, seen: SeenContext): Promise<boolean>;

  /** Whether `tokenHash` is one the session has retired through renewals. */
  isRetiredToken(id: string, tokenHash: Uint8Array): Promise<boolean>;

  /**
   * Closes the session if it is active: closeTime and reason set, user and
   * data cleared. Returns the session afterwards (unchanged if it was already
   * closed), or undefined if there is none.
   */
  close(id: string, closeTime: number, reason: CloseReason): Promise<Session | undefined>;

  /**
   * Closes the session if it is active and expired at `now`, with the reason
   * that applies (absolute first). Returns that reason, or undefined if the
   * session was not closed (gone, closed, or used again meanwhile).
   */
  closeIfExpired(id: string, now: number): Promise<CloseReason | undefined>;

  /** Closes up to `limit` expired active sessions; returns how many. */
  closeExpired(now: number, limit: number): Promise<number>;

  /**
   * Closes up to `limit` active sessions matching the filter, except the one
   * with id `exceptId`; returns how many.
   */
  closeMatching(
    filter: SessionFilter,
    reason: CloseReason,
    now: number,
    limit: number,
    exceptId?: string,
  ): Promise<number>;

  /** How many active sessions match the filter. */
  countActive(filter: SessionFilter): Promise<number>;

  /** Removes up to `limit` sessions closed before `closedBefore`; returns how many. */
  purgeClosed(closedBefore: number, limit: number, now: number): Promise<number>;

  /** Removes the session and returns it as it was, or undefined if none. */
  delete(id: string, now: number): Promise<Session | undefined>;

  /** Where the event log stands. */
  eventLog(): Promise<EventLogPosition>;

  /**
   * Up to `limit` events after seq `after` that match the filter, in seq
   * order, as of one consistent snapshot; "expired" if events after `after`
   * have been purged, "ahead" if `after` is beyond the newest event. A read
   * may look at a bounded number of events only (`more` then says so), so a
   * filter that matches little never makes one call scan the whole log.
   */
  readEvents(after: number, filter: SessionEventFilter, limit: number): Promise<EventRead>;

  /** The event with this seq, if the log still holds it. */
  eventAt(seq: number): Promise<SessionEvent | undefined>;

  /**
   * Removes up to `limit` of the oldest events, stopping at the first one at
   * or after `before`, so what is left is always a suffix of the log. The
   * newest event is always kept, so that no seq is ever given twice. Returns
   * how many were removed.
   */
  purgeEvents(before: number, limit: number): Promise<number>;

  /**
   * Calls `listener` after events commit: at once for this store's own
   * writes, and within the store's poll interval for other processes'.
   * Returns a function that stops the calls.
   */
  onEvents(listener: () => void): () => void;

  /** Resolves if the store can be read; rejects with the reason it cannot. */
  ping(): Promise<void>;

  /** Releases the store's resources. No method may be called afterwards. */
  dispose(): Promise<void>;
}
