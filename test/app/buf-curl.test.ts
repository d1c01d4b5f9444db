import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";

const run = promisify(execFile);
const BUF = new URL("../../node_modules/.bin/buf", import.meta.url).pathname;
const ROOT = new URL("../..", import.meta.url).pathname;

/** `buf curl` from the README, an independent Go client, against a live server. */
async function bufCurl(args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(BUF, ["curl", "--schema", "proto", ...args], { cwd: ROOT });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe("buf curl, as the README shows it", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it("opens a session over gRPC on the gRPC port", async () => {
    const url = `http://127.0.0.1:${server.app.grpcPort}/sessions.v1.SessionsService/OpenSession`;
    const out = await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", "-d", '{"user_id":"u1"}', url]);
    expect(out).toMatchObject({ session: { userId: "u1", active: true } });
  });

  it.each([
    ["gRPC", "grpc", "grpcPort", ["--http2-prior-knowledge"]],
    ["HTTP", "grpc", "httpPort", ["--http2-prior-knowledge"]],
    ["HTTP", "connect", "httpPort", []],
    ["HTTP", "grpcweb", "httpPort", []],
  ] as const)("through reflection alone, lists the services on the %s port and calls one with %s", async (_port, protocol, port, extra) => {
    const base = `http://127.0.0.1:${server.app[port]}`;
    const { stdout } = await run(BUF, ["curl", "--protocol", protocol, ...extra, "--list-services", base], { cwd: ROOT });
    expect(stdout.trim().split("\n").sort()).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "sessions.v1.SessionsService",
    ]);
    const call = await run(
      BUF,
      ["curl", "--protocol", protocol, ...extra, "-d", '{"total":true}', `${base}/sessions.v1.SessionsService/GetSessions`],
      { cwd: ROOT },
    );
    expect(JSON.parse(call.stdout)).toHaveProperty("total");
  });

  it.each([
    ["connect", []],
    ["grpcweb", []],
    ["grpc", ["--http2-prior-knowledge"]],
  ])("lists sessions with the %s protocol on the HTTP port", async (protocol, extra) => {
    const url = `http://127.0.0.1:${server.app.httpPort}/sessions.v1.SessionsService/GetSessions`;
    const out = await bufCurl(["--protocol", protocol, ...extra, "-d", '{"total":true}', url]);
    expect(out).toHaveProperty("total");
  });

  it.each([
    ["grpc", "grpcPort", ["--http2-prior-knowledge"], '{"from_oldest":true}'],
    ["connect", "httpPort", [], '{"user_id":"watched","types":["SESSION_EVENT_TYPE_CLOSED","SESSION_EVENT_TYPE_EXPIRED"]}'],
  ] as const)("watches session events with the %s protocol, as the README shows", async (protocol, port, extra, body) => {
    const url = `http://127.0.0.1:${server.app[port]}/sessions.v1.SessionsService/WatchSessionEvents`;
    const watch = spawn(BUF, ["curl", "--protocol", protocol, ...extra, "-d", body, url], { cwd: ROOT });
    let output = "";
    watch.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      // Through reflection, as in the README. The first message comes at once; then a change made now arrives live.
      await expect.poll(() => output, { timeout: 10_000 }).toContain('"cursor"');
      const opened = await bufCurl([
        "--protocol", "grpc", "--http2-prior-knowledge", "-d", '{"user_id":"watched"}',
        `http://127.0.0.1:${server.app.grpcPort}/sessions.v1.SessionsService/OpenSession`,
      ]);
      const id = (opened.session as { id: string }).id;
      await bufCurl([
        "--protocol", "grpc", "--http2-prior-knowledge", "-d", JSON.stringify({ id }),
        `http://127.0.0.1:${server.app.grpcPort}/sessions.v1.SessionsService/CloseSession`,
      ]);
      await expect.poll(() => output, { timeout: 10_000 }).toMatch(
        new RegExp(`"type": "SESSION_EVENT_TYPE_CLOSED",\\s*"sessionId": "${id}"`),
      );
    } finally {
      watch.kill();
    }
  });
});
