import type { Clock } from "./clock.js";
import { createEventFeed, type EventFeedOptions, type WatchEventsInput } from "./event-feed.js";
import {
  invalidArgument,
  sessionClosed,
  sessionExpired,
  sessionLimitReached,
  sessionNotFound,
  versionMismatch,
} from "./errors.js";
import type { JsonValue, Session, SessionFilter, SessionPage, SessionQuery } from "./session.js";
import { newSessionId } from "./session-id.js";
import type { SessionPolicy } from "./session-policy.js";
import type { SessionChange, SessionLimit, SessionStore } from "./session-store.js";
import { issueToken, type TokenHasher } from "./session-token.js";
import { createSessionValidator } from "./session-validator.js";
import {
  checkJson,
  checkNonNegative,
  checkText,
  requireSessionId,
  requireText,
} from "./validate.js";

/** Page size when a list request does not say. */
export const DEFAULT_PAGE_SIZE = 100;

/**
 * How many sessions one store call closes or purges at most: about 5 ms of
 * work here, the longest a bulk operation holds the event loop at a time.
 */
export const BATCH_SIZE = 250;

/** The longest rest between two batches of bulk work. */
const MAX_BATCH_REST_MS = 50;

export interface SessionControllerOptions {
  readonly store: SessionStore;
  readonly clock: Clock;
  readonly policy: SessionPolicy;
  readonly hasher: TokenHasher;
  /** How event streams are served; defaults to DEFAULT_EVENT_STREAMS. */
  readonly events?: Omit<EventFeedOptions, "store">;
}

export const DEFAULT_EVENT_STREAMS: Omit<EventFeedOptions, "store"> = Object.freeze({
  batchSize: 500,
  maxBatchBytes: 1024 * 1024,
  heartbeatMs: 15_000,
  maxStreams: 64,
  minReadIntervalMs: 10,
});

export interface OpenSessionInput {
  readonly userId: string;
  readonly userName: string;
  readonly address: string;
  readonly client: string;
  readonly user: JsonValue;
  readonly data: JsonValue;
  /** Overrides of the server's default timeouts, within its maxima (ms). */
  readonly idleTimeoutMs?: number;
  readonly absoluteTimeoutMs?: number;
}

export interface OpenedSession {
  readonly session: Session;
  /** The secret token; returned once, never stored. */
  readonly token: string;
  readonly evictedIds: readonly string[];
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
  const { store, clock, policy, hasher } = options;
  const feed = createEventFeed({ store, ...(options.events ?? DEFAULT_EVENT_STREAMS) });

  async function update(id: string, change: SessionChange, expectedVersion?: number): Promise<Session> {
    const outcome = await store.update(id, change, clock.now(), expectedVersion);
    switch (outcome.status) {
      case "updated":
        return outcome.session;
      case "closed":
        throw sessionClosed(id);
      case "expired":
        throw outcome.reason === "expired_absolute" || outcome.reason === "expired_idle"
          ? sessionExpired(id, outcome.reason)
          : sessionClosed(id);
      case "version_mismatch":
        throw versionMismatch(id, expectedVersion ?? 0, outcome.session.version);
      case "not_found":
        throw sessionNotFound(id);
    }
  }

  /** Set on shutdown: bulk work stops after the batch in progress. */
  let bulkStopped = false;

