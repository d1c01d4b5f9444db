import Database from "better-sqlite3";
import * as http from "node:http";
import * as http2 from "node:http2";
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

  /** A gRPC(-Web) envelope announcing a 2 GiB message, then `size` bytes of it: refused at the limit, read no further. */
  const oversized = (size: number) => Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]), Buffer.alloc(size, 0x41)]);

  it("leaves an HTTP/1.1 connection usable after refusing a body it did not read to the end", async () => {
    const server = await startTestServer({ maxReceiveMessageBytes: 1024 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (headers: Record<string, string>, body: Buffer) =>
      new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
        const request = http.request(
          { agent, port: server.app.httpPort, method: "POST", path: "/sessions.v1.SessionsService/OpenSession", headers },
          (response) => {
            let text = "";
            response.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
            response.on("end", () => resolve({ status: response.statusCode!, body: text, reused: request.reusedSocket }));
          },
        );
        request.on("error", reject);
        request.end(body);
      });
    try {
      const refused = await post({ "content-type": "application/grpc-web" }, oversized(200_000));
      expect(refused.body).toContain("grpc-status: 8");
      // The next request on the same connection is read and answered.
      const next = await post(JSON_HEADERS, Buffer.from('{"userId":"u1"}'));
      expect(next).toMatchObject({ status: 200, reused: true });
    } finally {
      agent.destroy();
      await server.stop();
    }
  });

  it("keeps an HTTP/2 connection usable however many bodies it refuses unread", async () => {
    const server = await startTestServer({ maxReceiveMessageBytes: 1024 });
    const session = http2.connect(`http://127.0.0.1:${server.app.httpPort}`);
    const call = (headers: http2.OutgoingHttpHeaders, body: Buffer) =>
      new Promise<string>((resolve) => {
        const stream = session.request({ ":method": "POST", ":path": "/sessions.v1.SessionsService/OpenSession", ...headers });
        let status = "";
        stream.on("response", (h) => (status = String(h["grpc-status"] ?? h[":status"])));
        stream.on("trailers", (t) => (status = String(t["grpc-status"] ?? status)));
        stream.on("close", () => resolve(stream.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM ? "refused stream" : status));
        stream.on("error", () => undefined);
        stream.resume();
        stream.end(body);
      });
    try {
      // 16 MB unread in all: past Node's 10 MiB per-connection limit, had it piled up.
      for (let i = 0; i < 80; i++) {
        expect(await call({ "content-type": "application/grpc", te: "trailers" }, oversized(200_000))).toBe("8");
      }
      expect(await call({ "content-type": "application/json" }, Buffer.from('{"userId":"u1"}'))).toBe("200");
    } finally {
      session.close();
      await server.stop();
    }
  });
});
