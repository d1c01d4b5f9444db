import Database from "better-sqlite3";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grpcJsClient, RpcError, type TestClient } from "../support/clients.js";
import { allEvents, allSessions, expectLogMatchesSessions } from "../support/event-log-check.js";
import { kill, startServerProcess, terminate, type ServerProcess } from "../support/server-process.js";
import { tempDir } from "../support/test-server.js";
import { randomSource } from "./random.js";

const CYCLES = 24;
const WORKERS = 6;

/**
 * Quick renewals (so validations rotate tokens while the server is killed),
 * every validation recorded, and debug logs: everything the server logs in
 * the whole run is scanned for tokens at the end.
 */
const ENV = {
  SESSIONS_RENEWAL_INTERVAL: "150ms",
  SESSIONS_RENEWAL_GRACE: "50ms",
  SESSIONS_TOUCH_INTERVAL: "0",
  SESSIONS_LOG_LEVEL: "debug",
};

/** What the clients were told, per session. */
interface Known {
  readonly id: string;
  readonly userId: string;
  /** The last token a call returned. */
  token: string;
  /** Version and data of the last acknowledged change. */
  version: number;
  data: unknown;
  closed: boolean;
  /**
   * A call on it got no answer (the server was killed): its outcome is
   * unknown, so only what was acknowledged before is checked, and the
   * session is not used again.
   */
  uncertain: boolean;
}

/** A call cut off by the kill: no answer, so its outcome is unknown. */
const cutOff = (error: unknown) => error instanceof RpcError && [1, 4, 14].includes(error.code);

