import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isSessionError } from "../../src/session/errors.js";
import { BATCH_SIZE, createSessionController, DEFAULT_PAGE_SIZE } from "../../src/session/session-controller.js";
import type { JsonValue } from "../../src/session/session.js";
import { DEFAULT_SESSION_POLICY, type SessionPolicy } from "../../src/session/session-policy.js";
import type { SessionStore } from "../../src/session/session-store.js";
import { createTokenHasher } from "../../src/session/session-token.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { join } from "node:path";
import { FakeClock } from "../support/fake-clock.js";
import { tempDir } from "../support/test-server.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

async function expectSessionError(promise: Promise<unknown>, kind: string, message: RegExp, reason?: string) {
  const error = await promise.then(() => expect.unreachable("no error"), (e: unknown) => e);
  expect(isSessionError(error), String(error)).toBe(true);
  expect(error).toMatchObject({ kind, ...(reason !== undefined && { reason }) });
  expect((error as Error).message).toMatch(message);
}

/** Counts calls to each store method, to check what the controller writes. */
function counting(store: SessionStore) {
  const calls: Record<string, number> = {};
  const proxy = new Proxy(store, {
    get(target, key: string) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls[key] = (calls[key] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

const openInput = { userId: "u1", userName: "", address: "10.1.2.3", client: "web", user: null, data: null };

describe("session controller", () => {
  let backing: SessionStore;
  let calls: Record<string, number>;
  let clock: FakeClock;
  let controller: ReturnType<typeof createSessionController>;
  const setup = (policy: Partial<SessionPolicy> = {}) => {
    controller = createSessionController({
      store: backing,
      clock,
      policy: { ...DEFAULT_SESSION_POLICY, ...policy },
      hasher: createTokenHasher(),
    });
  };

  beforeEach(() => {
    backing = createSqliteSessionStore({ path: ":memory:" });
    const spy = counting(backing);
    calls = spy.calls;
    backing = spy.store;
    clock = new FakeClock();
    setup();
  });
  afterEach(() => backing.dispose());

  const open = (input: Partial<typeof openInput> & { idleTimeoutMs?: number; absoluteTimeoutMs?: number } = {}) =>
    controller.openSession({ ...openInput, ...input });
  const validate = (token: string, extra: { address?: string; client?: string; includeData?: boolean } = {}) =>
    controller.validateSession({ token, address: "", client: "", includeData: false, ...extra });

  describe("OpenSession", () => {
    it("issues a 256-bit token for the session, and the session's defaults", async () => {
      const { session, token, evictedIds } = await open();
      expect(token).toMatch(new RegExp(`^${session.id}\\.[A-Za-z0-9_-]{43}$`));
      expect(Buffer.from(token.split(".")[1]!, "base64url")).toHaveLength(32);
      expect(evictedIds).toEqual([]);
      expect(session).toMatchObject({ version: 1, idleTimeoutMs: 30 * MINUTE, absoluteTimeoutMs: 24 * HOUR });
    });

    it("accepts per-session timeouts up to the server maxima, and no further", async () => {
      const { session } = await open({ idleTimeoutMs: 2 * HOUR, absoluteTimeoutMs: 30 * 24 * HOUR });
      expect(session).toMatchObject({ idleTimeoutMs: 2 * HOUR, absoluteTimeoutMs: 30 * 24 * HOUR });
      await expectSessionError(open({ idleTimeoutMs: 24 * HOUR + 1 }), "invalid_argument", /^idle_timeout: must be at most/);
      await expectSessionError(open({ absoluteTimeoutMs: 0 }), "invalid_argument", /^absolute_timeout: must be a positive/);
      await expectSessionError(open({ idleTimeoutMs: MINUTE }), "invalid_argument", /^idle_timeout: must be longer than/);
    });
  });

  describe("ValidateSession timeouts", () => {
    it("expires an idle session exactly at request_time + idle timeout, and closes it", async () => {
      const { session, token } = await open();
      clock.advance(30 * MINUTE - 1);
      expect((await validate(token)).session.id).toBe(session.id); // records activity
      clock.advance(30 * MINUTE - 1);
      await validate(token); // one tick before the new deadline
      clock.advance(30 * MINUTE);
      await expectSessionError(validate(token), "unauthenticated", /idle/, "expired_idle");
      expect(await controller.getSessionById(session.id)).toMatchObject({
        active: false,
        closeReason: "expired_idle",
        closeTime: clock.now(),
      });
      clock.advance(1);
      await expectSessionError(validate(token), "unauthenticated", /idle/, "expired_idle");
    });

    it("gives the expiry as the reason also once the sweeper has closed the session", async () => {
      const { token } = await open();
      clock.advance(30 * MINUTE);
      expect(await controller.closeExpiredSessions()).toBe(1);
      await expectSessionError(validate(token), "unauthenticated", /idle/, "expired_idle");
    });

    it("refuses writes to an expired session and closes it as expired", async () => {
      const { session } = await open();
      clock.advance(30 * MINUTE);
      await expectSessionError(controller.storeSessionData(session.id, 1), "failed_precondition", /expired after being idle/, "expired_idle");
      expect(await controller.getSessionById(session.id)).toMatchObject({ active: false, closeReason: "expired_idle", data: null });
      const old = await open({ absoluteTimeoutMs: 2 * HOUR, idleTimeoutMs: 3 * HOUR });
      clock.advance(2 * HOUR);
      await expectSessionError(controller.updateSessionUser(old.session.id, 1), "failed_precondition", /maximum lifetime/, "expired_absolute");
    });

    it("records a logout of an expired session as its expiry", async () => {
      const { session } = await open();
      clock.advance(31 * MINUTE);
      expect((await controller.closeSession(session.id)).closeReason).toBe("expired_idle");
      const other = await open();
      clock.advance(31 * MINUTE);
      expect(await controller.closeUserSessions("u1", "")).toBe(1);
      expect((await controller.getSessionById(other.session.id)).closeReason).toBe("expired_idle");
    });

    it("expires at the absolute lifetime however active the session is", async () => {
      const { session, token } = await open({ absoluteTimeoutMs: 2 * HOUR });
      for (let t = 0; t < 2 * HOUR - 20 * MINUTE; t += 20 * MINUTE) {
        clock.advance(20 * MINUTE);
        await validate(token);
      }
      clock.set(session.openTime + 2 * HOUR - 1);
      await validate(token);
      clock.advance(1);
      await expectSessionError(validate(token), "unauthenticated", /maximum lifetime/, "expired_absolute");
      expect((await controller.getSessionById(session.id)).closeReason).toBe("expired_absolute");
    });

    it("reports the absolute expiry first when both deadlines have passed", async () => {
      const { token } = await open({ idleTimeoutMs: HOUR, absoluteTimeoutMs: HOUR });
      clock.advance(2 * HOUR);
      await expectSessionError(validate(token), "unauthenticated", /lifetime/, "expired_absolute");
    });

    it("refuses a malformed or unknown token without saying more", async () => {
      const { token } = await open();
      for (const bad of ["x", `${token}x`, token.replace(/.$/, (c) => (c === "A" ? "B" : "A")), `${"0".repeat(32)}.${token.split(".")[1]}`]) {
        await expectSessionError(validate(bad), "unauthenticated", /^the session token is not valid$/, "token_unknown");
      }
      await expectSessionError(validate(""), "invalid_argument", /^token: is required/);
    });
  });

  describe("ValidateSession activity", () => {
    it("records activity at most once per touch interval", async () => {
      const { session, token } = await open();
      const touches = () => calls.touch ?? 0;
      for (let i = 0; i < 100; i++) {
        clock.advance(500);
        await validate(token);
      }
      expect(touches()).toBe(0);
      expect((await controller.getSessionById(session.id)).requestTime).toBe(session.requestTime);
      clock.advance(10 * SECOND); // 60 s since open
      const { session: seen } = await validate(token, { address: "10.9.9.9", client: "cli" });
      expect(touches()).toBe(1);
      expect(seen).toMatchObject({ requestTime: clock.now(), lastAddress: "10.9.9.9", lastClient: "cli", version: 1 });
      expect(await controller.getSessionById(session.id)).toMatchObject({ requestTime: clock.now(), lastClient: "cli" });
      for (let i = 0; i < 59; i++) {
        clock.advance(SECOND);
        await validate(token);
      }
      expect(touches()).toBe(1);
    });

    it("records a new address or client at once, even within the touch interval", async () => {
      const { session, token } = await open();
      await validate(token, { address: "10.0.0.1", client: "web" });
      expect(calls.touch).toBe(1);
      clock.advance(SECOND);
      await validate(token, { address: "10.0.0.1", client: "web" });
      await validate(token); // nothing known about the caller: nothing new seen
      expect(calls.touch).toBe(1);
      clock.advance(SECOND);
      await validate(token, { address: "192.0.2.7", client: "web" });
      expect(calls.touch).toBe(2);
      expect(await controller.getSessionById(session.id)).toMatchObject({ lastAddress: "192.0.2.7", lastClient: "web" });
    });

    it("expires no earlier than the idle timeout minus the touch interval after the last use", async () => {
      const { token } = await open();
      clock.advance(59 * SECOND);
      await validate(token); // last use, not recorded
      clock.advance(30 * MINUTE - 59 * SECOND - 1);
      expect((await validate(token)).session).toBeDefined(); // idle timeout − touch interval + 1 ms after the last use
    });

    it("expires no later than the idle timeout after the last use, despite the touch interval", async () => {
      const { token } = await open();
      clock.advance(59 * SECOND);
      await validate(token); // last use; not recorded (inside the touch interval)
      clock.advance(30 * MINUTE - 59 * SECOND);
      await expectSessionError(validate(token), "unauthenticated", /idle/, "expired_idle");
    });

    it("is not activity when only read by id", async () => {
      const { session } = await open();
      clock.advance(10 * MINUTE);
      expect((await controller.getSessionById(session.id)).requestTime).toBe(session.requestTime);
    });
  });

  describe("ValidateSession renewal", () => {
    beforeEach(() => setup({ renewalIntervalMs: HOUR, renewalGraceMs: 30 * SECOND, idleTimeoutMs: 2 * HOUR }));

    it("renews a token once it is as old as the renewal interval, keeping the absolute lifetime", async () => {
      const { session, token } = await open();
      clock.advance(HOUR - 1);
      expect((await validate(token)).newToken).toBeUndefined();
      clock.advance(1);
      const renewed = await validate(token);
      expect(renewed.newToken).toMatch(new RegExp(`^${session.id}\\.`));
      expect(renewed.newToken).not.toBe(token);
      expect(renewed.session).toMatchObject({ version: 1, requestTime: clock.now(), openTime: session.openTime });
      expect((await validate(renewed.newToken!)).newToken).toBeUndefined();
      expect((await controller.getSessionById(session.id)).absoluteTimeoutMs).toBe(24 * HOUR);
    });

    it("accepts the old token during the grace period, then closes the session on its reuse", async () => {
      const { session, token } = await open();
      clock.advance(HOUR);
      const { newToken } = await validate(token);
      clock.advance(30 * SECOND - 1);
      expect((await validate(token)).newToken).toBeUndefined(); // in flight: still fine, not renewed again
      clock.advance(1);
      await expectSessionError(validate(token), "unauthenticated", /reused/, "token_reused");
      expect(await controller.getSessionById(session.id)).toMatchObject({ active: false, closeReason: "token_reuse" });
      await expectSessionError(validate(newToken!), "unauthenticated", /reused/, "token_reused");
    });

    it("catches the reuse of a token retired two renewals ago", async () => {
      const { session, token: first } = await open();
      clock.advance(HOUR);
      const { newToken: second } = await validate(first);
      clock.advance(HOUR);
      const { newToken: third } = await validate(second!);
      expect(third).toBeDefined();
      clock.advance(SECOND);
      await expectSessionError(validate(first), "unauthenticated", /reused/, "token_reused");
      expect((await controller.getSessionById(session.id)).closeReason).toBe("token_reuse");
    });

    it.each([
      ["a touch", 2 * MINUTE],
      ["a renewal", HOUR],
    ])("does not let a validation due for %s succeed on a session closed while it ran", async (_name, wait) => {
      const { session, token } = await open();
      clock.advance(wait);
      // Another process logs the session out right after this validation has read it.
      const racing: SessionStore = {
        ...backing,
        getForValidation: async (id, includeData) => {
          const found = await backing.getForValidation(id, includeData);
          await backing.close(id, clock.now(), "logout");
          return found;
        },
      };
      controller = createSessionController({ store: racing, clock, policy: { ...DEFAULT_SESSION_POLICY, renewalIntervalMs: HOUR, idleTimeoutMs: 2 * HOUR }, hasher: createTokenHasher() });
      await expectSessionError(validate(token), "unauthenticated", /closed/, "session_closed");
      expect((await backing.get(session.id))?.closeReason).toBe("logout");
    });

    it("lets only one of two concurrent validations rotate the token", async () => {
      const { session, token } = await open();
      clock.advance(HOUR);
      const results = await Promise.all([validate(token), validate(token), validate(token)]);
      const renewed = results.filter((r) => r.newToken !== undefined);
      expect(renewed).toHaveLength(1);
      expect(calls.rotateToken).toBe(3);
      expect((await controller.getSessionById(session.id)).version).toBe(1);
      expect((await validate(renewed[0]!.newToken!)).session.id).toBe(session.id);
    });

    it("lets only one of two servers sharing a database file rotate the token", async () => {
      const dir = tempDir();
      const path = join(dir.path, "shared.db");
      const stores = [createSqliteSessionStore({ path }), createSqliteSessionStore({ path })];
      try {
        const policy = { ...DEFAULT_SESSION_POLICY, renewalIntervalMs: HOUR, idleTimeoutMs: 2 * HOUR };
        const [a, b] = stores.map((store) => createSessionController({ store, clock, policy, hasher: createTokenHasher() }));
        const { session, token } = await a!.openSession(openInput);
        clock.advance(HOUR);
        const input = { token, address: "", client: "", includeData: false };
        const results = await Promise.all([a!.validateSession(input), b!.validateSession(input), a!.validateSession(input), b!.validateSession(input)]);
        const renewed = results.filter((r) => r.newToken !== undefined);
        expect(renewed).toHaveLength(1);
        expect((await b!.validateSession({ ...input, token: renewed[0]!.newToken! })).session.id).toBe(session.id);
        clock.advance(31 * SECOND);
        await expectSessionError(a!.validateSession(input), "unauthenticated", /reused/, "token_reused");
      } finally {
        await Promise.all(stores.map((store) => store.dispose()));
        dir.remove();
      }
    });

    it("never renews when the renewal interval is 0", async () => {
      setup({ renewalIntervalMs: 0, idleTimeoutMs: 2 * HOUR });
      const { token } = await open();
      for (let i = 0; i < 10; i++) {
        clock.advance(HOUR);
        expect((await validate(token)).newToken).toBeUndefined();
      }
    });
  });

  describe("ValidateSession order of checks", () => {
    beforeEach(() =>
      setup({ renewalIntervalMs: HOUR, renewalGraceMs: 30 * SECOND, idleTimeoutMs: 2 * HOUR, binding: { kind: "client" } }),
    );

    it("reports a closed session as closed, even past its deadlines", async () => {
      const { session, token } = await open();
      await controller.closeSession(session.id);
      clock.advance(48 * HOUR);
      await expectSessionError(validate(token, { client: "web" }), "unauthenticated", /closed/, "session_closed");
    });

    it("reports expiry before the reuse of a renewed-away token", async () => {
      const { token } = await open();
      clock.advance(HOUR);
      await validate(token, { client: "web" }); // renews
      clock.advance(3 * HOUR); // idle-expired, and long past the grace
      await expectSessionError(validate(token, { client: "web" }), "unauthenticated", /idle/, "expired_idle");
    });

    it("reports the reuse of a renewed-away token before a binding mismatch", async () => {
      const { session, token } = await open();
      clock.advance(HOUR);
      await validate(token, { client: "web" });
      clock.advance(31 * SECOND);
      await expectSessionError(validate(token, { client: "elsewhere" }), "unauthenticated", /reused/, "token_reused");
      expect((await controller.getSessionById(session.id)).closeReason).toBe("token_reuse");
    });

    it("does not renew a token presented from the wrong client", async () => {
      const { session, token } = await open();
      clock.advance(HOUR);
      await expectSessionError(validate(token, { client: "elsewhere" }), "unauthenticated", /client/, "client_mismatch");
      expect((await controller.getSessionById(session.id)).version).toBe(1);
      expect(calls.rotateToken ?? 0).toBe(0);
    });
  });

  describe("ValidateSession binding", () => {
    it("rejects a token from another client under the client policy, and records nothing", async () => {
      setup({ binding: { kind: "client" } });
      const { session, token } = await open({ client: "web" });
      clock.advance(2 * MINUTE);
      await expectSessionError(validate(token, { client: "evil" }), "unauthenticated", /another client/, "client_mismatch");
      expect((await controller.getSessionById(session.id)).requestTime).toBe(session.requestTime);
      expect((await validate(token, { client: "web" })).session.id).toBe(session.id);
      await expectSessionError(validate(token), "invalid_argument", /^client: is required/);
      await expectSessionError(open({ client: "" }), "invalid_argument", /^client: is required/);
    });

    it("rejects a token from another network under the address policy", async () => {
      setup({ binding: { kind: "address", ipv4PrefixBits: 24, ipv6PrefixBits: 64 } });
      const { token } = await open({ address: "10.1.2.3" });
      expect((await validate(token, { address: "10.1.2.200" })).session).toBeDefined();
      await expectSessionError(validate(token, { address: "10.1.3.3" }), "unauthenticated", /another network/, "address_mismatch");
      await expectSessionError(validate(token), "invalid_argument", /^address: is required/);
    });
  });

  describe("session limits", () => {
    it("denies the session over the per-user limit, even under concurrent opens", async () => {
      setup({ maxSessionsPerUser: 3 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => open()));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({ kind: "resource_exhausted", reason: "session_limit" });
      expect((refused.reason as Error).message).toBe('user "u1" already has 3 active sessions, the limit');
      expect(await backing.countActive({ userId: "u1" })).toBe(3);
    });

    it("evicts the oldest session and names it in the response", async () => {
      setup({ maxSessionsPerUser: 2, sessionLimitPolicy: "evict_oldest" });
      const first = await open();
      clock.advance(1);
      await open();
      clock.advance(1);
      const third = await open();
      expect(third.evictedIds).toEqual([first.session.id]);
      expect(await controller.getSessionById(first.session.id)).toMatchObject({ active: false, closeReason: "evicted" });
      await expectSessionError(validate(first.token), "unauthenticated", /closed/, "session_closed");
    });

    it("lets a client's own limit override the user-wide one for that client", async () => {
      setup({ maxSessionsPerUser: 3, maxSessionsPerClient: { ios: 1, web: 4, cli: 0 } });
      await open({ client: "ios" });
      await expectSessionError(open({ client: "ios" }), "resource_exhausted", /from client "ios"/, "session_limit");
      for (let i = 0; i < 4; i++) await open({ client: "web" }); // above the user-wide 3
      await expectSessionError(open({ client: "web" }), "resource_exhausted", /4 active sessions from client "web"/);
      for (let i = 0; i < 10; i++) await open({ client: "cli" }); // 0: no limit for this client
      // Other clients count all of the user's sessions against the user-wide limit.
      await expectSessionError(open({ client: "tv" }), "resource_exhausted", /already has 3 active sessions, the limit/);
    });
  });

  describe("versions", () => {
    it("lets exactly one of N concurrent writers with the same expected version win", async () => {
      const { session } = await open();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => controller.storeSessionData(session.id, { writer: i }, 1)),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toMatchObject({ kind: "aborted", reason: "version_mismatch" });
      expect((lost.reason as Error).message).toMatch(/is at version 2, not the expected 1; nothing changed/);
      const stored = await controller.getSessionById(session.id);
      expect(stored.version).toBe(2);
      expect(stored.data).toEqual((won[0] as PromiseFulfilledResult<{ data: JsonValue }>).value.data);
    });

    it("increases with data, user and close, but not with activity", async () => {
      const { session, token } = await open();
      expect((await controller.updateSessionUser(session.id, { a: 1 })).version).toBe(2);
      expect((await controller.storeSessionData(session.id, 1, 2)).version).toBe(3);
      clock.advance(2 * MINUTE);
      expect((await validate(token)).session.version).toBe(3);
      expect((await controller.closeSession(session.id)).version).toBe(4);
    });
  });

  describe("bulk closes and sweeping", () => {
    it("logs a user out everywhere but one session", async () => {
      const keep = await open();
      await open();
      await open();
      const other = await open({ userId: "u2" });
      expect(await controller.closeUserSessions("u1", keep.session.id)).toBe(2);
      expect(await backing.countActive({ userId: "u1" })).toBe(1);
      expect((await controller.getSessionById(keep.session.id)).active).toBe(true);
      expect((await controller.getSessionById(other.session.id)).active).toBe(true);
      expect(await controller.closeUserSessions("u1", "")).toBe(1);
      await expectSessionError(controller.closeUserSessions("", ""), "invalid_argument", /^user_id: is required/);
      await expectSessionError(controller.closeUserSessions("u1", "nope"), "invalid_argument", /^except_session_id:/);
    });

    it("closes or counts the sessions matching a filter, and refuses an empty filter", async () => {
      await open({ client: "web" });
      await open({ client: "web" });
      await open({ client: "ios" });
      expect(await controller.closeSessions({ client: "web" }, true)).toBe(2);
      expect(await backing.countActive({})).toBe(3);
      expect(await controller.closeSessions({ client: "web" }, false)).toBe(2);
      expect(await backing.countActive({})).toBe(1);
      await expectSessionError(controller.closeSessions({}, false), "invalid_argument", /^filter: must set at least one field/);
      await expectSessionError(controller.closeSessions({ active: false }, true), "invalid_argument", /^filter.active: must not be false/);
      await expectSessionError(
        controller.closeSessions({ userId: "u1", closeReason: "logout" }, false),
        "invalid_argument",
        /^filter.close_reason: must not be set/,
      );
      expect(await controller.closeSessions({ active: true }, false)).toBe(1);
    });

    it("closes every expired session in bounded batches", async () => {
      const expired = 2 * BATCH_SIZE + BATCH_SIZE / 2;
      for (let i = 0; i < expired; i++) await open({ userId: `u${i}` });
      clock.advance(30 * MINUTE);
      const fresh = await open();
      const before = calls.closeExpired ?? 0;
      expect(await controller.closeExpiredSessions()).toBe(expired);
      expect((calls.closeExpired ?? 0) - before).toBe(3);
      expect((await controller.getSessionById(fresh.session.id)).active).toBe(true);
    });

    it("stops a sweep after the batch in progress once bulk work is stopped (shutdown)", async () => {
      for (let i = 0; i < 3 * BATCH_SIZE; i++) await open({ userId: `u${i}` });
      clock.advance(30 * MINUTE);
      const sweep = controller.closeExpiredSessions();
      controller.stopBulkWork();
      expect(await sweep).toBe(BATCH_SIZE);
      expect(await controller.closeExpiredSessions()).toBe(BATCH_SIZE); // each later call: one batch
    });

    it("purges sessions closed longer ago than the retention", async () => {
      const { session } = await open();
      await controller.closeSession(session.id);
      clock.advance(30 * 24 * HOUR);
      expect(await controller.purgeClosedSessions(30 * 24 * HOUR)).toBe(0);
      clock.advance(1);
      expect(await controller.purgeClosedSessions(30 * 24 * HOUR)).toBe(1);
      await expectSessionError(controller.getSessionById(session.id), "not_found", /not found/);
    });
  });

  describe("input limits", () => {
    beforeEach(() => setup({ maxDataBytes: 100, maxUserBytes: 50, maxPageSize: 5000 }));

    it("defaults take to 100 when it is 0", async () => {
      for (let i = 0; i < DEFAULT_PAGE_SIZE + 1; i++) await open();
      const page = await controller.getSessions({ filter: {}, skip: 0, take: 0, includeTotal: false, includeData: false });
      expect(page.items).toHaveLength(DEFAULT_PAGE_SIZE);
    });

    it.each([
      ["filter.user_id", { userId: "x".repeat(1025) }],
      ["filter.address", { address: "x".repeat(1025) }],
      ["filter.client", { client: "x".repeat(1025) }],
    ])("refuses an over-long %s", async (field, filter) => {
      await expectSessionError(
        controller.getSessions({ filter, skip: 0, take: 0, includeTotal: false, includeData: false }),
        "invalid_argument",
        new RegExp(`^${field}: must be at most 1024 characters`),
      );
    });

    it.each([
      ["user_id", { userId: "x".repeat(1025) }],
      ["address", { address: "x".repeat(1025) }],
      ["client", { client: "x".repeat(1025) }],
    ])("refuses an over-long %s on open and stores nothing", async (field, input) => {
      await expectSessionError(open(input), "invalid_argument", new RegExp(`^${field}: `));
      expect(await backing.countActive({})).toBe(0);
    });

    it("accepts strings of exactly the maximum length", async () => {
      const long = "x".repeat(1024);
      const { session } = await open({ userId: long, userName: long, address: long, client: long });
      expect(session.userId).toBe(long);
    });

    it("accepts data and user up to their byte limits, measured as UTF-8 JSON", async () => {
      const data = "é".repeat(49); // 98 bytes plus 2 quotes
      const { session } = await controller.openSession({ ...openInput, data, user: "x".repeat(48) });
      expect(session.data).toBe(data);
    });

    it.each([
      ["data", { data: "é".repeat(50) }, /^data: is 102 bytes as JSON; the limit is 100 bytes/],
      ["user", { user: { name: "x".repeat(50) } }, /^user: is 61 bytes as JSON; the limit is 50 bytes/],
    ])("refuses %s over its byte limit, naming the limit", async (_field, input, message) => {
      await expectSessionError(controller.openSession({ ...openInput, ...input }), "invalid_argument", message);
    });

    it("refuses oversized data on update and leaves the session as it was", async () => {
      const { session } = await controller.openSession({ ...openInput, data: 1 });
      await expectSessionError(controller.storeSessionData(session.id, "x".repeat(200)), "invalid_argument", /^data: is 202 bytes/);
      expect(await controller.getSessionById(session.id)).toEqual(session);
    });

    it("refuses JSON nested deeper than 32 levels", async () => {
      let deep: JsonValue = 1;
      for (let i = 0; i < 32; i++) deep = [deep];
      await controller.openSession({ ...openInput, data: deep });
      await expectSessionError(
        controller.openSession({ ...openInput, user: [deep] }),
        "invalid_argument",
        /^user: must not nest arrays and objects more than 32 deep/,
      );
    });
  });
});
