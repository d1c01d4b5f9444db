import { randomFillSync } from "node:crypto";

/**
 * CSPRNG bytes handed out as strings, drawn from a pool filled 4 KiB at a
 * time: one call into OpenSSL per ~80 sessions instead of two per session
 * (node's randomUUID caches its entropy the same way). Bytes are zeroed as
 * they are handed out, so no secret stays in the pool, and never handed out
 * twice.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

export function randomString(bytes: number, encoding: "hex" | "base64url"): string {
  if (bytes > POOL_BYTES) throw new RangeError(`at most ${POOL_BYTES} bytes at a time`);
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const text = pool.toString(encoding, offset, offset + bytes);
  pool.fill(0, offset, offset + bytes);
  offset += bytes;
  return text;
}
