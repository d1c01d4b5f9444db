import { create, fromJson, toJson, type JsonValue as ProtoJson } from "@bufbuild/protobuf";
import {
  ValueSchema,
  type Duration,
  type Timestamp,
  type Value,
} from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../session/errors.js";
import {
  expireTime,
  type CloseReason,
  type JsonValue,
  type Session,
  type SessionFilter,
  type SessionInfo,
} from "../session/session.js";
import type { EventBatch } from "../session/event-feed.js";
import type { SessionEventType } from "../session/session-events.js";
import {
  CloseReason as ProtoCloseReason,
  SessionEventSchema,
  SessionEventType as ProtoEventType,
  WatchSessionEventsResponseSchema,
  type WatchSessionEventsResponse,
  SessionSchema,
  type Session as ProtoSession,
  type SessionFilter as ProtoSessionFilter,
} from "../../gen/sessions/v1/sessions_pb.js";

/** Domain close reasons and their wire enum, both ways. */
const CLOSE_REASONS: Record<CloseReason, ProtoCloseReason> = {
  logout: ProtoCloseReason.LOGOUT,
  expired_idle: ProtoCloseReason.EXPIRED_IDLE,
  expired_absolute: ProtoCloseReason.EXPIRED_ABSOLUTE,
  revoked: ProtoCloseReason.REVOKED,
  evicted: ProtoCloseReason.EVICTED,
  token_reuse: ProtoCloseReason.TOKEN_REUSE,
};
const CLOSE_REASONS_BY_WIRE = byWire(CLOSE_REASONS);

/** A domain-to-wire enum table, the other way round. */
function byWire<D extends string, W>(table: Record<D, W>): Map<W, D> {
  return new Map(Object.entries(table).map(([domain, wire]) => [wire as W, domain as D]));
}

/** Longest Duration the wire format allows (10,000 years), in seconds. */
const MAX_DURATION_SECONDS = 315_576_000_000n;

/** Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the valid Timestamp range. */
const MIN_TIMESTAMP_SECONDS = -62135596800n;
const MAX_TIMESTAMP_SECONDS = 253402300799n;

/**
 * The wire form of a session. User and data are left unset when they are null
 * or when `session` carries no content (a list item without include_data).
 */
export function sessionToProto(session: Session | SessionInfo): ProtoSession {
  // A plain object literal, not create(): protobuf-es messages are plain
  // objects, and create() with its five Timestamps and Durations was a tenth
  // of a page of 50 sessions. Every field is set, as create() would (tested).
  const message: ProtoSession = {
    $typeName: "sessions.v1.Session",
    id: session.id,
    userId: session.userId,
    userName: session.userName,
    active: session.active,
    openTime: timestamp(session.openTime),
    requestTime: timestamp(session.requestTime),
    address: session.address,
    client: session.client,
    version: BigInt(session.version),
    closeReason: ProtoCloseReason.UNSPECIFIED,
    idleTimeout: duration(session.idleTimeoutMs),
    absoluteTimeout: duration(session.absoluteTimeoutMs),
    lastAddress: session.lastAddress,
    lastClient: session.lastClient,
  };
  if (session.closeTime !== null) {
    message.closeTime = timestamp(session.closeTime);
  }
  if (session.closeReason !== null) {
    message.closeReason = CLOSE_REASONS[session.closeReason];
  }
  const expires = expireTime(session);
  if (expires !== null) {
    message.expireTime = timestamp(expires);
  }
  if ("user" in session && session.user !== null) {
    message.user = fromJson(ValueSchema, session.user);
  }
  if ("data" in session && session.data !== null) {
    message.data = fromJson(ValueSchema, session.data);
  }
  return message;
}

/** timestampFromMs, as a plain message object. */
function timestamp(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** durationFromMs, as a plain message object. */
function duration(ms: number): Duration {
  const sign = ms < 0 ? -1 : 1;
  const seconds = Math.floor(Math.abs(ms) / 1000);
  const nanos = (Math.abs(ms) - seconds * 1000) * 1_000_000;
  return { $typeName: "google.protobuf.Duration", seconds: BigInt(seconds * sign), nanos: nanos === 0 ? 0 : nanos * sign };
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

/** A request's Duration as whole milliseconds, rounded up; undefined when unset. */
export function durationToMs(field: string, duration: Duration | undefined): number | undefined {
  if (duration === undefined) return undefined;
  const { seconds, nanos } = duration;
  const valid =
    seconds >= -MAX_DURATION_SECONDS &&
    seconds <= MAX_DURATION_SECONDS &&
    nanos > -1_000_000_000 &&
    nanos < 1_000_000_000 &&
    !(seconds > 0n && nanos < 0) &&
    !(seconds < 0n && nanos > 0);
  if (!valid) throw invalidArgument(field, "is not a valid duration");
  return Number(seconds) * 1000 + Math.ceil(nanos / 1_000_000);
}

/** A request's int64 as a number; undefined when unset. */
export function versionToNumber(field: string, version: bigint | undefined): number | undefined {
  if (version === undefined) return undefined;
  if (version < 0n || version > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidArgument(field, "must be a version number (0 or more)");
  }
  return Number(version);
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
    ...(filter.closeReason !== ProtoCloseReason.UNSPECIFIED && {
      closeReason: closeReasonFromProto(filter.closeReason),
    }),
  };
}

function closeReasonFromProto(reason: ProtoCloseReason): CloseReason {
  const domain = CLOSE_REASONS_BY_WIRE.get(reason);
  if (domain === undefined) throw invalidArgument("filter.close_reason", `has no value ${reason}`);
  return domain;
}

/** Domain event types and their wire enum, both ways. */
const EVENT_TYPES: Record<SessionEventType, ProtoEventType> = {
  opened: ProtoEventType.OPENED,
  renewed: ProtoEventType.RENEWED,
  data_stored: ProtoEventType.DATA_STORED,
  user_updated: ProtoEventType.USER_UPDATED,
  closed: ProtoEventType.CLOSED,
  expired: ProtoEventType.EXPIRED,
  evicted: ProtoEventType.EVICTED,
  token_reused: ProtoEventType.TOKEN_REUSED,
  deleted: ProtoEventType.DELETED,
  purged: ProtoEventType.PURGED,
};
const EVENT_TYPES_BY_WIRE = byWire(EVENT_TYPES);

/** A watch request's types in domain terms; UNSPECIFIED or an unknown number is refused. */
export function eventTypesFromProto(types: readonly ProtoEventType[]): SessionEventType[] {
  return types.map((type, index) => {
    const domain = EVENT_TYPES_BY_WIRE.get(type);
    if (domain === undefined) throw invalidArgument(`types[${index}]`, `has no event type ${type}`);
    return domain;
  });
}

/** The wire form of one batch of a watch stream. */
export function eventBatchToProto(batch: EventBatch): WatchSessionEventsResponse {
  return create(WatchSessionEventsResponseSchema, {
    cursor: batch.cursor,
    events: batch.events.map(({ event, cursor }) =>
      create(SessionEventSchema, {
        cursor,
        type: EVENT_TYPES[event.type],
        sessionId: event.sessionId,
        userId: event.userId,
        client: event.client,
        address: event.address,
        closeReason: event.closeReason === null ? ProtoCloseReason.UNSPECIFIED : CLOSE_REASONS[event.closeReason],
        time: timestamp(event.time),
        version: BigInt(event.version),
      }),
    ),
  });
}
