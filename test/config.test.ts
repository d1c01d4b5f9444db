import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, ConfigError, DEFAULT_CONFIG, formatDuration, parseConfig, parseDuration } from "../src/config.js";

describe("configuration", () => {
  it("uses the documented defaults when nothing is set", () => {
    const config = parseConfig({ PATH: "/usr/bin" });
    expect(config).toEqual(DEFAULT_CONFIG);
    expect(config).toMatchObject({ host: "127.0.0.1", grpcPort: 8090, httpPort: 8080, dbPath: "./data/sessions.db" });
    expect(config.idleTimeoutMs).toBe(24 * 3_600_000);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads every SESSIONS_* variable", () => {
    expect(
      parseConfig({
        SESSIONS_HOST: "0.0.0.0",
        SESSIONS_GRPC_PORT: "0",
        SESSIONS_HTTP_PORT: "9000",
        SESSIONS_DB: ":memory:",
        SESSIONS_DB_SYNCHRONOUS: "NORMAL",
        SESSIONS_IDLE_TIMEOUT: "30m",
        SESSIONS_SWEEP_INTERVAL: "0",
        SESSIONS_MAX_PAGE_SIZE: "250",
        SESSIONS_MAX_DATA_BYTES: "1000",
        SESSIONS_MAX_USER_BYTES: "2000",
        SESSIONS_MAX_MESSAGE_BYTES: "1048576",
        SESSIONS_SHUTDOWN_GRACE: "5s",
      }),
    ).toEqual({
      host: "0.0.0.0",
      grpcPort: 0,
      httpPort: 9000,
      dbPath: ":memory:",
      dbSynchronous: "NORMAL",
      idleTimeoutMs: 1_800_000,
      sweepIntervalMs: 0,
      maxPageSize: 250,
      maxDataBytes: 1000,
      maxUserBytes: 2000,
      maxReceiveMessageBytes: 1_048_576,
      shutdownGraceMs: 5000,
    });
  });

  it("lists every problem at once, naming each variable", () => {
    let error: unknown;
    try {
      parseConfig({
        SESSIONS_GRPC_PORT: "70000",
        SESSIONS_IDLE_TIMEOUT: "0",
        SESSIONS_MAX_PAGE_SIZE: "-3",
        SESSIONS_DB_SYNCHRONOUS: "OFF",
        SESSIONS_PORT: "1",
        SESSIONS_SHUTDOWN_GRACE: "30d",
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      "SESSIONS_PORT: unknown setting",
      'SESSIONS_GRPC_PORT: expected a port from 0 to 65535, got "70000"',
      "SESSIONS_DB_SYNCHRONOUS: expected FULL or NORMAL, got \"OFF\"",
      'SESSIONS_IDLE_TIMEOUT: expected a duration above zero such as 30m or 24h, got "0"',
      'SESSIONS_MAX_PAGE_SIZE: expected a whole number above zero, got "-3"',
      'SESSIONS_SHUTDOWN_GRACE: expected a duration up to 24d such as 10s, got "30d"',
    ]);
  });

  it.each([
    ["250ms", 250],
    ["90s", 90_000],
    ["30m", 1_800_000],
    ["24h", 86_400_000],
    ["7d", 604_800_000],
    ["0", 0],
    ["1.5h", undefined],
    ["10", undefined],
    ["h", undefined],
    ["", undefined],
  ])("parses the duration %j", (raw, expected) => {
    expect(parseDuration(raw)).toBe(expected);
  });

  it.each([0, 250, 90_000, 1_800_000, 86_400_000, 604_800_000, 1500])("formats %i ms so it parses back", (ms) => {
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it("shows defaults in the form a user would write them", () => {
    expect(CONFIG_VARIABLES.find((v) => v.name === "SESSIONS_IDLE_TIMEOUT")?.default).toBe("1d");
    expect(CONFIG_VARIABLES.find((v) => v.name === "SESSIONS_SWEEP_INTERVAL")?.default).toBe("15m");
  });
});
