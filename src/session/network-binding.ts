import { isIPv4, isIPv6 } from "node:net";

/**
 * Whether two client addresses are in the same network: the same first
 * `ipv4Bits` bits for IPv4, `ipv6Bits` for IPv6. IPv4-mapped IPv6 addresses
 * count as IPv4. Anything that is not an IP address must match exactly.
 */
export function sameNetwork(a: string, b: string, ipv4Bits: number, ipv6Bits: number): boolean {
  const x = addressBytes(a);
  const y = addressBytes(b);
  if (x === undefined || y === undefined) return a === b;
  if (x.length !== y.length) return false;
  return samePrefix(x, y, x.length === 4 ? ipv4Bits : ipv6Bits);
}

function samePrefix(x: Uint8Array, y: Uint8Array, bits: number): boolean {
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) {
    if (x[i] !== y[i]) return false;
  }
  const rest = bits % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((x[whole]! ^ y[whole]!) & mask) === 0;
}

/** 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6, undefined otherwise. */
export function addressBytes(address: string): Uint8Array | undefined {
  const plain = address.replace(/%.*$/, ""); // drop an IPv6 zone id
  if (isIPv4(plain)) return Uint8Array.from(plain.split(".").map(Number));
  if (!isIPv6(plain)) return undefined;
  const [head = "", tail] = plain.split("::") as [string, string | undefined];
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const words: number[] = [];
  const push = (group: string) => {
    if (isIPv4(group)) {
      const [a, b, c, d] = group.split(".").map(Number) as [number, number, number, number];
      words.push((a << 8) | b, (c << 8) | d);
    } else {
      words.push(parseInt(group, 16));
    }
  };
  left.forEach(push);
  const rightWords: number[] = [];
  const leftCount = words.length;
  right.forEach(push);
  rightWords.push(...words.splice(leftCount));
  while (words.length + rightWords.length < 8) words.push(0);
  words.push(...rightWords);
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  const mapped = bytes.subarray(0, 12).every((byte, i) => byte === (i < 10 ? 0 : 0xff));
  return mapped ? bytes.slice(12) : bytes;
}
