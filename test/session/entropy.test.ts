import { describe, expect, it } from "vitest";
import { randomString } from "../../src/session/entropy.js";

describe("randomString", () => {
  it("never hands out the same bytes twice, across many refills of its pool", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(randomString(32, "base64url")); // 640 KB: 156 pools
    expect(seen.size).toBe(20_000);
  });

  it("hands out bytes that look uniform, none of them the zeros it leaves behind", () => {
    const counts = new Array<number>(256).fill(0);
    const draws = 16_384;
    let zeroDraws = 0;
    for (let i = 0; i < draws; i++) {
      // 17 bytes: draws straddle the pool's 4 KiB boundary at varying offsets.
      const bytes = Buffer.from(randomString(17, "hex"), "hex");
      expect(bytes).toHaveLength(17);
      if (bytes.every((b) => b === 0)) zeroDraws++;
      for (const b of bytes) counts[b]!++;
    }
    expect(zeroDraws).toBe(0);
    // Chi-square with 255 degrees of freedom: p < 1e-6 above about 390.
    const expected = (draws * 17) / 256;
    const chi2 = counts.reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(390);
  });

  it("refuses more than a pool at a time", () => {
    expect(() => randomString(4097, "hex")).toThrow(RangeError);
  });
});
