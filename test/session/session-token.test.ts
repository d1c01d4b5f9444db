import { describe, expect, it } from "vitest";
import { newSessionId } from "../../src/session/session-id.js";
import { createTokenHasher, hashesEqual, issueToken, parseToken } from "../../src/session/session-token.js";

describe("session tokens", () => {
  it("are the session id and 256 random bits, different every time", () => {
    const id = newSessionId();
    const hasher = createTokenHasher();
    const tokens = new Set(Array.from({ length: 1000 }, () => issueToken(id, hasher).token));
    expect(tokens.size).toBe(1000);
    for (const token of tokens) {
      expect(parseToken(token)?.sessionId).toBe(id);
      expect(Buffer.from(parseToken(token)!.secret, "base64url")).toHaveLength(32);
    }
  });

  it("parse only in their exact shape", () => {
    const { token } = issueToken(newSessionId(), createTokenHasher());
    for (const bad of ["", token.toUpperCase(), `${token}=`, ` ${token}`, token.replace(".", ":"), token.slice(0, -1)]) {
      expect(parseToken(bad)).toBeUndefined();
    }
  });

  it("hash with SHA-256, or HMAC-SHA-256 when a pepper is set", () => {
    const plain = createTokenHasher();
    const peppered = createTokenHasher("p".repeat(32));
    const other = createTokenHasher("q".repeat(32));
    expect(plain("s")).toHaveLength(32);
    expect(peppered("s")).not.toEqual(plain("s"));
    expect(peppered("s")).not.toEqual(other("s"));
    expect(peppered("s")).toEqual(createTokenHasher("p".repeat(32))("s"));
  });

  it("compare hashes of any length without throwing", () => {
    const hasher = createTokenHasher();
    expect(hashesEqual(hasher("a"), hasher("a"))).toBe(true);
    expect(hashesEqual(hasher("a"), hasher("b"))).toBe(false);
    expect(hashesEqual(hasher("a"), hasher("a").subarray(0, 16))).toBe(false);
    expect(hashesEqual(hasher("a"), null)).toBe(false);
  });
});
