import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isSessionError } from "../../src/session/errors.js";
import {
  createSessionController,
  DEFAULT_PAGE_SIZE,
  type SessionController,
} from "../../src/session/session-controller.js";
import type { JsonValue } from "../../src/session/session.js";
import type { SessionStore } from "../../src/session/session-store.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { FakeClock } from "../support/fake-clock.js";

const MINUTE = 60_000;

async function expectSessionError(promise: Promise<unknown>, kind: string, message: RegExp) {
  const error = await promise.then(() => expect.unreachable("no error"), (e: unknown) => e);
  expect(isSessionError(error)).toBe(true);
  expect(error).toMatchObject({ kind });
  expect((error as Error).message).toMatch(message);
}

describe("session controller", () => {
  let store: SessionStore;
  let clock: FakeClock;
  let controller: SessionController;
  const openInput = { userId: "u1", userName: "", address: "", client: "", user: null, data: null };

  beforeEach(() => {
    store = createSqliteSessionStore({ path: ":memory:" });
    clock = new FakeClock();
    controller = createSessionController({
      store,
      clock,
      idleTimeoutMs: 30 * MINUTE,
      maxPageSize: 5000,
      maxDataBytes: 100,
      maxUserBytes: 50,
    });
  });
  afterEach(() => store.dispose());

  it("closes every expired session, however many batches that takes", async () => {
    for (let i = 0; i < 2500; i++) await controller.openSession(openInput);
    clock.advance(30 * MINUTE);
    const fresh = await controller.openSession(openInput);
    clock.advance(1);
    expect(await controller.closeExpiredSessions()).toBe(2500);
    const page = await controller.getSessions({
      filter: { active: true }, skip: 0, take: 0, includeTotal: true, includeData: false,
    });
    expect(page.total).toBe(1);
    expect(page.items.map((s) => s.id)).toEqual([fresh.id]);
  });

  it("defaults take to 100 when it is 0", async () => {
    for (let i = 0; i < DEFAULT_PAGE_SIZE + 1; i++) await controller.openSession(openInput);
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
    await expectSessionError(
      controller.openSession({ ...openInput, ...input }),
      "invalid_argument",
      new RegExp(`^${field}: `),
    );
    expect((await store.list({ filter: {}, skip: 0, take: 10, includeTotal: true, includeData: false })).total).toBe(0);
  });

  it("accepts strings of exactly the maximum length", async () => {
    const long = "x".repeat(1024);
    const session = await controller.openSession({ ...openInput, userId: long, userName: long, address: long, client: long });
    expect(session.userId).toBe(long);
  });

  it("accepts data and user up to their byte limits, measured as UTF-8 JSON", async () => {
    const data = "é".repeat(49); // 98 bytes plus 2 quotes
    const session = await controller.openSession({ ...openInput, data, user: "x".repeat(48) });
    expect(session.data).toBe(data);
  });

  it.each([
    ["data", { data: "é".repeat(50) }, /^data: is 102 bytes as JSON; the limit is 100 bytes/],
    ["user", { user: { name: "x".repeat(50) } }, /^user: is 61 bytes as JSON; the limit is 50 bytes/],
  ])("refuses %s over its byte limit, naming the limit", async (_field, input, message) => {
    await expectSessionError(controller.openSession({ ...openInput, ...input }), "invalid_argument", message);
  });

  it("refuses oversized data on update and leaves the session as it was", async () => {
    const session = await controller.openSession({ ...openInput, data: 1 });
    await expectSessionError(
      controller.storeSessionData(session.id, "x".repeat(200)),
      "invalid_argument",
      /^data: is 202 bytes/,
    );
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
