import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventBatch, WatchEventsInput } from "../../src/session/event-feed.js";
import { isSessionError } from "../../src/session/errors.js";
import { createSessionController } from "../../src/session/session-controller.js";
import { DEFAULT_SESSION_POLICY } from "../../src/session/session-policy.js";
import type { SessionStore } from "../../src/session/session-store.js";
import { createTokenHasher } from "../../src/session/session-token.js";
import { createSqliteSessionStore } from "../../src/sqlite/sqlite-session-store.js";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { FakeClock } from "../support/fake-clock.js";
import { tempDir } from "../support/test-server.js";

const DAY = 86_400_000;
const BATCH = 3;
const HEARTBEAT_MS = 300;

const openInput = (userId = "u1") => ({ userId, userName: "", address: "10.0.0.1", client: "web", user: null, data: null });
const watchInput = (input: Partial<WatchEventsInput> = {}): WatchEventsInput => ({
  afterCursor: "",
  fromOldest: false,
  userId: "",
  types: [],
  ...input,
});

/** Pulls awaited past their timeout, kept for the next call so that no batch is lost. */
const pending = new WeakMap<AsyncGenerator<EventBatch>, Promise<IteratorResult<EventBatch>>>();

/** The next batch, or "none" if nothing comes within `ms`. */
async function next(stream: AsyncGenerator<EventBatch>, ms = 500): Promise<EventBatch | "none"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"none">((resolve) => (timer = setTimeout(() => resolve("none"), ms)));
  const pull = pending.get(stream) ?? stream.next();
  pending.set(stream, pull);
  const result = await Promise.race([pull, timeout]);
  clearTimeout(timer);
  if (result === "none") return result;
  pending.delete(stream);
  if (result.done) throw new Error("the stream ended");
  return result.value;
}

async function errorOf(promise: Promise<unknown>) {
  const error = await promise.then(() => expect.unreachable("no error"), (e: unknown) => e);
  expect(isSessionError(error), String(error)).toBe(true);
  return error as { kind: string; reason?: string; message: string };
}

