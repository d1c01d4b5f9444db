import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

const run = promisify(execFile);
const BUF = new URL("../../node_modules/.bin/buf", import.meta.url).pathname;
const SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "sessions.v1.SessionsService",
];

/** buf curl (Go's gRPC stack) against a live server, resolving the schema by reflection only. */
async function bufCurl(args: string[]): Promise<string> {
  const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { cwd: "/" });
  return stdout;
}

/** Sends reflection requests on one stream with an independent grpc-js client; returns the answers. */
async function reflect(port: number, requests: ServerReflectionRequest["messageRequest"][]): Promise<ServerReflectionResponse[]> {
  const Client = grpc.makeGenericClientConstructor({
    info: {
      path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      requestStream: true,
      responseStream: true,
      requestSerialize: (m: ServerReflectionRequest) => Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
      requestDeserialize: (b: Buffer) => fromBinary(ServerReflectionRequestSchema, b),
      responseSerialize: (m: ServerReflectionResponse) => Buffer.from(toBinary(ServerReflectionResponseSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    },
  }, "ServerReflection");
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = (client as unknown as { info: () => grpc.ClientDuplexStream<ServerReflectionRequest, ServerReflectionResponse> }).info();
  const answers: ServerReflectionResponse[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on("data", (answer: ServerReflectionResponse) => answers.push(answer));
    call.on("error", reject);
    call.on("status", (status: grpc.StatusObject) => (status.code === 0 ? resolve() : reject(new Error(status.details))));
  });
  for (const messageRequest of requests) call.write(create(ServerReflectionRequestSchema, { messageRequest }));
  call.end();
  await done;
  client.close();
  return answers;
}

const fileNames = (answer: ServerReflectionResponse | undefined) =>
  answer?.messageResponse.case === "fileDescriptorResponse"
    ? answer.messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name)
    : [];

describe("reflection and health", () => {
  let server: TestServer | undefined;
  const dir = tempDir();
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    dir.remove();
  });

  it("lets buf curl list and call every service by reflection alone, on both ports and both reflection versions", async () => {
    server = await startTestServer();
    for (const port of [server.app.grpcPort, server.app.httpPort]) {
      const listed = (await bufCurl(["--list-services", `http://127.0.0.1:${port}`])).trim().split("\n");
      expect(listed).toEqual(SERVICES);
      const alpha = await bufCurl(["--reflect-protocol", "grpc-v1alpha", "--list-methods", `http://127.0.0.1:${port}`]);
      expect(alpha).toContain("sessions.v1.SessionsService/ValidateSession");
      const opened = JSON.parse(
        await bufCurl(["-d", '{"user_id":"u1","data":{"a":[1]}}', `http://127.0.0.1:${port}/sessions.v1.SessionsService/OpenSession`]),
      ) as { session: { data: unknown }; token: string };
      expect(opened.session.data).toEqual({ a: [1] });
      expect(opened.token).toMatch(/\./);
    }
  });

  it("serves the real file descriptors, each dependency once per stream", async () => {
    server = await startTestServer();
    const answers = await reflect(server.app.grpcPort, [
      { case: "fileByFilename", value: "sessions/v1/sessions.proto" },
      { case: "fileContainingSymbol", value: "sessions.v1.SessionsService.ValidateSession" },
      { case: "fileContainingSymbol", value: "google.protobuf.Duration" },
      { case: "fileContainingSymbol", value: "sessions.v1.Session.expire_time" },
      { case: "fileContainingSymbol", value: "no.such.Symbol" },
      { case: "listServices", value: "" },
    ]);
    expect(fileNames(answers[0])).toEqual([
      "sessions/v1/sessions.proto",
      "google/protobuf/duration.proto",
      "google/protobuf/struct.proto",
      "google/protobuf/timestamp.proto",
    ]);
    const file = fromBinary(FileDescriptorProtoSchema, (answers[0]!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto[0]!);
    expect(file.package).toBe("sessions.v1");
    expect(file.dependency).toEqual(["google/protobuf/duration.proto", "google/protobuf/struct.proto", "google/protobuf/timestamp.proto"]);
    expect(file.service[0]?.method.find((m) => m.name === "OpenSession")?.inputType).toBe(".sessions.v1.OpenSessionRequest");
    expect(fileNames(answers[1])).toEqual(["sessions/v1/sessions.proto"]);
    expect(fileNames(answers[2])).toEqual(["google/protobuf/duration.proto"]);
    expect(fileNames(answers[3])).toEqual(["sessions/v1/sessions.proto"]);
    expect(answers[4]?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    expect(answers[5]?.messageResponse.case).toBe("listServicesResponse");
    expect(answers.every((answer) => answer.originalRequest !== undefined)).toBe(true);
  });

  it("reports SERVING for the server and the sessions service, NOT_FOUND for others", async () => {
    server = await startTestServer();
    for (const port of [server.app.grpcPort, server.app.httpPort]) {
      const url = `http://127.0.0.1:${port}/grpc.health.v1.Health/Check`;
      expect(JSON.parse(await bufCurl(["-d", "{}", url]))).toEqual({ status: "SERVING" });
      expect(JSON.parse(await bufCurl(["-d", '{"service":"sessions.v1.SessionsService"}', url]))).toEqual({ status: "SERVING" });
      await expect(bufCurl(["-d", '{"service":"nope"}', url])).rejects.toThrow(/not_found/);
    }
  });

  it("goes NOT_SERVING, and not ready, while the database is unusable, and back once it is", async () => {
    const dbPath = join(dir.path, "health.db");
    server = await startTestServer({ dbPath, healthCheckIntervalMs: 20 });
    const ready = async () => (await fetch(`http://127.0.0.1:${server!.app.httpPort}/readyz`)).status;
    expect(await ready()).toBe(200);
    const other = new Database(dbPath);
    other.exec("ALTER TABLE sessions RENAME TO sessions_away");
    await expect.poll(ready, { timeout: 5000 }).toBe(503);
    expect(JSON.parse(await bufCurl(["-d", "{}", `http://127.0.0.1:${server.app.grpcPort}/grpc.health.v1.Health/Check`]))).toEqual({
      status: "NOT_SERVING",
    });
    other.exec("ALTER TABLE sessions_away RENAME TO sessions");
    other.close();
    await expect.poll(ready, { timeout: 5000 }).toBe(200);
    expect(server.logs).toContainEqual(expect.objectContaining({ msg: "database unusable" }));
    const liveness = await fetch(`http://127.0.0.1:${server.app.httpPort}/healthz`);
    expect([liveness.status, await liveness.text()]).toEqual([200, "ok\n"]);
    expect((await fetch(`http://127.0.0.1:${server.app.httpPort}/nothing-here`)).status).toBe(404);
  });

  it("tells a Watch about shutdown, then ends it", async () => {
    server = await startTestServer();
    const watch = execFile(BUF, [
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", "{}",
      `http://127.0.0.1:${server.app.grpcPort}/grpc.health.v1.Health/Watch`,
    ]);
    let output = "";
    watch.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => watch.on("exit", resolve));
    await expect.poll(() => output, { timeout: 5000 }).toContain("SERVING");
    const stopping = server.stop();
    server = undefined;
    expect(await exited).toBe(0);
    await stopping;
    expect(output.match(/"status": "(\w+)"/g)).toEqual(['"status": "SERVING"', '"status": "NOT_SERVING"']);
  });
});
