import type { LogLevel } from "./logger.js";
import { collectSettings, fileKey, flagName, type ConfigSources } from "./config-sources.js";
import {
  DEFAULT_SESSION_POLICY,
  type BindingPolicy,
  type SessionLimitPolicy,
  type SessionPolicy,
} from "./session/session-policy.js";

/** The service's whole configuration, parsed and validated once at start-up. */
export interface Config {
  /** Interface both listeners bind to. */
  readonly host: string;
  /** gRPC (grpc-js) port; 0 picks a free port. */
  readonly grpcPort: number;
  /** HTTP port (Connect, gRPC-Web, gRPC); 0 picks a free port. */
  readonly httpPort: number;
  /** SQLite file, or ":memory:". */
  readonly dbPath: string;
  /** FULL: acknowledged writes survive power loss. NORMAL: only a crash. */
  readonly dbSynchronous: "FULL" | "NORMAL";
  /** SQLite's page cache for the connection, in MiB. */
  readonly dbCacheMib: number;
  /** How long a write waits in all for another process's lock before failing with UNAVAILABLE. */
  readonly dbLockTimeoutMs: number;
  /** Largest request message accepted on either port, in bytes. */
  readonly maxReceiveMessageBytes: number;
  /** How long in-flight calls may run on shutdown before being cancelled. */
  readonly shutdownGraceMs: number;
  /** How often the sweeper closes expired sessions and purges old ones; 0 never. */
  readonly sweepIntervalMs: number;
  /** How long closed sessions are kept before the sweeper removes them. */
  readonly retentionMs: number;
  /** How often the database is probed for the health status. */
  readonly healthCheckIntervalMs: number;
  /** How long session events are kept before the sweeper removes them. */
  readonly eventRetentionMs: number;
  /** How often, while events are watched, the database is checked for other processes' commits. */
  readonly eventPollIntervalMs: number;
  /** A quiet event stream sends an empty message with its cursor this often. */
  readonly eventHeartbeatMs: number;
  /** Most event streams served at once. */
  readonly maxEventStreams: number;
  /** PEM files for TLS on both ports; both or neither. */
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  /** PEM CA file: when set, clients must present a certificate it signed (mTLS). */
  readonly tlsClientCaFile: string;
  /** Bearer API keys by SHA-256 with their roles; none: every call is allowed. */
  readonly apiKeys: readonly { readonly name: string; readonly role: "gateway" | "admin"; readonly sha256: string }[];
  /** Whether reflection also needs an API key (any role). */
  readonly reflectionRequiresKey: boolean;
  /** Least severe log level written. */
  readonly logLevel: LogLevel;
  /** Key for HMAC-SHA-256 of token secrets; "" hashes with plain SHA-256. Secret: never log it. */
  readonly tokenPepper: string;
  /** The lifecycle rules. */
  readonly sessions: SessionPolicy;
}

export const DEFAULT_CONFIG: Config = Object.freeze({
  host: "127.0.0.1",
  grpcPort: 8090,
  httpPort: 8080,
  dbPath: "./data/sessions.db",
  dbSynchronous: "FULL",
  dbCacheMib: 32,
  dbLockTimeoutMs: 2000,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  shutdownGraceMs: 10_000,
  sweepIntervalMs: 60_000,
  retentionMs: 30 * 86_400_000,
  healthCheckIntervalMs: 5000,
  eventRetentionMs: 7 * 86_400_000,
  eventPollIntervalMs: 100,
  eventHeartbeatMs: 15_000,
  maxEventStreams: 64,
  logLevel: "info",
  apiKeys: Object.freeze([]),
  reflectionRequiresKey: false,
  tlsCertFile: "",
  tlsKeyFile: "",
  tlsClientCaFile: "",
  tokenPepper: "",
  sessions: DEFAULT_SESSION_POLICY,
});

