import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { grpcJsClient } from "../support/clients.js";
import { kill, startServerProcess, type ServerProcess } from "../support/server-process.js";
import { tempDir } from "../support/test-server.js";

const CALLS = 20;

/**
 * Power loss cannot be staged here, but what it would cost can be read off
 * the system calls: an acknowledged write survives it if its WAL frames were
 * synced (fsync/fdatasync of the -wal file) before the acknowledgement left
 * on the socket. The server runs under strace; each write call is sent and
 * answered one at a time.
 */
describe("power loss: when acknowledgements leave, relative to the WAL's sync", () => {
  const dirs: { remove: () => void }[] = [];
  const servers: ServerProcess[] = [];
  afterEach(async () => {
    // If a test failed half-way: strace (which takes the server down with it) and the server.
    for (const server of servers.splice(0)) {
      const children = `/proc/${server.child.pid}/task/${server.child.pid}/children`;
      if (existsSync(children)) {
        for (const pid of readFileSync(children, "utf8").trim().split(" ").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
      }
      await kill(server.child);
    }
    dirs.splice(0).forEach((dir) => dir.remove());
  });

  const traceWrites = async (synchronous: "FULL" | "NORMAL") => {
    const dir = tempDir();
    dirs.push(dir);
    const trace = join(dir.path, "strace.txt");
    const launcher = ["strace", "-f", "-y", "-e", "trace=pwrite64,fsync,fdatasync,write,writev,sendmsg", "-o", trace];
    const server = await startServerProcess(join(dir.path, "sessions.db"), { SESSIONS_DB_SYNCHRONOUS: synchronous }, launcher);
    servers.push(server);
    const client = grpcJsClient(server.grpcPort);
    for (let i = 0; i < CALLS; i++) {
      const { session } = await client.call("openSession", { userId: `u${i}` });
      await client.call("storeSessionData", { id: session!.id, data: { i } });
    }
    client.close();
    // The child is strace; the server is its child.
    const pid = Number(readFileSync(`/proc/${server.child.pid}/task/${server.child.pid}/children`, "utf8").trim().split(" ")[0]);
    const exited = once(server.child, "exit");
    process.kill(pid, "SIGTERM");
    await exited;

    let unsynced = false;
    let acksBeforeSync = 0;
    let walSyncs = 0;
    let socketWrites = 0;
    for (const line of readFileSync(trace, "utf8").split("\n")) {
      const call = /^\d+ +(\w+)\(\d+<([^>]*)>/.exec(line);
      if (call === null) continue;
      const [, name, file] = call;
      const wal = file!.endsWith("-wal");
      if (name === "pwrite64" && wal) unsynced = true;
      else if ((name === "fsync" || name === "fdatasync") && wal) {
        unsynced = false;
        walSyncs++;
      } else if (name !== "pwrite64" && file!.startsWith("socket:")) {
        socketWrites++;
        if (unsynced) {
          acksBeforeSync++;
          unsynced = false; // counted once per commit
        }
      }
    }
    return { acksBeforeSync, walSyncs, socketWrites };
  };

  it("FULL: every acknowledgement leaves after its commit is synced to disk", async () => {
    const { acksBeforeSync, walSyncs, socketWrites } = await traceWrites("FULL");
    console.log(`synchronous=FULL: ${2 * CALLS} writes acknowledged, ${walSyncs} WAL syncs, ${socketWrites} socket writes, ${acksBeforeSync} before their sync`);
    expect(socketWrites).toBeGreaterThanOrEqual(2 * CALLS);
    expect(walSyncs).toBeGreaterThanOrEqual(2 * CALLS);
    expect(acksBeforeSync).toBe(0);
  });

  it("NORMAL: acknowledgements leave before the WAL is synced, so a power loss can take them (a crash cannot)", async () => {
    const { acksBeforeSync, walSyncs } = await traceWrites("NORMAL");
    console.log(`synchronous=NORMAL: ${2 * CALLS} writes acknowledged, ${walSyncs} WAL syncs, ${acksBeforeSync} before their sync`);
    expect(acksBeforeSync).toBeGreaterThanOrEqual(2 * CALLS);
  });
});