  /**
   * Runs a batch operation until a batch comes back short, or until shutdown
   * (each batch is committed whole; what is left is done next time). Bulk
   * work (a sweep of a large backlog, a mass revocation) yields the event
   * loop: after each batch it rests twice as long as the batch took (its wait
   * for the group commit included; at most 50 ms), so calls arriving
   * meanwhile keep most of their usual latency.
   */
  async function inBatches(batch: () => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const began = performance.now();
      const done = await batch();
      total += done;
      if (done < BATCH_SIZE || bulkStopped) return total;
      const took = performance.now() - began;
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(MAX_BATCH_REST_MS, 2 * took)));
      if (bulkStopped) return total;
    }
  }

  return {
    async openSession(input: OpenSessionInput): Promise<OpenedSession> {
      const session = newSession(input, policy, clock.now());
      const { token, hash } = issueToken(session.id, hasher);
      const limits = limitsFor(policy, session.client);
      const outcome = await store.insert(session, hash, { limits, policy: policy.sessionLimitPolicy }, session.openTime);
      if (outcome.status === "limit_reached") {
        throw sessionLimitReached(session.userId, outcome.limit.max, outcome.limit.client);
      }
      return { session, token, evictedIds: outcome.evictedIds };
    },

    validateSession: createSessionValidator({ store, clock, policy, hasher }),

    async getSessionById(id: string): Promise<Session> {
      requireSessionId("id", id);
      const session = await store.get(id);
      if (session === undefined) throw sessionNotFound(id);
      return session;
    },

    async getSessions(input: GetSessionsInput): Promise<SessionPage> {
      return store.list(toQuery(input, policy.maxPageSize));
    },

    async storeSessionData(id: string, data: JsonValue | undefined, expectedVersion?: number): Promise<Session> {
      requireSessionId("id", id);
      if (data === undefined) {
        throw invalidArgument("data", "is required (send a JSON null to clear the data)");
      }
      return update(id, { data: checkJson("data", data, policy.maxDataBytes) }, expectedVersion);
    },

    async updateSessionUser(id: string, user: JsonValue | undefined, expectedVersion?: number): Promise<Session> {
      requireSessionId("id", id);
      if (user === undefined) {
        throw invalidArgument("user", "is required (send a JSON null to clear the user)");
      }
      return update(id, { user: checkJson("user", user, policy.maxUserBytes) }, expectedVersion);
    },

    /** Logs a session out. */
    async closeSession(id: string): Promise<Session> {
      requireSessionId("id", id);
      const session = await store.close(id, clock.now(), "logout");
      if (session === undefined) throw sessionNotFound(id);
      return session;
    },

    /** Closes every active session of a user but `exceptId`; returns how many. */
    async closeUserSessions(userId: string, exceptId: string): Promise<number> {
      requireText("user_id", userId);
      if (exceptId !== "") requireSessionId("except_session_id", exceptId);
      const now = clock.now();
      const except = exceptId === "" ? undefined : exceptId;
      return inBatches(() => store.closeMatching({ userId }, "revoked", now, BATCH_SIZE, except));
    },

    /** Closes, or only counts, the active sessions matching a filter. */
    async closeSessions(filter: SessionFilter, dryRun: boolean): Promise<number> {
      checkFilter(filter);
      if (Object.keys(filter).length === 0) {
        throw invalidArgument("filter", "must set at least one field (active = true closes every session)");
      }
      if (filter.active === false) {
        throw invalidArgument("filter.active", "must not be false: only active sessions can be closed");
      }
      if (filter.closeReason !== undefined) {
        throw invalidArgument("filter.close_reason", "must not be set: only active sessions can be closed");
      }
      if (dryRun) return store.countActive(filter);
      const now = clock.now();
      return inBatches(() => store.closeMatching(filter, "revoked", now, BATCH_SIZE));
    },

    /** Closes every active session past its expiry. */
    async closeExpiredSessions(): Promise<number> {
      const now = clock.now();
      return inBatches(() => store.closeExpired(now, BATCH_SIZE));
    },

    /** Removes sessions closed longer than `retentionMs` ago. */
    async purgeClosedSessions(retentionMs: number): Promise<number> {
      const now = clock.now();
      return inBatches(() => store.purgeClosed(now - retentionMs, BATCH_SIZE, now));
    },

    /** Removes events older than `retentionMs`, oldest first. */
    async purgeEvents(retentionMs: number): Promise<number> {
      const before = clock.now() - retentionMs;
      return inBatches(() => store.purgeEvents(before, BATCH_SIZE));
    },

    /** Every change after the input's starting point, then each new one; see EventFeed. */
    watchSessionEvents(input: WatchEventsInput, signal: AbortSignal) {
      return feed.watch(input, signal);
    },

    /** How many event streams are being served. */
    get eventStreams() {
      return feed.streams;
    },

    /** Ends every event stream (UNAVAILABLE) and refuses new ones: the first step of shutting down. */
    stopEventStreams() {
      feed.close();
    },

    /**
     * Stops sweeps and mass closes after their batch in progress (they
     * return what they did so far), so a shutdown does not wait for a large
     * backlog: the next start finishes it.
     */
    stopBulkWork() {
      bulkStopped = true;
    },

    async deleteSessionById(id: string): Promise<Session> {
      requireSessionId("id", id);
      const session = await store.delete(id, clock.now());
      if (session === undefined) throw sessionNotFound(id);
      return session;
    },
  };
}

