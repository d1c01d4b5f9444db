/** The service's whole configuration, parsed and validated once at start-up. */
export interface Config {
  /** Interface both listeners bind to. Default 127.0.0.1. */
  readonly host: string;
  /** gRPC (grpc-js) port. Default 8090; 0 picks a free port. */
  readonly grpcPort: number;
  /** HTTP port: Connect, gRPC-Web and gRPC. Default 8080; 0 picks a free port. */
  readonly httpPort: number;
  /** SQLite file, or ":memory:". Default ./data/sessions.db. */
  readonly dbPath: string;
  /** FULL: acknowledged writes survive power loss. NORMAL: only a crash. Default FULL. */
  readonly dbSynchronous: "FULL" | "NORMAL";
  /** An active session idle for longer than this is expired. Default 24 h. */
  readonly idleTimeoutMs: number;
  /** How often the server closes expired sessions on its own; 0 never. Default 15 min. */
  readonly sweepIntervalMs: number;
  /** Cap on `take` in GetSessions. Default 1000. */
  readonly maxPageSize: number;
  /** Largest session data accepted, as JSON text in bytes. Default 64 KiB. */
  readonly maxDataBytes: number;
  /** Largest cached user record accepted, as JSON text in bytes. Default 64 KiB. */
  readonly maxUserBytes: number;
  /** Largest request message accepted on either port, in bytes. Default 4 MiB. */
  readonly maxReceiveMessageBytes: number;
  /** How long in-flight calls may run on shutdown before being cancelled. Default 10 s. */
  readonly shutdownGraceMs: number;
}

export const DEFAULT_CONFIG: Config = Object.freeze({
  host: "127.0.0.1",
  grpcPort: 8090,
  httpPort: 8080,
  dbPath: "./data/sessions.db",
  dbSynchronous: "FULL",
  idleTimeoutMs: 24 * 60 * 60 * 1000,
  sweepIntervalMs: 15 * 60 * 1000,
  maxPageSize: 1000,
  maxDataBytes: 64 * 1024,
  maxUserBytes: 64 * 1024,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  shutdownGraceMs: 10_000,
});

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_KEYS = new Set<keyof Config>(["idleTimeoutMs", "sweepIntervalMs", "shutdownGraceMs"]);

/** Start-up stopped because the configuration is wrong; lists every problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

type Parser<T> = (raw: string) => T | undefined;

/** Each environment variable, what it sets, how it is parsed, and what it means. */
const VARIABLES: readonly {
  name: string;
  key: keyof Config;
  parse: Parser<Config[keyof Config]>;
  expected: string;
}[] = [
  { name: "SESSIONS_HOST", key: "host", parse: (raw) => raw || undefined, expected: "a host name or IP address" },
  { name: "SESSIONS_GRPC_PORT", key: "grpcPort", parse: parsePort, expected: "a port from 0 to 65535" },
  { name: "SESSIONS_HTTP_PORT", key: "httpPort", parse: parsePort, expected: "a port from 0 to 65535" },
  { name: "SESSIONS_DB", key: "dbPath", parse: (raw) => raw || undefined, expected: 'a file path or ":memory:"' },
  {
    name: "SESSIONS_DB_SYNCHRONOUS",
    key: "dbSynchronous",
    parse: (raw) => (raw === "FULL" || raw === "NORMAL" ? raw : undefined),
    expected: "FULL or NORMAL",
  },
  { name: "SESSIONS_IDLE_TIMEOUT", key: "idleTimeoutMs", parse: positive(parseDuration), expected: "a duration above zero such as 30m or 24h" },
  { name: "SESSIONS_SWEEP_INTERVAL", key: "sweepIntervalMs", parse: timer(parseDuration), expected: "a duration up to 24d such as 15m, or 0 to disable" },
  { name: "SESSIONS_MAX_PAGE_SIZE", key: "maxPageSize", parse: positive(parseInteger), expected: "a whole number above zero" },
  { name: "SESSIONS_MAX_DATA_BYTES", key: "maxDataBytes", parse: positive(parseInteger), expected: "a whole number of bytes above zero" },
  { name: "SESSIONS_MAX_USER_BYTES", key: "maxUserBytes", parse: positive(parseInteger), expected: "a whole number of bytes above zero" },
  { name: "SESSIONS_MAX_MESSAGE_BYTES", key: "maxReceiveMessageBytes", parse: positive(parseInteger), expected: "a whole number of bytes above zero" },
  { name: "SESSIONS_SHUTDOWN_GRACE", key: "shutdownGraceMs", parse: timer(parseDuration), expected: "a duration up to 24d such as 10s" },
];

/** The environment variables the service reads, with their defaults, for --help. */
export const CONFIG_VARIABLES = VARIABLES.map(({ name, key, expected }) => ({
  name,
  expected,
  default: DURATION_KEYS.has(key) ? formatDuration(DEFAULT_CONFIG[key] as number) : String(DEFAULT_CONFIG[key]),
}));

/**
 * Reads the configuration from environment variables over the defaults.
 * Unknown SESSIONS_* variables and bad values are all reported at once.
 */
export function parseConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const problems: string[] = [];
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  const known = new Set(VARIABLES.map((variable) => variable.name));
  for (const name of Object.keys(env)) {
    if (name.startsWith("SESSIONS_") && !known.has(name)) {
      problems.push(`${name}: unknown setting`);
    }
  }
  for (const { name, key, parse, expected } of VARIABLES) {
    const raw = env[name];
    if (raw === undefined) continue;
    const value = parse(raw.trim());
    if (value === undefined) {
      problems.push(`${name}: expected ${expected}, got ${JSON.stringify(raw)}`);
    } else {
      config[key] = value;
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return Object.freeze(config as unknown as Config);
}

/** "250ms", "90s", "30m", "24h", "7d", or "0". */
export function parseDuration(raw: string): number | undefined {
  if (raw === "0") return 0;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(raw);
  if (match === null) return undefined;
  const value = Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** The shortest form parseDuration reads back as `ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  const units = Object.entries(DURATION_UNITS).reverse();
  const [unit, size] = units.find(([, size]) => ms % size === 0) ?? ["ms", 1];
  return `${ms / size}${unit}`;
}

function parseInteger(raw: string): number | undefined {
  if (!/^\d+$/.test(raw)) return undefined;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : undefined;
}

function parsePort(raw: string): number | undefined {
  const value = parseInteger(raw);
  return value !== undefined && value <= 65535 ? value : undefined;
}

/** Node's timers fire at once for delays above 2^31 - 1 ms (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function timer(parse: Parser<number>): Parser<number> {
  return (raw) => {
    const value = parse(raw);
    return value !== undefined && value <= MAX_TIMER_MS ? value : undefined;
  };
}

function positive(parse: Parser<number>): Parser<number> {
  return (raw) => {
    const value = parse(raw);
    return value !== undefined && value > 0 ? value : undefined;
  };
}
