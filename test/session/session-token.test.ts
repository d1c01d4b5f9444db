import * as crypto from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { newSessionId } from "../../src/session/session-id.js";
import { createTokenHasher, hashesEqual, issueToken, parseToken } from "../../src/session/session-token.js";

// Watched, to see that comparisons go through it.
vi.mock("node:crypto", async (original) => {
  const actual = await original<typeof import("node:crypto")>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

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

  it("compare in constant time: crypto.timingSafeEqual over fixed-length hashes, never the secrets", () => {
    const compare = vi.mocked(crypto.timingSafeEqual);
    compare.mockClear();
    const hasher = createTokenHasher();
    const { token } = issueToken(newSessionId(), hasher);
    const secret = parseToken(token)!.secret;
    const stored = hasher(secret);
    // Wrong in the first character or in the last: the same work, on 32-byte hashes.
    const early = `${secret[0] === "A" ? "B" : "A"}${secret.slice(1)}`;
    const late = `${secret.slice(0, -1)}${secret.at(-1) === "A" ? "B" : "A"}`;
    for (const presented of [secret, early, late]) hashesEqual(hasher(presented), stored);
    expect(compare).toHaveBeenCalledTimes(3);
    for (const [a, b] of compare.mock.calls) {
      expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32]);
    }
    expect(compare.mock.results.map((r) => r.value)).toEqual([true, false, false]);
  });

  it("spread their secrets evenly over the base64url alphabet (no bias a guesser could use)", () => {
    const hasher = createTokenHasher();
    const id = newSessionId();
    const counts = new Map<string, number>();
    const n = 2000;
    for (let i = 0; i < n; i++) {
      // The first 42 characters carry 6 random bits each; the 43rd only 4.
      for (const char of parseToken(issueToken(id, hasher).token)!.secret.slice(0, 42)) counts.set(char, (counts.get(char) ?? 0) + 1);
    }
    expect(counts.size).toBe(64);
    const expected = (n * 42) / 64;
    const chiSquare = [...counts.values()].reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
    // 63 degrees of freedom: above 130 happens with probability under one in a million.
    expect(chiSquare).toBeLessThan(130);
  });
});
