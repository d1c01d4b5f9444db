import { createHash } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connectJsonHttp1, grpcJsClient, type TestClient } from "../support/clients.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

const HOUR = 3_600_000;

describe("session tokens stay secret", () => {
  const dir = tempDir();
  let server: TestServer | undefined;
  const clients: TestClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await server?.stop();
    dir.remove();
  });

  it("appear only in OpenSession and renewal responses; never in other responses, logs or the database", async () => {
    const dbPath = join(dir.path, "secrets.db");
    server = await startTestServer({ dbPath, sessions: { renewalIntervalMs: HOUR, idleTimeoutMs: 2 * HOUR } });
    const grpc = grpcJsClient(server.app.grpcPort);
    const http = connectJsonHttp1(server.app.httpPort);
    clients.push(grpc, http);

    const secrets: string[] = [];
    const otherResponses: unknown[] = [];
    for (const client of [grpc, http]) {
      const opened = await client.call("openSession", { userId: "u1", data: { a: 1 }, user: { b: 2 } });
      secrets.push(opened.token!.split(".")[1]!);
      const id = opened.session!.id;
      otherResponses.push(
        opened.session,
        await client.call("validateSession", { token: opened.token, includeData: true }),
        await client.call("getSessionById", { id }),
        await client.call("getSessions", { includeData: true }),
        await client.call("storeSessionData", { id, data: 3 }),
        await client.call("updateSessionUser", { id, user: 4 }),
      );
      server.clock.advance(HOUR);
      const renewed = await client.call("validateSession", { token: opened.token });
      secrets.push(renewed.newToken!.split(".")[1]!);
      otherResponses.push(renewed.session, await client.call("closeSession", { id }));
      await client.call("validateSession", { token: "bogus" }).catch((e: unknown) => otherResponses.push(String(e)));
    }

    const forms = secrets.flatMap((secret) => {
      const hash = createHash("sha256").update(secret).digest();
      return [secret, hash.toString("hex"), hash.toString("base64"), hash.toString("base64url")];
    });
    const responses = JSON.stringify(otherResponses);
    const logs = JSON.stringify(server.logs);
    await server.stop();
    const files = [dbPath, `${dbPath}-wal`].filter(existsSync).map((f) => readFileSync(f).toString("latin1"));
    server = undefined;

    expect(secrets).toHaveLength(4);
    for (const form of forms) {
      expect(responses).not.toContain(form);
      expect(logs).not.toContain(form);
    }
    for (const secret of secrets) {
      for (const file of files) expect(file).not.toContain(secret);
    }
    // The database does hold the hashes (as raw bytes): tokens are checked against them.
    const hash = createHash("sha256").update(secrets[0]!).digest().toString("latin1");
    expect(files.some((file) => file.includes(hash))).toBe(true);
  });
});
