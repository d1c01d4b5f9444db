import { Code, ConnectError } from "@connectrpc/connect";
import { isSessionError, type SessionErrorKind } from "../session/errors.js";
import { describeError, type Logger } from "../logger.js";

/** The one table from domain error kinds to status codes. */
const CODES: Record<SessionErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  failed_precondition: Code.FailedPrecondition,
};

/**
 * The error a caller sees. Domain errors keep their message; anything else is
 * INTERNAL with a generic message, and its cause goes to the log only, so no
 * database detail ever reaches a client.
 */
export function toConnectError(error: unknown, procedure: string, logger: Logger): ConnectError {
  if (error instanceof ConnectError) {
    return error;
  }
  if (isSessionError(error)) {
    return new ConnectError(error.message, CODES[error.kind]);
  }
  logger.error("internal error", { procedure, ...describeError(error) });
  return new ConnectError("internal error", Code.Internal);
}