describe("event feed", () => {
  let store: SessionStore;
  let reads: number;
  let clock: FakeClock;
  let controller: ReturnType<typeof createSessionController>;
  let aborter: AbortController;
  const open: AsyncGenerator<EventBatch>[] = [];
  const watch = (input: Partial<WatchEventsInput> = {}, signal = aborter.signal) => {
    const stream = controller.watchSessionEvents(watchInput(input), signal);
    open.push(stream);
    return stream;
  };
  /** Opens `n` sessions; returns their ids. */
  const openSessions = async (n: number, userId = "u1") => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await controller.openSession(openInput(userId))).session.id);
    return ids;
  };
  /** Every event of the log, with its cursor, read through a fresh stream. */
  const everything = async () => {
    const stream = watch({ fromOldest: true });
    const all: EventBatch["events"][number][] = [];
    for (;;) {
      const batch = await next(stream, 100);
      if (batch === "none" || batch.events.length === 0) break;
      all.push(...batch.events);
    }
    await stream.return(undefined);
    return all;
  };

  beforeEach(() => {
    const backing = createSqliteSessionStore({ path: ":memory:" });
    reads = 0;
    store = {
      ...backing,
      readEvents: (...args) => {
        reads++;
        return backing.readEvents(...args);
      },
    };
    clock = new FakeClock();
    aborter = new AbortController();
    controller = createSessionController({
      store,
      clock,
      policy: DEFAULT_SESSION_POLICY,
      hasher: createTokenHasher(),
      events: { batchSize: BATCH, maxBatchBytes: 1 << 20, heartbeatMs: HEARTBEAT_MS, maxStreams: 2, minReadIntervalMs: 20 },
    });
  });
  afterEach(async () => {
    aborter.abort();
    await Promise.all(open.splice(0).map((stream) => stream.return(undefined)));
    await store.dispose();
  });

  it("sends a first batch at once, empty at the tail, then each event as it commits", async () => {
    const [before] = await openSessions(1);
    const stream = watch();
    const first = await next(stream);
    expect(first).toEqual({ events: [], cursor: expect.stringMatching(/^[0-9a-f]{16}-1-[0-9a-f]{8}$/) });
    const [after] = await openSessions(1);
    const live = await next(stream);
    expect(live !== "none" && live.events.map((e) => [e.event.type, e.event.sessionId])).toEqual([["opened", after]]);
    expect(before).not.toBe(after);
  });

  it("sends the retained backlog in batches from the oldest, then live events", async () => {
    const ids = await openSessions(BATCH + 2);
    const stream = watch({ fromOldest: true });
    const first = await next(stream);
    const second = await next(stream);
    expect(first !== "none" && first.events.map((e) => e.event.sessionId)).toEqual(ids.slice(0, BATCH));
    expect(second !== "none" && second.events.map((e) => e.event.sessionId)).toEqual(ids.slice(BATCH));
    expect(second !== "none" && second.cursor).toBe(second !== "none" && second.events.at(-1)!.cursor);
    expect(await next(stream, 50)).toBe("none");
    const [late] = await openSessions(1);
    const live = await next(stream);
    expect(live !== "none" && live.events.map((e) => e.event.sessionId)).toEqual([late]);
  });

  it("resumes after any position without a gap or a duplicate", async () => {
    const ids = await openSessions(4);
    await controller.closeSession(ids[1]!);
    await controller.storeSessionData(ids[2]!, { n: 1 });
    await controller.deleteSessionById(ids[3]!);
    const all = await everything();
    expect(all).toHaveLength(7);
    for (let k = 0; k < all.length; k++) {
      const stream = watch({ afterCursor: all[k]!.cursor });
      const got: typeof all = [];
      do {
        const batch = await next(stream);
        if (batch === "none") break;
        got.push(...batch.events);
      } while (got.length < all.length - k - 1);
      expect(got, `after event ${k}`).toEqual(all.slice(k + 1));
      expect(await next(stream, 30)).toBe("none");
      await stream.return(undefined);
    }
  });

  it("filters by user and type, and moves the cursor past skipped events with heartbeats", async () => {
    const [mine] = await openSessions(1, "me");
    const stream = watch({ userId: "me", types: ["closed"], fromOldest: true });
    const first = await next(stream);
    expect(first !== "none" && first.events).toEqual([]);
    const others = await openSessions(2, "other");
    const heartbeat = await next(stream, 1000);
    expect(heartbeat !== "none" && heartbeat.events).toEqual([]);
    const all = await everything();
    expect(heartbeat !== "none" && heartbeat.cursor).toBe(all.at(-1)!.cursor);
    await controller.closeSession(others[0]!);
    await controller.closeSession(mine!);
    const closed = await next(stream);
    expect(closed !== "none" && closed.events.map((e) => [e.event.type, e.event.sessionId])).toEqual([["closed", mine]]);
  });

  it("refuses a cursor whose events retention removed (OUT_OF_RANGE), and one of another log", async () => {
    await openSessions(3);
    const all = await everything();
    clock.advance(8 * DAY);
    await openSessions(1);
    expect(await controller.purgeEvents(7 * DAY)).toBe(3);
    for (const cursor of [all[0]!.cursor, all[1]!.cursor]) {
      expect(await errorOf(watch({ afterCursor: cursor }).next())).toMatchObject({ kind: "out_of_range", reason: "cursor_expired" });
    }
    // Nothing after the last purged event was removed: resuming from it is fine.
    const fromLast = await next(watch({ afterCursor: all[2]!.cursor }));
    expect(fromLast !== "none" && fromLast.events).toHaveLength(1);
    const { logId } = await store.eventLog();
    const foreign = `${logId === "0".repeat(16) ? "1".repeat(16) : "0".repeat(16)}-1-00000000`;
    expect(await errorOf(watch({ afterCursor: foreign }).next())).toMatchObject({ kind: "out_of_range", reason: "cursor_unknown" });
    expect(await errorOf(watch({ afterCursor: `${logId}-99-00000000` }).next())).toMatchObject({ kind: "out_of_range", reason: "cursor_unknown" });
  });

  it("ends a stream with OUT_OF_RANGE when retention overtakes a slow reader", async () => {
    await openSessions(2 * BATCH);
    const stream = watch({ fromOldest: true });
    await next(stream);
    clock.advance(8 * DAY);
    await controller.purgeEvents(7 * DAY);
    expect(await errorOf(stream.next())).toMatchObject({ kind: "out_of_range", reason: "cursor_expired" });
  });

  it.each([
    [{ afterCursor: "nope" }, /^after_cursor: is not a cursor/],
    [{ afterCursor: "0123456789abcdef-01" }, /^after_cursor: is not a cursor/],
    [{ afterCursor: "0123456789abcdef-1" }, /^after_cursor: is not a cursor/],
    [{ afterCursor: "0123456789abcdef-1-00000000", fromOldest: true }, /^from_oldest: must not be set with after_cursor/],
    [{ userId: "x".repeat(1025) }, /^user_id: must be at most 1024 characters/],
    [{ types: ["nonsense" as never] }, /^types: has no event type "nonsense"/],
  ])("refuses %o with INVALID_ARGUMENT", async (input, message) => {
    const error = await errorOf(watch(input).next());
    expect(error.kind).toBe("invalid_argument");
    expect(error.message).toMatch(message);
  });

  it("serves at most maxStreams at once, and counts a finished one out", async () => {
    const a = watch();
    const b = watch();
    await next(a);
    await next(b);
    expect(controller.eventStreams).toBe(2);
    expect(await errorOf(watch().next())).toMatchObject({ kind: "resource_exhausted" });
    await a.return(undefined);
    expect(controller.eventStreams).toBe(1);
    expect(await next(watch())).not.toBe("none");
  });

  it("ends waiting streams with UNAVAILABLE when stopped, and refuses new ones", async () => {
    const stream = watch();
    await next(stream);
    const waiting = stream.next();
    controller.stopEventStreams();
    expect(await errorOf(waiting)).toMatchObject({ kind: "unavailable" });
    expect(await errorOf(watch().next())).toMatchObject({ kind: "unavailable" });
    expect(controller.eventStreams).toBe(0);
  });

  it("ends a waiting stream when its signal aborts", async () => {
    const mine = new AbortController();
    const stream = watch({}, mine.signal);
    await next(stream);
    const waiting = stream.next();
    mine.abort(new Error("gone"));
    await expect(waiting).rejects.toThrow("gone");
    expect(controller.eventStreams).toBe(0);
  });

  it("reads the store only as fast as the consumer pulls", async () => {
    const stream = watch({ fromOldest: true });
    await next(stream);
    await openSessions(10 * BATCH);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Suspended at its first yield, the stream has read once, and holds one batch.
    expect(reads).toBe(1);
    const second = await next(stream);
    expect(second !== "none" && second.events).toHaveLength(BATCH);
    expect(reads).toBe(2);
  });

  it.each([
    [0, 50, Infinity],
    [20, 0, 10],
  ])("with at least %i ms between reads, a burst of commits a live stream waits for takes %i to %d reads", async (minReadIntervalMs, least, most) => {
    const feed = createSessionController({
      store,
      clock,
      policy: DEFAULT_SESSION_POLICY,
      hasher: createTokenHasher(),
      events: { batchSize: 500, maxBatchBytes: 1 << 20, heartbeatMs: HEARTBEAT_MS, maxStreams: 2, minReadIntervalMs },
    });
    const stream = feed.watchSessionEvents(watchInput(), aborter.signal);
    open.push(stream);
    await next(stream);
    const before = reads;
    const got: string[] = [];
    // The consumer always waits for the next batch, as a transport does.
    const consuming = (async () => {
      while (got.length < 200) {
        const batch = await next(stream, 2000);
        if (batch === "none") return;
        got.push(...batch.events.map((e) => e.event.sessionId));
      }
    })();
    const ids = await openSessions(200);
    await consuming;
    expect(got).toEqual(ids);
    expect(reads - before).toBeGreaterThanOrEqual(least);
    expect(reads - before).toBeLessThanOrEqual(most);
  });
});

