/**
 * Model-based property tests of the session controller, on the real SQLite
 * store (`:memory:`) and a FakeClock.
 *
 * fast-check generates a policy (limit policy, renewal grace, per-client
 * limits) and a sequence of operations: opens, token validations (current,
 * renewed-away, retired, forged and malformed tokens), reads by id, data and
 * user writes with and without an expected version, logouts, bulk closes,
 * filtered and paged lists, sweeps, deletes, and clock moves that land on
 * the sessions' deadlines or a millisecond either side. Each operation goes
 * to the controller and to a small, independent model of the rules in
 * README.md ("Session lifecycle", "Contract"): a Map of sessions with their
 * tokens. The controller's answer (value, or error kind and reason) must be
 * the model's, and after each call the whole table, as the controller lists
 * it, must equal the model's.
 *
 * The second property adds bursts: two or three calls started together, so
 * that their writes share a group commit and interleave with each other's
 * reads. Some serial order of the burst must explain every answer and the
 * state it leaves (linearizability), with one allowance the README makes: a
 * validation answers with the session as it last read it, and the activity
 * it records (request time, last address and client) may be written after
 * other calls of the burst, so their answers need not show it.
 *
 * The model shares no code with src/ beyond types: tokens are opaque strings
 * it remembers per session (current, previous with its grace deadline, and
 * every retired one), and it computes expiry, limits, evictions, renewals,
 * versions and list order itself. Left out: binding policies, the touch
 * interval's exact write count, events, purges, input-size limits, time
 * filters on closes, concurrency across processes.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSessionError } from "../../src/session/errors.js";
import { createSessionController, type OpenSessionInput } from "../../src/session/session-controller.js";
import type { CloseReason, JsonValue, Session, SessionFilter, SessionInfo } from "../../src/session/session.js";
import type { SessionLimitPolicy, SessionPolicy } from "../../src/session/session-policy.js";
import { createTokenHasher } from "../../src/session/session-token.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { FakeClock } from "../support/fake-clock.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const START = Date.UTC(2026, 0, 1);

/** Runs of each property in `npm test`: together about 6 s on the project's 2-core machine. */
const SEQUENTIAL_RUNS = 200;
const CONCURRENT_RUNS = 300;
const MAX_OPS = 50;

// ---------------------------------------------------------------------------
// The policy under test: small timeouts, a per-user limit of 3, and what fc picks.

const IDLE = 30 * MINUTE;
const ABSOLUTE = 2 * HOUR;
const TOUCH = MINUTE;
const RENEWAL = 10 * MINUTE;
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;

interface PolicyChoice {
  readonly limitPolicy: SessionLimitPolicy;
  readonly graceMs: number;
  /** Per-client overrides of the user-wide limit. */
  readonly perClient: Readonly<Record<string, number>>;
}

function policyOf(choice: PolicyChoice): SessionPolicy {
  return {
    idleTimeoutMs: IDLE,
    absoluteTimeoutMs: ABSOLUTE,
    maxIdleTimeoutMs: 24 * HOUR,
    maxAbsoluteTimeoutMs: 30 * 24 * HOUR,
    touchIntervalMs: TOUCH,
    renewalIntervalMs: RENEWAL,
    renewalGraceMs: choice.graceMs,
    maxSessionsPerUser: 3,
    maxSessionsPerClient: choice.perClient,
    sessionLimitPolicy: choice.limitPolicy,
    binding: { kind: "none" },
    maxPageSize: MAX_PAGE,
    maxDataBytes: 64 * 1024,
    maxUserBytes: 64 * 1024,
  };
}

const policyArb: fc.Arbitrary<PolicyChoice> = fc.record({
  limitPolicy: fc.constantFrom<SessionLimitPolicy>("deny", "evict_oldest", "evict_least_recently_used"),
  graceMs: fc.constantFrom(30 * SECOND, 2 * MINUTE),
  perClient: fc.constantFrom<Record<string, number>>({}, { kiosk: 1, cli: 0 }),
});

// ---------------------------------------------------------------------------
// Operations.

const USERS = ["alice", "bob", "carol"] as const;
const CLIENTS = ["web", "ios", "kiosk", "cli"] as const;
const SEEN_CLIENTS = ["", "web", "ios"] as const;
const ADDRESSES = ["", "10.0.0.1", "10.0.0.2"] as const;

type TokenChoice = "current" | "previous" | "retired" | "forged" | "malformed" | "unknown_session" | "empty";
type VersionChoice = "none" | "current" | "stale" | "ahead";
type Deadline = "idle" | "absolute" | "renewal" | "grace" | "touch";
/** Optionally, first move the clock to one of the session's deadlines, or a millisecond either side. */
type At = { readonly deadline: Deadline; readonly delta: -1 | 0 | 1 } | null;
/** A session the operation is about: `ref` picks one of those ever opened (deleted ones too). */
type Target = { readonly ref: number; readonly unknown: boolean };