/** Start-up stopped because the configuration is wrong; lists every problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

type Parser<T> = (raw: string) => T | undefined;
type Draft = { -readonly [K in Exclude<keyof Config, "sessions">]: Config[K] } & {
  sessions: { -readonly [K in keyof SessionPolicy]: SessionPolicy[K] };
  bindingKind: BindingPolicy["kind"];
  ipv4PrefixBits: number;
  ipv6PrefixBits: number;
};

interface Variable {
  readonly name: string;
  readonly expected: string;
  /** The default as a user would write it, for --help. */
  readonly shown: (config: Config) => string;
  /** Parses the raw value into the draft; false if it is not valid. */
  readonly apply: (draft: Draft, raw: string) => boolean;
  /** Left out of anything printed. */
  readonly secret?: boolean;
}

function variable<T>(
  name: string,
  expected: string,
  parse: Parser<T>,
  set: (draft: Draft, value: T) => void,
  shown: (config: Config) => string,
  secret = false,
): Variable {
  return {
    name,
    expected,
    shown,
    secret,
    apply(draft, raw) {
      const value = parse(raw);
      if (value === undefined) return false;
      set(draft, value);
      return true;
    },
  };
}

const DURATION = "a duration such as 90s, 30m, 24h or 7d";
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Node's timers fire at once for delays above 2^31 - 1 ms (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const text: Parser<string> = (raw) => raw || undefined;
/** Text where "" means "none", so the environment can undo a file's setting. */
const optionalText: Parser<string> = (raw) => raw;

