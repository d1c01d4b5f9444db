import { expect } from "vitest";
import type { TestClient, TestEvent, TestSession } from "./clients.js";
import { brief, collectEvents, seqOf } from "./event-streams.js";

/** Every session in the database, closed ones included, read in pages. */
export async function allSessions(client: TestClient): Promise<TestSession[]> {
  const sessions: TestSession[] = [];
  for (let skip = 0; ; skip += 1000) {
    const page = await client.call("getSessions", { skip, take: 1000 });
    sessions.push(...page.sessions!);
    if (page.sessions!.length < 1000) return sessions;
  }
}

/** Every event in the log, read from the oldest until a quiet moment at the tail. */
export async function allEvents(client: TestClient): Promise<TestEvent[]> {
  let head = "";
  const { events } = await collectEvents(
    client,
    { fromOldest: true },
    // The stream sends backlog batches back to back; the first batch shorter
    // than a full one is the tail.
    ({ batches }) => {
      const last = batches.at(-1)!;
      head = last.cursor;
      return last.events.length < 500;
    },
    30_000,
  );
  expect(events.at(-1)?.cursor ?? head).toBe(head);
  return events;
}

const CLOSING: Record<string, string> = {
  CLOSE_REASON_LOGOUT: "SESSION_EVENT_TYPE_CLOSED",
  CLOSE_REASON_REVOKED: "SESSION_EVENT_TYPE_CLOSED",
  CLOSE_REASON_EXPIRED_IDLE: "SESSION_EVENT_TYPE_EXPIRED",
  CLOSE_REASON_EXPIRED_ABSOLUTE: "SESSION_EVENT_TYPE_EXPIRED",
  CLOSE_REASON_EVICTED: "SESSION_EVENT_TYPE_EVICTED",
  CLOSE_REASON_TOKEN_REUSE: "SESSION_EVENT_TYPE_TOKEN_REUSED",
};

/** Events that leave a session's version as it was. */
const KEEPS_VERSION = new Set(["SESSION_EVENT_TYPE_RENEWED", "SESSION_EVENT_TYPE_DELETED", "SESSION_EVENT_TYPE_PURGED"]);
const REMOVES = new Set(["SESSION_EVENT_TYPE_DELETED", "SESSION_EVENT_TYPE_PURGED"]);

/**
 * Checks that the event log and the sessions tell the same story, for a log
 * retention has not shortened: seqs from 1 with no gap; each session's
 * events account for every version it went through, one event per change
 * (renewals keep the version); a closed session's last change closed it for
 * its reason; a session without a row was removed, and that was its last
 * event; every session has its events.
 */
export function expectLogMatchesSessions(events: readonly TestEvent[], sessions: readonly TestSession[]): void {
  expect(events.map((event) => seqOf(event.cursor))).toEqual(events.map((_, i) => i + 1));
  const bySession = new Map<string, TestEvent[]>();
  for (const event of events) {
    const list = bySession.get(event.sessionId) ?? [];
    list.push(event);
    bySession.set(event.sessionId, list);
  }
  const rows = new Map(sessions.map((session) => [session.id, session]));
  expect(sessions.filter((session) => !bySession.has(session.id))).toEqual([]);
  for (const [id, own] of bySession) {
    const story = own.map(brief).join(" ");
    const changes = own.filter((event) => !KEEPS_VERSION.has(event.type));
    expect(changes.map((event) => event.version), story).toEqual(changes.map((_, i) => i + 1));
    expect(changes[0]?.type, story).toBe("SESSION_EVENT_TYPE_OPENED");
    const session = rows.get(id);
    if (session === undefined) {
      expect(REMOVES.has(own.at(-1)!.type), `no row, yet not removed: ${story}`).toBe(true);
      expect(own.filter((event) => REMOVES.has(event.type)), story).toHaveLength(1);
      expect(own.at(-1)!.version, story).toBe(changes.at(-1)!.version);
      continue;
    }
    expect(own.some((event) => REMOVES.has(event.type)), `removed, yet has a row: ${story}`).toBe(false);
    expect(changes.at(-1)!.version, story).toBe(session.version);
    const last = changes.at(-1)!;
    if (session.active) {
      expect(Object.values(CLOSING), story).not.toContain(last.type);
    } else {
      expect(last.type, story).toBe(CLOSING[session.closeReason!]);
      expect(last.closeReason, story).toBe(session.closeReason);
    }
    for (const event of own) {
      expect(event).toMatchObject({ userId: session.userId, client: session.client, address: session.address });
    }
  }
}
