import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Session, SessionQuery } from "../../src/session/session.js";
import { newSessionId } from "../../src/session/session-id.js";
import type { InsertLimits, SessionStore } from "../../src/session/session-store.js";

export const T = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const NO_LIMITS: InsertLimits = { limits: [], policy: "deny" };

/** A session record with defaults (30 min idle, 24 h absolute); `overrides` wins. */
export function sessionRecord(overrides: Partial<Session> = {}): Session {
  return {
    id: newSessionId(),
    userId: "u1",
    userName: "User One",
    active: true,
    openTime: T,
    closeTime: null,
    closeReason: null,
    requestTime: T,
    address: "10.0.0.1",
    client: "web",
    version: 1,
    idleTimeoutMs: 30 * MINUTE,
    absoluteTimeoutMs: 24 * 60 * MINUTE,
    lastAddress: "",
    lastClient: "",
    user: { name: "User One" },
    data: { cart: [1, 2, 3] },
    ...overrides,
  };
}

const hash = () => randomBytes(32);

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
    const add = async (session: Session, tokenHash: Uint8Array = hash()) => {
      expect(await store.insert(session, tokenHash, NO_LIMITS, session.openTime)).toEqual({
        status: "inserted",
        evictedIds: [],
      });
      return session;
    };
    beforeEach(() => {
      store = createStore();
    });
    afterEach(async () => {
      await store.dispose();
    });

    describe("insert and get", () => {
      it("returns an inserted session as it was given, JSON content included", async () => {
        const session = await add(sessionRecord({ user: { nested: [1, "a", true, null] }, data: "text" }));
        expect(await store.get(session.id)).toEqual(session);
      });

      it("keeps null user and data as null", async () => {
        const session = await add(sessionRecord({ user: null, data: null }));
        expect(await store.get(session.id)).toEqual(session);
      });

      it("returns undefined for an unknown id", async () => {
        expect(await store.get(newSessionId())).toBeUndefined();
        expect(await store.getForValidation(newSessionId(), true)).toBeUndefined();
      });

      it("refuses a second session with the same id", async () => {
        const session = await add(sessionRecord());
        await expect(store.insert(sessionRecord({ id: session.id }), hash(), NO_LIMITS, T)).rejects.toThrow();
        expect(await store.get(session.id)).toEqual(session);
      });

      it("returns the token hash for validation, and content only when asked", async () => {
        const tokenHash = hash();
        const session = await add(sessionRecord(), tokenHash);
        const full = await store.getForValidation(session.id, true);
        expect(full?.session).toEqual(session);
        expect(full?.credentials).toEqual({
          tokenHash: Buffer.from(tokenHash),
          tokenTime: T,
          previousTokenHash: null,
          previousTokenValidUntil: 0,
        });
        const lean = await store.getForValidation(session.id, false);
        expect(lean?.session).not.toHaveProperty("data");
        expect(lean?.session).not.toHaveProperty("user");
      });
    });

    describe("session limits on insert", () => {
      const three = async (client = "web") => {
        const sessions = [];
        for (let i = 0; i < 3; i++) {
          // Opened oldest first; used most recently in the reverse order.
          sessions.push(await add(sessionRecord({ openTime: T + i, requestTime: T + 10 - i, client })));
        }
        return sessions;
      };

      it("denies a session over the limit and inserts nothing", async () => {
        await three();
        const extra = sessionRecord({ openTime: T + 20, requestTime: T + 20 });
        const outcome = await store.insert(extra, hash(), { limits: [{ max: 3 }], policy: "deny" }, T + 20);
        expect(outcome).toEqual({ status: "limit_reached", limit: { max: 3 } });
        expect(await store.get(extra.id)).toBeUndefined();
        expect(await store.countActive({ userId: "u1" })).toBe(3);
      });

      it("evicts the oldest sessions to make room", async () => {
        const [oldest, second] = await three();
        const extra = sessionRecord({ openTime: T + 20, requestTime: T + 20 });
        const outcome = await store.insert(extra, hash(), { limits: [{ max: 2 }], policy: "evict_oldest" }, T + 20);
        expect(outcome).toEqual({ status: "inserted", evictedIds: [oldest!.id, second!.id] });
        expect(await store.get(oldest!.id)).toMatchObject({ active: false, closeReason: "evicted", closeTime: T + 20 });
        expect(await store.countActive({ userId: "u1" })).toBe(2);
      });

      it("evicts the session opened first when several opened in the same millisecond", async () => {
        const same = [0, 1, 2, 3, 4].map(() => sessionRecord());
        for (const s of same) await add(s);
        const extra = sessionRecord();
        const outcome = await store.insert(extra, hash(), { limits: [{ max: 5 }], policy: "evict_oldest" }, T);
        expect(outcome).toEqual({ status: "inserted", evictedIds: [same[0]!.id] });
      });

      it("evicts the least recently used sessions to make room", async () => {
        const sessions = await three();
        const extra = sessionRecord({ openTime: T + 20, requestTime: T + 20 });
        const outcome = await store.insert(
          extra,
          hash(),
          { limits: [{ max: 3 }], policy: "evict_least_recently_used" },
          T + 20,
        );
        expect(outcome).toEqual({ status: "inserted", evictedIds: [sessions[2]!.id] });
      });

      it("counts only the client's sessions against a client limit, and not other users'", async () => {
        await three("web");
        await add(sessionRecord({ userId: "someone else", client: "ios" }));
        const ios = sessionRecord({ client: "ios", openTime: T + 20, requestTime: T + 20 });
        const limits: InsertLimits = { limits: [{ max: 1, client: "ios" }], policy: "deny" };
        expect(await store.insert(ios, hash(), limits, T + 20)).toMatchObject({ status: "inserted" });
        const again = sessionRecord({ client: "ios", openTime: T + 21, requestTime: T + 21 });
        expect(await store.insert(again, hash(), limits, T + 21)).toEqual({
          status: "limit_reached",
          limit: { max: 1, client: "ios" },
        });
      });

      it("does not count sessions that have expired but are not yet closed", async () => {
        await three();
        const later = T + 31 * MINUTE; // all three are idle-expired
        const extra = sessionRecord({ openTime: later, requestTime: later });
        const outcome = await store.insert(extra, hash(), { limits: [{ max: 1 }], policy: "deny" }, later);
        expect(outcome).toEqual({ status: "inserted", evictedIds: [] });
      });
    });

    describe("update", () => {
      it("replaces only the given fields, records activity and bumps the version", async () => {
        const session = await add(sessionRecord());
        const outcome = await store.update(session.id, { data: { v: 2 } }, T + 10);
        const expected = { ...session, data: { v: 2 }, requestTime: T + 10, version: 2 };
        expect(outcome).toEqual({ status: "updated", session: expected });
        const user = await store.update(session.id, { user: null }, T + 20, 2);
        expect(user).toEqual({ status: "updated", session: { ...expected, user: null, requestTime: T + 20, version: 3 } });
      });

      it("changes nothing when the expected version differs", async () => {
        const session = await add(sessionRecord());
        const outcome = await store.update(session.id, { data: 9 }, T + 10, 7);
        expect(outcome).toEqual({ status: "version_mismatch", session });
        expect(await store.get(session.id)).toEqual(session);
      });

      it("leaves a closed session unchanged", async () => {
        const session = await add(sessionRecord());
        const closed = await store.close(session.id, T + 5, "logout");
        expect(await store.update(session.id, { data: 1 }, T + 10)).toEqual({ status: "closed", session: closed });
      });

      it("reports an unknown id as not found", async () => {
        expect(await store.update(newSessionId(), { data: 1 }, T)).toEqual({ status: "not_found" });
      });
    });

    describe("touch and rotate", () => {
      it("records activity and what was seen, without a version change, never backwards", async () => {
        const session = await add(sessionRecord());
        expect(await store.touch(session.id, T + 100, { address: "10.0.0.9", client: "cli" })).toBe(true);
        const touched = { ...session, requestTime: T + 100, lastAddress: "10.0.0.9", lastClient: "cli" };
        expect(await store.get(session.id)).toEqual(touched);
        expect(await store.touch(session.id, T + 50, { address: "x", client: "y" })).toBe(true);
        expect(await store.get(session.id)).toEqual({ ...touched, lastAddress: "x", lastClient: "y" });
        // What is not known (empty) keeps what was seen: two touches at once each leave their trace.
        await Promise.all([
          store.touch(session.id, T + 60, { address: "", client: "web" }),
          store.touch(session.id, T + 60, { address: "10.0.0.1", client: "" }),
        ]);
        expect(await store.get(session.id)).toMatchObject({ lastAddress: "10.0.0.1", lastClient: "web" });
      });

      it("touches neither a closed nor an expired session", async () => {
        const session = await add(sessionRecord());
        const closed = await store.close(session.id, T + 5, "logout");
        expect(await store.touch(session.id, T + 100, { address: "a", client: "b" })).toBe(false);
        expect(await store.get(session.id)).toEqual(closed);
        const idle = await add(sessionRecord());
        expect(await store.touch(idle.id, T + 30 * MINUTE, { address: "a", client: "b" })).toBe(false);
        expect(await store.get(idle.id)).toEqual(idle);
      });

      it("rotates the token once for a given current hash, keeping the old one for the grace", async () => {
        const first = hash();
        const session = await add(sessionRecord(), first);
        const rotation = { currentHash: first, nextHash: hash(), now: T + 100, previousValidUntil: T + 130 };
        const seen = { address: "a", client: "b" };
        expect(await store.rotateToken(session.id, rotation, seen)).toBe(true);
        expect(await store.rotateToken(session.id, { ...rotation, nextHash: hash() }, seen)).toBe(false);
        const after = await store.getForValidation(session.id, false);
        expect(after?.credentials).toEqual({
          tokenHash: Buffer.from(rotation.nextHash),
          tokenTime: T + 100,
          previousTokenHash: Buffer.from(first),
          previousTokenValidUntil: T + 130,
        });
        expect(after?.session).toMatchObject({ version: 1, requestTime: T + 100, lastAddress: "a" });
        expect(await store.isRetiredToken(session.id, first)).toBe(false); // still the previous one
      });

      it("retires the previous token for good at the next rotation", async () => {
        const hashes = [hash(), hash(), hash()];
        const session = await add(sessionRecord(), hashes[0]);
        const seen = { address: "", client: "" };
        for (const [i, next] of [hashes[1]!, hashes[2]!].entries()) {
          const rotation = { currentHash: hashes[i]!, nextHash: next, now: T + i + 1, previousValidUntil: T + i + 2 };
          expect(await store.rotateToken(session.id, rotation, seen)).toBe(true);
        }
        expect(await store.isRetiredToken(session.id, hashes[0]!)).toBe(true);
        expect(await store.isRetiredToken(session.id, hashes[1]!)).toBe(false);
        expect(await store.isRetiredToken(session.id, hash())).toBe(false);
        await store.delete(session.id, T);
        expect(await store.isRetiredToken(session.id, hashes[0]!)).toBe(false);
      });

      it("does not rotate the token of a closed session", async () => {
        const first = hash();
        const session = await add(sessionRecord(), first);
        await store.close(session.id, T + 5, "logout");
        const rotation = { currentHash: first, nextHash: hash(), now: T + 100, previousValidUntil: T + 130 };
        expect(await store.rotateToken(session.id, rotation, { address: "", client: "" })).toBe(false);
      });
    });

    describe("close", () => {
      it("closes a session once: inactive, stamped, reason kept, content cleared", async () => {
        const session = await add(sessionRecord());
        const closed = await store.close(session.id, T + 5, "logout");
        expect(closed).toEqual({
          ...session,
          active: false,
          closeTime: T + 5,
          closeReason: "logout",
          version: 2,
          user: null,
          data: null,
        });
        expect(await store.close(session.id, T + 99, "revoked")).toEqual(closed);
        expect(await store.close(newSessionId(), T, "logout")).toBeUndefined();
      });

      it("closes an expired session with the reason that applies, absolute first", async () => {
        const idle = await add(sessionRecord());
        const old = await add(sessionRecord({ openTime: T - 24 * 60 * MINUTE + 20 * MINUTE }));
        const at = T + 30 * MINUTE; // idle reaches its idle deadline; old reaches both
        expect(await store.closeIfExpired(idle.id, at - 1)).toBeUndefined();
        expect(await store.closeIfExpired(idle.id, at)).toBe("expired_idle");
        expect(await store.closeIfExpired(old.id, at)).toBe("expired_absolute");
        expect(await store.closeIfExpired(idle.id, at + 1)).toBeUndefined();
        expect(await store.get(idle.id)).toMatchObject({ active: false, closeTime: at, closeReason: "expired_idle" });
      });

      it("closes expired sessions in batches, each with its reason", async () => {
        const sessions = [0, 1, 2, 3].map((i) => sessionRecord({ requestTime: T + i }));
        for (const s of sessions) await add(s);
        const old = await add(sessionRecord({ openTime: T - 24 * 60 * MINUTE + 40 * MINUTE, requestTime: T + 20 * MINUTE }));
        const now = T + 30 * MINUTE + 2; // sessions 0..2 idle-expired, 3 not; old not yet
        expect(await store.closeExpired(now, 2)).toBe(2);
        expect(await store.closeExpired(now, 2)).toBe(1);
        expect(await store.closeExpired(now, 2)).toBe(0);
        expect((await store.get(sessions[2]!.id))?.closeReason).toBe("expired_idle");
        expect((await store.get(sessions[3]!.id))?.active).toBe(true);
        expect(await store.closeExpired(T + 40 * MINUTE, 10)).toBe(2);
        expect((await store.get(old.id))?.closeReason).toBe("expired_absolute");
      });

      it("counts every active session, whatever opened, closed, expired, evicted, deleted or purged them", async () => {
        const everyActive = async () => (await store.list(query({ filter: { active: true }, includeTotal: true, take: 1 }))).total;
        const sessions = Array.from({ length: 8 }, (_, i) => sessionRecord({ userId: i < 4 ? "me" : "you", requestTime: T - i }));
        const extra = sessionRecord({ userId: "you" });
        // The expected count where it is plain; after each step, the count must equal a full count.
        const steps: [string, () => Promise<unknown>, number | undefined][] = [
          ["open 8", async () => { for (const s of sessions) await add(s); }, 8],
          ["close one", () => store.close(sessions[0]!.id, T + 1, "logout"), 7],
          ["close it again", () => store.close(sessions[0]!.id, T + 2, "logout"), 7],
          ["revoke two", () => store.closeMatching({ userId: "me" }, "revoked", T + 1, 2), 5],
          ["delete an active one", () => store.delete(sessions[7]!.id, T + 1), 4],
          ["delete a closed one", () => store.delete(sessions[0]!.id, T + 1), 4],
          ["open one, evicting the oldest two", () => store.insert(extra, hash(), { limits: [{ max: 2 }], policy: "evict_oldest" }, T + 1), 3],
          ["expire the idle", () => store.closeExpired(T + 30 * MINUTE - 3, 100), undefined],
          ["purge the closed", () => store.purgeClosed(T + 40 * MINUTE, 100, T + 40 * MINUTE), undefined],
        ];
        for (const [what, step, expected] of steps) {
          await step();
          const counted = await store.countActive({});
          if (expected !== undefined) expect([what, counted]).toEqual([what, expected]);
          expect([what, counted]).toEqual([what, await everyActive()]);
        }
        expect(await store.countActive({})).toBeGreaterThan(0);
      });

      it("closes matching active sessions in batches, sparing the excepted one", async () => {
        const mine = [0, 1, 2, 3].map(() => sessionRecord({ userId: "me" }));
        for (const s of mine) await add(s);
        const other = await add(sessionRecord({ userId: "other" }));
        expect(await store.countActive({ userId: "me" })).toBe(4);
        expect(await store.closeMatching({ userId: "me" }, "revoked", T + 1, 2, mine[0]!.id)).toBe(2);
        expect(await store.closeMatching({ userId: "me" }, "revoked", T + 1, 2, mine[0]!.id)).toBe(1);
        expect(await store.closeMatching({ userId: "me" }, "revoked", T + 1, 2, mine[0]!.id)).toBe(0);
        expect(await store.countActive({ userId: "me" })).toBe(1);
        expect((await store.get(mine[0]!.id))?.active).toBe(true);
        expect((await store.get(mine[1]!.id))?.closeReason).toBe("revoked");
        expect((await store.get(other.id))?.active).toBe(true);
      });

      it("purges sessions closed before the cut-off, in batches", async () => {
        const sessions = [0, 1, 2].map(() => sessionRecord());
        for (const s of sessions) await add(s);
        await store.close(sessions[0]!.id, T + 1, "logout");
        await store.close(sessions[1]!.id, T + 2, "logout");
        expect(await store.purgeClosed(T + 2, 10, T + 2)).toBe(1);
        expect(await store.get(sessions[0]!.id)).toBeUndefined();
        expect(await store.get(sessions[1]!.id)).toBeDefined();
        expect(await store.get(sessions[2]!.id)).toBeDefined();
      });
    });

    it("deletes a session and returns it as it was", async () => {
      const session = await add(sessionRecord());
      expect(await store.delete(session.id, T)).toEqual(session);
      expect(await store.get(session.id)).toBeUndefined();
      expect(await store.delete(session.id, T)).toBeUndefined();
    });

    describe("list", () => {
      const seed = async () => {
        const rows = [
          sessionRecord({ userId: "a", requestTime: T + 3, client: "web", address: "x" }),
          sessionRecord({ userId: "b", requestTime: T + 1, client: "ios", address: "y" }),
          sessionRecord({ userId: "a", requestTime: T + 2, client: "ios", address: "x" }),
          sessionRecord({ userId: "c", requestTime: T + 2, client: "web", address: "y" }),
        ];
        for (const row of rows) await add(row);
        rows[2] = (await store.close(rows[2]!.id, T + 5, "revoked"))!;
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
        expect(await list({ closeReason: "revoked" })).toEqual([rows[2]!.id]);
        expect(await list({ closeReason: "logout" })).toEqual([]);
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

    describe("event log", () => {
      /** Every event in the log, as type:sessionId:version[:reason]. */
      const log = async () => {
        const read = await store.readEvents(0, {}, 10_000);
        if (read.status !== "ok") throw new Error(read.status);
        return read.events.map((e) => [e.type, e.sessionId, e.version, ...(e.closeReason ? [e.closeReason] : [])].join(":"));
      };

      it("appends one event per change, in order, and none for activity or refusals", async () => {
        const a = await add(sessionRecord({ userId: "a" }));
        const b = await add(sessionRecord({ userId: "a", openTime: T + 1, requestTime: T + 1 }));
        await store.update(a.id, { data: { x: 1 } }, T + 2);
        await store.update(a.id, { user: { n: 1 } }, T + 3);
        await store.update(a.id, { data: 2 }, T + 4, 1); // wrong version: nothing
        await store.touch(a.id, T + 5, { address: "x", client: "y" });
        const current = (await store.getForValidation(b.id, false))!.credentials.tokenHash!;
        await store.rotateToken(b.id, { currentHash: current, nextHash: hash(), now: T + 6, previousValidUntil: T + 7 }, { address: "", client: "" });
        await store.rotateToken(b.id, { currentHash: current, nextHash: hash(), now: T + 6, previousValidUntil: T + 7 }, { address: "", client: "" }); // lost CAS: nothing
        await store.close(a.id, T + 8, "logout");
        await store.close(a.id, T + 9, "revoked"); // already closed: nothing
        await store.delete(b.id, T + 10);
        expect(await log()).toEqual([
          `opened:${a.id}:1`,
          `opened:${b.id}:1`,
          `data_stored:${a.id}:2`,
          `user_updated:${a.id}:3`,
          `renewed:${b.id}:1`,
          `closed:${a.id}:4:logout`,
          `deleted:${b.id}:1`,
        ]);
      });

      it("carries who and when, never the token or content", async () => {
        const a = await add(sessionRecord({ userId: "who", client: "ios", address: "10.1.1.1" }));
        await store.update(a.id, { data: { secret: "payload" } }, T + 5);
        const read = await store.readEvents(0, {}, 10);
        expect(read.status === "ok" && read.events[1]).toEqual({
          seq: 2,
          type: "data_stored",
          sessionId: a.id,
          userId: "who",
          client: "ios",
          address: "10.1.1.1",
          closeReason: null,
          time: T + 5,
          version: 2,
        });
      });

      it("writes the closing event each way a session closes, by its reason", async () => {
        const limits: InsertLimits = { limits: [{ max: 1 }], policy: "evict_oldest" };
        const old = await add(sessionRecord({ userId: "e" }));
        const newer = sessionRecord({ userId: "e", openTime: T + 1, requestTime: T + 1 });
        await store.insert(newer, hash(), limits, T + 1);
        const idle = await add(sessionRecord({ userId: "i", idleTimeoutMs: 10 }));
        await store.closeExpired(T + 20, 10);
        const stale = await add(sessionRecord({ userId: "s", idleTimeoutMs: 10 }));
        await store.update(stale.id, { data: 1 }, T + 30); // expired: closed instead
        const reused = await add(sessionRecord({ userId: "r" }));
        await store.close(reused.id, T + 40, "token_reuse");
        const revoked = await add(sessionRecord({ userId: "v" }));
        await store.closeMatching({ userId: "v" }, "revoked", T + 50, 10);
        expect(await log()).toEqual([
          `opened:${old.id}:1`,
          `evicted:${old.id}:2:evicted`,
          `opened:${newer.id}:1`,
          `opened:${idle.id}:1`,
          `expired:${idle.id}:2:expired_idle`,
          `opened:${stale.id}:1`,
          `expired:${stale.id}:2:expired_idle`,
          `opened:${reused.id}:1`,
          `token_reused:${reused.id}:2:token_reuse`,
          `opened:${revoked.id}:1`,
          `closed:${revoked.id}:2:revoked`,
        ]);
      });

      it("writes no event when a change is refused", async () => {
        await add(sessionRecord({ userId: "d" }));
        const before = await log();
        const denied = await store.insert(sessionRecord({ userId: "d" }), hash(), { limits: [{ max: 1 }], policy: "deny" }, T);
        expect(denied.status).toBe("limit_reached");
        const duplicate = sessionRecord({ userId: "d" });
        await add(duplicate);
        const after = await log();
        await expect(store.insert(duplicate, hash(), NO_LIMITS, T)).rejects.toThrow();
        expect(await store.update("0".repeat(32), { data: 1 }, T)).toEqual({ status: "not_found" });
        expect(await log()).toEqual(after);
        expect(after).toEqual([...before, `opened:${duplicate.id}:1`]);
      });

      it("writes a purged event for each session retention removes", async () => {
        const a = await add(sessionRecord());
        await store.close(a.id, T + 1, "logout");
        expect(await store.purgeClosed(T + 2, 10, T + 100)).toBe(1);
        const read = await store.readEvents(2, {}, 10);
        expect(read.status === "ok" && read.events.map((e) => [e.type, e.sessionId, e.time])).toEqual([["purged", a.id, T + 100]]);
      });

      it("reads after a position, by user and type, and says how far it read", async () => {
        const a = await add(sessionRecord({ userId: "a" }));
        const b = await add(sessionRecord({ userId: "b" }));
        await store.close(a.id, T + 1, "logout");
        await store.close(b.id, T + 1, "logout");
        const position = await store.eventLog();
        expect(position).toMatchObject({ head: 4, purgedThrough: 0 });
        expect(position.logId).toMatch(/^[0-9a-f]{16}$/);
        const read = (after: number, filter: Parameters<SessionStore["readEvents"]>[1], limit = 10) =>
          store.readEvents(after, filter, limit);
        const seqs = async (...args: Parameters<typeof read>) => {
          const result = await read(...args);
          if (result.status !== "ok") return result.status;
          expect(result.atThrough?.seq).toBe(result.through);
          return { seqs: result.events.map((e) => e.seq), through: result.through, more: result.more };
        };
        expect(await seqs(0, {})).toEqual({ seqs: [1, 2, 3, 4], through: 4, more: false });
        expect(await seqs(1, {}, 2)).toEqual({ seqs: [2, 3], through: 3, more: true });
        expect(await seqs(0, { userId: "b" })).toEqual({ seqs: [2, 4], through: 4, more: false });
        expect(await seqs(0, { types: ["closed"] })).toEqual({ seqs: [3, 4], through: 4, more: false });
        expect(await seqs(0, { userId: "a", types: ["opened", "evicted"] })).toEqual({ seqs: [1], through: 4, more: false });
        expect(await seqs(0, { userId: "a", types: ["closed"] }, 1)).toEqual({ seqs: [3], through: 3, more: true });
        expect(await seqs(4, {})).toEqual({ seqs: [], through: 4, more: false });
        expect(await seqs(5, {})).toBe("ahead");
      });

      it("purges a prefix of the log by time, and refuses reads from before it", async () => {
        // Event times as servers with different clocks may write them: the third is "late".
        for (const time of [T, T + 1, T + 10, T + 2, T + 3]) await add(sessionRecord({ openTime: time, requestTime: time }));
        // Oldest first, stopping at the first event too new, even though later ones are older.
        expect(await store.purgeEvents(T + 5, 1)).toBe(1);
        expect(await store.purgeEvents(T + 5, 10)).toBe(1);
        expect(await store.purgeEvents(T + 5, 10)).toBe(0);
        expect(await store.eventLog()).toMatchObject({ head: 5, purgedThrough: 2 });
        expect(await store.readEvents(0, {}, 10)).toEqual({ status: "expired" });
        expect(await store.readEvents(1, {}, 10)).toEqual({ status: "expired" });
        const read = await store.readEvents(2, {}, 10);
        expect(read.status === "ok" && read.events.map((e) => e.seq)).toEqual([3, 4, 5]);
        // The newest event stays, however old, so its seq is never given again.
        expect(await store.purgeEvents(T + 100, 10)).toBe(2);
        expect(await store.purgeEvents(T + 100, 10)).toBe(0);
        expect(await store.eventLog()).toMatchObject({ head: 5, purgedThrough: 4 });
        const rest = await store.readEvents(4, {}, 10);
        expect(rest.status === "ok" && rest.events.map((e) => e.seq)).toEqual([5]);
        expect(await store.readEvents(5, {}, 10)).toMatchObject({ status: "ok", events: [], through: 5, more: false });
        expect(await store.eventAt(5)).toMatchObject({ seq: 5, type: "opened" });
        expect(await store.eventAt(1)).toBeUndefined();
        await add(sessionRecord());
        expect(await store.eventLog()).toMatchObject({ head: 6 });
      });

      it("tells listeners after its own commits, and not after a refusal", async () => {
        let told = 0;
        const stop = store.onEvents(() => told++);
        const a = await add(sessionRecord());
        expect(told).toBe(1);
        await store.update(a.id, { data: 1 }, T, 99);
        await store.touch(a.id, T + 1, { address: "", client: "" });
        expect(told).toBe(1);
        stop();
        await store.close(a.id, T + 2, "logout");
        expect(told).toBe(1);
      });
    });
  });
}
