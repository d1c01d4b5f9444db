import type { CloseReason } from "./session.js";

/** What happened to a session. */
export type SessionEventType =
  | "opened"
  | "renewed"
  | "data_stored"
  | "user_updated"
  /** Closed by a caller: logout or revoked. */
  | "closed"
  | "expired"
  | "evicted"
  | "token_reused"
  | "deleted"
  | "purged";

export const SESSION_EVENT_TYPES: readonly SessionEventType[] = [
  "opened",
  "renewed",
  "data_stored",
  "user_updated",
  "closed",
  "expired",
  "evicted",
  "token_reused",
  "deleted",
  "purged",
];

/**
 * One committed change to a session, as the event log keeps it: never the
 * token, the user record or the data.
 */
export interface SessionEvent {
  /** Position in the log: grows with every event, in commit order. */
  readonly seq: number;
  readonly type: SessionEventType;
  readonly sessionId: string;
  readonly userId: string;
  readonly client: string;
  readonly address: string;
  /** Set for the events that close a session. */
  readonly closeReason: CloseReason | null;
  /** When the change happened (ms since the epoch). */
  readonly time: number;
  /** The session's version after the change (before it, for deleted and purged). */
  readonly version: number;
}

/** The event that closing a session for `reason` writes. */
export function closingEventType(reason: CloseReason): SessionEventType {
  switch (reason) {
    case "logout":
    case "revoked":
      return "closed";
    case "expired_idle":
    case "expired_absolute":
      return "expired";
    case "evicted":
      return "evicted";
    case "token_reuse":
      return "token_reused";
  }
}

/** Which events a watcher wants; every field that is set must match. */
export interface SessionEventFilter {
  readonly userId?: string;
  /** Empty or absent: every type. */
  readonly types?: readonly SessionEventType[];
}

/** Where the event log stands. */
export interface EventLogPosition {
  /** Random id of this log, made with the database: cursors of another log are refused. */
  readonly logId: string;
  /** The seq of the newest event (0 if none was ever written). */
  readonly head: number;
  /** Every event up to this seq has been removed by retention (0 if none). */
  readonly purgedThrough: number;
}

/** Events after a position, as far as one read went. */
export type EventRead =
  | {
      readonly status: "ok";
      /** Matching events in seq order. */
      readonly events: readonly SessionEvent[];
      /** The read covered the log up to here, matching or not: continue after it. */
      readonly through: number;
      /** True if the read stopped short of the newest event: read again at once. */
      readonly more: boolean;
      /** The event at `through`, if it is still in the log (for its cursor). */
      readonly atThrough: SessionEvent | undefined;
    }
  /** Events after the position have been purged. */
  | { readonly status: "expired" }
  /** The position is beyond the newest event this log ever had. */
  | { readonly status: "ahead" };

/**
 * A cursor: an opaque string to callers, `<logId>-<seq>-<tag>` inside. The
 * tag is a fingerprint of the event at seq, so a cursor of a database that
 * was replaced by an older copy (whose seqs were then given to other events)
 * is recognised as foreign, not silently resumed from.
 */
export interface EventCursor {
  readonly logId: string;
  readonly seq: number;
  /** eventTag of the event at seq; NO_EVENT_TAG for seq 0. */
  readonly tag: string;
}

export const NO_EVENT_TAG = "00000000";

const CURSOR = /^([0-9a-f]{16})-(0|[1-9][0-9]{0,15})-([0-9a-f]{8})$/;

export function formatCursor(cursor: EventCursor): string {
  return `${cursor.logId}-${cursor.seq}-${cursor.tag}`;
}

/** The cursor a string holds, or undefined if it is not one. */
export function parseCursor(text: string): EventCursor | undefined {
  const match = CURSOR.exec(text);
  if (match === null) return undefined;
  const seq = Number(match[2]);
  return Number.isSafeInteger(seq) ? { logId: match[1]!, seq, tag: match[3]! } : undefined;
}

/**
 * A fingerprint of an event (32-bit FNV-1a of its seq, session, type and
 * time, as 8 hex digits): two different events at one seq differ in it
 * but for a chance of 1 in 2^32. Not a secret, and not meant as one.
 */
export function eventTag(event: SessionEvent): string {
  const text = `${event.seq}|${event.sessionId}|${event.type}|${event.time}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/** About how many bytes an event takes on the wire, at most (UTF-8, protobuf or JSON). */
export function eventWireSize(event: SessionEvent): number {
  return 200 + 3 * (event.sessionId.length + event.userId.length + event.client.length + event.address.length);
}