type Op =
  | {
      readonly kind: "open";
      readonly user: number;
      readonly client: number;
      readonly address: number;
      readonly userName: string;
      readonly payload: { readonly user: JsonValue; readonly data: JsonValue };
      readonly idleTimeoutMs: number | null;
      readonly absoluteTimeoutMs: number | null;
    }
  | {
      readonly kind: "validate";
      readonly target: Target;
      readonly token: TokenChoice;
      readonly retiredIndex: number;
      readonly secret: string;
      readonly client: number;
      readonly address: number;
      readonly includeData: boolean;
      readonly at: At;
    }
  | { readonly kind: "get"; readonly target: Target }
  | {
      readonly kind: "store_data" | "update_user";
      readonly target: Target;
      readonly value: JsonValue;
      readonly version: VersionChoice;
      readonly at: At;
    }
  | { readonly kind: "close"; readonly target: Target }
  | { readonly kind: "close_user"; readonly user: number; readonly except: Target | null }
  | {
      readonly kind: "close_sessions";
      readonly user: number | null;
      readonly client: number | null;
      readonly activeTrue: boolean;
      readonly dryRun: boolean;
    }
  | {
      readonly kind: "list";
      readonly user: number | null;
      readonly active: boolean | null;
      readonly client: number | null;
      /** fromTime / toTime as offsets back from now. */
      readonly fromAgo: number | null;
      readonly toAgo: number | null;
      readonly skip: number;
      readonly take: number;
      readonly total: boolean;
      readonly includeData: boolean;
    }
  | { readonly kind: "sweep" }
  | { readonly kind: "delete"; readonly target: Target }
  /** Calls started together, without waiting for one another. */
  | { readonly kind: "burst"; readonly ops: readonly Op[] }
  | { readonly kind: "advance"; readonly ms: number }
  | { readonly kind: "advance_to"; readonly target: Target; readonly deadline: Deadline; readonly delta: -1 | 0 | 1 };

/** Small JSON values, none of which JSON changes (no -0, no undefined). */
const jsonArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -1000, max: 1000 }),
  fc.string({ maxLength: 6 }),
  fc.record({ theme: fc.constantFrom("dark", "light"), n: fc.nat(99) }),
  fc.array(fc.nat(9), { maxLength: 3 }),
);

/** Counted back from the newest session: mostly the newest few, so that each sees many operations. */
const refArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.constant(1) },
  { weight: 2, arbitrary: fc.constant(2) },
  { weight: 2, arbitrary: fc.nat(30) },
);
/** A session ever opened (validations and clock moves always pick one). */
const targetArb: fc.Arbitrary<Target> = fc.record({ ref: refArb, unknown: fc.constant(false) });
/** Mostly a session ever opened, sometimes an id no session has. */
const anyTargetArb: fc.Arbitrary<Target> = fc.record({
  ref: refArb,
  unknown: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});
const pick = (n: number) => fc.nat(n - 1);
/** Mostly the first user, so that the per-user limit is reached often. */
const userArb = fc.constantFrom(0, 0, 0, 0, 1, 2);
const base64url = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((bytes) => Buffer.from(bytes).toString("base64url"));
const versionArb = fc.constantFrom<VersionChoice>("none", "current", "stale", "ahead");

/**
 * Clock moves that straddle the touch interval, the grace, the renewal interval, the idle
 * timeout and the lifetime; mostly short ones, so that sessions live long enough to renew.
 */
const advanceArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      1,
      30 * SECOND - 1,
      30 * SECOND,
      TOUCH - 1,
      TOUCH,
      2 * MINUTE - 1,
      2 * MINUTE,
      5 * MINUTE,
      RENEWAL - 1,
      RENEWAL,
      RENEWAL + 1,
    ),
  },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: RENEWAL + 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(IDLE - 1, IDLE, IDLE + 1, HOUR, ABSOLUTE - 1, ABSOLUTE, ABSOLUTE + 1) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * HOUR }) },
);

const openArb = fc.record({
  kind: fc.constant("open" as const),
  user: userArb,
  client: pick(CLIENTS.length),
  address: pick(ADDRESSES.length),
  userName: fc.constantFrom("", "Alice A."),
  payload: fc.record({ user: jsonArb, data: jsonArb }),
  idleTimeoutMs: fc.constantFrom(null, null, null, 5 * MINUTE, 45 * MINUTE),
  absoluteTimeoutMs: fc.constantFrom(null, null, null, 20 * MINUTE, 3 * HOUR),
});

const deadlineArb = fc.constantFrom<Deadline>("idle", "absolute", "renewal", "grace", "touch");
const deltaArb = fc.constantFrom<-1 | 0 | 1>(-1, 0, 1);
const atArb: fc.Arbitrary<At> = fc.option(fc.record({ deadline: deadlineArb, delta: deltaArb }), { freq: 2 });

const validateArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant("validate" as const),
  target: targetArb,
  token: fc.constantFrom<TokenChoice>(
    "current",
    "current",
    "current",
    "previous",
    "previous",
    "retired",
    "retired",
    "forged",
    "malformed",
    "unknown_session",
    "empty",
  ),
  retiredIndex: fc.nat(5),
  secret: base64url,
  client: pick(SEEN_CLIENTS.length),
  address: pick(ADDRESSES.length),
  includeData: fc.boolean(),
  at: atArb,
});

