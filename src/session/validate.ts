import { invalidArgument } from "./errors.js";
import type { JsonValue } from "./session.js";
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

/** Deepest nesting of arrays and objects accepted in user or data. */
export const MAX_JSON_DEPTH = 32;

/**
 * Throws INVALID_ARGUMENT if `value` nests deeper than MAX_JSON_DEPTH or its
 * JSON text is longer than `maxBytes` (UTF-8).
 */
export function checkJson(field: string, value: JsonValue, maxBytes: number): JsonValue {
  if (jsonDepth(value) > MAX_JSON_DEPTH) {
    throw invalidArgument(field, `must not nest arrays and objects more than ${MAX_JSON_DEPTH} deep`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > maxBytes) {
    throw invalidArgument(field, `is ${bytes} bytes as JSON; the limit is ${maxBytes} bytes`);
  }
  return value;
}

function jsonDepth(value: JsonValue): number {
  if (value === null || typeof value !== "object") return 0;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    deepest = Math.max(deepest, jsonDepth(child));
    if (deepest > MAX_JSON_DEPTH) break;
  }
  return deepest + 1;
}

/** Throws INVALID_ARGUMENT unless `value` is a non-negative integer. */
export function checkNonNegative(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(field, "must not be negative");
  }
  return value;
}
