import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grpcJsClient, RpcError, type TestClient } from "../support/clients.js";
import { allEvents, allSessions, expectLogMatchesSessions } from "../support/event-log-check.js";
import { brief, collectEvents, seqOf } from "../support/event-streams.js";
import { kill, startServerProcess, terminate, type ServerProcess } from "../support/server-process.js";
import { startTestServer, tempDir } from "../support/test-server.js";

/** Settings of the server processes: quick heartbeats and cross-process notices. */
const ENV = { SESSIONS_EVENT_HEARTBEAT: "200ms", SESSIONS_EVENT_POLL_INTERVAL: "20ms" };

describe("session events across processes and crashes", () => {
  const dir = tempDir();
  const processes: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(processes.map((server) => terminate(server.child, 5000)));
    dir.remove();
  });

  it("delivers events another server process commits to a stream on this one, in commit order", async () => {
    const dbPath = join(dir.path, "shared.db");
    // No heartbeat in this test: only the notice of another process's commit may wake the stream.
    const here = await startTestServer({ dbPath, eventPollIntervalMs: 20, eventHeartbeatMs: 600_000 });
    const there = await startServerProcess(dbPath, ENV);
    processes.push(there);
    const local = grpcJsClient(here.app.grpcPort);
    const remote = grpcJsClient(there.grpcPort);
    try {
      let received: string[] = [];
      const watching = collectEvents(local, {}, ({ events }) => ((received = events.map(brief)), false), 30_000).catch(
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      const expected: string[] = [];
      const write = async (client: TestClient, userId: string) => {
        for (let i = 0; i < 25; i++) {
          const { session } = await client.call("openSession", { userId });
          expected.push(`OPENED:${session!.id}:1`);
          await client.call("storeSessionData", { id: session!.id, data: { i } });
          expected.push(`DATA_STORED:${session!.id}:2`);
          await client.call("closeSession", { id: session!.id });
          expected.push(`CLOSED:${session!.id}:3:LOGOUT`);
        }
      };
      // First the other process alone, then both at once.
      await Promise.all([write(remote, "remote-a"), write(remote, "remote-b")]);
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(expected.length);
      await Promise.all([write(remote, "remote-c"), write(local, "local")]);
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(expected.length);
      expect([...received].sort()).toEqual([...expected].sort());
      // In commit order, which is seq order, with no gap: the same as a fresh read of the log.
      const log = await allEvents(remote);
      expect(received).toEqual(log.map(brief));
      expect(log.map((event) => seqOf(event.cursor))).toEqual(log.map((_, i) => i + 1));
      expect(await Promise.race([watching, Promise.resolve("still open")])).toBe("still open");
    } finally {
      local.close();
      remote.close();
      await here.stop();
    }
  });

  it("loses no committed event when the server is killed (SIGKILL) under load, again and again", async () => {
    const dbPath = join(dir.path, "killed.db");
    /** Changes acknowledged to a client, as the events they must have written. */
    const acknowledged: string[] = [];
    /** What the streams delivered, each cycle resuming where the crash cut the last one off. */
    const delivered: string[] = [];
    let lastCursor = "";
    for (let cycle = 0; cycle < 4; cycle++) {
      const server = await startServerProcess(dbPath, ENV);
      processes.push(server);
      const clients = Array.from({ length: 4 }, () => grpcJsClient(server.grpcPort));
      // A stream resumed from the last cursor seen before the previous crash.
      let resumed: string[] = [];
      const watching = collectEvents(
        clients[0]!,
        lastCursor === "" ? { fromOldest: true } : { afterCursor: lastCursor },
        ({ events }) => {
          resumed = events.map(brief);
          if (events.length > 0) lastCursor = events.at(-1)!.cursor;
          return false;
        },
        30_000,
      ).catch((error: unknown) => error);
      let crashed = false;
      const worker = async (client: TestClient, n: number) => {
        while (!crashed) {
          try {
            const { session } = await client.call("openSession", { userId: `user-${n}` });
            acknowledged.push(`OPENED:${session!.id}:1`);
            const { session: stored } = await client.call("storeSessionData", { id: session!.id, data: { n } });
            acknowledged.push(`DATA_STORED:${session!.id}:${stored!.version}`);
            if (n % 2 === 0) {
              const { session: closed } = await client.call("closeSession", { id: session!.id });
              acknowledged.push(`CLOSED:${session!.id}:${closed!.version}:LOGOUT`);
            }
          } catch (error) {
            if (!(error instanceof RpcError) || error.code !== 14 /* UNAVAILABLE */) throw error;
            crashed = true;
          }
        }
      };
      const load = Promise.all(clients.map((client, n) => worker(client, n)));
      await new Promise((resolve) => setTimeout(resolve, 300 + 150 * cycle));
      await kill(server.child);
      crashed = true;
      await load;
      await watching;
      clients.forEach((client) => client.close());
      expect(resumed.length, `cycle ${cycle}`).toBeGreaterThan(0);
      delivered.push(...resumed);
    }

    const server = await startServerProcess(dbPath, ENV);
    processes.push(server);
    const reader = grpcJsClient(server.grpcPort);
    try {
      const events = await allEvents(reader);
      const logged = new Set(events.map(brief));
      expect(acknowledged.filter((change) => !logged.has(change))).toEqual([]);
      expect(acknowledged.length).toBeGreaterThan(100);
      // Resuming after each crash missed nothing and repeated nothing.
      expect(delivered).toEqual(events.slice(0, delivered.length).map(brief));
      // And nothing more than what committed: the log and the rows agree.
      expectLogMatchesSessions(events, await allSessions(reader));
    } finally {
      reader.close();
    }
  });
});