/** Every operation that is a call to the controller. */
const callArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: openArb },
  { weight: 8, arbitrary: validateArb },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("get" as const), target: anyTargetArb }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom("store_data" as const, "update_user" as const),
      target: anyTargetArb,
      value: jsonArb,
      version: versionArb,
      at: atArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("close" as const), target: anyTargetArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("close_user" as const), user: userArb, except: fc.option(anyTargetArb) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("close_sessions" as const),
      user: fc.option(pick(USERS.length)),
      client: fc.option(pick(CLIENTS.length)),
      activeTrue: fc.boolean(),
      dryRun: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("list" as const),
      user: fc.option(pick(USERS.length)),
      active: fc.option(fc.boolean()),
      client: fc.option(pick(CLIENTS.length), { freq: 3 }),
      fromAgo: fc.option(fc.constantFrom(0, 1, TOUCH, RENEWAL, IDLE, ABSOLUTE), { freq: 2 }),
      toAgo: fc.option(fc.constantFrom(0, 1, TOUCH, RENEWAL, IDLE), { freq: 2 }),
      skip: fc.nat(4),
      take: fc.nat(4),
      total: fc.boolean(),
      includeData: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "sweep" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), target: anyTargetArb }) },
);

const clockArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: advanceArb }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("advance_to" as const),
      target: targetArb,
      deadline: deadlineArb,
      delta: deltaArb,
    }),
  },
);

/** Calls one at a time, and clock moves. */
const sequentialOpArb: fc.Arbitrary<Op> = fc.oneof({ weight: 25, arbitrary: callArb }, { weight: 9, arbitrary: clockArb });

/** The same, and bursts of two or three calls started together. */
const concurrentOpArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 25, arbitrary: callArb },
  { weight: 9, arbitrary: clockArb },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("burst" as const),
      // Validations of the same session racing each other and writes are the interesting case.
      ops: fc.array(fc.oneof(validateArb, callArb), { minLength: 2, maxLength: 3 }),
    }),
  },
);

// ---------------------------------------------------------------------------
// The model.

interface ModelSession {
  readonly id: string;
  readonly userId: string;
  readonly userName: string;
  readonly address: string;
  readonly client: string;
  readonly openTime: number;
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
  /** Insertion order: ties between equal times are broken by it in evictions. */
  readonly seq: number;
  active: boolean;
  closeTime: number | null;
  closeReason: CloseReason | null;
  requestTime: number;
  version: number;
  lastAddress: string;
  lastClient: string;
  user: JsonValue;
  data: JsonValue;
  token: string;
  tokenTime: number;
  previous: { readonly token: string; readonly validUntil: number } | null;
  retired: string[];
}

/** What an operation answers: a value, or an error by kind and reason. */
type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly kind: string; readonly reason?: string };

const fail = (kind: string, reason?: string): Outcome<never> => ({ ok: false, kind, ...(reason !== undefined && { reason }) });
const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });

const normalize = (value: JsonValue): JsonValue => JSON.parse(JSON.stringify(value)) as JsonValue;

function infoOf(s: ModelSession): SessionInfo {
  return {
    id: s.id,
    userId: s.userId,
    userName: s.userName,
    active: s.active,
    openTime: s.openTime,
    closeTime: s.closeTime,
    closeReason: s.closeReason,
    requestTime: s.requestTime,
    address: s.address,
    client: s.client,
    version: s.version,
    idleTimeoutMs: s.idleTimeoutMs,
    absoluteTimeoutMs: s.absoluteTimeoutMs,
    lastAddress: s.lastAddress,
    lastClient: s.lastClient,
  };
}

const fullOf = (s: ModelSession): Session => ({ ...infoOf(s), user: s.user, data: s.data });
const viewOf = (s: ModelSession, includeData: boolean): SessionInfo | Session => (includeData ? fullOf(s) : infoOf(s));

class Model {
  readonly sessions = new Map<string, ModelSession>();
  /** Every id ever opened, deleted ones included, in order: what operations refer to. */
  readonly ids: string[] = [];
  private seq = 0;

  constructor(
    public now: number,
    private readonly policy: SessionPolicy,
  ) {}

  /** An independent copy, to try an order of concurrent calls on. */
  clone(): Model {
    const copy = new Model(this.now, this.policy);
    for (const [id, s] of this.sessions) copy.sessions.set(id, { ...s, retired: [...s.retired] });
    copy.ids.push(...this.ids);
    copy.seq = this.seq;
    return copy;
  }

  /** The earlier of the idle and absolute deadlines. */
  private expiry(s: ModelSession): number {
    return Math.min(s.requestTime + s.idleTimeoutMs, s.openTime + s.absoluteTimeoutMs);
  }

  /** Active and before its expiry: the only sessions that take writes or count towards limits. */
  private live(s: ModelSession): boolean {
    return s.active && this.now < this.expiry(s);
  }

