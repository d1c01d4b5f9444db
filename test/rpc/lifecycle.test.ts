import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLIENTS, RpcError, type TestClient, type TestRequest } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const Code = { InvalidArgument: 3, FailedPrecondition: 9, Aborted: 10, ResourceExhausted: 8, Unauthenticated: 16 };
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

async function expectError(promise: Promise<unknown>, code: number, reason: string | undefined, message?: RegExp) {
  const error = await promise.then(() => expect.unreachable("the call succeeded"), (e: unknown) => e);
  expect(error).toBeInstanceOf(RpcError);
  expect((error as RpcError).code).toBe(code);
  expect((error as RpcError).reason).toBe(reason);
  if (message) expect((error as RpcError).message).toMatch(message);
}

describe.each(CLIENTS)("session lifecycle via $name", ({ make }) => {
  let server: TestServer;
  let client: TestClient;
  const call = (method: Parameters<TestClient["call"]>[0], request?: TestRequest) => client.call(method, request);
  const open = (request: TestRequest = {}) => call("openSession", { userId: "u1", ...request });

  beforeEach(async () => {
    server = await startTestServer({
      sessions: {
        renewalIntervalMs: HOUR,
        renewalGraceMs: 30 * SECOND,
        idleTimeoutMs: 2 * HOUR,
        maxSessionsPerUser: 3,
        sessionLimitPolicy: "evict_oldest",
        maxSessionsPerClient: { kiosk: 1 },
      },
    });
    client = make(server.app);
  });
  afterEach(async () => {
    client.close();
    await server.stop();
  });

  it("validates a token, and records the caller's address and client", async () => {
    const { session, token } = await open({ address: "10.0.0.1", client: "web" });
    server.clock.advance(2 * MINUTE);
    const validated = await call("validateSession", { token, address: "10.0.0.2", client: "web" });
    expect(validated.newToken).toBeUndefined();
    expect(validated.session).toMatchObject({
      id: session!.id,
      requestTime: server.clock.now(),
      lastAddress: "10.0.0.2",
      lastClient: "web",
      expireTime: server.clock.now() + 2 * HOUR,
    });
    expect(validated.session!.data).toBeUndefined();
    const withData = await call("validateSession", { token, includeData: true });
    expect(withData.session!.data).toBeUndefined(); // none was stored
  });

  it("refuses unknown and malformed tokens with UNAUTHENTICATED and a reason", async () => {
    const { token } = await open();
    const forged = `${token!.slice(0, 33)}${"A".repeat(43)}`;
    for (const bad of ["garbage", forged]) {
      await expectError(call("validateSession", { token: bad }), Code.Unauthenticated, "ERROR_REASON_TOKEN_UNKNOWN");
    }
    await expectError(call("validateSession", {}), Code.InvalidArgument, undefined, /^token: is required/);
  });

  it("renews the token, honours the grace, and closes the session when the old one is reused", async () => {
    const { session, token } = await open();
    server.clock.advance(HOUR);
    const { newToken } = await call("validateSession", { token });
    expect(newToken).toMatch(new RegExp(`^${session!.id}\\.`));
    server.clock.advance(30 * SECOND - 1);
    expect((await call("validateSession", { token })).session!.active).toBe(true);
    server.clock.advance(1);
    await expectError(call("validateSession", { token }), Code.Unauthenticated, "ERROR_REASON_TOKEN_REUSED");
    await expectError(call("validateSession", { token: newToken }), Code.Unauthenticated, "ERROR_REASON_TOKEN_REUSED");
    expect((await call("getSessionById", { id: session!.id })).session!.closeReason).toBe("CLOSE_REASON_TOKEN_REUSE");
  });

  it("expires a session at its own idle timeout and says so", async () => {
    const { session, token } = await open({ idleTimeout: 10 * MINUTE, absoluteTimeout: 3 * HOUR });
    expect(session).toMatchObject({ idleTimeout: 10 * MINUTE, absoluteTimeout: 3 * HOUR });
    server.clock.advance(10 * MINUTE);
    await expectError(call("validateSession", { token }), Code.Unauthenticated, "ERROR_REASON_EXPIRED_IDLE");
    await expectError(
      open({ idleTimeout: 25 * HOUR }),
      Code.InvalidArgument,
      undefined,
      /^idle_timeout: must be at most the server's maximum/,
    );
  });

  it("evicts the oldest session beyond the per-user limit and names it", async () => {
    const first = await open();
    await open();
    await open();
    const fourth = await open();
    expect(fourth.evictedSessionIds).toEqual([first.session!.id]);
    await expectError(call("validateSession", { token: first.token }), Code.Unauthenticated, "ERROR_REASON_SESSION_CLOSED");
    const { sessions } = await call("getSessions", { filter: { closeReason: "CLOSE_REASON_EVICTED" } });
    expect(sessions!.map((s) => s.id)).toEqual([first.session!.id]);
  });

  it("closes a user's other sessions, or counts and closes by filter", async () => {
    const keep = await open({ client: "web" });
    await open({ client: "web" });
    await open({ client: "kiosk" });
    await open({ userId: "u2", client: "web" });
    expect((await call("closeUserSessions", { userId: "u1", exceptSessionId: keep.session!.id })).closedCount).toBe(2);
    expect((await call("closeSessions", { filter: { client: "web" }, dryRun: true })).closedCount).toBe(2);
    expect((await call("closeSessions", { filter: { client: "web" } })).closedCount).toBe(2);
    expect((await call("getSessions", { filter: { active: true }, total: true })).total).toBe(0);
    await expectError(call("closeSessions", {}), Code.InvalidArgument, undefined, /^filter: must set at least one field/);
    const revoked = await call("getSessions", { filter: { closeReason: "CLOSE_REASON_REVOKED" }, total: true });
    expect(revoked.total).toBe(4);
  });

  it("refuses a write with a stale expected_version with ABORTED and changes nothing", async () => {
    const { session } = await open({ data: 1 });
    const updated = await call("storeSessionData", { id: session!.id, data: 2, expectedVersion: 1 });
    expect(updated.session!.version).toBe(2);
    await expectError(
      call("updateSessionUser", { id: session!.id, user: { x: 1 }, expectedVersion: 1 }),
      Code.Aborted,
      "ERROR_REASON_VERSION_MISMATCH",
      /is at version 2, not the expected 1/,
    );
    expect((await call("getSessionById", { id: session!.id })).session).toEqual(updated.session);
  });

  it("refuses a session beyond the limit when the policy denies, per user and per client", async () => {
    await server.stop();
    server = await startTestServer({
      sessions: { maxSessionsPerUser: 1, maxSessionsPerClient: { kiosk: 2 }, sessionLimitPolicy: "deny" },
    });
    client.close();
    client = make(server.app);
    await open();
    await expectError(open(), Code.ResourceExhausted, "ERROR_REASON_SESSION_LIMIT", /already has 1 active sessions, the limit/);
    await open({ client: "kiosk" });
    await open({ client: "kiosk" });
    await expectError(
      open({ client: "kiosk" }),
      Code.ResourceExhausted,
      "ERROR_REASON_SESSION_LIMIT",
      /already has 2 active sessions from client "kiosk"/,
    );
  });

  it("marks a write to a closed session with the SESSION_CLOSED reason", async () => {
    const { session } = await open();
    await call("closeSession", { id: session!.id });
    await expectError(
      call("storeSessionData", { id: session!.id, data: 1 }),
      Code.FailedPrecondition,
      "ERROR_REASON_SESSION_CLOSED",
    );
  });
});
