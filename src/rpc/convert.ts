import { create, fromJson, toJson, type JsonValue as ProtoJson } from "@bufbuild/protobuf";
import {
  timestampFromMs,
  ValueSchema,
  type Timestamp,
  type Value,
} from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../session/errors.js";
import type { JsonValue, Session, SessionFilter, SessionInfo } from "../session/session.js";
import {
  SessionSchema,
  type Session as ProtoSession,
  type SessionFilter as ProtoSessionFilter,
} from "../../gen/sessions/v1/sessions_pb.js";

/** Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the valid Timestamp range. */
const MIN_TIMESTAMP_SECONDS = -62135596800n;
const MAX_TIMESTAMP_SECONDS = 253402300799n;

/**
 * The wire form of a session. User and data are left unset when they are null
 * or when `session` carries no content (a list item without include_data).
 */
export function sessionToProto(session: Session | SessionInfo): ProtoSession {
  const message = create(SessionSchema, {
    id: session.id,
    userId: session.userId,
    userName: session.userName,
    active: session.active,
    openTime: timestampFromMs(session.openTime),
    requestTime: timestampFromMs(session.requestTime),
    address: session.address,
    client: session.client,
  });
  if (session.closeTime !== null) {
    message.closeTime = timestampFromMs(session.closeTime);
  }
  if ("user" in session && session.user !== null) {
    message.user = fromJson(ValueSchema, session.user);
  }
  if ("data" in session && session.data !== null) {
    message.data = fromJson(ValueSchema, session.data);
  }
  return message;
}

/**
 * A Value from a request as plain JSON; undefined when the field is unset.
 * A Value with no kind, or holding NaN or an infinity, cannot be JSON and is
 * refused with INVALID_ARGUMENT naming the field.
 */
export function valueToJson(field: string, value: Value | undefined): JsonValue | undefined {
  if (value === undefined) return undefined;
  try {
    return toJson(ValueSchema, value) as ProtoJson as JsonValue;
  } catch {
    throw invalidArgument(field, "must be a JSON value (a kind must be set, numbers must be finite)");
  }
}

/** A request's Timestamp as milliseconds, rounded up; undefined when unset. */
export function timestampToMs(field: string, ts: Timestamp | undefined): number | undefined {
  if (ts === undefined) return undefined;
  if (
    ts.seconds < MIN_TIMESTAMP_SECONDS ||
    ts.seconds > MAX_TIMESTAMP_SECONDS ||
    ts.nanos < 0 ||
    ts.nanos > 999_999_999
  ) {
    throw invalidArgument(field, "is not a valid timestamp");
  }
  // Times are stored in whole milliseconds. Rounding up keeps the meaning of
  // both bounds: t >= 1.5 ms holds for t >= 2, and t < 1.5 ms for t < 2.
  return Number(ts.seconds) * 1000 + Math.ceil(ts.nanos / 1_000_000);
}

/** A request's filter in domain terms; empty strings mean "any". */
export function filterFromProto(filter: ProtoSessionFilter | undefined): SessionFilter {
  if (filter === undefined) return {};
  const fromTime = timestampToMs("filter.from_time", filter.fromTime);
  const toTime = timestampToMs("filter.to_time", filter.toTime);
  return {
    ...(filter.userId !== "" && { userId: filter.userId }),
    ...(filter.active !== undefined && { active: filter.active }),
    ...(fromTime !== undefined && { fromTime }),
    ...(toTime !== undefined && { toTime }),
    ...(filter.address !== "" && { address: filter.address }),
    ...(filter.client !== "" && { client: filter.client }),
  };
}
