import Database from "better-sqlite3";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectJsonHttp1, grpcJsClient, RpcError, type TestClient } from "../support/clients.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

const JSON_HEADERS = { "content-type": "application/json" };

describe("the wire, beyond what every client shares", () => {
  let server: TestServer;
  let grpcClient: TestClient;
  beforeEach(async () => {
    server = await startTestServer();
    grpcClient = grpcJsClient(server.app.grpcPort);
  });
  afterEach(async () => {
    grpcClient.close();
    await server.stop();
  });

  const post = (method: string, body: unknown) =>
    fetch(`http://127.0.0.1:${server.app.httpPort}/sessions.v1.SessionsService/${method}`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify(body),
    });

  it("speaks plain Connect JSON, as curl would", async () => {
    const opened = await post("OpenSession", { userId: "u1", data: { a: 1 } });
    expect(opened.status).toBe(200);
    expect(opened.headers.get("content-type")).toBe("application/json");
    const { session } = (await opened.json()) as { session: Record<string, unknown> };
    expect(session).toMatchObject({ userId: "u1", active: true, data: { a: 1 } });
    expect(session.openTime).toBe("2026-01-01T00:00:00Z");

    const missing = await post("GetSessionById", { id: "0".repeat(32) });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ code: "not_found", message: `session ${"0".repeat(32)} not found` });
  });

  it("serves side-effect-free reads as Connect GET requests", async () => {
    const { session } = (await (await post("OpenSession", { userId: "u1" })).json()) as { session: { id: string } };
    const message = encodeURIComponent(JSON.stringify({ id: session.id }));
    const response = await fetch(
      `http://127.0.0.1:${server.app.httpPort}/sessions.v1.SessionsService/GetSessionById?connect=v1&encoding=json&message=${message}`,
    );
    expect(response.status).toBe(200);
    expect(((await response.json()) as { session: { id: string } }).session.id).toBe(session.id);
  });

  it("ignores unknown JSON fields, as binary protobuf does, and refuses wrong JSON types", async () => {
    const unknown = await post("OpenSession", { userId: "u1", fieldFromANewerClient: "x" });
    expect(unknown.status).toBe(200);
    const wrongType = await post("GetSessions", { take: "many" });
    expect(wrongType.status).toBe(400);
    expect(await wrongType.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("take") });
  });

  it("answers 404 for a path that is no RPC", async () => {
    const response = await post("NoSuchMethod", {});
    expect(response.status).toBe(404);
  });

  it("refuses a data value that is not JSON (NaN) over gRPC", async () => {
    const error = await grpcClient
      .call("openSession", { userId: "u1", data: Number.NaN })
      .then(() => undefined, (e: unknown) => e as RpcError);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.message).toMatch(/^data: must be a JSON value/);
  });

  it("refuses an invalid timestamp over gRPC, naming the field", async () => {
    const error = await grpcClient
      .call("getSessions", { filter: { toTime: { seconds: "1", nanos: -1 } as never } })
      .then(() => undefined, (e: unknown) => e as RpcError);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.message).toBe("filter.to_time: is not a valid timestamp");
  });
});

describe("internal errors over real sockets", () => {
  const dir = tempDir();
  afterEach(() => dir.remove());

  it("hide the database's message from both ports and log it", async () => {
    const path = join(dir.path, "broken.db");
    const server = await startTestServer({ dbPath: path });
    const grpcClient = grpcJsClient(server.app.grpcPort);
    const httpClient = connectJsonHttp1(server.app.httpPort);
    try {
      const other = new Database(path);
      other.exec("DROP TABLE sessions");
      other.close();
      for (const client of [grpcClient, httpClient]) {
        const error = await client
          .call("openSession", { userId: "u1" })
          .then(() => undefined, (e: unknown) => e as RpcError);
        expect(error?.code).toBe(grpc.status.INTERNAL);
        expect(error?.message).toBe("internal error");
      }
      const logged = server.logs.filter((line) => line.level === "error");
      expect(logged).toHaveLength(2);
      expect(JSON.stringify(logged)).toContain("no such table");
    } finally {
      grpcClient.close();
      await server.stop().catch(() => undefined);
    }
  });
});

describe("the receive limit", () => {
  it("refuses a request over the limit with RESOURCE_EXHAUSTED on both ports", async () => {
    const server = await startTestServer({ maxReceiveMessageBytes: 1024 });
    const clients = [grpcJsClient(server.app.grpcPort), connectJsonHttp1(server.app.httpPort)];
    try {
      for (const client of clients) {
        const error = await client
          .call("openSession", { userId: "u1", data: "x".repeat(2048) })
          .then(() => undefined, (e: unknown) => e as RpcError);
        expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
        await expect(client.call("openSession", { userId: "u1", data: "x".repeat(512) })).resolves.toBeDefined();
      }
    } finally {
      clients.forEach((client) => client.close());
      await server.stop();
    }
  });
});
