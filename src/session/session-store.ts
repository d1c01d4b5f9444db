import type { JsonValue, Session, SessionPage, SessionQuery } from "./session.js";

/** What an update may replace; a field left out is kept. */
export interface SessionChange {
  readonly user?: JsonValue;
  readonly data?: JsonValue;
}

/** The result of an update: the session after it, or why nothing changed. */
export type UpdateOutcome =
  | { readonly status: "updated"; readonly session: Session }
  | { readonly status: "not_found" }
  | { readonly status: "closed"; readonly session: Session };

/**
 * Persistence of sessions. Every method is one whole atomic operation, so a
 * backend implements it as a single transaction (or its native equivalent) and
 * the controller never needs to lock or retry.
 */
export interface SessionStore {
  /** Adds a new session. Its id is new: a clash is an internal error. */
  insert(session: Session): Promise<void>;

  /** The session with this id, if there is one. */
  get(id: string): Promise<Session | undefined>;

  /** One page of the sessions matching the query, plus the total if asked. */
  list(query: SessionQuery): Promise<SessionPage>;

  /**
   * Applies a change to an active session and moves its requestTime to
   * `requestTime`. A closed session is left as it is.
   */
  update(id: string, change: SessionChange, requestTime: number): Promise<UpdateOutcome>;

  /**
   * Closes the session if it is active: active false, closeTime set, user and
   * data cleared. Returns the session afterwards (unchanged if it was already
   * closed), or undefined if there is none.
   */
  close(id: string, closeTime: number): Promise<Session | undefined>;

  /**
   * Closes up to `limit` active sessions whose requestTime is before
   * `idleSince`, as `close` does. Returns how many were closed; the caller
   * repeats until it gets fewer than `limit`, so no call holds the store long.
   */
  closeIdle(idleSince: number, closeTime: number, limit: number): Promise<number>;

  /** Removes the session and returns it as it was, or undefined if none. */
  delete(id: string): Promise<Session | undefined>;

  /** Releases the store's resources. No method may be called afterwards. */
  dispose(): Promise<void>;
}
