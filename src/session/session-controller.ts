import type { Clock } from "./clock.js";
import { invalidArgument, sessionClosed, sessionNotFound } from "./errors.js";
import type {
  JsonValue,
  Session,
  SessionFilter,
  SessionPage,
  SessionQuery,
} from "./session.js";
import { newSessionId } from "./session-id.js";
import type { SessionChange, SessionStore } from "./session-store.js";
import {
  checkJson,
  checkNonNegative,
  checkText,
  requireSessionId,
  requireText,
} from "./validate.js";

/** Page size when a list request does not say. */
export const DEFAULT_PAGE_SIZE = 100;

/** How many sessions one store call closes at most while expiring. */
const EXPIRE_BATCH_SIZE = 1000;

export interface SessionControllerOptions {
  readonly store: SessionStore;
  readonly clock: Clock;
  /** A session whose last activity is older than this is expired (ms). */
  readonly idleTimeoutMs: number;
  /** Largest page a list returns; bigger requests are capped to it. */
  readonly maxPageSize: number;
  /** Largest session data accepted, as JSON text in bytes. */
  readonly maxDataBytes: number;
  /** Largest cached user record accepted, as JSON text in bytes. */
  readonly maxUserBytes: number;
}

export interface OpenSessionInput {
  readonly userId: string;
  readonly userName: string;
  readonly address: string;
  readonly client: string;
  readonly user: JsonValue;
  readonly data: JsonValue;
}

/** A list request as the caller sent it, before defaults and caps. */
export interface GetSessionsInput {
  readonly filter: SessionFilter;
  readonly skip: number;
  /** 0 means the default page size. */
  readonly take: number;
  readonly includeTotal: boolean;
  readonly includeData: boolean;
}

export type SessionController = ReturnType<typeof createSessionController>;

/**
 * The business rules of sessions. It validates every input, takes the time
 * from the injected clock, and delegates persistence to the store.
 */
export function createSessionController(options: SessionControllerOptions) {
  const { store, clock, idleTimeoutMs, maxPageSize, maxDataBytes, maxUserBytes } = options;

  async function update(id: string, change: SessionChange): Promise<Session> {
    const outcome = await store.update(id, change, clock.now());
    switch (outcome.status) {
      case "updated":
        return outcome.session;
      case "closed":
        throw sessionClosed(id);
      case "not_found":
        throw sessionNotFound(id);
    }
  }

  return {
    async openSession(input: OpenSessionInput): Promise<Session> {
      const now = clock.now();
      const session: Session = {
        id: newSessionId(),
        userId: requireText("user_id", input.userId),
        userName: checkText("user_name", input.userName),
        address: checkText("address", input.address),
        client: checkText("client", input.client),
        active: true,
        openTime: now,
        requestTime: now,
        closeTime: null,
        user: checkJson("user", input.user, maxUserBytes),
        data: checkJson("data", input.data, maxDataBytes),
      };
      await store.insert(session);
      return session;
    },

    async getSessionById(id: string): Promise<Session> {
      requireSessionId("id", id);
      const session = await store.get(id);
      if (session === undefined) {
        throw sessionNotFound(id);
      }
      return session;
    },

    async getSessions(input: GetSessionsInput): Promise<SessionPage> {
      return store.list(toQuery(input, maxPageSize));
    },

    async storeSessionData(id: string, data: JsonValue | undefined): Promise<Session> {
      requireSessionId("id", id);
      if (data === undefined) {
        throw invalidArgument("data", "is required (send a JSON null to clear the data)");
      }
      return update(id, { data: checkJson("data", data, maxDataBytes) });
    },

    async updateSessionUser(id: string, user: JsonValue | undefined): Promise<Session> {
      requireSessionId("id", id);
      if (user === undefined) {
        throw invalidArgument("user", "is required (send a JSON null to clear the user)");
      }
      return update(id, { user: checkJson("user", user, maxUserBytes) });
    },

    async closeSession(id: string): Promise<Session> {
      requireSessionId("id", id);
      const session = await store.close(id, clock.now());
      if (session === undefined) {
        throw sessionNotFound(id);
      }
      return session;
    },

    /** Closes every active session idle for longer than the idle timeout. */
    async closeExpiredSessions(): Promise<number> {
      const now = clock.now();
      const idleSince = now - idleTimeoutMs;
      let closed = 0;
      for (;;) {
        const batch = await store.closeIdle(idleSince, now, EXPIRE_BATCH_SIZE);
        closed += batch;
        if (batch < EXPIRE_BATCH_SIZE) {
          return closed;
        }
        // The store works synchronously: let waiting requests run between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    },

    async deleteSessionById(id: string): Promise<Session> {
      requireSessionId("id", id);
      const session = await store.delete(id);
      if (session === undefined) {
        throw sessionNotFound(id);
      }
      return session;
    },
  };
}

function toQuery(input: GetSessionsInput, maxPageSize: number): SessionQuery {
  const { filter } = input;
  if (filter.userId !== undefined) checkText("filter.user_id", filter.userId);
  if (filter.address !== undefined) checkText("filter.address", filter.address);
  if (filter.client !== undefined) checkText("filter.client", filter.client);
  if (
    filter.fromTime !== undefined &&
    filter.toTime !== undefined &&
    filter.fromTime > filter.toTime
  ) {
    throw invalidArgument("filter.from_time", "must not be after filter.to_time");
  }
  const take = checkNonNegative("take", input.take);
  return {
    filter,
    skip: checkNonNegative("skip", input.skip),
    take: Math.min(take === 0 ? DEFAULT_PAGE_SIZE : take, maxPageSize),
    includeTotal: input.includeTotal,
    includeData: input.includeData,
  };
}