/** Each environment variable, what it sets, and what it accepts. */
const VARIABLES: readonly Variable[] = [
  variable("SESSIONS_HOST", "a host name or IP address", text, (d, v) => (d.host = v), (c) => c.host),
  variable("SESSIONS_GRPC_PORT", "a port from 0 to 65535", parsePort, (d, v) => (d.grpcPort = v), (c) => `${c.grpcPort}`),
  variable("SESSIONS_HTTP_PORT", "a port from 0 to 65535", parsePort, (d, v) => (d.httpPort = v), (c) => `${c.httpPort}`),
  variable("SESSIONS_DB", 'a file path or ":memory:"', text, (d, v) => (d.dbPath = v), (c) => c.dbPath),
  variable("SESSIONS_DB_SYNCHRONOUS", "FULL or NORMAL", oneOf(["FULL", "NORMAL"] as const), (d, v) => (d.dbSynchronous = v), (c) => c.dbSynchronous),
  variable("SESSIONS_DB_LOCK_TIMEOUT", "a duration up to 24d such as 2s, above zero", positive(timer(parseDuration)), (d, v) => (d.dbLockTimeoutMs = v), (c) => formatDuration(c.dbLockTimeoutMs)),
  variable("SESSIONS_DB_CACHE_MIB", "a whole number of MiB above zero", positive(parseInteger), (d, v) => (d.dbCacheMib = v), (c) => `${c.dbCacheMib}`),
  variable("SESSIONS_MAX_MESSAGE_BYTES", "a whole number of bytes above zero", positive(parseInteger), (d, v) => (d.maxReceiveMessageBytes = v), (c) => `${c.maxReceiveMessageBytes}`),
  variable("SESSIONS_SHUTDOWN_GRACE", "a duration up to 24d such as 10s", timer(parseDuration), (d, v) => (d.shutdownGraceMs = v), (c) => formatDuration(c.shutdownGraceMs)),
  variable("SESSIONS_SWEEP_INTERVAL", "a duration up to 24d such as 1m, or 0 to disable", timer(parseDuration), (d, v) => (d.sweepIntervalMs = v), (c) => formatDuration(c.sweepIntervalMs)),
  variable("SESSIONS_RETENTION", `${DURATION}: how long closed sessions are kept`, positive(parseDuration), (d, v) => (d.retentionMs = v), (c) => formatDuration(c.retentionMs)),
  variable("SESSIONS_HEALTH_CHECK_INTERVAL", "a duration up to 24d such as 5s, above zero", positive(timer(parseDuration)), (d, v) => (d.healthCheckIntervalMs = v), (c) => formatDuration(c.healthCheckIntervalMs)),
  variable("SESSIONS_EVENT_RETENTION", `${DURATION}: how long session events are kept`, positive(parseDuration), (d, v) => (d.eventRetentionMs = v), (c) => formatDuration(c.eventRetentionMs)),
  variable("SESSIONS_EVENT_POLL_INTERVAL", "a duration up to 24d such as 100ms, above zero: how soon other processes' events reach streams", positive(timer(parseDuration)), (d, v) => (d.eventPollIntervalMs = v), (c) => formatDuration(c.eventPollIntervalMs)),
  variable("SESSIONS_EVENT_HEARTBEAT", "a duration up to 24d such as 15s, above zero", positive(timer(parseDuration)), (d, v) => (d.eventHeartbeatMs = v), (c) => formatDuration(c.eventHeartbeatMs)),
  variable("SESSIONS_MAX_EVENT_STREAMS", "a whole number above zero", positive(parseInteger), (d, v) => (d.maxEventStreams = v), (c) => `${c.maxEventStreams}`),
  variable("SESSIONS_TLS_CERT", "a PEM certificate (chain) file: serve TLS on both ports", optionalText, (d, v) => (d.tlsCertFile = v), () => "none: plaintext"),
  variable("SESSIONS_TLS_KEY", "the PEM private key file of SESSIONS_TLS_CERT", optionalText, (d, v) => (d.tlsKeyFile = v), () => "none"),
  variable("SESSIONS_TLS_CLIENT_CA", "a PEM CA file: require client certificates it signed (mTLS)", optionalText, (d, v) => (d.tlsClientCaFile = v), () => "none"),
  variable("SESSIONS_API_KEYS", "name:role:sha256-hex entries separated by commas, role gateway or admin (the hash, never the key)", parseApiKeys, (d, v) => (d.apiKeys = v), () => "none: no key needed", true),
  variable("SESSIONS_REFLECTION_REQUIRES_KEY", "true or false", oneOf(["true", "false"] as const), (d, v) => (d.reflectionRequiresKey = v === "true"), (c) => `${c.reflectionRequiresKey}`),
  variable("SESSIONS_LOG_LEVEL", "debug, info, warn, error or silent", oneOf(["debug", "info", "warn", "error", "silent"] as const), (d, v) => (d.logLevel = v), (c) => c.logLevel),
  variable("SESSIONS_TOKEN_PEPPER", "a secret key for HMAC of token secrets (at least 32 characters)", (raw) => (raw.length >= 32 ? raw : undefined), (d, v) => (d.tokenPepper = v), () => "none: plain SHA-256", true),
  variable("SESSIONS_IDLE_TIMEOUT", `${DURATION}, above zero`, positive(parseDuration), (d, v) => (d.sessions.idleTimeoutMs = v), (c) => formatDuration(c.sessions.idleTimeoutMs)),
  variable("SESSIONS_ABSOLUTE_TIMEOUT", `${DURATION}, above zero`, positive(parseDuration), (d, v) => (d.sessions.absoluteTimeoutMs = v), (c) => formatDuration(c.sessions.absoluteTimeoutMs)),
  variable("SESSIONS_MAX_IDLE_TIMEOUT", `${DURATION}: the most OpenSession may ask for`, positive(parseDuration), (d, v) => (d.sessions.maxIdleTimeoutMs = v), (c) => formatDuration(c.sessions.maxIdleTimeoutMs)),
  variable("SESSIONS_MAX_ABSOLUTE_TIMEOUT", `${DURATION}: the most OpenSession may ask for`, positive(parseDuration), (d, v) => (d.sessions.maxAbsoluteTimeoutMs = v), (c) => formatDuration(c.sessions.maxAbsoluteTimeoutMs)),
  variable("SESSIONS_TOUCH_INTERVAL", `${DURATION}, or 0 to record every validation`, parseDuration, (d, v) => (d.sessions.touchIntervalMs = v), (c) => formatDuration(c.sessions.touchIntervalMs)),
  variable("SESSIONS_RENEWAL_INTERVAL", `${DURATION}, or 0 to never renew tokens`, parseDuration, (d, v) => (d.sessions.renewalIntervalMs = v), (c) => formatDuration(c.sessions.renewalIntervalMs)),
  variable("SESSIONS_RENEWAL_GRACE", `${DURATION}, or 0`, parseDuration, (d, v) => (d.sessions.renewalGraceMs = v), (c) => formatDuration(c.sessions.renewalGraceMs)),
  variable("SESSIONS_MAX_SESSIONS_PER_USER", "a whole number, or 0 for no limit", parseInteger, (d, v) => (d.sessions.maxSessionsPerUser = v), (c) => `${c.sessions.maxSessionsPerUser}`),
  variable("SESSIONS_MAX_SESSIONS_PER_CLIENT", "client=limit pairs separated by commas, such as web=5,ios=2", parseClientLimits, (d, v) => (d.sessions.maxSessionsPerClient = v), () => "none"),
  variable("SESSIONS_SESSION_LIMIT_POLICY", "deny, evict_oldest or evict_least_recently_used", oneOf(["deny", "evict_oldest", "evict_least_recently_used"] as const), (d, v: SessionLimitPolicy) => (d.sessions.sessionLimitPolicy = v), (c) => c.sessions.sessionLimitPolicy),
  variable("SESSIONS_BINDING", "none, client or address", oneOf(["none", "client", "address"] as const), (d, v) => (d.bindingKind = v), (c) => c.sessions.binding.kind),
  variable("SESSIONS_BINDING_IPV4_PREFIX", "a prefix length from 1 to 32", positive(bounded(parseInteger, 32)), (d, v) => (d.ipv4PrefixBits = v), () => "24"),
  variable("SESSIONS_BINDING_IPV6_PREFIX", "a prefix length from 1 to 128", positive(bounded(parseInteger, 128)), (d, v) => (d.ipv6PrefixBits = v), () => "64"),
  variable("SESSIONS_MAX_PAGE_SIZE", "a whole number above zero", positive(parseInteger), (d, v) => (d.sessions.maxPageSize = v), (c) => `${c.sessions.maxPageSize}`),
  variable("SESSIONS_MAX_DATA_BYTES", "a whole number of bytes above zero", positive(parseInteger), (d, v) => (d.sessions.maxDataBytes = v), (c) => `${c.sessions.maxDataBytes}`),
  variable("SESSIONS_MAX_USER_BYTES", "a whole number of bytes above zero", positive(parseInteger), (d, v) => (d.sessions.maxUserBytes = v), (c) => `${c.sessions.maxUserBytes}`),
];

