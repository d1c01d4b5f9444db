import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { randomString } from "./entropy.js";

/** 256 bits of CSPRNG output per token secret. */
const SECRET_BYTES = 32;
/** The session id, a dot, and the secret in base64url (43 characters). */
const TOKEN_PATTERN = /^([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$/;

/** Turns a token secret into what the store keeps. Never store the secret. */
export type TokenHasher = (secret: string) => Buffer;

/**
 * SHA-256 of the secret, or HMAC-SHA-256 keyed with a server-side pepper when
 * one is configured, so a stolen database alone cannot even confirm a token.
 */
export function createTokenHasher(pepper?: string): TokenHasher {
  if (pepper === undefined || pepper === "") {
    return (secret) => createHash("sha256").update(secret).digest();
  }
  return (secret) => createHmac("sha256", pepper).update(secret).digest();
}

/** A new token for a session, and the hash to store for it. */
export interface IssuedToken {
  /** Shown to the caller once; never logged or stored. */
  readonly token: string;
  readonly hash: Buffer;
}

/**
 * A token is `<session id>.<secret>`: the id lets the store find the session
 * by its primary key, and the secret is then checked in constant time
 * against the stored hash, so lookups leak no timing about the secret.
 */
export function issueToken(sessionId: string, hasher: TokenHasher): IssuedToken {
  const secret = randomString(SECRET_BYTES, "base64url");
  return { token: `${sessionId}.${secret}`, hash: hasher(secret) };
}

/** The parts of a well-formed token, or undefined for anything else. */
export function parseToken(token: string): { sessionId: string; secret: string } | undefined {
  const match = TOKEN_PATTERN.exec(token);
  return match === null ? undefined : { sessionId: match[1]!, secret: match[2]! };
}

/** Constant-time comparison of a presented secret's hash with a stored one. */
export function hashesEqual(presented: Uint8Array, stored: Uint8Array | null): boolean {
  return stored !== null && presented.length === stored.length && timingSafeEqual(presented, stored);
}