  /** Why an expired session closes: its lifetime first, else idleness. */
  private expiredReason(s: ModelSession): CloseReason {
    return this.now >= s.openTime + s.absoluteTimeoutMs ? "expired_absolute" : "expired_idle";
  }

  private closeAs(s: ModelSession, reason: CloseReason): void {
    s.active = false;
    s.closeTime = this.now;
    s.closeReason = reason;
    s.user = null;
    s.data = null;
    s.version += 1;
  }

  /** A close for `reason` of an active session; one that had already expired is closed as the expiry. */
  private closeOrExpire(s: ModelSession, reason: CloseReason): void {
    this.closeAs(s, this.live(s) ? reason : this.expiredReason(s));
  }

  /** Records activity: request time moves to now. */
  private activity(s: ModelSession): void {
    s.requestTime = Math.max(s.requestTime, this.now);
  }

  private inOrder(sessions: Iterable<ModelSession>): ModelSession[] {
    return [...sessions].sort((a, b) => b.requestTime - a.requestTime || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** All sessions as GetSessions orders them: request time descending, then id. */
  listing(): Session[] {
    return this.inOrder(this.sessions.values()).map(fullOf);
  }

  open(input: OpenSessionInput, opened?: { id: string; token: string }): Outcome<{ session: Session; evictedIds: string[] }> {
    const mine = [...this.sessions.values()].filter((s) => s.userId === input.userId && this.live(s));
    // A client with its own limit counts only the user's sessions from it; 0 means none.
    const own = this.policy.maxSessionsPerClient[input.client];
    const scope = own !== undefined ? mine.filter((s) => s.client === input.client) : mine;
    const max = own ?? this.policy.maxSessionsPerUser;
    const evicted: ModelSession[] = [];
    if (max > 0 && scope.length >= max) {
      if (this.policy.sessionLimitPolicy === "deny") return fail("resource_exhausted", "session_limit");
      const byRecency = this.policy.sessionLimitPolicy === "evict_least_recently_used";
      const victims = [...scope]
        .sort((a, b) => (byRecency ? a.requestTime - b.requestTime : a.openTime - b.openTime) || a.seq - b.seq)
        .slice(0, scope.length - max + 1);
      evicted.push(...victims);
    }
    if (opened === undefined) {
      // The controller refused what the model accepts: answer without changing the model.
      return ok({ session: {} as Session, evictedIds: evicted.map((s) => s.id) });
    }
    for (const victim of evicted) this.closeAs(victim, "evicted");
    const s: ModelSession = {
      id: opened.id,
      userId: input.userId,
      userName: input.userName,
      address: input.address,
      client: input.client,
      openTime: this.now,
      idleTimeoutMs: input.idleTimeoutMs ?? this.policy.idleTimeoutMs,
      absoluteTimeoutMs: input.absoluteTimeoutMs ?? this.policy.absoluteTimeoutMs,
      seq: this.seq++,
      active: true,
      closeTime: null,
      closeReason: null,
      requestTime: this.now,
      version: 1,
      lastAddress: "",
      lastClient: "",
      user: normalize(input.user),
      data: normalize(input.data),
      token: opened.token,
      tokenTime: this.now,
      previous: null,
      retired: [],
    };
    this.sessions.set(s.id, s);
    this.ids.push(s.id);
    return ok({ session: fullOf(s), evictedIds: evicted.map((v) => v.id) });
  }

  /** The session a token was issued for, and which of its tokens it is. */
  tokenOwner(token: string): { s: ModelSession; which: "current" | "previous" | "retired" } | undefined {
    for (const s of this.sessions.values()) {
      if (s.token === token) return { s, which: "current" };
      if (s.previous?.token === token) return { s, which: "previous" };
      if (s.retired.includes(token)) return { s, which: "retired" };
    }
    return undefined;
  }

  validate(
    token: string,
    address: string,
    client: string,
    includeData: boolean,
    newToken: string | undefined,
  ): Outcome<{ session: SessionInfo | Session; renewed: boolean }> {
    if (token === "") return fail("invalid_argument");
    const found = this.tokenOwner(token);
    if (found === undefined) return fail("unauthenticated", "token_unknown");
    const { s, which } = found;
    if (!s.active) {
      const why = s.closeReason;
      return fail(
        "unauthenticated",
        why === "expired_idle" || why === "expired_absolute" ? why : why === "token_reuse" ? "token_reused" : "session_closed",
      );
    }
    if (this.now >= s.openTime + s.absoluteTimeoutMs) {
      this.closeAs(s, "expired_absolute");
      return fail("unauthenticated", "expired_absolute");
    }
    if (this.now >= s.requestTime + s.idleTimeoutMs) {
      this.closeAs(s, "expired_idle");
      return fail("unauthenticated", "expired_idle");
    }
    if (which === "retired" || (which === "previous" && this.now >= s.previous!.validUntil)) {
      this.closeAs(s, "token_reuse");
      return fail("unauthenticated", "token_reused");
    }
    const seenAddress = address === "" ? s.lastAddress : address;
    const seenClient = client === "" ? s.lastClient : client;
    const renew =
      which === "current" && this.policy.renewalIntervalMs > 0 && this.now - s.tokenTime >= this.policy.renewalIntervalMs;
    if (renew) {
      if (newToken !== undefined) {
        if (s.previous !== null) s.retired.push(s.previous.token);
        s.previous = { token: s.token, validUntil: this.now + this.policy.renewalGraceMs };
        s.token = newToken;
        s.tokenTime = this.now;
      }
      this.activity(s);
      s.lastAddress = seenAddress;
      s.lastClient = seenClient;
    } else if (
      this.now - s.requestTime >= this.policy.touchIntervalMs ||
      seenAddress !== s.lastAddress ||
      seenClient !== s.lastClient
    ) {
      this.activity(s);
      s.lastAddress = seenAddress;
      s.lastClient = seenClient;
    }
    return ok({ session: viewOf(s, includeData), renewed: renew });
  }

  get(id: string): Outcome<Session> {
    const s = this.sessions.get(id);
    return s === undefined ? fail("not_found") : ok(fullOf(s));
  }

  write(id: string, field: "data" | "user", value: JsonValue, expectedVersion: number | undefined): Outcome<Session> {
    const s = this.sessions.get(id);
    if (s === undefined) return fail("not_found");
    if (!s.active) return fail("failed_precondition", "session_closed");
    if (!this.live(s)) {
      const reason = this.expiredReason(s);
      this.closeAs(s, reason);
      return fail("failed_precondition", reason);
    }
    if (expectedVersion !== undefined && expectedVersion !== s.version) return fail("aborted", "version_mismatch");
    s[field] = normalize(value);
    s.version += 1;
    this.activity(s);
    return ok(fullOf(s));
  }

  close(id: string): Outcome<Session> {
    const s = this.sessions.get(id);
    if (s === undefined) return fail("not_found");
    if (s.active) this.closeOrExpire(s, "logout");
    return ok(fullOf(s));
  }

  closeUser(userId: string, exceptId: string): Outcome<number> {
    let n = 0;
    for (const s of this.sessions.values()) {
      if (s.userId === userId && s.active && s.id !== exceptId) {
        this.closeOrExpire(s, "revoked");
        n++;
      }
    }
    return ok(n);
  }

  closeSessions(filter: SessionFilter, dryRun: boolean): Outcome<number> {
    if (Object.keys(filter).length === 0) return fail("invalid_argument");
    const matching = [...this.sessions.values()].filter((s) => s.active && this.matches(s, filter));
    if (!dryRun) for (const s of matching) this.closeOrExpire(s, "revoked");
    return ok(matching.length);
  }

  private matches(s: ModelSession, f: SessionFilter): boolean {
    return (
      (f.userId === undefined || s.userId === f.userId) &&
      (f.active === undefined || s.active === f.active) &&
      (f.client === undefined || s.client === f.client) &&
      (f.fromTime === undefined || s.requestTime >= f.fromTime) &&
      (f.toTime === undefined || s.requestTime < f.toTime)
    );
  }

  list(
    filter: SessionFilter,
    skip: number,
    take: number,
    includeTotal: boolean,
    includeData: boolean,
  ): Outcome<{ items: (SessionInfo | Session)[]; total?: number }> {
    if (filter.fromTime !== undefined && filter.toTime !== undefined && filter.fromTime > filter.toTime) {
      return fail("invalid_argument");
    }
    const all = this.inOrder([...this.sessions.values()].filter((s) => this.matches(s, filter)));
    const size = Math.min(take === 0 ? DEFAULT_PAGE : take, MAX_PAGE);
    const items = all.slice(skip, skip + size).map((s) => viewOf(s, includeData));
    return ok(includeTotal ? { items, total: all.length } : { items });
  }

  sweep(): Outcome<number> {
    let n = 0;
    for (const s of this.sessions.values()) {
      if (s.active && !this.live(s)) {
        this.closeAs(s, this.expiredReason(s));
        n++;
      }
    }
    return ok(n);
  }

  delete(id: string): Outcome<Session> {
    const s = this.sessions.get(id);
    if (s === undefined) return fail("not_found");
    this.sessions.delete(id);
    return ok(fullOf(s));
  }

  /** When the deadline of this kind next falls for the session, if it has one. */
  deadline(id: string, which: Deadline): number | undefined {
    const s = this.sessions.get(id);
    if (s === undefined || !s.active) return undefined;
    switch (which) {
      case "idle":
        return s.requestTime + s.idleTimeoutMs;
      case "absolute":
        return s.openTime + s.absoluteTimeoutMs;
      case "renewal":
        return s.tokenTime + this.policy.renewalIntervalMs;
      case "grace":
        return s.previous?.validUntil;
      case "touch":
        return s.requestTime + this.policy.touchIntervalMs;
    }
  }
}

// ---------------------------------------------------------------------------
// Running a sequence against both.

/** The controller's answer, with a SessionError as its kind and reason; anything else is a failure. */
async function attempt<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return ok(await call());
  } catch (error) {
    if (!isSessionError(error)) throw error;
    return fail(error.kind, error.reason);
  }
}

