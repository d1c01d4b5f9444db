import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CONFIG_VARIABLES,
  ConfigError,
  DEFAULT_CONFIG,
  formatDuration,
  parseConfig,
  parseDuration,
} from "../src/config.js";

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    parseConfig({ env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  return [];
}

describe("configuration", () => {
  it("uses the documented defaults when nothing is set", () => {
    const config = parseConfig({ env: { PATH: "/usr/bin" } });
    expect(config).toEqual(DEFAULT_CONFIG);
    expect(config).toMatchObject({ host: "127.0.0.1", grpcPort: 8090, httpPort: 8080, dbPath: "./data/sessions.db" });
    expect(config.sessions).toMatchObject({
      idleTimeoutMs: 30 * 60_000,
      absoluteTimeoutMs: 24 * 3_600_000,
      touchIntervalMs: 60_000,
      renewalIntervalMs: 12 * 3_600_000,
      renewalGraceMs: 30_000,
      binding: { kind: "none" },
      sessionLimitPolicy: "deny",
    });
    expect(config.retentionMs).toBe(30 * 86_400_000);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.sessions)).toBe(true);
  });

  it("reads every SESSIONS_* variable", () => {
    const config = parseConfig({ env: {
      SESSIONS_HOST: "0.0.0.0",
      SESSIONS_GRPC_PORT: "0",
      SESSIONS_HTTP_PORT: "9000",
      SESSIONS_DB: ":memory:",
      SESSIONS_DB_SYNCHRONOUS: "NORMAL",
      SESSIONS_DB_CACHE_MIB: "16",
      SESSIONS_DB_LOCK_TIMEOUT: "3s",
      SESSIONS_MAX_MESSAGE_BYTES: "1048576",
      SESSIONS_SHUTDOWN_GRACE: "5s",
      SESSIONS_SWEEP_INTERVAL: "0",
      SESSIONS_RETENTION: "7d",
      SESSIONS_HEALTH_CHECK_INTERVAL: "2s",
      SESSIONS_EVENT_RETENTION: "3d",
      SESSIONS_EVENT_POLL_INTERVAL: "250ms",
      SESSIONS_EVENT_HEARTBEAT: "30s",
      SESSIONS_MAX_EVENT_STREAMS: "8",
      SESSIONS_LOG_LEVEL: "warn",
      SESSIONS_API_KEYS: "edge:gateway:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, ops:admin:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
      SESSIONS_REFLECTION_REQUIRES_KEY: "true",
      SESSIONS_TLS_CERT: "/certs/server.crt",
      SESSIONS_TLS_KEY: "/certs/server.key",
      SESSIONS_TLS_CLIENT_CA: "/certs/ca.crt",
      SESSIONS_TOKEN_PEPPER: "p".repeat(32),
      SESSIONS_IDLE_TIMEOUT: "15m",
      SESSIONS_ABSOLUTE_TIMEOUT: "8h",
      SESSIONS_MAX_IDLE_TIMEOUT: "2h",
      SESSIONS_MAX_ABSOLUTE_TIMEOUT: "7d",
      SESSIONS_TOUCH_INTERVAL: "30s",
      SESSIONS_RENEWAL_INTERVAL: "1h",
      SESSIONS_RENEWAL_GRACE: "10s",
      SESSIONS_MAX_SESSIONS_PER_USER: "5",
      SESSIONS_MAX_SESSIONS_PER_CLIENT: "web=3, ios = 1",
      SESSIONS_SESSION_LIMIT_POLICY: "evict_least_recently_used",
      SESSIONS_BINDING: "address",
      SESSIONS_BINDING_IPV4_PREFIX: "16",
      SESSIONS_BINDING_IPV6_PREFIX: "48",
      SESSIONS_MAX_PAGE_SIZE: "250",
      SESSIONS_MAX_DATA_BYTES: "1000",
      SESSIONS_MAX_USER_BYTES: "2000",
    } });
    expect(config).toEqual({
      host: "0.0.0.0",
      grpcPort: 0,
      httpPort: 9000,
      dbPath: ":memory:",
      dbSynchronous: "NORMAL",
      dbCacheMib: 16,
      dbLockTimeoutMs: 3000,
      maxReceiveMessageBytes: 1_048_576,
      shutdownGraceMs: 5000,
      sweepIntervalMs: 0,
      retentionMs: 7 * 86_400_000,
      healthCheckIntervalMs: 2000,
      eventRetentionMs: 3 * 86_400_000,
      eventPollIntervalMs: 250,
      eventHeartbeatMs: 30_000,
      maxEventStreams: 8,
      logLevel: "warn",
      apiKeys: [
        { name: "edge", role: "gateway", sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
        { name: "ops", role: "admin", sha256: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" },
      ],
      reflectionRequiresKey: true,
      tlsCertFile: "/certs/server.crt",
      tlsKeyFile: "/certs/server.key",
      tlsClientCaFile: "/certs/ca.crt",
      tokenPepper: "p".repeat(32),
      sessions: {
        idleTimeoutMs: 15 * 60_000,
        absoluteTimeoutMs: 8 * 3_600_000,
        maxIdleTimeoutMs: 2 * 3_600_000,
        maxAbsoluteTimeoutMs: 7 * 86_400_000,
        touchIntervalMs: 30_000,
        renewalIntervalMs: 3_600_000,
        renewalGraceMs: 10_000,
        maxSessionsPerUser: 5,
        maxSessionsPerClient: { web: 3, ios: 1 },
        sessionLimitPolicy: "evict_least_recently_used",
        binding: { kind: "address", ipv4PrefixBits: 16, ipv6PrefixBits: 48 },
        maxPageSize: 250,
        maxDataBytes: 1000,
        maxUserBytes: 2000,
      },
    });
  });

  it("lists every problem at once, naming each variable", () => {
    expect(
      [...problemsOf({
        SESSIONS_GRPC_PORT: "70000",
        SESSIONS_IDLE_TIMEOUT: "0",
        SESSIONS_MAX_PAGE_SIZE: "-3",
        SESSIONS_DB_SYNCHRONOUS: "OFF",
        SESSIONS_PORT: "1",
        SESSIONS_SHUTDOWN_GRACE: "30d",
        SESSIONS_MAX_SESSIONS_PER_CLIENT: "web",
        SESSIONS_BINDING_IPV4_PREFIX: "33",
      })].sort(),
    ).toEqual([
      "SESSIONS_PORT: unknown setting",
      'SESSIONS_GRPC_PORT: expected a port from 0 to 65535, got "70000"',
      'SESSIONS_DB_SYNCHRONOUS: expected FULL or NORMAL, got "OFF"',
      'SESSIONS_SHUTDOWN_GRACE: expected a duration up to 24d such as 10s, got "30d"',
      'SESSIONS_IDLE_TIMEOUT: expected a duration such as 90s, 30m, 24h or 7d, above zero, got "0"',
      'SESSIONS_MAX_SESSIONS_PER_CLIENT: expected client=limit pairs separated by commas, such as web=5,ios=2, got "web"',
      'SESSIONS_BINDING_IPV4_PREFIX: expected a prefix length from 1 to 32, got "33"',
      'SESSIONS_MAX_PAGE_SIZE: expected a whole number above zero, got "-3"',
    ].sort());
  });

  it("refuses inconsistent timeouts", () => {
    expect(
      problemsOf({
        SESSIONS_IDLE_TIMEOUT: "2d",
        SESSIONS_ABSOLUTE_TIMEOUT: "60d",
        SESSIONS_TOUCH_INTERVAL: "3d",
        SESSIONS_RENEWAL_INTERVAL: "30s",
      }),
    ).toEqual([
      "SESSIONS_IDLE_TIMEOUT: must not exceed SESSIONS_MAX_IDLE_TIMEOUT",
      "SESSIONS_ABSOLUTE_TIMEOUT: must not exceed SESSIONS_MAX_ABSOLUTE_TIMEOUT",
      "SESSIONS_TOUCH_INTERVAL: must be shorter than SESSIONS_IDLE_TIMEOUT",
      "SESSIONS_RENEWAL_GRACE: must be shorter than SESSIONS_RENEWAL_INTERVAL",
    ]);
    expect(problemsOf({ SESSIONS_RENEWAL_INTERVAL: "0", SESSIONS_BINDING_IPV6_PREFIX: "0" })).toEqual([
      'SESSIONS_BINDING_IPV6_PREFIX: expected a prefix length from 1 to 128, got "0"',
    ]);
  });

  it("wants a TLS certificate and key together, and TLS under mTLS", () => {
    expect(problemsOf({ SESSIONS_TLS_CERT: "a.crt" })).toEqual(["SESSIONS_TLS_CERT and SESSIONS_TLS_KEY: give both or neither"]);
    expect(problemsOf({ SESSIONS_TLS_CLIENT_CA: "ca.crt" })).toEqual([
      "SESSIONS_TLS_CLIENT_CA: needs SESSIONS_TLS_CERT and SESSIONS_TLS_KEY (mTLS is on top of TLS)",
    ]);
  });

  it("refuses an API key entry that is not name:role:sha256, without repeating it", () => {
    const problems = problemsOf({ SESSIONS_API_KEYS: "edge:gateway:my-raw-secret-key" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^SESSIONS_API_KEYS: expected name:role:sha256-hex entries/);
    expect(problems[0]).not.toContain("my-raw-secret-key");
  });

  it("refuses to require keys for reflection when there are none", () => {
    expect(problemsOf({ SESSIONS_REFLECTION_REQUIRES_KEY: "true" })).toEqual([
      "SESSIONS_REFLECTION_REQUIRES_KEY: needs SESSIONS_API_KEYS (without keys, nothing can be required)",
    ]);
  });

  it("lets an empty variable undo a file's TLS and API keys", () => {
    const files: Record<string, string> = {
      "tls.yaml": `tls_cert: a.crt\ntls_key: a.key\napi_keys: "x:admin:${"c".repeat(64)}"\n`,
    };
    const config = parseConfig({
      env: { SESSIONS_TLS_CERT: "", SESSIONS_TLS_KEY: "", SESSIONS_API_KEYS: "" },
      argv: ["--config", "tls.yaml"],
      readFile: (path) => files[path]!,
    });
    expect([config.tlsCertFile, config.tlsKeyFile, config.apiKeys]).toEqual(["", "", []]);
  });

  it("never repeats the token pepper in a message", () => {
    const problems = problemsOf({ SESSIONS_TOKEN_PEPPER: "too-short-secret" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).not.toContain("too-short-secret");
    expect(CONFIG_VARIABLES.find((v) => v.name === "SESSIONS_TOKEN_PEPPER")?.default).toBe("none: plain SHA-256");
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
    const shown = (name: string) => CONFIG_VARIABLES.find((v) => v.name === name)?.default;
    expect(shown("SESSIONS_IDLE_TIMEOUT")).toBe("30m");
    expect(shown("SESSIONS_RENEWAL_INTERVAL")).toBe("12h");
    expect(shown("SESSIONS_SWEEP_INTERVAL")).toBe("1m");
  });

  describe("sources", () => {
    const files: Record<string, string> = {
      "base.yaml": "grpc_port: 9001\nidle_timeout: 10m\nmax_sessions_per_client:\n  web: 5\n  kiosk: 1\n",
      "base.json": '{"http_port": 9002, "binding": "client"}',
      "unknown.yaml": "grpc_port: 1\ncolour: blue\n",
      "broken.yaml": "grpc_port: [1,\n",
      "list.yaml": "- 1\n- 2\n",
    };
    const readFile = (path: string) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
      return text;
    };
    const problems = (argv: string[], env: Record<string, string> = {}) => {
      try {
        parseConfig({ env, argv, readFile });
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };

    it("loads config.example.yaml, which documents the defaults", () => {
      const config = parseConfig({
        env: {},
        argv: ["--config", "config.example.yaml"],
        readFile: (path) => readFileSync(new URL(`../${path}`, import.meta.url), "utf8"),
      });
      expect(config).toEqual(DEFAULT_CONFIG);
    });

    it("layers the file, then environment variables, then flags", () => {
      const config = parseConfig({
        env: { SESSIONS_CONFIG: "base.yaml", SESSIONS_GRPC_PORT: "9010", SESSIONS_IDLE_TIMEOUT: "20m" },
        argv: ["--idle-timeout", "5m", "--http-port=9020"],
        readFile,
      });
      expect(config.grpcPort).toBe(9010);
      expect(config.httpPort).toBe(9020);
      expect(config.sessions.idleTimeoutMs).toBe(5 * 60_000);
      expect(config.sessions.maxSessionsPerClient).toEqual({ web: 5, kiosk: 1 });
    });

    it("reads JSON files, and --config overrides SESSIONS_CONFIG", () => {
      const config = parseConfig({ env: { SESSIONS_CONFIG: "base.yaml" }, argv: ["--config=base.json"], readFile });
      expect(config.httpPort).toBe(9002);
      expect(config.grpcPort).toBe(8090);
      expect(config.sessions.binding).toEqual({ kind: "client" });
    });

    it("names every problem by where it was written", () => {
      expect(problems(["--config", "unknown.yaml", "--colour", "red", "--grpc-port", "x", "stray", "--host"])).toEqual([
        "--colour: unknown flag",
        "stray: not a flag (flags are --name value or --name=value)",
        "--host: needs a value",
        "unknown.yaml: colour: unknown key",
        '--grpc-port: expected a port from 0 to 65535, got "x"',
      ]);
      expect(problems(["--config", "broken.yaml"])[0]).toMatch(/^broken.yaml: cannot be read: /);
      expect(problems(["--config", "missing.yaml"])).toEqual(["missing.yaml: cannot be read: ENOENT: no such file, open 'missing.yaml'"]);
      expect(problems(["--config", "list.yaml"])).toEqual(["list.yaml: must be a mapping of setting names to values"]);
    });
  });
});
