import { randomString } from "./entropy.js";

const SESSION_ID_BYTES = 16;
const SESSION_ID_PATTERN = /^[0-9a-f]{32}$/;

/** A new public session id: 128 bits from the CSPRNG, as lowercase hex. */
export function newSessionId(): string {
  return randomString(SESSION_ID_BYTES, "hex");
}

/** Whether a string has the shape of a session id. */
export function isSessionId(value: string): boolean {
  return SESSION_ID_PATTERN.test(value);
}