const shape = (outcome: Outcome<unknown>) =>
  outcome.ok ? { ok: true } : { ok: false, kind: outcome.kind, reason: outcome.reason };

function agree(label: string, actual: Outcome<unknown>, expected: Outcome<unknown>): void {
  expect(shape(actual), `${label}: outcome`).toEqual(shape(expected));
}

/** A fixed, well-formed session id no session has (ids are 128 random bits). */
const UNKNOWN_ID = "0123456789abcdef0123456789abcdef";

/** What a call of a burst is checked with besides the model. */
interface BurstContext {
  /** The model before the burst, and after each call checked so far in the order tried. */
  readonly snapshots: readonly Model[];
  /** Whether a validation ran in the burst. */
  readonly withValidation: boolean;
}

type Check<T> = (model: Model, actual: Outcome<T>, label: string, burst: BurstContext | undefined) => void;

/** One call: started on the controller, then applied to a model and checked against it. */
interface Step {
  readonly call: () => Promise<Outcome<unknown>>;
  /** Applies the operation to `model`, given the controller's answer; throws if they disagree. */
  readonly check: Check<unknown>;
}

function step<T>(call: () => Promise<T>, check: Check<T>): Step {
  return { call: () => attempt(call), check: check as Check<unknown> };
}

/**
 * What is compared of a session another call of a burst answered, when a
 * validation ran in the burst. The activity a validation records (last address and client) is not a change
 * of the session (no version, no event) and may be written after the other
 * calls of the burst have answered, so their answers need not show it.
 */
