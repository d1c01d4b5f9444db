import { execFile } from "node:child_process";
import { cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

const run = promisify(execFile);
const ROOT = new URL("../..", import.meta.url).pathname;
// Debian's grpcio and protobuf are seen by /usr/bin/python3, not by a python3 earlier on PATH.
const PYTHON = "/usr/bin/python3";

/**
 * Interop with an independent gRPC implementation: Python grpcio from Debian, with stubs made
 * by protoc + grpc_python_plugin at test time. Needs the Debian packages python3-grpcio,
 * python3-protobuf, protobuf-compiler and protobuf-compiler-grpc (.ci/run installs them).
 */
describe("a Python grpcio client", () => {
  const dir = tempDir();
  let server: TestServer;
  beforeAll(async () => {
    // The health and reflection protos go under other folders than grpc/, so that the
    // generated modules do not shadow the grpc package itself.
    const protos = join(dir.path, "protos");
    mkdirSync(protos);
    cpSync(join(ROOT, "proto/sessions"), join(protos, "sessions"), { recursive: true });
    cpSync(join(ROOT, "third_party/proto/grpc/health"), join(protos, "health"), { recursive: true });
    cpSync(join(ROOT, "third_party/proto/grpc/reflection"), join(protos, "reflection"), { recursive: true });
    const stubs = join(dir.path, "stubs");
    mkdirSync(stubs);
    const plugin = (await run("which", ["grpc_python_plugin"])).stdout.trim();
    await run("protoc", [
      `-I${protos}`,
      `--python_out=${stubs}`,
      `--grpc_out=${stubs}`,
      `--plugin=protoc-gen-grpc=${plugin}`,
      "sessions/v1/sessions.proto",
      "health/v1/health.proto",
      "reflection/v1/reflection.proto",
    ]);
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
    dir.remove();
  });

  it("checks health, lists services by reflection, opens, validates and lists sessions, and reads an error code", async () => {
    const { stdout } = await run(PYTHON, [
      join(ROOT, "test/interop/python_client.py"),
      join(dir.path, "stubs"),
      `127.0.0.1:${server.app.grpcPort}`,
    ]);
    expect(JSON.parse(stdout)).toEqual({
      health: "SERVING",
      services: [
        "sessions.v1.SessionsService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ],
      opened_user: "py-user",
      validated_same_id: true,
      data: { cart: [1, 2] },
      bad_token: "UNAUTHENTICATED",
      bad_token_has_details: true,
      total: 1,
    });
  });
});
