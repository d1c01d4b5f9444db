import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { connectJsonHttp1, grpcJsClient, RpcError, type TestClient } from "../support/clients.js";
import { startTestServer, type TestServer, type TestConfig } from "../support/test-server.js";

const BUF = new URL("../../node_modules/.bin/buf", import.meta.url).pathname;
const GATEWAY_KEY = "gateway-key-0123456789";
const ADMIN_KEY = "admin-key-9876543210";
const sha256 = (key: string) => createHash("sha256").update(key).digest("hex");
const KEYS: TestConfig = {
  apiKeys: [
    { name: "edge", role: "gateway", sha256: sha256(GATEWAY_KEY) },
    { name: "ops", role: "admin", sha256: sha256(ADMIN_KEY) },
  ],
};

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 0,
    (error: unknown) => (error instanceof RpcError ? error.code : -1),
  );

describe("API keys", () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await server.stop();
  });
  const both = (headers: Record<string, string> = {}) => {
    const pair = [grpcJsClient(server.app.grpcPort, headers), connectJsonHttp1(server.app.httpPort, headers)];
    clients.push(...pair);
    return pair;
  };

  it("refuse calls without a valid key, and limit gateway keys to the gateway's methods, on both ports", async () => {
    server = await startTestServer(KEYS);
    for (const client of both()) {
      expect(await codeOf(client.call("openSession", { userId: "u1" }))).toBe(16);
    }
    for (const client of both({ authorization: "Bearer wrong-key" })) {
      expect(await codeOf(client.call("openSession", { userId: "u1" }))).toBe(16);
    }
    for (const client of both({ authorization: `Bearer ${GATEWAY_KEY}` })) {
      const { session, token } = await client.call("openSession", { userId: "u1" });
      expect((await client.call("validateSession", { token })).session!.id).toBe(session!.id);
      expect(await codeOf(client.call("getSessions", {}))).toBe(7);
      expect(await codeOf(client.call("closeUserSessions", { userId: "u1" }))).toBe(7);
    }
    for (const client of both({ authorization: `Bearer ${ADMIN_KEY}` })) {
      expect((await client.call("getSessions", { total: true })).total).toBe(2);
    }
    const error = await both()[1]!
      .call("openSession", { userId: "u1" })
      .then(() => undefined, (e: unknown) => e as RpcError);
    expect(error?.message).toBe("missing API key: send the header authorization: Bearer <key>");
    expect(server.logs.filter((line) => line.msg === "rpc" && line.code === "UNAUTHENTICATED")).toHaveLength(5);
    expect(JSON.stringify(server.logs)).not.toContain(GATEWAY_KEY);
  });

  it("leave health open, and reflection open unless configured otherwise", async () => {
    server = await startTestServer(KEYS);
    const curl = (args: string[]) =>
      promisify(execFile)(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args]).then((r) => r.stdout);
    const grpcUrl = `http://127.0.0.1:${server.app.grpcPort}`;
    expect(JSON.parse(await curl(["-d", "{}", `${grpcUrl}/grpc.health.v1.Health/Check`]))).toEqual({ status: "SERVING" });
    expect(await curl(["--list-services", grpcUrl])).toContain("sessions.v1.SessionsService");
    await server.stop();

    server = await startTestServer({ ...KEYS, reflectionRequiresKey: true });
    const url = `http://127.0.0.1:${server.app.grpcPort}`;
    // buf curl words an UNAUTHENTICATED answer as "you are not authenticated".
    await expect(curl(["--list-services", url])).rejects.toThrow(/not authenticated|unauthenticated/);
    const withKey = await curl(["--reflect-header", `authorization: Bearer ${GATEWAY_KEY}`, "--list-services", url]);
    expect(withKey).toContain("sessions.v1.SessionsService");
    // The key goes with the reflection requests only; the health check itself carries none.
    const reflectOnly = ["--reflect-header", `authorization: Bearer ${GATEWAY_KEY}`];
    expect(JSON.parse(await curl([...reflectOnly, "-d", "{}", `${url}/grpc.health.v1.Health/Check`]))).toEqual({
      status: "SERVING",
    });
  });
});