function comparable<S extends SessionInfo>(session: S, burst: BurstContext | undefined): S | Omit<S, "lastAddress" | "lastClient"> {
  if (burst === undefined || !burst.withValidation) return session;
  const { lastAddress: _address, lastClient: _client, ...rest } = session;
  return rest;
}

/** Every order of 0..n-1, the identity first. */
function orders(n: number): number[][] {
  if (n === 0) return [[]];
  return orders(n - 1).flatMap((rest) =>
    Array.from({ length: n }, (_, at) => [...rest.slice(0, n - 1 - at), n - 1, ...rest.slice(n - 1 - at)]),
  );
}

async function runSequence(choice: PolicyChoice, ops: readonly Op[]): Promise<void> {
  const policy = policyOf(choice);
  const store = createSqliteSessionStore({ path: ":memory:" });
  const clock = new FakeClock(START);
  const controller = createSessionController({ store, clock, policy, hasher: createTokenHasher() });
  let model = new Model(START, policy);

  /** The id an operation is about: one ever opened (maybe deleted since), or one never seen. */
  const idOf = (target: Target): string => {
    if (target.unknown || model.ids.length === 0) return UNKNOWN_ID;
    // Counted back from the newest, which is most often still live.
    return model.ids[model.ids.length - 1 - (target.ref % model.ids.length)]!;
  };
  /** The target session if `has` holds for it, else the newest session for which it does. */
  const sessionWith = (target: Target, has: (s: ModelSession) => boolean): ModelSession | undefined => {
    const first = model.sessions.get(idOf(target));
    if (first !== undefined && has(first)) return first;
    for (let i = model.ids.length - 1; i >= 0; i--) {
      const s = model.sessions.get(model.ids[i]!);
      if (s !== undefined && has(s)) return s;
    }
    return undefined;
  };
  const moveClock = (ms: number) => {
    clock.advance(ms);
    model.now += ms;
  };
  /** Moves the clock to the session's deadline (± 1 ms), if that is still ahead. */
  const moveTo = (id: string, at: At) => {
    if (at === null) return;
    const due = model.deadline(id, at.deadline);
    if (due !== undefined && due + at.delta > model.now) moveClock(due + at.delta - model.now);
  };

  /**
   * Resolves an operation's references against the model as it is now (and
   * moves the clock if it says so); undefined for clock moves, which are done.
   */
  const prepare = (op: Op): Step | undefined => {
    switch (op.kind) {
      case "open": {
        const input: OpenSessionInput = {
          userId: USERS[op.user]!,
          userName: op.userName,
          address: ADDRESSES[op.address]!,
          client: CLIENTS[op.client]!,
          user: op.payload.user,
          data: op.payload.data,
          ...(op.idleTimeoutMs !== null && { idleTimeoutMs: op.idleTimeoutMs }),
          ...(op.absoluteTimeoutMs !== null && { absoluteTimeoutMs: op.absoluteTimeoutMs }),
        };
        return step(
          () => controller.openSession(input),
          (m, actual, label) => {
            const expected = m.open(input, actual.ok ? { id: actual.value.session.id, token: actual.value.token } : undefined);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) {
              expect(actual.value.session, `${label}: session`).toEqual(expected.value.session);
              expect([...actual.value.evictedIds], `${label}: evicted ids`).toEqual(expected.value.evictedIds);
              expect(actual.value.token, `${label}: token`).toMatch(new RegExp(`^${actual.value.session.id}\\.`));
            }
          },
        );
      }
      case "validate": {
        const id = idOf(op.target);
        const s = model.sessions.get(id);
        const forged = `${id}.${op.secret}`;
        // A token the target had, or, if it has none of that kind, the newest session's that has.
        const withPrevious = sessionWith(op.target, (t) => t.previous !== null);
        const withRetired = sessionWith(op.target, (t) => t.retired.length > 0);
        let token: string;
        switch (op.token) {
          case "current":
            token = s?.token ?? forged;
            break;
          case "previous":
            token = withPrevious?.previous?.token ?? s?.token ?? forged;
            break;
          case "retired":
            token =
              withRetired?.retired[op.retiredIndex % withRetired.retired.length] ??
              withPrevious?.previous?.token ??
              s?.token ??
              forged;
            break;
          case "forged":
            token = forged;
            break;
          case "malformed":
            token = forged.slice(0, -1);
            break;
          case "unknown_session":
            token = `${UNKNOWN_ID}.${op.secret}`;
            break;
          case "empty":
            token = "";
            break;
        }
        const owner = model.tokenOwner(token);
        if (owner !== undefined) moveTo(owner.s.id, op.at);
        const input = { token, address: ADDRESSES[op.address]!, client: SEEN_CLIENTS[op.client]!, includeData: op.includeData };
        return step(
          () => controller.validateSession(input),
          (m, actual, label, burst) => {
            const newToken = actual.ok ? actual.value.newToken : undefined;
            const expected = m.validate(token, input.address, input.client, input.includeData, newToken);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) {
              let session = expected.value.session;
              if (burst !== undefined && !isDeepStrictEqual(actual.value.session, session)) {
                // A validation answers with the session as it last read it, with its
                // own activity; the activity is written later, so calls of the burst
                // may come between its read and its write (README: it reads again
                // only when the session was closed or renewed meanwhile).
                for (const earlier of burst.snapshots) {
                  const then = earlier.clone().validate(token, input.address, input.client, input.includeData, newToken);
                  if (then.ok && isDeepStrictEqual(then.value.session, actual.value.session)) session = then.value.session;
                }
              }
              expect(actual.value.session, `${label}: session`).toEqual(session);
              expect("data" in actual.value.session, `${label}: data included`).toBe(input.includeData);
              if (expected.value.renewed) {
                expect(newToken, `${label}: renewed token`).toMatch(new RegExp(`^${expected.value.session.id}\\.`));
                expect(newToken, `${label}: renewed token`).not.toBe(token);
              } else {
                expect(newToken, `${label}: no renewal`).toBeUndefined();
              }
            }
          },
        );
      }
      case "get": {
        const id = idOf(op.target);
        return step(
          () => controller.getSessionById(id),
          (m, actual, label, burst) => {
            const expected = m.get(id);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) {
              expect(comparable(actual.value, burst), `${label}: session`).toEqual(comparable(expected.value, burst));
            }
          },
        );
      }
      case "store_data":
      case "update_user": {
        const id = idOf(op.target);
        moveTo(id, op.at);
        const version = model.sessions.get(id)?.version ?? 1;
        const expectedVersion = { none: undefined, current: version, stale: version - 1, ahead: version + 1 }[op.version];
        const field = op.kind === "store_data" ? "data" : "user";
        return step(
          () =>
            field === "data"
              ? controller.storeSessionData(id, op.value, expectedVersion)
              : controller.updateSessionUser(id, op.value, expectedVersion),
          (m, actual, label, burst) => {
            const expected = m.write(id, field, op.value, expectedVersion);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) {
              expect(comparable(actual.value, burst), `${label}: session`).toEqual(comparable(expected.value, burst));
            }
          },
        );
      }
      case "close":
      case "delete": {
        const id = idOf(op.target);
        const close = op.kind === "close";
        return step(
          () => (close ? controller.closeSession(id) : controller.deleteSessionById(id)),
          (m, actual, label, burst) => {
            const expected = close ? m.close(id) : m.delete(id);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) {
              expect(comparable(actual.value, burst), `${label}: session`).toEqual(comparable(expected.value, burst));
            }
          },
        );
      }
      case "close_user": {
        const userId = USERS[op.user]!;
        const except = op.except === null ? "" : idOf(op.except);
        return step(
          () => controller.closeUserSessions(userId, except),
          (m, actual, label) => {
            const expected = m.closeUser(userId, except);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) expect(actual.value, `${label}: closed`).toBe(expected.value);
          },
        );
      }
      case "close_sessions": {
        const filter: SessionFilter = {
          ...(op.user !== null && { userId: USERS[op.user]! }),
          ...(op.client !== null && { client: CLIENTS[op.client]! }),
          ...(op.activeTrue && { active: true }),
        };
        return step(
          () => controller.closeSessions(filter, op.dryRun),
          (m, actual, label) => {
            const expected = m.closeSessions(filter, op.dryRun);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) expect(actual.value, `${label}: closed`).toBe(expected.value);
          },
        );
      }
      case "list": {
        const filter: SessionFilter = {
          ...(op.user !== null && { userId: USERS[op.user]! }),
          ...(op.active !== null && { active: op.active }),
          ...(op.client !== null && { client: CLIENTS[op.client]! }),
          ...(op.fromAgo !== null && { fromTime: model.now - op.fromAgo }),
          ...(op.toAgo !== null && { toTime: model.now - op.toAgo }),
        };
        const input = { filter, skip: op.skip, take: op.take, includeTotal: op.total, includeData: op.includeData };
        return step(
          () => controller.getSessions(input),
          (m, actual, label, burst) => {
            const expected = m.list(filter, op.skip, op.take, op.total, op.includeData);
            agree(label, actual, expected);
            if (actual.ok && expected.ok) {
              expect({ items: actual.value.items.map((i) => comparable(i, burst)), total: actual.value.total }, `${label}: page`).toEqual({
                items: expected.value.items.map((i) => comparable(i, burst)),
                total: expected.value.total,
              });
            }
          },
        );
      }
      case "sweep":
        return step(
          () => controller.closeExpiredSessions(),
          (m, actual, label) => {
            const expected = m.sweep();
            agree(label, actual, expected);
            if (actual.ok && expected.ok) expect(actual.value, `${label}: closed`).toBe(expected.value);
          },
        );
      case "burst":
        throw new Error("bursts do not nest");
      case "advance":
        moveClock(op.ms);
        return undefined;
      case "advance_to": {
        const id =
          op.deadline === "grace"
            ? (sessionWith(op.target, (t) => t.active && t.previous !== null)?.id ?? idOf(op.target))
            : idOf(op.target);
        moveTo(id, op);
        return undefined;
      }
    }
  };

  /** The whole table, as the controller lists it. */
  const table = async () => {
    const page = await controller.getSessions({ filter: {}, skip: 0, take: MAX_PAGE, includeTotal: true, includeData: true });
    return { items: [...page.items], total: page.total };
  };
  const tableOf = (m: Model) => {
    const items = m.listing();
    return { items, total: items.length };
  };

  try {
    for (const [index, op] of ops.entries()) {
      const label = `op #${index} ${JSON.stringify(op)}`;
      if (op.kind !== "burst") {
        const s = prepare(op);
        if (s === undefined) continue; // a clock move
        s.check(model, await s.call(), label, undefined);
        // The whole table, as the controller lists it, is the model's.
        expect(await table(), `${label}: the whole listing afterwards`).toEqual(tableOf(model));
        continue;
      }

      // Started together: their writes share group commits and interleave
      // with each other's reads. Some serial order of them must explain
      // every answer and the state they leave (linearizability); the model
      // goes on from that order.
      const steps = op.ops.map((sub) => prepare(sub)!); // may move the clock
      const actuals = await Promise.all(steps.map((s) => s.call()));
      const after = await table();
      const withValidation = op.ops.some((sub) => sub.kind === "validate");
      let firstError: unknown;
      let explained: Model | undefined;
      for (const order of orders(steps.length)) {
        const candidate = model.clone();
        const snapshots = [candidate.clone()];
        const inOrder = `${label}, in the order ${order.join(", ")}`;
        try {
          for (const i of order) {
            steps[i]!.check(candidate, actuals[i]!, `${inOrder}: call ${i}`, { snapshots, withValidation });
            snapshots.push(candidate.clone());
          }
          expect(after, `${inOrder}: the whole listing afterwards`).toEqual(tableOf(candidate));
        } catch (error) {
          firstError ??= error;
          continue;
        }
        explained = candidate;
        break;
      }
      if (explained === undefined) {
        const answers = JSON.stringify(actuals.map((a) => shape(a)));
        throw new Error(
          `${label}: no serial order of the burst explains its answers ${answers} and the state it left; ` +
            `in the order called: ${String(firstError)}`,
          { cause: firstError },
        );
      }
      model = explained;
    }
  } finally {
    await store.dispose();
  }
}

/** The property: any policy, a few opens, then any operations. */
const property = (opArb: fc.Arbitrary<Op>) =>
  fc.asyncProperty(
    policyArb,
    fc.array(openArb, { minLength: 1, maxLength: 5 }),
    fc.array(opArb, { maxLength: MAX_OPS, size: "max" }),
    (choice, opens, ops) => runSequence(choice, [...opens, ...ops]),
  );

// A run that hangs (a write never committed) fails after `timeout` and is shrunk like any other.
const TIMEOUT_MS = 5000;

describe("session controller against a model", () => {
  it("agrees with the model on any sequence of calls and clock moves", async () => {
    await fc.assert(property(sequentialOpArb), { numRuns: SEQUENTIAL_RUNS, timeout: TIMEOUT_MS });
  }, 120_000);

  it("answers concurrent calls as some serial order of them would, and ends in that order's state", async () => {
    await fc.assert(property(concurrentOpArb), { numRuns: CONCURRENT_RUNS, timeout: TIMEOUT_MS });
  }, 120_000);
});
