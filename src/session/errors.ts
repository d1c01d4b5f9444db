import type { CloseReason } from "./session.js";

/**
 * What went wrong, in domain terms. The transport maps each kind to a status
 * code in one table; anything that is not a SessionError is an internal error.
 */
export type SessionErrorKind =
  | "invalid_argument"
  | "not_found"
  | "failed_precondition"
  | "unauthenticated"
  | "resource_exhausted"
  | "aborted"
  | "out_of_range"
  | "unavailable";

/** Why, for errors a caller's program should act on. */
export type SessionErrorReason =
  | "token_unknown"
  | "session_closed"
  | "expired_idle"
  | "expired_absolute"
  | "token_reused"
  | "client_mismatch"
  | "address_mismatch"
  | "session_limit"
  | "version_mismatch"
  | "cursor_expired"
  | "cursor_unknown";

/** An expected failure whose message is safe to show to the caller. */
export class SessionError extends Error {
  override name = "SessionError";

  constructor(
    readonly kind: SessionErrorKind,
    message: string,
    /** The request field at fault, for invalid_argument. */
    readonly field?: string,
    /** The machine-readable reason, sent to the caller as an error detail. */
    readonly reason?: SessionErrorReason,
  ) {
    super(message);
  }
}

export function isSessionError(error: unknown): error is SessionError {
  return error instanceof SessionError;
}

export function invalidArgument(field: string, problem: string): SessionError {
  return new SessionError("invalid_argument", `${field}: ${problem}`, field);
}

export function sessionNotFound(id: string): SessionError {
  return new SessionError("not_found", `session ${id} not found`);
}

export function sessionClosed(id: string): SessionError {
  return new SessionError("failed_precondition", `session ${id} is closed`, undefined, "session_closed");
}

/** A write to a session that had expired (and is now closed). */
export function sessionExpired(id: string, reason: "expired_idle" | "expired_absolute"): SessionError {
  const why = reason === "expired_idle" ? "after being idle too long" : "at its maximum lifetime";
  return new SessionError("failed_precondition", `session ${id} expired ${why}`, undefined, reason);
}

export function versionMismatch(id: string, expected: number, actual: number): SessionError {
  return new SessionError(
    "aborted",
    `session ${id} is at version ${actual}, not the expected ${expected}; nothing changed`,
    undefined,
    "version_mismatch",
  );
}

export function sessionLimitReached(userId: string, limit: number, client?: string): SessionError {
  const scope = client === undefined ? "" : ` from client ${JSON.stringify(client)}`;
  return new SessionError(
    "resource_exhausted",
    `user ${JSON.stringify(userId)} already has ${limit} active sessions${scope}, the limit`,
    undefined,
    "session_limit",
  );
}

/** Events after the cursor are gone: the watcher must resynchronise. */
export function cursorExpired(): SessionError {
  return new SessionError(
    "out_of_range",
    "events after this cursor were removed by the event retention; resynchronise, then watch from the live tail",
    undefined,
    "cursor_expired",
  );
}

/** The cursor is not of this event log (another database, or one restored from an older copy). */
export function cursorUnknown(): SessionError {
  return new SessionError(
    "out_of_range",
    "this cursor is not from this server's event log (another or a restored database); resynchronise, then watch from the live tail",
    undefined,
    "cursor_unknown",
  );
}

export function tooManyEventStreams(max: number): SessionError {
  return new SessionError(
    "resource_exhausted",
    `the server already serves ${max} event streams, its limit; retry later with your last cursor`,
  );
}

/** The server is stopping: streams end, and their clients resume elsewhere or later. */
export function shuttingDown(): SessionError {
  return new SessionError("unavailable", "the server is shutting down; reconnect and resume from your last cursor");
}

type Refusal = Exclude<SessionErrorReason, "session_limit" | "version_mismatch" | "cursor_expired" | "cursor_unknown">;

const REFUSALS: Record<Refusal, string> = {
  token_unknown: "the session token is not valid",
  session_closed: "the session is closed",
  expired_idle: "the session expired after being idle too long",
  expired_absolute: "the session reached its maximum lifetime",
  token_reused: "a replaced session token was reused; the session is closed",
  client_mismatch: "the session token was presented by another client",
  address_mismatch: "the session token was presented from another network",
};

/**
 * ValidateSession's refusal. The message never repeats the token, and an
 * unknown token does not say whether a session with that id exists.
 */
export function tokenRefused(reason: keyof typeof REFUSALS): SessionError {
  return new SessionError("unauthenticated", REFUSALS[reason], undefined, reason);
}

/**
 * ValidateSession's refusal of a closed session: why it was closed, when that
 * is something the caller can act on (expiry, reuse), else just "closed".
 */
export function closedSessionRefused(reason: CloseReason | null): SessionError {
  switch (reason) {
    case "expired_idle":
    case "expired_absolute":
      return tokenRefused(reason);
    case "token_reuse":
      return tokenRefused("token_reused");
    default:
      return tokenRefused("session_closed");
  }
}
