import Database from "better-sqlite3";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectJsonHttp1, grpcJsClient, type RpcError, type TestClient } from "../support/clients.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

/**
 * A database that cannot be used when the server starts does not stop it: the
 * server listens, reports NOT_SERVING (and not ready), refuses calls with
 * UNAVAILABLE, logs why once, and serves by itself once the cause is fixed.
 */
describe("a database unusable at start-up", () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  let server: TestServer | undefined;
  const clients: TestClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await server?.stop();
    server = undefined;
    dir.remove();
  });

  const ready = async () => (await fetch(`http://127.0.0.1:${server!.app.httpPort}/readyz`)).status;
  const refusals = async () => {
    const grpcClient = grpcJsClient(server!.app.grpcPort);
    const httpClient = connectJsonHttp1(server!.app.httpPort);
    clients.push(grpcClient, httpClient);
    const errors: (RpcError | undefined)[] = [];
    for (const client of [grpcClient, httpClient]) {
      errors.push(await client.call("openSession", { userId: "u1" }).then(() => undefined, (e: unknown) => e as RpcError));
    }
    return errors;
  };
  const expectRecovery = async () => {
    await expect.poll(ready, { timeout: 5000 }).toBe(200);
    const client = grpcJsClient(server!.app.grpcPort);
    clients.push(client);
    const opened = await client.call("openSession", { userId: "u1" });
    expect((await client.call("validateSession", { token: opened.token })).session?.id).toBe(opened.session!.id);
    expect(server!.logs.filter((line) => line.msg === "database usable again")).toHaveLength(1);
  };

  it("when its folder cannot be created (a file is in the way): NOT_SERVING, UNAVAILABLE, then serving once fixed", async () => {
    const blocker = join(dir.path, "data");
    writeFileSync(blocker, "not a folder");
    server = await startTestServer({ dbPath: join(blocker, "sessions.db"), healthCheckIntervalMs: 20, sweepIntervalMs: 20 });
    expect(await ready()).toBe(503);
    for (const error of await refusals()) {
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(error?.message).toBe("the database is not open yet (the server's log says why); retry");
    }
    // Probed every 20 ms, the lasting problem is logged once, with its cause.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const logged = server.logs.filter((line) => line.msg === "database unusable");
    expect(logged).toHaveLength(1);
    // Nor does the sweeper, running every 20 ms meanwhile, log its failures.
    expect(server.logs.filter((line) => line.msg === "sweep failed")).toEqual([]);
    expect(JSON.stringify(logged[0])).toMatch(/EEXIST|ENOTDIR/);
    rmSync(blocker);
    mkdirSync(blocker);
    await expectRecovery();
  });

  it("when another process holds its write lock: NOT_SERVING, then serving once the lock is released", async () => {
    const dbPath = join(dir.path, "locked.db");
    const other = new Database(dbPath);
    other.pragma("journal_mode = WAL");
    other.exec("BEGIN IMMEDIATE");
    // A new file: its schema is still to be written, under the lock.
    server = await startTestServer({ dbPath, healthCheckIntervalMs: 20, dbLockTimeoutMs: 100 });
    expect(await ready()).toBe(503);
    expect((await refusals()).map((error) => error?.code)).toEqual([grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE]);
    expect(JSON.stringify(server.logs.find((line) => line.msg === "database unusable"))).toContain("database is locked");
    other.exec("COMMIT");
    other.close();
    await expectRecovery();
  });

  it("whose schema is newer than this server's: the server does not start (no retry can fix that)", async () => {
    const dbPath = join(dir.path, "newer.db");
    const other = new Database(dbPath);
    other.pragma("user_version = 999");
    other.close();
    await expect(startTestServer({ dbPath })).rejects.toThrow("database schema version 999 is newer than this server supports");
  });
});
