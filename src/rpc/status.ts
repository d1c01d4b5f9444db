import { Code, ConnectError } from "@connectrpc/connect";
import {
  isSessionError,
  type SessionErrorKind,
  type SessionErrorReason,
} from "../session/errors.js";
import { describeError, type Logger } from "../logger.js";
import { ErrorDetailSchema, ErrorReason } from "../../gen/sessions/v1/sessions_pb.js";

/** The one table from domain error kinds to status codes. */
const CODES: Record<SessionErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  failed_precondition: Code.FailedPrecondition,
  unauthenticated: Code.Unauthenticated,
  resource_exhausted: Code.ResourceExhausted,
  aborted: Code.Aborted,
  out_of_range: Code.OutOfRange,
  unavailable: Code.Unavailable,
};

/** Domain reasons as the wire's ErrorReason. */
const REASONS: Record<SessionErrorReason, ErrorReason> = {
  token_unknown: ErrorReason.TOKEN_UNKNOWN,
  session_closed: ErrorReason.SESSION_CLOSED,
  expired_idle: ErrorReason.EXPIRED_IDLE,
  expired_absolute: ErrorReason.EXPIRED_ABSOLUTE,
  token_reused: ErrorReason.TOKEN_REUSED,
  client_mismatch: ErrorReason.CLIENT_MISMATCH,
  address_mismatch: ErrorReason.ADDRESS_MISMATCH,
  session_limit: ErrorReason.SESSION_LIMIT,
  version_mismatch: ErrorReason.VERSION_MISMATCH,
  cursor_expired: ErrorReason.CURSOR_EXPIRED,
  cursor_unknown: ErrorReason.CURSOR_UNKNOWN,
};

/**
 * The error a caller sees. Domain errors keep their message, and their reason
 * travels as an ErrorDetail; anything else is
 * INTERNAL with a generic message, and its cause goes to the log only, so no
 * database detail ever reaches a client.
 */
export function toConnectError(
  error: unknown,
  procedure: string,
  logger: Logger,
  correlationId?: string,
): ConnectError {
  if (error instanceof ConnectError) {
    return error;
  }
  if (isSessionError(error)) {
    const details =
      error.reason === undefined ? [] : [{ desc: ErrorDetailSchema, value: { reason: REASONS[error.reason] } }];
    return new ConnectError(error.message, CODES[error.kind], undefined, details);
  }
  logger.error("internal error", { procedure, correlationId, ...describeError(error) });
  return new ConnectError("internal error", Code.Internal);
}
