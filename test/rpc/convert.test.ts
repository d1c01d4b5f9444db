import { create } from "@bufbuild/protobuf";
import { TimestampSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { filterFromProto, sessionToProto, timestampToMs, valueToJson } from "../../src/rpc/convert.js";
import { SessionFilterSchema } from "../../gen/sessions/v1/sessions_pb.js";
import { sessionRecord } from "../support/store-contract.js";

describe("proto <-> domain conversion", () => {
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
