/** What happens when a user opens a session beyond the limit. */
export type SessionLimitPolicy = "deny" | "evict_oldest" | "evict_least_recently_used";

/** Whether ValidateSession checks where a token comes from. */
export type BindingPolicy =
  | { readonly kind: "none" }
  | { readonly kind: "client" }
  | { readonly kind: "address"; readonly ipv4PrefixBits: number; readonly ipv6PrefixBits: number };

/** The rules of the session lifecycle; all times in milliseconds. */
export interface SessionPolicy {
  /** Default idle timeout of a new session. */
  readonly idleTimeoutMs: number;
  /** Default lifetime of a new session since it opened, across renewals. */
  readonly absoluteTimeoutMs: number;
  /** Largest idle timeout OpenSession may ask for. */
  readonly maxIdleTimeoutMs: number;
  /** Largest absolute timeout OpenSession may ask for. */
  readonly maxAbsoluteTimeoutMs: number;
  /** ValidateSession records activity at most this often per session. */
  readonly touchIntervalMs: number;
  /** A token older than this is renewed by ValidateSession; 0 never. */
  readonly renewalIntervalMs: number;
  /** How long a renewed-away token keeps working. */
  readonly renewalGraceMs: number;
  /** Active sessions per user, from all clients; 0 for no limit. */
  readonly maxSessionsPerUser: number;
  /**
   * Overrides by client: a new session from a listed client is limited to
   * this many of the user's sessions from that client (0: no limit) instead.
   */
  readonly maxSessionsPerClient: Readonly<Record<string, number>>;
  readonly sessionLimitPolicy: SessionLimitPolicy;
  readonly binding: BindingPolicy;
  /** Largest page a list returns; bigger requests are capped to it. */
  readonly maxPageSize: number;
  /** Largest session data accepted, as JSON text in bytes. */
  readonly maxDataBytes: number;
  /** Largest cached user record accepted, as JSON text in bytes. */
  readonly maxUserBytes: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = Object.freeze({
  idleTimeoutMs: 30 * 60_000,
  absoluteTimeoutMs: 24 * 3_600_000,
  maxIdleTimeoutMs: 24 * 3_600_000,
  maxAbsoluteTimeoutMs: 30 * 24 * 3_600_000,
  touchIntervalMs: 60_000,
  renewalIntervalMs: 12 * 3_600_000,
  renewalGraceMs: 30_000,
  maxSessionsPerUser: 0,
  maxSessionsPerClient: Object.freeze({}),
  sessionLimitPolicy: "deny",
  binding: Object.freeze({ kind: "none" }),
  maxPageSize: 1000,
  maxDataBytes: 64 * 1024,
  maxUserBytes: 64 * 1024,
});
