import { existsSync } from "node:fs";
import { join } from "node:path";
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connectJsonHttp1, grpcJsClient } from "../support/clients.js";
import { startTestServer, tempDir } from "../support/test-server.js";
import { FakeClock } from "../support/fake-clock.js";

const dir = tempDir();
afterEach(() => dir.remove());

const refusesConnections = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });

describe("the app", () => {
  it("keeps sessions across a restart on the same database file", async () => {
    const dbPath = join(dir.path, "data", "sessions.db");
    const clock = new FakeClock();
    const first = await startTestServer({ dbPath }, clock);
    const client = grpcJsClient(first.app.grpcPort);
    const { session } = await client.call("openSession", { userId: "u1", data: { kept: true } });
    const stored = await client.call("storeSessionData", { id: session!.id, data: { kept: "yes" } });
    client.close();
    await first.stop();

    const second = await startTestServer({ dbPath }, clock);
    const http = connectJsonHttp1(second.app.httpPort);
    expect((await http.call("getSessionById", { id: session!.id })).session).toEqual(stored.session);
    await second.stop();
  });

  it("closes expired sessions and purges old ones on its own schedule", async () => {
    const server = await startTestServer({
      sweepIntervalMs: 20,
      retentionMs: 5000,
      sessions: { idleTimeoutMs: 2000, touchIntervalMs: 0 },
    });
    const client = connectJsonHttp1(server.app.httpPort);
    try {
      const { session } = await client.call("openSession", { userId: "u1" });
      server.clock.advance(2000);
      await expect
        .poll(async () => (await client.call("getSessionById", { id: session!.id })).session!.closeReason, {
          timeout: 5000,
        })
        .toBe("CLOSE_REASON_EXPIRED_IDLE");
      server.clock.advance(5001);
      await expect
        .poll(async () => (await client.call("getSessions", { total: true })).total, { timeout: 5000 })
        .toBe(0);
      expect(server.logs).toContainEqual(expect.objectContaining({ msg: "swept sessions", closed: 1, purged: 0 }));
      expect(server.logs).toContainEqual(expect.objectContaining({ msg: "swept sessions", closed: 0, purged: 1 }));
    } finally {
      await server.stop();
    }
  });

  it("stops listening on both ports when stopped", async () => {
    const server = await startTestServer();
    const { grpcPort, httpPort } = server.app;
    expect(await refusesConnections(grpcPort)).toBe(false);
    await server.stop();
    expect(await refusesConnections(grpcPort)).toBe(true);
    expect(await refusesConnections(httpPort)).toBe(true);
  });

  it("fails to start, and releases the port it had bound, when the HTTP port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    const grpcPort = await freePort();
    const dbPath = join(dir.path, "start-failure.db");
    try {
      await expect(startTestServer({ grpcPort, httpPort: taken, dbPath })).rejects.toThrow(/EADDRINUSE/);
      expect(await refusesConnections(grpcPort)).toBe(true);
      // SQLite removes the WAL file when the last connection closes: the store was closed.
      expect(existsSync(`${dbPath}-wal`)).toBe(false);
      expect(existsSync(dbPath)).toBe(true);
    } finally {
      blocker.close();
    }
  });
});

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
