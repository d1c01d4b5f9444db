import { create, equals, fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  CloseExpiredSessionsResponseSchema,
  GetSessionsResponseSchema,
  OpenSessionResponseSchema,
  SessionSchema,
  ValidateSessionResponseSchema,
  type Session,
} from "../../gen/sessions/v1/sessions_pb.js";
import { createBinaryEncoder, encodeSession, SESSION_ENCODER_MATCHES } from "../../src/rpc/session-wire.js";

/** A small seeded generator, so a failure can be replayed. */
function generator(seed: number) {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
  return { next, pick };
}

const STRINGS = ["", "a", "user-42", "é", "日本語", "🙂 emoji", "x".repeat(127), "y".repeat(128), "z".repeat(300), "\u0000nul"];
const INT64S = [0n, 1n, 127n, 128n, 2n ** 53n, 2n ** 63n - 1n, -1n, -(2n ** 63n)];
const NANOS = [0, 1, 999_999_999, -1, -999_999_999, 128];
const VALUES = [undefined, null, 0, -1.5, "text", true, [], [1, "two", null], { a: { b: [{ c: "deep" }] } }, { "": "" }];
const ENUMS = [0, 1, 2, 6, 99, -1];

function randomSession(seed: number): Session {
  const { next, pick } = generator(seed);
  const stamp = () => (next() < 0.2 ? undefined : { seconds: pick(INT64S), nanos: pick(NANOS) });
  const value = () => {
    const json = pick(VALUES);
    return json === undefined ? undefined : fromJson(ValueSchema, json);
  };
  return create(SessionSchema, {
    id: pick(STRINGS),
    userId: pick(STRINGS),
    userName: pick(STRINGS),
    active: next() < 0.5,
    openTime: stamp(),
    closeTime: stamp(),
    requestTime: stamp(),
    address: pick(STRINGS),
    client: pick(STRINGS),
    user: value(),
    data: value(),
    version: pick(INT64S),
    expireTime: stamp(),
    closeReason: pick(ENUMS),
    idleTimeout: stamp(),
    absoluteTimeout: stamp(),
    lastAddress: pick(STRINGS),
    lastClient: pick(STRINGS),
  });
}

describe("the hand-written Session encoder", () => {
  it("was written for the Session the proto declares", () => {
    // If this fails, the proto's Session changed: encodeSession falls back to
    // toBinary (correct, slower) until session-wire.ts learns the change.
    expect(SESSION_ENCODER_MATCHES).toBe(true);
  });

  it("writes exactly the bytes protobuf-es writes, for 5000 sessions with edge values", () => {
    for (let seed = 1; seed <= 5000; seed++) {
      const session = randomSession(seed);
      const expected = toBinary(SessionSchema, session);
      const actual = encodeSession(session);
      if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
        throw new Error(`seed ${seed}: ${Buffer.from(actual).toString("hex")} != ${Buffer.from(expected).toString("hex")}`);
      }
    }
  });

  it("writes the empty session as no bytes", () => {
    expect(encodeSession(create(SessionSchema))).toHaveLength(0);
  });

  it("encodes responses holding sessions into bytes that decode to the same message", () => {
    const sessions = Array.from({ length: 60 }, (_, i) => randomSession(10_000 + i));
    const messages = [
      [GetSessionsResponseSchema, create(GetSessionsResponseSchema, { sessions, total: 123 })],
      [GetSessionsResponseSchema, create(GetSessionsResponseSchema, {})],
      [OpenSessionResponseSchema, create(OpenSessionResponseSchema, { session: sessions[0], token: "t.s", evictedSessionIds: ["a", "b"] })],
      [ValidateSessionResponseSchema, create(ValidateSessionResponseSchema, { session: sessions[1], newToken: "" })],
      [ValidateSessionResponseSchema, create(ValidateSessionResponseSchema, {})],
      [CloseExpiredSessionsResponseSchema, create(CloseExpiredSessionsResponseSchema, { closedCount: 7 })],
    ] as const;
    for (const [schema, message] of messages) {
      const bytes = createBinaryEncoder(schema)(message);
      expect(equals(schema as never, fromBinary(schema, bytes) as never, message as never)).toBe(true);
    }
  });
});