function newSession(input: OpenSessionInput, policy: SessionPolicy, now: number): Session {
  const idleTimeoutMs = timeout("idle_timeout", input.idleTimeoutMs, policy.idleTimeoutMs, policy.maxIdleTimeoutMs);
  if (idleTimeoutMs <= policy.touchIntervalMs) {
    throw invalidArgument("idle_timeout", `must be longer than the server's touch interval (${policy.touchIntervalMs} ms)`);
  }
  const address = checkText("address", input.address);
  const client = checkText("client", input.client);
  if (policy.binding.kind === "address" && address === "") {
    throw invalidArgument("address", "is required: the server binds sessions to their network");
  }
  if (policy.binding.kind === "client" && client === "") {
    throw invalidArgument("client", "is required: the server binds sessions to their client");
  }
  return {
    id: newSessionId(),
    userId: requireText("user_id", input.userId),
    userName: checkText("user_name", input.userName),
    address,
    client,
    active: true,
    openTime: now,
    requestTime: now,
    closeTime: null,
    closeReason: null,
    version: 1,
    idleTimeoutMs,
    absoluteTimeoutMs: timeout(
      "absolute_timeout",
      input.absoluteTimeoutMs,
      policy.absoluteTimeoutMs,
      policy.maxAbsoluteTimeoutMs,
    ),
    lastAddress: "",
    lastClient: "",
    user: checkJson("user", input.user, policy.maxUserBytes),
    data: checkJson("data", input.data, policy.maxDataBytes),
  };
}

function timeout(field: string, requested: number | undefined, fallback: number, max: number): number {
  if (requested === undefined) return fallback;
  if (!Number.isSafeInteger(requested) || requested <= 0) {
    throw invalidArgument(field, "must be a positive whole number of milliseconds");
  }
  if (requested > max) {
    throw invalidArgument(field, `must be at most the server's maximum of ${max} ms`);
  }
  return requested;
}

/**
 * The limit a new session must keep: the client's own limit on the user's
 * sessions from that client, if it has one, else the server-wide limit on
 * all of the user's sessions.
 */
function limitsFor(policy: SessionPolicy, client: string): SessionLimit[] {
  if (Object.hasOwn(policy.maxSessionsPerClient, client)) {
    const max = policy.maxSessionsPerClient[client]!;
    return max > 0 ? [{ max, client }] : [];
  }
  return policy.maxSessionsPerUser > 0 ? [{ max: policy.maxSessionsPerUser }] : [];
}

function checkFilter(filter: SessionFilter): void {
  if (filter.userId !== undefined) checkText("filter.user_id", filter.userId);
  if (filter.address !== undefined) checkText("filter.address", filter.address);
  if (filter.client !== undefined) checkText("filter.client", filter.client);
  if (filter.fromTime !== undefined && filter.toTime !== undefined && filter.fromTime > filter.toTime) {
    throw invalidArgument("filter.from_time", "must not be after filter.to_time");
  }
}

function toQuery(input: GetSessionsInput, maxPageSize: number): SessionQuery {
  checkFilter(input.filter);
  const take = checkNonNegative("take", input.take);
  return {
    filter: input.filter,
    skip: checkNonNegative("skip", input.skip),
    take: Math.min(take === 0 ? DEFAULT_PAGE_SIZE : take, maxPageSize),
    includeTotal: input.includeTotal,
    includeData: input.includeData,
  };
}
