import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const ROOT = new URL("../..", import.meta.url).pathname;

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Every line it logged so far, parsed. */
  readonly lines: Record<string, unknown>[];
}

/**
 * Starts the built server (`node dist/src/main.js`, built by the global
 * setup) as a real process on ephemeral ports, and waits until it listens.
 * `launcher` runs it under another program (such as strace), which is then
 * the child.
 */
export async function startServerProcess(
  dbPath: string,
  env: Record<string, string> = {},
  launcher: readonly string[] = [],
): Promise<ServerProcess> {
  const [command, ...args] = [...launcher, process.execPath, join(ROOT, "dist/src/main.js")];
  const child = spawn(command!, args, {
    env: {
      PATH: process.env.PATH,
      SESSIONS_DB: dbPath,
      SESSIONS_GRPC_PORT: "0",
      SESSIONS_HTTP_PORT: "0",
      SESSIONS_SHUTDOWN_GRACE: "5s",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: Record<string, unknown>[] = [];
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === "listening") resolve(entry);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  const entry = await listening;
  return { child, grpcPort: entry.grpcPort as number, httpPort: entry.httpPort as number, lines };
}

/** SIGTERM, then the exit code, or "hung" (and SIGKILL) if it takes longer than `ms`. */
export async function terminate(child: ChildProcess, ms: number): Promise<number | null | "hung"> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill("SIGTERM");
  const timer = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), ms));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const result = await Promise.race([exited, timer]);
  if (result === "hung") {
    child.kill("SIGKILL");
    await exited;
  }
  return result;
}

/** SIGKILL: no shutdown, no flush, as a crash or the OOM killer would. */
export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}