/** Every setting: its variable, flag and file key, what it takes, its default; for --help. */
export const CONFIG_VARIABLES = VARIABLES.map((v) => ({
  name: v.name,
  flag: flagName(v.name),
  key: fileKey(v.name),
  expected: v.expected,
  default: v.shown(DEFAULT_CONFIG),
}));

/**
 * Reads the configuration: built-in defaults, then the config file (`--config`
 * or SESSIONS_CONFIG; YAML or JSON), then SESSIONS_* variables, then flags.
 * Unknown names, bad values and inconsistent combinations are all reported at
 * once, each named as the user wrote it. A secret's value never appears.
 */
export function parseConfig(sources: ConfigSources): Config {
  const draft: Draft = {
    ...DEFAULT_CONFIG,
    sessions: { ...DEFAULT_CONFIG.sessions },
    bindingKind: "none",
    ipv4PrefixBits: 24,
    ipv6PrefixBits: 64,
  };
  const byName = new Map(VARIABLES.map((v) => [v.name, v]));
  const { settings, problems } = collectSettings(sources, [...byName.keys()]);
  for (const setting of settings) {
    const v = byName.get(setting.name)!;
    if (!v.apply(draft, setting.value.trim())) {
      const got = v.secret ? "a value that is not" : JSON.stringify(setting.value);
      problems.push(`${setting.origin}: expected ${v.expected}, got ${got}`);
    }
  }
  const { bindingKind, ipv4PrefixBits, ipv6PrefixBits, ...config } = draft;
  config.sessions.binding =
    bindingKind === "address" ? { kind: "address", ipv4PrefixBits, ipv6PrefixBits } : { kind: bindingKind };
  problems.push(...inconsistencies(config.sessions));
  if ((config.tlsCertFile === "") !== (config.tlsKeyFile === "")) {
    problems.push("SESSIONS_TLS_CERT and SESSIONS_TLS_KEY: give both or neither");
  }
  if (config.reflectionRequiresKey && config.apiKeys.length === 0) {
    problems.push("SESSIONS_REFLECTION_REQUIRES_KEY: needs SESSIONS_API_KEYS (without keys, nothing can be required)");
  }
  if (config.tlsClientCaFile !== "" && config.tlsCertFile === "") {
    problems.push("SESSIONS_TLS_CLIENT_CA: needs SESSIONS_TLS_CERT and SESSIONS_TLS_KEY (mTLS is on top of TLS)");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  Object.freeze(config.sessions);
  return Object.freeze(config);
}

function inconsistencies(policy: SessionPolicy): string[] {
  const problems: string[] = [];
  if (policy.idleTimeoutMs > policy.maxIdleTimeoutMs) {
    problems.push("SESSIONS_IDLE_TIMEOUT: must not exceed SESSIONS_MAX_IDLE_TIMEOUT");
  }
  if (policy.absoluteTimeoutMs > policy.maxAbsoluteTimeoutMs) {
    problems.push("SESSIONS_ABSOLUTE_TIMEOUT: must not exceed SESSIONS_MAX_ABSOLUTE_TIMEOUT");
  }
  if (policy.touchIntervalMs >= policy.idleTimeoutMs) {
    problems.push("SESSIONS_TOUCH_INTERVAL: must be shorter than SESSIONS_IDLE_TIMEOUT");
  }
  if (policy.renewalIntervalMs > 0 && policy.renewalGraceMs >= policy.renewalIntervalMs) {
    problems.push("SESSIONS_RENEWAL_GRACE: must be shorter than SESSIONS_RENEWAL_INTERVAL");
  }
  return problems;
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
  return bounded(parseInteger, 65535)(raw);
}

function parseClientLimits(raw: string): Readonly<Record<string, number>> | undefined {
  const limits: Record<string, number> = {};
  for (const pair of raw.split(",")) {
    const match = /^\s*([^=\s][^=]*?)\s*=\s*(\d+)\s*$/.exec(pair);
    if (match === null) return undefined;
    limits[match[1]!] = Number(match[2]);
  }
  return Object.freeze(limits);
}

function parseApiKeys(raw: string): Config["apiKeys"] | undefined {
  if (raw === "") return Object.freeze([]);
  const keys = [];
  for (const entry of raw.split(",")) {
    const match = /^\s*([A-Za-z0-9_.-]+):(gateway|admin):([0-9a-f]{64})\s*$/.exec(entry);
    if (match === null) return undefined;
    keys.push(Object.freeze({ name: match[1]!, role: match[2] as "gateway" | "admin", sha256: match[3]! }));
  }
  return Object.freeze(keys);
}

function oneOf<const T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => values.find((value) => value === raw);
}

function timer(parse: Parser<number>): Parser<number> {
  return bounded(parse, MAX_TIMER_MS);
}

function bounded(parse: Parser<number>, max: number): Parser<number> {
  return (raw) => {
    const value = parse(raw);
    return value !== undefined && value <= max ? value : undefined;
  };
}

function positive(parse: Parser<number>): Parser<number> {
  return (raw) => {
    const value = parse(raw);
    return value !== undefined && value > 0 ? value : undefined;
  };
}
