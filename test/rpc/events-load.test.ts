import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connectBinaryHttp2, connectJsonHttp1, grpcJsClient, grpcOverH2c, RpcError, type TestClient } from "../support/clients.js";
import { allEvents, allSessions, expectLogMatchesSessions } from "../support/event-log-check.js";
import { brief, collectEvents } from "../support/event-streams.js";
import { startTestServer, tempDir } from "../support/test-server.js";

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("events under concurrent load", () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it("match the acknowledged changes exactly, and a live stream sees the same log", async () => {
    const server = await startTestServer({
      dbPath: join(dir.path, "load.db"),
      dbSynchronous: "NORMAL",
      eventHeartbeatMs: 200,
      sessions: { maxSessionsPerUser: 3, sessionLimitPolicy: "evict_oldest" },
    });
    const ports = server.app;
    const clients: TestClient[] = [
      grpcJsClient(ports.grpcPort),
      grpcJsClient(ports.grpcPort),
      connectJsonHttp1(ports.httpPort),
      connectBinaryHttp2(ports.httpPort),
      grpcOverH2c(ports.httpPort),
      grpcJsClient(ports.grpcPort),
    ];
    try {
      // A stream from the live tail, opened before the load.
      let live: string[] = [];
      const watching = collectEvents(clients[0]!, {}, ({ events }) => ((live = events.map(brief)), false), 60_000).catch(
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));

      /** What the responses say must be in the log: TYPE:id:version, or TYPE:id for evictions. */
      const expected: string[] = [];
      let refused = 0;
      const worker = async (client: TestClient, seed: number) => {
        const next = random(seed);
        const mine: { id: string; version: number }[] = [];
        for (let step = 0; step < 60; step++) {
          const roll = next();
          const session = mine[Math.floor(next() * mine.length)];
          try {
            if (roll < 0.3 || session === undefined) {
              const opened = await client.call("openSession", { userId: `user-${Math.floor(next() * 4)}`, client: "web" });
              expected.push(`OPENED:${opened.session!.id}:1`);
              for (const id of opened.evictedSessionIds!) expected.push(`EVICTED:${id}`);
              mine.push({ id: opened.session!.id, version: 1 });
            } else if (roll < 0.55) {
              // Sometimes a stale expected_version: ABORTED, and no event.
              const expectedVersion = next() < 0.2 ? session.version - 1 : session.version;
              const { session: after } = await client.call("storeSessionData", { id: session.id, data: { step }, expectedVersion });
              expected.push(`DATA_STORED:${session.id}:${after!.version}`);
              session.version = after!.version;
            } else if (roll < 0.75) {
              const { session: after } = await client.call("updateSessionUser", { id: session.id, user: { step } });
              expected.push(`USER_UPDATED:${session.id}:${after!.version}`);
              session.version = after!.version;
            } else if (roll < 0.9) {
              const { session: after } = await client.call("closeSession", { id: session.id });
              // Closing a session an eviction closed first changes nothing.
              if (after!.closeReason === "CLOSE_REASON_LOGOUT") expected.push(`CLOSED:${session.id}:${after!.version}:LOGOUT`);
              mine.splice(mine.indexOf(session), 1);
            } else {
              const { session: before } = await client.call("deleteSessionById", { id: session.id });
              expected.push(`DELETED:${session.id}:${before!.version}`);
              mine.splice(mine.indexOf(session), 1);
            }
          } catch (error) {
            if (!(error instanceof RpcError) || ![9, 10].includes(error.code)) throw error;
            refused++;
            if (error.code === 9) mine.splice(mine.indexOf(session!), 1); // evicted meanwhile
          }
        }
      };
      await Promise.all(clients.map((client, i) => worker(client, 1000 + i)));

      const events = await allEvents(clients[1]!);
      const logged = events.map(brief).map((line) => (line.startsWith("EVICTED:") ? line.split(":").slice(0, 2).join(":") : line));
      expect([...logged].sort()).toEqual([...expected].sort());
      expect(refused).toBeGreaterThan(0);
      expect(expected.filter((line) => line.startsWith("EVICTED")).length).toBeGreaterThan(0);
      expectLogMatchesSessions(events, await allSessions(clients[1]!));
      await expect.poll(() => live.length, { timeout: 5000 }).toBe(events.length);
      expect(live).toEqual(events.map(brief));
      expect(await Promise.race([watching, Promise.resolve("still open")])).toBe("still open");
    } finally {
      clients.forEach((client) => client.close());
      await server.stop();
    }
  });
});
