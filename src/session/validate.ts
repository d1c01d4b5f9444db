import { invalidArgument } from "./errors.js";
import { isSessionId } from "./session-id.js";

/** Longest accepted user id, user name, address or client, in characters. */
export const MAX_TEXT_LENGTH = 1024;

/** Throws INVALID_ARGUMENT unless `value` is a well-formed session id. */
export function requireSessionId(field: string, value: string): string {
  if (value === "") {
    throw invalidArgument(field, "is required");
  }
  if (!isSessionId(value)) {
    throw invalidArgument(field, "must be a session id: 32 lowercase hexadecimal characters");
  }
  return value;
}

/** Throws INVALID_ARGUMENT if `value` is empty or too long. */
export function requireText(field: string, value: string): string {
  if (value === "") {
    throw invalidArgument(field, "is required");
  }
  return checkText(field, value);
}

/** Throws INVALID_ARGUMENT if `value` is too long; empty is allowed. */
export function checkText(field: string, value: string): string {
  if (value.length > MAX_TEXT_LENGTH) {
    throw invalidArgument(field, `must be at most ${MAX_TEXT_LENGTH} characters`);
  }
  return value;
}

/** Throws INVALID_ARGUMENT unless `value` is a non-negative integer. */
export function checkNonNegative(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(field, "must not be negative");
  }
  return value;
}
