/**
 * What went wrong, in domain terms. The transport maps each kind to a status
 * code in one table; anything that is not a SessionError is an internal error.
 */
export type SessionErrorKind = "invalid_argument" | "not_found" | "failed_precondition";

/** An expected failure whose message is safe to show to the caller. */
export class SessionError extends Error {
  override name = "SessionError";

  constructor(
    readonly kind: SessionErrorKind,
    message: string,
    /** The request field at fault, for invalid_argument. */
    readonly field?: string,
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
  return new SessionError("failed_precondition", `session ${id} is closed`);
}
