import type { Clock } from "./clock.js";
import { closedSessionRefused, invalidArgument, tokenRefused } from "./errors.js";
import { sameNetwork } from "./network-binding.js";
import type { Session, SessionInfo } from "./session.js";
import type { SessionPolicy } from "./session-policy.js";
import type { SessionCredentials, SessionStore } from "./session-store.js";
import { hashesEqual, issueToken, parseToken, type TokenHasher } from "./session-token.js";
import { checkText } from "./validate.js";

export interface ValidateSessionInput {
  readonly token: string;
  /** The current request's address and client; "" when unknown. */
  readonly address: string;
  readonly client: string;
  readonly includeData: boolean;
}

export interface ValidatedSession {
  readonly session: Session | SessionInfo;
  /** Set when the token was renewed; the caller must switch to it. */
  readonly newToken?: string;
}

interface ValidatorDeps {
  readonly store: SessionStore;
  readonly clock: Clock;
  readonly policy: SessionPolicy;
  readonly hasher: TokenHasher;
}

/** How often a validation re-reads a session that changed under it. */
const MAX_ATTEMPTS = 3;

/**
 * The hot path: checks a token and returns its session. Checks run in this
 * order: token known, session active, absolute lifetime, idle timeout, reuse
 * of a renewed-away token, binding, then renewal and activity. An expired or
 * reused session is closed on the spot, so every later call sees it closed.
 * Every write is conditional on the session still being live (and, for a
 * renewal, on the token being unchanged); when another call or process got
 * there first, the session is read again and checked anew.
 */
export function createSessionValidator({ store, clock, policy, hasher }: ValidatorDeps) {
  return async function validateSession(input: ValidateSessionInput): Promise<ValidatedSession> {
    if (input.token === "") throw invalidArgument("token", "is required");
    checkText("address", input.address);
    checkText("client", input.client);
    requireBindingContext(policy, input);
    const parsed = parseToken(input.token);
    if (parsed === undefined) throw tokenRefused("token_unknown");
    const presented = hasher(parsed.secret);

    for (let attempt = 1; ; attempt++) {
      const found = await store.getForValidation(parsed.sessionId, input.includeData);
      if (found === undefined) throw tokenRefused("token_unknown");
      const { session, credentials } = found;
      const which =
        matchToken(presented, credentials) ??
        ((await store.isRetiredToken(session.id, presented)) ? "retired" : undefined);
      if (which === undefined) throw tokenRefused("token_unknown");
      if (!session.active) throw closedSessionRefused(session.closeReason);

      const now = clock.now();
      if (
        now >= session.openTime + session.absoluteTimeoutMs ||
        now >= session.requestTime + session.idleTimeoutMs
      ) {
        const reason = await store.closeIfExpired(session.id, now);
        if (reason === "expired_absolute" || reason === "expired_idle") throw tokenRefused(reason);
        if (attempt < MAX_ATTEMPTS) continue;
        throw tokenRefused("session_closed");
      }

      if (which === "retired" || (which === "previous" && now >= credentials.previousTokenValidUntil)) {
        // Answered from what the close found: another call may have closed it first, for its own reason.
        const closed = await store.close(session.id, now, "token_reuse");
        if (closed === undefined) throw tokenRefused("token_unknown");
        throw closedSessionRefused(closed.closeReason);
      }
      checkBinding(policy, session, input);

      // An empty address or client means "not known": keep what was seen before
      // (the store's write keeps it; `seen` is what this read says it will be).
      const given = { address: input.address, client: input.client };
      const seen = {
        address: input.address === "" ? session.lastAddress : input.address,
        client: input.client === "" ? session.lastClient : input.client,
      };
      if (which === "current" && policy.renewalIntervalMs > 0 && now - credentials.tokenTime >= policy.renewalIntervalMs) {
        const next = issueToken(session.id, hasher);
        const rotation = { currentHash: presented, nextHash: next.hash, now, previousValidUntil: now + policy.renewalGraceMs };
        if (await store.rotateToken(session.id, rotation, given)) {
          return { session: afterActivity(session, now, seen), newToken: next.token };
        }
        // Renewed by another call a moment ago, or closed meanwhile: look again.
        if (attempt < MAX_ATTEMPTS) continue;
        throw tokenRefused("session_closed");
      }

      const seenChanged = seen.address !== session.lastAddress || seen.client !== session.lastClient;
      if (now - session.requestTime >= policy.touchIntervalMs || seenChanged) {
        if (await store.touch(session.id, now, given)) {
          return { session: afterActivity(session, now, seen) };
        }
        if (attempt < MAX_ATTEMPTS) continue;
        throw tokenRefused("session_closed");
      }
      return { session };
    }
  };
}

function matchToken(presented: Uint8Array, credentials: SessionCredentials): "current" | "previous" | undefined {
  if (hashesEqual(presented, credentials.tokenHash)) return "current";
  if (hashesEqual(presented, credentials.previousTokenHash)) return "previous";
  return undefined;
}

function afterActivity<S extends SessionInfo>(session: S, now: number, seen: { address: string; client: string }): S {
  return {
    ...session,
    requestTime: Math.max(session.requestTime, now),
    lastAddress: seen.address,
    lastClient: seen.client,
  };
}

function requireBindingContext(policy: SessionPolicy, input: ValidateSessionInput): void {
  if (policy.binding.kind === "client" && input.client === "") {
    throw invalidArgument("client", "is required: the server binds sessions to their client");
  }
  if (policy.binding.kind === "address" && input.address === "") {
    throw invalidArgument("address", "is required: the server binds sessions to their network");
  }
}

function checkBinding(policy: SessionPolicy, session: SessionInfo, input: ValidateSessionInput): void {
  const { binding } = policy;
  if (binding.kind === "client" && input.client !== session.client) {
    throw tokenRefused("client_mismatch");
  }
  if (
    binding.kind === "address" &&
    !sameNetwork(input.address, session.address, binding.ipv4PrefixBits, binding.ipv6PrefixBits)
  ) {
    throw tokenRefused("address_mismatch");
  }
}
