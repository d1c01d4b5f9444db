import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { grpcJsClient, RpcError, type TestClient } from "../support/clients.js";
import { kill, startServerProcess, terminate, type ServerProcess } from "../support/server-process.js";
import { tempDir } from "../support/test-server.js";

// Every validation records its activity: small writes go on while the disk is full.
const ENV = { SESSIONS_HEALTH_CHECK_INTERVAL: "100ms", SESSIONS_SWEEP_INTERVAL: "0", SESSIONS_TOUCH_INTERVAL: "0" };
const FULL_MESSAGE = "the database is full (its disk or its size limit); nothing was changed";

/** grpc.health.v1.Health/Check for the whole server, by hand: the request is empty, the status is field 1. */
async function healthStatus(port: number): Promise<"SERVING" | "NOT_SERVING" | string> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const answer = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (error, value) => (error ? reject(error) : resolve(value!)),
      ),
    );
    return ({ 1: "SERVING", 2: "NOT_SERVING" } as Record<number, string>)[answer[1] ?? 0] ?? answer.toString("hex");
  } finally {
    client.close();
  }
}

/**
 * The disk fills: the database lives on a 1 MiB tmpfs (mounting one needs
 * root, as .ci/run has). Writes are refused with RESOURCE_EXHAUSTED and the
 * server reports NOT_SERVING; what was acknowledged stays, through a crash
 * on the full disk too; once there is room, it serves again by itself.
 */
describe("a full disk", () => {
  const dir = tempDir();
  const mount = join(dir.path, "small");
  const processes: ServerProcess[] = [];
  const clients: TestClient[] = [];
  afterAll(async () => {
    clients.forEach((client) => client.close());
    await Promise.all(processes.map((server) => terminate(server.child, 5000)));
    try {
      execFileSync("umount", [mount]);
    } finally {
      dir.remove();
    }
  });

  it("refuses writes with RESOURCE_EXHAUSTED, goes NOT_SERVING, keeps what it acknowledged, and recovers once there is room", async () => {
    mkdirSync(mount);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], { stdio: "pipe" });
    } catch (error) {
      throw new Error(`this test mounts a small tmpfs, which needs root (CAP_SYS_ADMIN): ${String(error)}`);
    }
    const dbPath = join(mount, "sessions.db");
    let server = await startServerProcess(dbPath, ENV);
    processes.push(server);
    let client = grpcJsClient(server.grpcPort);
    clients.push(client);
    const ready = async () => (await fetch(`http://127.0.0.1:${server.httpPort}/readyz`)).status;
    expect(await ready()).toBe(200);

    const acknowledged: { id: string; token: string }[] = [];
    let refusal: RpcError | undefined;
    for (let i = 0; i < 500 && refusal === undefined; i++) {
      await client.call("openSession", { userId: `u${i % 10}`, data: { pad: "x".repeat(8000), i } }).then(
        ({ session, token }) => acknowledged.push({ id: session!.id, token: token! }),
        (error: unknown) => (refusal = error as RpcError),
      );
    }
    expect(acknowledged.length).toBeGreaterThan(10);
    expect({ code: refusal?.code, message: refusal?.message }).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, message: FULL_MESSAGE });
    await expect.poll(ready, { timeout: 5000 }).toBe(503);
    expect(await healthStatus(server.grpcPort)).toBe("NOT_SERVING");
    const logged = server.lines.filter((line) => line.msg === "database unusable");
    expect(logged).toHaveLength(1);
    expect(JSON.stringify(logged[0])).toContain("SQLITE_FULL");
    // Reads still answer; small writes that fit do not make it look healthy (no flapping).
    const first = acknowledged[0]!;
    expect((await client.call("getSessionById", { id: first.id })).session?.data).toMatchObject({ i: 0 });
    for (const { token } of acknowledged.slice(0, 10)) await client.call("validateSession", { token }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await ready()).toBe(503);
    expect(server.lines.filter((line) => line.msg === "database unusable")).toHaveLength(1);

    // A crash while the disk is full, and a restart on it.
    await kill(server.child);
    client.close();
    server = await startServerProcess(dbPath, ENV);
    processes.push(server);
    client = grpcJsClient(server.grpcPort);
    clients.push(client);
    const again = await client.call("openSession", { userId: "after", data: { pad: "x".repeat(8000) } }).then(
      () => undefined,
      (error: unknown) => error as RpcError,
    );
    expect(again?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expect.poll(ready, { timeout: 5000 }).toBe(503);

    // Room again: serving by itself, with no restart.
    execFileSync("mount", ["-o", "remount,size=32m", mount]);
    await expect.poll(ready, { timeout: 5000 }).toBe(200);
    expect(await healthStatus(server.grpcPort)).toBe("SERVING");
    expect(server.lines.some((line) => line.msg === "database usable again")).toBe(true);
    await client.call("openSession", { userId: "after", data: { pad: "x".repeat(8000) } });
    for (const { id, token } of acknowledged) {
      expect((await client.call("validateSession", { token })).session?.id).toBe(id);
    }
    client.close();
    expect(await terminate(server.child, 10_000)).toBe(0);

    const db = new Database(dbPath, { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(db.prepare("SELECT count(*) FROM sessions").pluck().get()).toBe(acknowledged.length + 1);
    db.close();
    console.log(`full disk: ${acknowledged.length} sessions acknowledged on a 1 MiB tmpfs before the first refusal`);
  });
});
