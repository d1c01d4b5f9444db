import { create, equals, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs, TimestampSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { filterFromProto, sessionToProto, timestampToMs, valueToJson } from "../../src/rpc/convert.js";
import { CloseReason, SessionFilterSchema, SessionSchema } from "../../gen/sessions/v1/sessions_pb.js";
import { sessionRecord } from "../support/store-contract.js";

describe("proto <-> domain conversion", () => {
  it("builds the Session message create() would build, for open and closed sessions and odd times", () => {
    const cases = [
      sessionRecord(),
      sessionRecord({ user: null, data: null, version: 2 ** 40 }),
      sessionRecord({ active: false, closeTime: 1_700_000_000_123, closeReason: "token_reuse" }),
      sessionRecord({ openTime: -1500, requestTime: 1, idleTimeoutMs: 1001, absoluteTimeoutMs: 999 }),
    ];
    for (const session of cases) {
      const expires = session.active ? Math.min(session.requestTime + session.idleTimeoutMs, session.openTime + session.absoluteTimeoutMs) : undefined;
      const expected = create(SessionSchema, {
        id: session.id,
        userId: session.userId,
        userName: session.userName,
        active: session.active,
        openTime: timestampFromMs(session.openTime),
        requestTime: timestampFromMs(session.requestTime),
        address: session.address,
        client: session.client,
        version: BigInt(session.version),
        idleTimeout: durationFromMs(session.idleTimeoutMs),
        absoluteTimeout: durationFromMs(session.absoluteTimeoutMs),
        lastAddress: session.lastAddress,
        lastClient: session.lastClient,
        ...(session.closeTime !== null && { closeTime: timestampFromMs(session.closeTime) }),
        ...(session.closeReason === "token_reuse" && { closeReason: CloseReason.TOKEN_REUSE }),
        ...(expires !== undefined && { expireTime: timestampFromMs(expires) }),
        ...(session.user !== null && { user: fromJson(ValueSchema, session.user) }),
        ...(session.data !== null && { data: fromJson(ValueSchema, session.data) }),
      });
      const actual = sessionToProto(session);
      expect(equals(SessionSchema, actual, expected)).toBe(true);
      expect(toBinary(SessionSchema, actual)).toEqual(toBinary(SessionSchema, expected));
      expect(toJson(SessionSchema, actual)).toEqual(toJson(SessionSchema, expected));
    }
  });

  it("rounds timestamps up to whole milliseconds, keeping [from, to) exact", () => {
    const ts = (seconds: bigint, nanos: number) => create(TimestampSchema, { seconds, nanos });
    expect(timestampToMs("t", ts(1n, 0))).toBe(1000);
    expect(timestampToMs("t", ts(1n, 1))).toBe(1001);
    expect(timestampToMs("t", ts(1n, 999_999_999))).toBe(2000);
    expect(timestampToMs("t", ts(-1n, 500_000_000))).toBe(-500);
    expect(timestampToMs("t", undefined)).toBeUndefined();
  });

  it.each([
    ["negative nanos", -1n, -1],
    ["nanos of a whole second", 1n, 1_000_000_000],
    ["a year after 9999", 253402300800n, 0],
    ["a year before 1", -62135596801n, 0],
  ])("refuses a timestamp with %s, naming the field", (_name, seconds, nanos) => {
    const ts = create(TimestampSchema, { seconds, nanos });
    expect(() => timestampToMs("filter.to_time", ts)).toThrow(/^filter.to_time: is not a valid timestamp/);
  });

  it("refuses a Value that cannot be JSON, naming the field", () => {
    const nan = create(ValueSchema, { kind: { case: "numberValue", value: Number.NaN } });
    expect(() => valueToJson("data", nan)).toThrow(/^data: must be a JSON value/);
    expect(() => valueToJson("user", create(ValueSchema))).toThrow(/^user: must be a JSON value/);
  });

  it("tells an unset Value from a JSON null", () => {
    expect(valueToJson("data", undefined)).toBeUndefined();
    expect(valueToJson("data", create(ValueSchema, { kind: { case: "nullValue", value: 0 } }))).toBeNull();
  });

  it("treats empty filter strings as no condition", () => {
    expect(filterFromProto(create(SessionFilterSchema, { userId: "", active: false }))).toEqual({ active: false });
    expect(filterFromProto(undefined)).toEqual({});
  });

  it("leaves close_time, user and data unset when they are null", () => {
    const message = sessionToProto(sessionRecord({ user: null, data: null }));
    expect(message.closeTime).toBeUndefined();
    expect(message.user).toBeUndefined();
    expect(message.data).toBeUndefined();
  });
});