describe("crashes: SIGKILL at random points under concurrent load, restart on the same file", () => {
  const dir = tempDir();
  const processes: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(processes.map((server) => terminate(server.child, 5000)));
    dir.remove();
  });

  it(`keeps every acknowledged change, applies nothing by halves, and stays intact, over ${CYCLES} kills`, async () => {
    const random = randomSource("CRASH_SEED");
    const dbPath = join(dir.path, "crash.db");
    const known = new Map<string, Known>();
    const tokens: string[] = [];
    const unexpected: string[] = [];
    const logs: Record<string, unknown>[][] = [];
    let acknowledged = 0;
    let cutOffCalls = 0;

    const checkRestarted = async (client: TestClient, cycle: number) => {
      for (const session of known.values()) {
        const where = `cycle ${cycle}, session ${session.id}`;
        const { session: row } = await client.call("getSessionById", { id: session.id }).catch((error: unknown) => {
          throw new Error(`${where}: acknowledged as opened, missing after the restart: ${String(error)}`);
        });
        if (session.uncertain) {
          // Whatever the cut-off call did, what was acknowledged before it holds.
          expect(row!.version, where).toBeGreaterThanOrEqual(session.version);
          if (session.closed) expect(row!.active, where).toBe(false);
          continue;
        }
        expect({ version: row!.version, active: row!.active, data: row!.data }, where).toEqual({
          version: session.version,
          active: !session.closed,
          data: session.closed ? undefined : session.data,
        });
        if (!session.closed) {
          // The last token given out is the one in force: a rotation it came from was whole.
          const validated = await client.call("validateSession", { token: session.token });
          expect(validated.session?.id, where).toBe(session.id);
          if (validated.newToken) {
            session.token = validated.newToken;
            tokens.push(validated.newToken);
          }
        }
      }
    };

    const worker = async (client: TestClient, n: number, stop: { now: boolean }) => {
      const userId = `user-${n}`;
      const mine = () => [...known.values()].filter((s) => s.userId === userId && !s.closed && !s.uncertain);
      while (!stop.now) {
        const live = mine();
        const session = live.length === 0 ? undefined : live[random.int(live.length)]!;
        const op = session === undefined || (live.length < 3 && random.int(4) === 0) ? "open" : random.pick(["store", "validate", "validate", "close"]);
        try {
          if (op === "open") {
            const opened = await client.call("openSession", { userId, data: { n } });
            tokens.push(opened.token!);
            known.set(opened.session!.id, {
              id: opened.session!.id,
              userId,
              token: opened.token!,
              version: opened.session!.version,
              data: { n },
              closed: false,
              uncertain: false,
            });
          } else if (op === "store") {
            const data = { n, value: random.int(1_000_000) };
            const { session: stored } = await client.call("storeSessionData", { id: session!.id, data });
            Object.assign(session!, { version: stored!.version, data });
          } else if (op === "validate") {
            const validated = await client.call("validateSession", { token: session!.token });
            if (validated.newToken) {
              tokens.push(validated.newToken);
              session!.token = validated.newToken;
            }
          } else {
            const { session: closed } = await client.call("closeSession", { id: session!.id });
            Object.assign(session!, { version: closed!.version, closed: true });
          }
          acknowledged++;
        } catch (error) {
          if (!cutOff(error)) {
            unexpected.push(`${op}: ${String(error)}`);
            return;
          }
          cutOffCalls++;
          if (session !== undefined) session.uncertain = true;
          stop.now = true;
        }
      }
    };

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const server = await startServerProcess(dbPath, ENV);
      processes.push(server);
      logs.push(server.lines);
      const checker = grpcJsClient(server.grpcPort);
      await checkRestarted(checker, cycle);
      checker.close();

      const clients = Array.from({ length: WORKERS }, () => grpcJsClient(server.grpcPort));
      const stops = clients.map(() => ({ now: false }));
      const load = Promise.all(clients.map((client, n) => worker(client, n, stops[n]!)));
      await new Promise((resolve) => setTimeout(resolve, 150 + random.int(500)));
      await kill(server.child);
      await load;
      clients.forEach((client) => client.close());
      expect(unexpected, `cycle ${cycle}`).toEqual([]);

      // While no server runs: the file is intact, and each rotation is whole.
      const db = new Database(dbPath);
      expect(db.pragma("integrity_check", { simple: true }), `cycle ${cycle}`).toBe("ok");
      const partial = db
        .prepare(
          `SELECT s.id, s.prev_token_hash IS NOT NULL AS has_prev,
                  (SELECT count(*) FROM session_events e WHERE e.session_id = s.id AND e.type = 'renewed') AS renewals,
                  (SELECT count(*) FROM retired_tokens r WHERE r.session_id = s.id) AS retired
           FROM sessions s`,
        )
        .all() as { id: string; has_prev: number; renewals: number; retired: number }[];
      const broken = partial.filter((s) => s.has_prev !== (s.renewals > 0 ? 1 : 0) || s.retired !== Math.max(0, s.renewals - 1));
      expect(broken, `cycle ${cycle}: rotations applied by halves`).toEqual([]);
      db.close();
    }

    const server = await startServerProcess(dbPath, ENV);
    processes.push(server);
    logs.push(server.lines);
    const reader = grpcJsClient(server.grpcPort);
    try {
      await checkRestarted(reader, CYCLES);
      // The event log and the rows agree: nothing committed without its event, or the reverse.
      expectLogMatchesSessions(await allEvents(reader), await allSessions(reader));
    } finally {
      reader.close();
    }
    expect(await terminate(server.child, 10_000)).toBe(0);

    console.log(
      `crash test: ${CYCLES} SIGKILLs, ${acknowledged} acknowledged calls, ${cutOffCalls} cut off, ` +
        `${known.size} sessions, ${tokens.length} tokens, seed ${random.seed}`,
    );
    expect(acknowledged).toBeGreaterThan(CYCLES * 20);
    expect(cutOffCalls).toBeGreaterThan(0);

    // No token, nor a token's secret, in anything the server logged, or in the database files.
    const logged = JSON.stringify(logs);
    const files = [dbPath, `${dbPath}-wal`].filter(existsSync).map((file) => readFileSync(file).toString("latin1"));
    const leaked = tokens.filter((token) => {
      const secret = token.split(".")[1]!;
      return logged.includes(secret) || files.some((file) => file.includes(secret));
    });
    expect(leaked).toEqual([]);
    expect(logged.length).toBeGreaterThan(10_000);
  });
});
