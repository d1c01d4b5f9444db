import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";

describe("request logs", () => {
  let server: TestServer;
  afterEach(() => server.stop());

  it("log each call once with procedure, code, duration and the caller's correlation id, echoed back", async () => {
    server = await startTestServer();
    const response = await fetch(`http://127.0.0.1:${server.app.httpPort}/sessions.v1.SessionsService/GetSessionById`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-123" },
      body: JSON.stringify({ id: "0".repeat(32) }),
    });
    expect(response.status).toBe(404);
    expect(response.headers.get("x-request-id")).toBe("req-123");
    expect(server.logs.filter((line) => line.msg === "rpc")).toEqual([
      {
        time: expect.any(String),
        level: "info",
        msg: "rpc",
        procedure: "/sessions.v1.SessionsService/GetSessionById",
        code: "NOT_FOUND",
        durationMs: expect.any(Number),
        correlationId: "req-123",
        protocol: "connect",
      },
    ]);
  });

  it("generate a correlation id when the caller sends none (or a malformed one), and send it as gRPC metadata", async () => {
    server = await startTestServer();
    const Client = grpc.makeGenericClientConstructor(
      {
        open: {
          path: "/sessions.v1.SessionsService/OpenSession",
          requestStream: false,
          responseStream: false,
          // An empty OpenSessionRequest: no user_id, so INVALID_ARGUMENT.
          requestSerialize: () => Buffer.alloc(0),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "SessionsService",
    );
    const client = new Client(`127.0.0.1:${server.app.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("x-request-id", "not valid!");
    const headers = await new Promise<grpc.Metadata>((resolve) => {
      const open = (client as unknown as { open: (r: Buffer, m: grpc.Metadata, cb: () => void) => grpc.ClientUnaryCall })
        .open;
      const call = open.call(client, Buffer.alloc(0), metadata, () => undefined);
      call.on("metadata", resolve);
    });
    client.close();
    const [id] = headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expect.poll(() => server.logs.find((line) => line.msg === "rpc")).toMatchObject({
      procedure: "/sessions.v1.SessionsService/OpenSession",
      code: "INVALID_ARGUMENT",
      correlationId: id,
      protocol: "grpc",
    });
  });
});
