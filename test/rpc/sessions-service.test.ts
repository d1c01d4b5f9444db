import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLIENTS, RpcError, type TestClient, type TestRequest } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const Code = { InvalidArgument: 3, NotFound: 5, FailedPrecondition: 9 } as const;

const UNKNOWN_ID = "0123456789abcdef0123456789abcdef";
const HOUR = 3_600_000;


async function expectError(promise: Promise<unknown>, code: number, message: RegExp) {
  const error = await promise.then(
    () => expect.unreachable("the call succeeded"),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RpcError);
  expect((error as RpcError).code).toBe(code);
  expect((error as RpcError).message).toMatch(message);
}

describe.each(CLIENTS)("SessionsService via $name", ({ make }) => {
  let server: TestServer;
  let client: TestClient;
  const call = (method: Parameters<TestClient["call"]>[0], request?: TestRequest) =>
    client.call(method, request);
  const open = async (request: TestRequest = {}) =>
    (await call("openSession", { userId: "u1", ...request })).session!;

  beforeEach(async () => {
    server = await startTestServer({
      sessions: { idleTimeoutMs: 24 * HOUR, absoluteTimeoutMs: 7 * 24 * HOUR, maxPageSize: 50 },
    });
    client = make(server.app);
  });
  afterEach(async () => {
    client.close();
    await server.stop();
  });

  describe("OpenSession", () => {
    it("opens an active session stamped with the current time, with a secret token", async () => {
      const now = server.clock.now();
      const { session, token, evictedSessionIds } = await call("openSession", {
        userId: "u1",
        userName: "Ann",
        address: "10.0.0.1",
        client: "web",
        user: { name: "Ann", roles: ["admin"] },
        data: { cart: [1, 2], theme: "dark", n: 1.5, ok: true, none: null },
      });
      expect(session).toEqual({
        id: expect.stringMatching(/^[0-9a-f]{32}$/),
        userId: "u1",
        userName: "Ann",
        active: true,
        openTime: now,
        requestTime: now,
        address: "10.0.0.1",
        client: "web",
        user: { name: "Ann", roles: ["admin"] },
        data: { cart: [1, 2], theme: "dark", n: 1.5, ok: true, none: null },
        version: 1,
        expireTime: now + 24 * HOUR,
        idleTimeout: 24 * HOUR,
        absoluteTimeout: 7 * 24 * HOUR,
        lastAddress: "",
        lastClient: "",
      });
      expect(token).toMatch(new RegExp(`^${session!.id}\\.[A-Za-z0-9_-]{43}$`));
      expect(evictedSessionIds).toEqual([]);
    });

    it("gives every session a different id", async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 50; i++) ids.add((await open()).id);
      expect(ids.size).toBe(50);
    });

    it("refuses a missing user_id and stores nothing", async () => {
      await expectError(call("openSession", { userName: "Ann" }), Code.InvalidArgument, /user_id/);
      expect((await call("getSessions", { total: true })).total).toBe(0);
    });

    it("refuses data over the size limit, naming the limit, and stores nothing", async () => {
      await expectError(
        call("openSession", { userId: "u1", data: "x".repeat(70_000) }),
        Code.InvalidArgument,
        /^data: is 70002 bytes as JSON; the limit is 65536 bytes/,
      );
      expect((await call("getSessions", { total: true })).total).toBe(0);
    });

    it("refuses an over-long user_name", async () => {
      await expectError(
        call("openSession", { userId: "u1", userName: "x".repeat(1025) }),
        Code.InvalidArgument,
        /user_name: must be at most 1024 characters/,
      );
    });
  });

  describe("GetSessionById", () => {
    it("returns the session with its user and data, without counting as activity", async () => {
      const opened = await open({ user: { a: 1 }, data: [1, "two"] });
      server.clock.advance(HOUR);
      const { session } = await call("getSessionById", { id: opened.id });
      expect(session).toEqual(opened);
    });

    it("answers NOT_FOUND for an unknown id", async () => {
      await expectError(call("getSessionById", { id: UNKNOWN_ID }), Code.NotFound, /not found/);
    });

    it.each([
      ["getSessionById", {}],
      ["storeSessionData", { data: 1 }],
      ["updateSessionUser", { user: 1 }],
      ["closeSession", {}],
      ["deleteSessionById", {}],
    ] as const)("%s answers INVALID_ARGUMENT for a missing or malformed id", async (method, rest) => {
      await expectError(call(method, { ...rest }), Code.InvalidArgument, /^id: is required/);
      await expectError(
        call(method, { ...rest, id: "../etc/passwd" }),
        Code.InvalidArgument,
        /^id: must be a session id/,
      );
      await expectError(
        call(method, { ...rest, id: UNKNOWN_ID.toUpperCase() }),
        Code.InvalidArgument,
        /^id: must be a session id/,
      );
    });
  });

  describe("StoreSessionData", () => {
    it("replaces the data, keeps the user and moves request_time to now", async () => {
      const opened = await open({ user: { a: 1 }, data: { old: true } });
      server.clock.advance(5000);
      const { session } = await call("storeSessionData", { id: opened.id, data: { new: [1] } });
      expect(session).toEqual({
        ...opened,
        data: { new: [1] },
        requestTime: opened.requestTime + 5000,
        expireTime: opened.expireTime! + 5000,
        version: 2,
      });
      expect((await call("getSessionById", { id: opened.id })).session).toEqual(session);
    });

    it("clears the data when sent a JSON null", async () => {
      const opened = await open({ data: { old: true } });
      const { session } = await call("storeSessionData", { id: opened.id, data: null });
      expect(session!.data).toBeUndefined();
    });

    it("refuses a request without data", async () => {
      const opened = await open({ data: 1 });
      await expectError(call("storeSessionData", { id: opened.id }), Code.InvalidArgument, /^data: is required/);
      expect((await call("getSessionById", { id: opened.id })).session!.data).toBe(1);
    });

    it("answers FAILED_PRECONDITION for a closed session and changes nothing", async () => {
      const opened = await open();
      const closed = (await call("closeSession", { id: opened.id })).session;
      server.clock.advance(1000);
      await expectError(
        call("storeSessionData", { id: opened.id, data: 1 }),
        Code.FailedPrecondition,
        /is closed/,
      );
      expect((await call("getSessionById", { id: opened.id })).session).toEqual(closed);
    });

    it("answers NOT_FOUND for an unknown id", async () => {
      await expectError(call("storeSessionData", { id: UNKNOWN_ID, data: 1 }), Code.NotFound, /not found/);
    });
  });

  describe("UpdateSessionUser", () => {
    it("replaces the user, keeps the data and moves request_time to now", async () => {
      const opened = await open({ user: { v: 1 }, data: "d" });
      server.clock.advance(7000);
      const { session } = await call("updateSessionUser", { id: opened.id, user: { v: 2 } });
      expect(session).toEqual({
        ...opened,
        user: { v: 2 },
        requestTime: opened.requestTime + 7000,
        expireTime: opened.expireTime! + 7000,
        version: 2,
      });
    });

    it("refuses a request without user", async () => {
      const opened = await open();
      await expectError(call("updateSessionUser", { id: opened.id }), Code.InvalidArgument, /^user: is required/);
    });

    it("answers FAILED_PRECONDITION for a closed session", async () => {
      const opened = await open();
      await call("closeSession", { id: opened.id });
      await expectError(
        call("updateSessionUser", { id: opened.id, user: 1 }),
        Code.FailedPrecondition,
        /is closed/,
      );
    });

    it("answers NOT_FOUND for an unknown id", async () => {
      await expectError(call("updateSessionUser", { id: UNKNOWN_ID, user: 1 }), Code.NotFound, /not found/);
    });
  });

  describe("CloseSession", () => {
    it("deactivates the session, stamps close_time and clears user and data", async () => {
      const opened = await open({ user: { a: 1 }, data: { b: 2 } });
      server.clock.advance(3000);
      const { session } = await call("closeSession", { id: opened.id });
      const { user: _user, data: _data, expireTime: _expireTime, ...rest } = opened;
      expect(session).toEqual({
        ...rest,
        active: false,
        closeTime: opened.openTime + 3000,
        closeReason: "CLOSE_REASON_LOGOUT",
        version: 2,
      });
    });

    it("returns a closed session unchanged", async () => {
      const opened = await open();
      const first = (await call("closeSession", { id: opened.id })).session;
      server.clock.advance(HOUR);
      expect((await call("closeSession", { id: opened.id })).session).toEqual(first);
    });

    it("answers NOT_FOUND for an unknown id", async () => {
      await expectError(call("closeSession", { id: UNKNOWN_ID }), Code.NotFound, /not found/);
    });
  });

  describe("CloseExpiredSessions", () => {
    it("closes exactly the active sessions whose expire_time has come", async () => {
      const idle = await open(); // expires at T + 24 h
      server.clock.advance(1);
      const later = await open(); // expires at T + 24 h + 1
      server.clock.advance(1);
      const closed = await open();
      await call("closeSession", { id: closed.id });
      server.clock.set(idle.expireTime!);
      expect((await call("closeExpiredSessions")).closedCount).toBe(1);
      const after = async (id: string) => (await call("getSessionById", { id })).session!;
      expect(await after(idle.id)).toMatchObject({
        active: false,
        closeTime: server.clock.now(),
        closeReason: "CLOSE_REASON_EXPIRED_IDLE",
      });
      expect((await after(later.id)).active).toBe(true);
      expect((await call("closeExpiredSessions")).closedCount).toBe(0);
      server.clock.advance(1);
      expect((await call("closeExpiredSessions")).closedCount).toBe(1);
      expect((await after(closed.id)).closeReason).toBe("CLOSE_REASON_LOGOUT");
    });
  });

  describe("DeleteSessionById", () => {
    it("removes the session and returns it as it was", async () => {
      const opened = await open({ data: { keep: "me" } });
      expect((await call("deleteSessionById", { id: opened.id })).session).toEqual(opened);
      await expectError(call("getSessionById", { id: opened.id }), Code.NotFound, /not found/);
      await expectError(call("deleteSessionById", { id: opened.id }), Code.NotFound, /not found/);
    });
  });

  describe("GetSessions", () => {
    /** Ten sessions at known times: T+0 .. T+9 minutes, two users, two clients. */
    async function seed() {
      const base = server.clock.now();
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        server.clock.set(base + i * 60_000);
        const s = await open({
          userId: i % 2 === 0 ? "even" : "odd",
          client: i < 5 ? "web" : "ios",
          address: `10.0.0.${i % 3}`,
          user: { name: `user ${i}` },
          data: { i },
        });
        ids.push(s.id);
      }
      await call("closeSession", { id: ids[3]! });
      await call("closeSession", { id: ids[4]! });
      return { base, ids };
    }
    const idsOf = (sessions: { id: string }[] | undefined) => (sessions ?? []).map((s) => s.id);

    it("lists newest activity first, without user and data by default", async () => {
      const { ids } = await seed();
      const { sessions, total } = await call("getSessions", {});
      expect(idsOf(sessions)).toEqual([...ids].reverse());
      expect(total).toBeUndefined();
      expect(sessions!.every((s) => s.data === undefined && s.user === undefined)).toBe(true);
    });

    it("fills in user and data when include_data is set", async () => {
      const { ids } = await seed();
      const { sessions } = await call("getSessions", { includeData: true, filter: { active: true } });
      const order = [9, 8, 7, 6, 5, 2, 1, 0];
      expect(sessions!.map((s) => s.data)).toEqual(order.map((i) => ({ i })));
      expect(sessions!.map((s) => s.user)).toEqual(order.map((i) => ({ name: `user ${i}` })));
      expect(idsOf(sessions)[0]).toBe(ids[9]);
    });

    it.each([
      ["user_id", { userId: "even" }, [8, 6, 4, 2, 0]],
      ["active = true", { active: true }, [9, 8, 7, 6, 5, 2, 1, 0]],
      ["active = false", { active: false }, [4, 3]],
      ["client", { client: "ios" }, [9, 8, 7, 6, 5]],
      ["address", { address: "10.0.0.1" }, [7, 4, 1]],
      ["user_id and client", { userId: "odd", client: "web" }, [3, 1]],
      ["no match", { userId: "nobody" }, []],
    ])("filters by %s", async (_name, filter, expected) => {
      const { ids } = await seed();
      const { sessions } = await call("getSessions", { filter });
      expect(idsOf(sessions)).toEqual(expected.map((i) => ids[i]));
    });

    it("treats from_time and to_time as the half-open range [from, to) on request_time", async () => {
      const { base, ids } = await seed();
      // Sessions 3 and 4 were closed at the last seed time, which is not activity.
      const range = { fromTime: base + 2 * 60_000, toTime: base + 5 * 60_000 };
      expect(idsOf((await call("getSessions", { filter: range })).sessions)).toEqual(
        [4, 3, 2].map((i) => ids[i]),
      );
      const oneTickLater = { fromTime: range.fromTime + 1, toTime: range.toTime + 1 };
      expect(idsOf((await call("getSessions", { filter: oneTickLater })).sessions)).toEqual(
        [5, 4, 3].map((i) => ids[i]),
      );
      const empty = { fromTime: range.fromTime, toTime: range.fromTime };
      expect(idsOf((await call("getSessions", { filter: empty })).sessions)).toEqual([]);
    });

    it("pages with skip and take and counts the total when asked", async () => {
      const { ids } = await seed();
      const page = await call("getSessions", { skip: 2, take: 3, total: true });
      expect(idsOf(page.sessions)).toEqual([7, 6, 5].map((i) => ids[i]));
      expect(page.total).toBe(10);
      const last = await call("getSessions", { skip: 8, take: 3, total: true, filter: { active: true } });
      expect(last.sessions ?? []).toEqual([]);
      expect(last.total).toBe(8);
    });

    it("breaks request_time ties by id", async () => {
      const opened = [await open(), await open(), await open()];
      const { sessions } = await call("getSessions", {});
      expect(idsOf(sessions)).toEqual(opened.map((s) => s.id).sort());
    });

    it("caps take at the server maximum", async () => {
      for (let i = 0; i < 51; i++) await open();
      expect((await call("getSessions", { take: 1000 })).sessions).toHaveLength(50);
      expect((await call("getSessions", { take: 50 })).sessions).toHaveLength(50);
      expect((await call("getSessions", { take: 49 })).sessions).toHaveLength(49);
    });

    it("refuses negative skip or take and an inverted time range", async () => {
      await expectError(call("getSessions", { skip: -1 }), Code.InvalidArgument, /^skip: must not be negative/);
      await expectError(call("getSessions", { take: -5 }), Code.InvalidArgument, /^take: must not be negative/);
      await expectError(
        call("getSessions", { filter: { fromTime: 2000, toTime: 1000 } }),
        Code.InvalidArgument,
        /filter.from_time: must not be after filter.to_time/,
      );
    });
  });
});
