import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { grpcJsClient, RpcError, type TestClient, type TestResponse } from "../support/clients.js";
import { allEvents, allSessions, expectLogMatchesSessions } from "../support/event-log-check.js";
import { startServerProcess, terminate, type ServerProcess } from "../support/server-process.js";
import { tempDir } from "../support/test-server.js";

const LIMIT = 3;
const ENV = {
  SESSIONS_RENEWAL_INTERVAL: "300ms",
  SESSIONS_RENEWAL_GRACE: "250ms",
  SESSIONS_TOUCH_INTERVAL: "0",
  SESSIONS_MAX_SESSIONS_PER_USER: `${LIMIT}`,
  SESSIONS_EVENT_POLL_INTERVAL: "20ms",
};

const settle = <T>(promises: Promise<T>[]) =>
  Promise.all(promises.map((p) => p.then((value) => ({ value }), (error: unknown) => ({ error: error as RpcError }))));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Two server processes over one database file (WAL), each with clients of its own. */
describe("two server processes on one database file", () => {
  const dirs: { remove: () => void }[] = [];
  const processes: ServerProcess[] = [];
  const clients: TestClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await Promise.all(processes.splice(0).map((server) => terminate(server.child, 5000)));
    dirs.splice(0).forEach((dir) => dir.remove());
  });

  const startPair = async (env: Record<string, string> = {}) => {
    const dir = tempDir();
    dirs.push(dir);
    const dbPath = join(dir.path, "shared.db");
    const first = await startServerProcess(dbPath, { ...ENV, ...env });
    processes.push(first);
    const second = await startServerProcess(dbPath, { ...ENV, ...env });
    processes.push(second);
    const a = grpcJsClient(first.grpcPort);
    const b = grpcJsClient(second.grpcPort);
    clients.push(a, b);
    return { dbPath, a, b, servers: [first, second] };
  };

  /** Each process's count of SQLite errors by code, from /metrics. */
  const sqliteErrors = async (servers: ServerProcess[]) => {
    const counts: Record<string, number> = {};
    for (const server of servers) {
      const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
      for (const [, code, n] of text.matchAll(/^sessions_sqlite_errors_total\{code="(\w+)"\} (\d+)/gm)) {
        counts[code!] = (counts[code!] ?? 0) + Number(n);
      }
    }
    return counts;
  };

  it("renews a token once, whichever process and however many calls present it at once", async () => {
    const { a, b, dbPath } = await startPair();
    const opened = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).call("openSession", { userId: `r${i}` })));
    for (let round = 0; round < 3; round++) {
      await sleep(350); // past the renewal interval: the next validation renews
      const results = await Promise.all(
        opened.map(async (session) => {
          const token = session.token!;
          const answers = await settle([a, b, a, b].map((client) => client.call("validateSession", { token })));
          return { session, answers };
        }),
      );
      for (const { session, answers } of results) {
        // Every call succeeds (the losers within the old token's grace), and exactly one renewed.
        expect(answers.filter((answer) => "error" in answer)).toEqual([]);
        const renewed = answers.flatMap((answer) => ("value" in answer && answer.value.newToken ? [answer.value.newToken] : []));
        expect(renewed, session.session!.id).toHaveLength(1);
        session.token = renewed[0]!;
      }
    }
    // Each session was renewed exactly three times in all, and its current token works on both.
    const db = new Database(dbPath, { readonly: true });
    const renewals = db.prepare("SELECT session_id, count(*) AS n FROM session_events WHERE type = 'renewed' GROUP BY session_id").all() as {
      n: number;
    }[];
    db.close();
    expect(renewals.map((row) => row.n)).toEqual(opened.map(() => 3));
    for (const session of opened.slice(0, 5)) {
      for (const client of [a, b]) expect((await client.call("validateSession", { token: session.token })).session?.id).toBe(session.session!.id);
    }
  });

  it.each(["deny", "evict_oldest", "evict_least_recently_used"])(
    "never lets a user have more sessions than the limit, with opens racing on both (%s)",
    async (policy) => {
      const { a, b } = await startPair({ SESSIONS_SESSION_LIMIT_POLICY: policy });
      const users = Array.from({ length: 20 }, (_, i) => `limited-${i}`);
      const outcomes = await settle(
        users.flatMap((userId) => Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).call("openSession", { userId }))),
      );
      const refused = outcomes.flatMap((outcome) => ("error" in outcome ? [outcome.error] : []));
      if (policy === "deny") {
        expect(outcomes.length - refused.length).toBe(users.length * LIMIT);
        expect(new Set(refused.map((error) => [error.code, error.reason].join(" ")))).toEqual(
          new Set(["8 ERROR_REASON_SESSION_LIMIT"]),
        );
      } else {
        expect(refused).toEqual([]);
      }
      for (const userId of users) {
        const { total } = await a.call("getSessions", { filter: { userId, active: true }, total: true });
        expect(total, userId).toBe(LIMIT);
      }
    },
  );

  it("closes a session once when both close it at once, and refuses its token on both after", async () => {
    const { a, b, dbPath } = await startPair();
    const opened = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).call("openSession", { userId: `c${i}` })));
    const closes = await settle(opened.flatMap(({ session }) => [a, b, a, b].map((client) => client.call("closeSession", { id: session!.id }))));
    expect(closes.filter((outcome) => "error" in outcome)).toEqual([]);
    for (const { token } of opened.slice(0, 5)) {
      for (const client of [a, b]) {
        const error = await client.call("validateSession", { token }).then(() => undefined, (e: unknown) => e as RpcError);
        expect(error?.reason).toBe("ERROR_REASON_SESSION_CLOSED");
      }
    }
    const db = new Database(dbPath, { readonly: true });
    const closedEvents = db.prepare("SELECT count(*) FROM session_events WHERE type = 'closed'").pluck().get();
    db.close();
    expect(closedEvents).toBe(opened.length);
  });

  it("keeps both correct under a mixed load on both: no INTERNAL, the log matches the rows", async () => {
    const { a, b, servers } = await startPair();
    const failures: string[] = [];
    let calls = 0;
    const worker = async (client: TestClient, n: number, until: number) => {
      const userId = `mixed-${n % 4}`; // four users shared by the workers of both processes
      let mine: TestResponse | undefined;
      while (Date.now() < until) {
        try {
          if (mine === undefined) {
            mine = await client.call("openSession", { userId, data: { n } });
          } else if (calls % 5 === 0) {
            await client.call("closeSession", { id: mine.session!.id });
            mine = undefined;
          } else if (calls % 2 === 0) {
            await client.call("storeSessionData", { id: mine.session!.id, data: { n, calls } });
          } else {
            const { newToken } = await client.call("validateSession", { token: mine.token });
            if (newToken) mine.token = newToken;
          }
          calls++;
        } catch (error) {
          // The session limit, or a session another worker's open evicted, are answers; nothing else is.
          const reason = error instanceof RpcError ? error.reason : undefined;
          if (reason === "ERROR_REASON_SESSION_LIMIT" || reason === "ERROR_REASON_SESSION_CLOSED") {
            mine = undefined;
            continue;
          }
          failures.push(String(error));
          return;
        }
      }
    };
    const until = Date.now() + 5000;
    await Promise.all(Array.from({ length: 12 }, (_, n) => worker(n % 2 ? a : b, n, until)));
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(500);
    expectLogMatchesSessions(await allEvents(a), await allSessions(b));
    const errors = await sqliteErrors(servers);
    console.log(`two processes, mixed load: ${calls} calls in 5 s, SQLite errors met (each retried): ${JSON.stringify(errors)}`);
    for (const userId of ["mixed-0", "mixed-1", "mixed-2", "mixed-3"]) {
      const { total } = await b.call("getSessions", { filter: { userId, active: true }, total: true });
      expect(total).toBeLessThanOrEqual(LIMIT);
    }
  });

  it("waits out a lock another process holds, within SESSIONS_DB_LOCK_TIMEOUT, then fails with UNAVAILABLE, never INTERNAL", async () => {
    const { a, b, dbPath, servers } = await startPair({ SESSIONS_DB_LOCK_TIMEOUT: "1500ms" });
    const holder = new Database(dbPath);
    // Held for 600 ms: the writes of both wait, and then succeed.
    holder.exec("BEGIN IMMEDIATE");
    const waiting = settle(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).call("openSession", { userId: `w${i}` })));
    await sleep(600);
    holder.exec("COMMIT");
    const waited = await waiting;
    expect(waited.filter((outcome) => "error" in outcome)).toEqual([]);
    const busy = (await sqliteErrors(servers)).SQLITE_BUSY ?? 0;
    expect(busy).toBeGreaterThan(0); // they did meet the lock, and tried again

    // Held past the budget: UNAVAILABLE, which a client retries; nothing written.
    holder.exec("BEGIN IMMEDIATE");
    const refused = await settle([a, b].map((client) => client.call("openSession", { userId: "late" })));
    holder.exec("ROLLBACK");
    for (const outcome of refused) {
      expect("error" in outcome && { code: outcome.error.code, message: outcome.error.message }).toEqual({
        code: 14,
        message: "the database is locked by another process; nothing was changed; retry",
      });
    }
    const { total } = await a.call("getSessions", { filter: { userId: "late" }, total: true });
    expect(total).toBe(0);
    holder.close();
    await a.call("openSession", { userId: "late" });
  });
});
