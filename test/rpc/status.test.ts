import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createJsonLogger } from "../../src/logger.js";
import { sessionsRoutes } from "../../src/rpc/connect-handler.js";
import { createSessionsService } from "../../src/rpc/sessions-service.js";
import { createSessionController } from "../../src/session/session-controller.js";
import { DEFAULT_SESSION_POLICY } from "../../src/session/session-policy.js";
import type { SessionStore } from "../../src/session/session-store.js";
import { createTokenHasher } from "../../src/session/session-token.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { ErrorDetailSchema, ErrorReason, SessionsService } from "../../gen/sessions/v1/sessions_pb.js";
import { FakeClock } from "../support/fake-clock.js";

/** The production service and routes, in memory, over a store that fails. */
function serviceOver(store: SessionStore) {
  const logs: Record<string, unknown>[] = [];
  const logger = createJsonLogger((line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  const controller = createSessionController({
    store,
    clock: new FakeClock(),
    policy: DEFAULT_SESSION_POLICY,
    hasher: createTokenHasher(),
  });
  const transport = createRouterTransport(sessionsRoutes(createSessionsService(controller, { logger })));
  return { client: createClient(SessionsService, transport), logs };
}

describe("status mapping", () => {
  it("answers INTERNAL without the cause, and logs the cause", async () => {
    const store = createSqliteSessionStore({ path: ":memory:" });
    const failing: SessionStore = {
      ...store,
      get: () => Promise.reject(new Error("SQLITE_CORRUPT: database disk image is malformed at /var/secret")),
    };
    const { client, logs } = serviceOver(failing);
    const error = await client
      .getSessionById({ id: "0123456789abcdef0123456789abcdef" })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.Internal);
    expect(error?.rawMessage).toBe("internal error");
    expect(logs.filter((line) => line.level === "error")).toEqual([
      expect.objectContaining({
        procedure: "/sessions.v1.SessionsService/GetSessionById",
        correlationId: expect.any(String),
        err: expect.objectContaining({ message: expect.stringContaining("SQLITE_CORRUPT") }),
      }),
    ]);
    await store.dispose();
  });

  it("sends a domain error's reason as an ErrorDetail", async () => {
    const store = createSqliteSessionStore({ path: ":memory:" });
    const { client } = serviceOver(store);
    const error = await client
      .validateSession({ token: "not a token" })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(error?.findDetails(ErrorDetailSchema)).toEqual([
      expect.objectContaining({ reason: ErrorReason.TOKEN_UNKNOWN }),
    ]);
    await store.dispose();
  });

  it("keeps domain errors' codes and messages", async () => {
    const store = createSqliteSessionStore({ path: ":memory:" });
    const { client, logs } = serviceOver(store);
    const error = await client.closeSession({ id: "f".repeat(32) }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toBe(`session ${"f".repeat(32)} not found`);
    expect(logs.filter((line) => line.level !== "info")).toEqual([]);
    expect(logs).toEqual([expect.objectContaining({ msg: "rpc", code: "NOT_FOUND" })]);
    await store.dispose();
  });
});
