import { describe, expect, it } from "vitest";
import { addressBytes, sameNetwork } from "../../src/session/network-binding.js";

describe("network binding", () => {
  it.each([
    ["10.1.2.3", "10.1.2.250", 24, true],
    ["10.1.2.3", "10.1.3.3", 24, false],
    ["10.1.2.3", "10.1.3.3", 16, true],
    ["10.1.2.3", "10.1.2.3", 32, true],
    ["10.1.2.3", "10.1.2.4", 32, false],
    ["10.1.2.3", "200.1.2.3", 0, true],
    ["10.1.2.3", "10.1.2.131", 25, false],
    ["10.1.2.3", "10.1.2.127", 25, true],
    ["::ffff:10.1.2.3", "10.1.2.9", 24, true],
  ])("IPv4 %s and %s in /%i: %s", (a, b, bits, same) => {
    expect(sameNetwork(a, b, bits, 64)).toBe(same);
  });

  it.each([
    ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 64, true],
    ["2001:db8:1:2::1", "2001:db8:1:3::1", 64, false],
    ["2001:db8:1:2::1", "2001:db8:1:3::1", 48, true],
    ["fe80::1%eth0", "fe80::2", 64, true],
    ["::1", "0:0:0:0:0:0:0:1", 128, true],
  ])("IPv6 %s and %s in /%i: %s", (a, b, bits, same) => {
    expect(sameNetwork(a, b, 24, bits)).toBe(same);
  });

  it("never matches across address families, and compares anything else exactly", () => {
    expect(sameNetwork("10.0.0.1", "::a00:1", 0, 0)).toBe(false);
    expect(sameNetwork("gateway-a", "gateway-a", 24, 64)).toBe(true);
    expect(sameNetwork("gateway-a", "gateway-b", 24, 64)).toBe(false);
  });

  it("expands IPv6 forms to 16 bytes", () => {
    expect(Array.from(addressBytes("2001:db8::ff00:42:8329")!)).toEqual([
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29,
    ]);
    expect(Array.from(addressBytes("::")!)).toEqual(new Array(16).fill(0));
    expect(Array.from(addressBytes("64:ff9b::192.0.2.33")!).slice(12)).toEqual([192, 0, 2, 33]);
    expect(addressBytes("not an address")).toBeUndefined();
  });
});
