import { execFile } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grpcJsClient, RpcError, type TestClient } from "../support/clients.js";
import * as net from "node:net";
import { makeCertificates } from "../support/certificates.js";
import { ROOT, startServerProcess, terminate } from "../support/server-process.js";
import { tempDir } from "../support/test-server.js";

describe("a graceful restart under load", () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it("exits 0 on SIGTERM and loses no acknowledged write", async () => {
    const dbPath = join(dir.path, "restart.db");
    const first = await startServerProcess(dbPath);
    /** For each session: the last data counter acknowledged, and the last one attempted. */
    const acked = new Map<string, { acked: number; attempted: number }>();
    let stopped = false;
    const worker = async (client: TestClient) => {
      while (!stopped) {
        try {
          const { session } = await client.call("openSession", { userId: "load", data: { n: 0 } });
          const record = { acked: 0, attempted: 0 };
          acked.set(session!.id, record);
          for (let n = 1; n <= 5 && !stopped; n++) {
            record.attempted = n;
            await client.call("storeSessionData", { id: session!.id, data: { n } });
            record.acked = n;
          }
        } catch (error) {
          if (!(error instanceof RpcError) || error.code !== 14 /* UNAVAILABLE */) throw error;
          stopped = true;
        }
      }
    };
    const clients = Array.from({ length: 6 }, () => grpcJsClient(first.grpcPort));
    const load = Promise.all(clients.map(worker));
    await new Promise((resolve) => setTimeout(resolve, 400));
    first.child.kill("SIGTERM");
    const [code] = (await once(first.child, "exit")) as [number | null];
    stopped = true;
    await load;
    clients.forEach((client) => client.close());
    expect(code).toBe(0);
    expect(first.lines.map((line) => line.msg)).toEqual(expect.arrayContaining(["shutting down", "stopped"]));
    expect(acked.size).toBeGreaterThan(10);

    const second = await startServerProcess(dbPath);
    const reader = grpcJsClient(second.grpcPort);
    try {
      for (const [id, { acked: ackedN, attempted }] of acked) {
        const { session } = await reader.call("getSessionById", { id });
        const n = (session!.data as { n: number }).n;
        expect(n).toBeGreaterThanOrEqual(ackedN);
        expect(n).toBeLessThanOrEqual(attempted);
      }
    } finally {
      reader.close();
      second.child.kill("SIGTERM");
      await once(second.child, "exit");
    }
  });

  it("exits within the grace even while a client holds a connection that never speaks", async () => {
    const server = await startServerProcess(join(dir.path, "idle.db"), { SESSIONS_SHUTDOWN_GRACE: "500ms" });
    const silent = [net.connect(server.grpcPort, "127.0.0.1"), net.connect(server.httpPort, "127.0.0.1")];
    // The server resets these at the end of its grace: expected, not an error of the test.
    silent.forEach((socket) => socket.on("error", () => undefined));
    await Promise.all(silent.map((socket) => once(socket, "connect")));
    expect(await terminate(server.child, 5000)).toBe(0);
    silent.forEach((socket) => socket.destroy());
  });

  it("exits 0 on SIGTERM with TLS while a Watch is open on the HTTP port", async () => {
    const certs = makeCertificates(dir.path);
    const server = await startServerProcess(join(dir.path, "tls.db"), {
      SESSIONS_TLS_CERT: certs.serverCert,
      SESSIONS_TLS_KEY: certs.serverKey,
      SESSIONS_SHUTDOWN_GRACE: "1s",
    });
    const watch = execFile(join(ROOT, "node_modules/.bin/buf"), [
      "curl", "--cacert", certs.caCert, "--schema", join(ROOT, "third_party/proto"), "-d", "{}",
      `https://localhost:${server.httpPort}/grpc.health.v1.Health/Watch`,
    ]);
    let output = "";
    watch.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await expect.poll(() => output, { timeout: 10_000 }).toContain("SERVING");
    expect(await terminate(server.child, 10_000)).toBe(0);
    expect(server.lines.map((line) => line.msg)).toContain("stopped");
    watch.kill();
  });
});
