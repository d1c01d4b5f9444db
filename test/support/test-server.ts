import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startApp, type App } from "../../src/app.js";
import { DEFAULT_CONFIG, type Config } from "../../src/config.js";
import type { SessionPolicy } from "../../src/session/session-policy.js";
import { createJsonLogger, type Logger } from "../../src/logger.js";
import { FakeClock } from "./fake-clock.js";

export interface TestServer {
  readonly app: App;
  readonly clock: FakeClock;
  readonly config: Config;
  /** Every line the server logged, parsed. */
  readonly logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Settings a test changes; `sessions` is merged into the default policy. */
export type TestConfig = Partial<Omit<Config, "sessions">> & { sessions?: Partial<SessionPolicy> };

/**
 * A real server on ephemeral ports with a fresh in-memory database (or the
 * given file) and a fake clock. No background sweeper unless asked.
 */
export async function startTestServer(overrides: TestConfig = {}, clock = new FakeClock()): Promise<TestServer> {
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = createJsonLogger((line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  const config: Config = {
    ...DEFAULT_CONFIG,
    grpcPort: 0,
    httpPort: 0,
    dbPath: ":memory:",
    sweepIntervalMs: 0,
    shutdownGraceMs: 2000,
    ...overrides,
    sessions: { ...DEFAULT_CONFIG.sessions, ...overrides.sessions },
  };
  const app = await startApp(config, { logger, clock });
  return { app, clock, config, logs, stop: () => app.stop() };
}

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "sessions-test-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
