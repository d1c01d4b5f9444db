import Database from "better-sqlite3";
import { createHash, createHmac } from "node:crypto";
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

  it.each([
    ["SHA-256", ""],
    ["HMAC-SHA-256 with a pepper", "a pepper of at least thirty-two characters"],
  ])("appear only in OpenSession and renewal responses; never in other responses, logs or the database (%s)", async (_name, pepper) => {
    const dbPath = join(dir.path, "secrets.db");
    server = await startTestServer({
      dbPath,
      tokenPepper: pepper,
      sessions: { renewalIntervalMs: HOUR, idleTimeoutMs: 2 * HOUR },
    });
    const hashOf = (secret: string) =>
      pepper === "" ? createHash("sha256").update(secret).digest() : createHmac("sha256", pepper).update(secret).digest();
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

    // An internal error while a token is being checked: the failure is logged, the token must not be.
    const other = new Database(dbPath);
    other.exec("DROP TABLE retired_tokens");
    other.close();
    const victim = await grpc.call("openSession", { userId: "u2" });
    secrets.push(victim.token!.split(".")[1]!);
    const forged = `${victim.session!.id}.${"A".repeat(43)}`;
    await grpc.call("validateSession", { token: forged }).catch((e: unknown) => otherResponses.push(String(e)));
    secrets.push("A".repeat(43));

    const forms = secrets.flatMap((secret) => {
      const hash = hashOf(secret);
      return [secret, hash.toString("hex"), hash.toString("base64"), hash.toString("base64url")];
    });
    const responses = JSON.stringify(otherResponses);
    const logs = JSON.stringify(server.logs);
    await server.stop();
    const files = [dbPath, `${dbPath}-wal`].filter(existsSync).map((f) => readFileSync(f).toString("latin1"));
    server = undefined;

    expect(secrets).toHaveLength(6);
    expect(logs).toContain("internal error");
    for (const form of forms) {
      expect(responses).not.toContain(form);
      expect(logs).not.toContain(form);
    }
    for (const secret of secrets) {
      for (const file of files) expect(file).not.toContain(secret);
    }
    // The database does hold the hashes (as raw bytes): tokens are checked against them.
    const hash = hashOf(secrets[0]!).toString("latin1");
    expect(files.some((file) => file.includes(hash))).toBe(true);
  });
});