describe("event feed over a database restored from an older copy", () => {
  const dir = tempDir();
  afterEach(() => dir.remove());

  it("refuses a cursor whose seq now holds another event, instead of skipping events", async () => {
    const path = join(dir.path, "events.db");
    const clock = new FakeClock();
    const session = (store: SessionStore) => {
      const controller = createSessionController({ store, clock, policy: DEFAULT_SESSION_POLICY, hasher: createTokenHasher() });
      return {
        open: async (n: number) => {
          for (let i = 0; i < n; i++) await controller.openSession(openInput());
        },
        first: async (input: Partial<WatchEventsInput>) => {
          const aborter = new AbortController();
          const stream = controller.watchSessionEvents(watchInput(input), aborter.signal);
          try {
            const result = await stream.next();
            return result.value as EventBatch;
          } finally {
            aborter.abort();
            await stream.return(undefined);
          }
        },
      };
    };
    let store = createSqliteSessionStore({ path });
    await session(store).open(3);
    await store.dispose(); // checkpoints the WAL into the file
    copyFileSync(path, `${path}.backup`);
    store = createSqliteSessionStore({ path });
    await session(store).open(3);
    const { cursor } = await session(store).first({ fromOldest: true });
    expect(cursor).toMatch(/-6-/);
    await store.dispose();

    // Restore the backup: seqs 4 to 6 will be given to other events.
    copyFileSync(`${path}.backup`, path);
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
    store = createSqliteSessionStore({ path });
    await session(store).open(5);
    const error = await session(store).first({ afterCursor: cursor }).then(() => "no error", (e: unknown) => e);
    expect(error).toMatchObject({ kind: "out_of_range", reason: "cursor_unknown" });
    // A cursor from before the fork still resumes.
    const { events } = await session(store).first({ fromOldest: true });
    const early = await session(store).first({ afterCursor: events[2]!.cursor });
    expect(early.events.map((e) => e.event.seq)).toEqual([4, 5, 6, 7, 8]);
    await store.dispose();
  });
});
