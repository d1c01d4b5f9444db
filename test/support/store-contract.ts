import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Session, SessionQuery } from "../../src/session/session.js";
import { newSessionId } from "../../src/session/session-id.js";
import type { SessionStore } from "../../src/session/session-store.js";

const T = Date.UTC(2026, 0, 1);

/** A session record with defaults; `overrides` wins. */
export function sessionRecord(overrides: Partial<Session> = {}): Session {
  return {
    id: newSessionId(),
    userId: "u1",
    userName: "User One",
    active: true,
    openTime: T,
    closeTime: null,
    requestTime: T,
    address: "10.0.0.1",
    client: "web",
    user: { name: "User One" },
    data: { cart: [1, 2, 3] },
    ...overrides,
  };
}

const query = (overrides: Partial<SessionQuery> = {}): SessionQuery => ({
  filter: {},
  skip: 0,
  take: 100,
  includeTotal: false,
  includeData: false,
  ...overrides,
});

/**
 * What every SessionStore must do, whatever its backend. Each implementation
 * runs this suite, so the controller can rely on any of them alike.
 */
export function describeStoreContract(name: string, createStore: () => SessionStore): void {
  describe(`SessionStore contract: ${name}`, () => {
    let store: SessionStore;
    beforeEach(() => {
      store = createStore();
    });
    afterEach(async () => {
      await store.dispose();
    });

    it("returns an inserted session as it was given, JSON content included", async () => {
      const session = sessionRecord({
        user: { nested: { list: [1, "a", true, null] } },
        data: "just a string",
      });
      await store.insert(session);
      expect(await store.get(session.id)).toEqual(session);
    });

    it("keeps null user and data as null", async () => {
      const session = sessionRecord({ user: null, data: null });
      await store.insert(session);
      expect(await store.get(session.id)).toEqual(session);
    });

    it("returns undefined for an unknown id", async () => {
      expect(await store.get(newSessionId())).toBeUndefined();
    });

    it("refuses a second session with the same id", async () => {
      const session = sessionRecord();
      await store.insert(session);
      await expect(store.insert(sessionRecord({ id: session.id }))).rejects.toThrow();
      expect(await store.get(session.id)).toEqual(session);
    });

    it("updates only the given fields of an active session and its request time", async () => {
      const session = sessionRecord();
      await store.insert(session);
      const outcome = await store.update(session.id, { data: { v: 2 } }, T + 10);
      const expected = { ...session, data: { v: 2 }, requestTime: T + 10 };
      expect(outcome).toEqual({ status: "updated", session: expected });
      const user = await store.update(session.id, { user: null }, T + 20);
      expect(user).toEqual({ status: "updated", session: { ...expected, user: null, requestTime: T + 20 } });
    });

    it("leaves a closed session unchanged on update", async () => {
      const session = sessionRecord();
      await store.insert(session);
      const closed = await store.close(session.id, T + 5);
      const outcome = await store.update(session.id, { data: 1 }, T + 10);
      expect(outcome).toEqual({ status: "closed", session: closed });
    });

    it("reports an update of an unknown id as not found", async () => {
      expect(await store.update(newSessionId(), { data: 1 }, T)).toEqual({ status: "not_found" });
    });

    it("closes a session once: inactive, stamped, content cleared", async () => {
      const session = sessionRecord();
      await store.insert(session);
      const closed = await store.close(session.id, T + 5);
      expect(closed).toEqual({ ...session, active: false, closeTime: T + 5, user: null, data: null });
      expect(await store.close(session.id, T + 99)).toEqual(closed);
      expect(await store.close(newSessionId(), T)).toBeUndefined();
    });

    it("closes idle sessions strictly before the cut-off, oldest first, in batches", async () => {
      const sessions = [0, 1, 2, 3, 4].map((i) => sessionRecord({ requestTime: T + i }));
      for (const s of sessions) await store.insert(s);
      await store.close(sessions[0]!.id, T + 1);
      // Active sessions before T + 4: those at T+1, T+2, T+3.
      expect(await store.closeIdle(T + 4, T + 100, 2)).toBe(2);
      expect((await store.get(sessions[1]!.id))?.active).toBe(false);
      expect((await store.get(sessions[2]!.id))?.active).toBe(false);
      expect((await store.get(sessions[3]!.id))?.active).toBe(true);
      expect(await store.closeIdle(T + 4, T + 100, 2)).toBe(1);
      expect(await store.closeIdle(T + 4, T + 100, 2)).toBe(0);
      expect(await store.get(sessions[3]!.id)).toMatchObject({ active: false, closeTime: T + 100, data: null });
      expect((await store.get(sessions[4]!.id))?.active).toBe(true);
      expect((await store.get(sessions[0]!.id))?.closeTime).toBe(T + 1);
    });

    it("deletes a session and returns it as it was", async () => {
      const session = sessionRecord();
      await store.insert(session);
      expect(await store.delete(session.id)).toEqual(session);
      expect(await store.get(session.id)).toBeUndefined();
      expect(await store.delete(session.id)).toBeUndefined();
    });

    describe("list", () => {
      const seed = async () => {
        const rows = [
          sessionRecord({ userId: "a", requestTime: T + 3, client: "web", address: "x" }),
          sessionRecord({ userId: "b", requestTime: T + 1, client: "ios", address: "y" }),
          sessionRecord({ userId: "a", requestTime: T + 2, client: "ios", address: "x", active: false, closeTime: T + 5 }),
          sessionRecord({ userId: "c", requestTime: T + 2, client: "web", address: "y" }),
        ];
        for (const row of rows) await store.insert(row);
        return rows;
      };
      const ids = (page: { items: readonly { id: string }[] }) => page.items.map((s) => s.id);
      const byTimeThenId = (rows: Session[]) =>
        [...rows].sort((x, y) => y.requestTime - x.requestTime || (x.id < y.id ? -1 : 1)).map((s) => s.id);

      it("orders by request time descending, then id ascending", async () => {
        const rows = await seed();
        expect(ids(await store.list(query()))).toEqual(byTimeThenId(rows));
      });

      it("omits user and data unless asked", async () => {
        const rows = await seed();
        const [first] = (await store.list(query({ take: 1 }))).items;
        expect(first).not.toHaveProperty("data");
        expect(first).not.toHaveProperty("user");
        const [withData] = (await store.list(query({ take: 1, includeData: true }))).items;
        expect(withData).toEqual(rows[0]);
      });

      it("applies every filter field together", async () => {
        const rows = await seed();
        const list = async (filter: SessionQuery["filter"]) => ids(await store.list(query({ filter })));
        expect(await list({ userId: "a" })).toEqual([rows[0]!.id, rows[2]!.id]);
        expect(await list({ userId: "a", active: true })).toEqual([rows[0]!.id]);
        expect(await list({ active: false })).toEqual([rows[2]!.id]);
        expect(await list({ client: "ios", address: "y" })).toEqual([rows[1]!.id]);
        expect(await list({ fromTime: T + 2, toTime: T + 3 })).toEqual(byTimeThenId([rows[2]!, rows[3]!]));
        expect(await list({ fromTime: T + 3 })).toEqual([rows[0]!.id]);
        expect(await list({ toTime: T + 2 })).toEqual([rows[1]!.id]);
      });

      it("pages with skip and take and counts every match", async () => {
        const rows = await seed();
        const page = await store.list(query({ skip: 1, take: 2, includeTotal: true }));
        expect(ids(page)).toEqual(byTimeThenId(rows).slice(1, 3));
        expect(page.total).toBe(4);
        const none = await store.list(query({ skip: 10, includeTotal: true, filter: { userId: "a" } }));
        expect(none).toEqual({ items: [], total: 2 });
        expect(await store.list(query())).not.toHaveProperty("total");
      });
    });
  });
}
