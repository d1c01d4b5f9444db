import { createHash } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { requestHeaderValue } from "./context-headers.js";

/** What a caller may do: `gateway` runs sessions for users, `admin` everything. */
export type ApiKeyRole = "gateway" | "admin";

/** A configured key: its SHA-256 (hex), never the key itself. */
export interface ApiKey {
  readonly name: string;
  readonly role: ApiKeyRole;
  readonly sha256: string;
}

/**
 * Checks one call to `method` (undefined: any valid key will do), given its
 * request header's `authorization` value: throws UNAUTHENTICATED or
 * PERMISSION_DENIED, or returns the caller's key name.
 */
export type Authorizer = (method: string | undefined, authorization: string | null) => string;

/** The SessionsService methods a gateway key may call; admin keys may call every method. */
const GATEWAY_METHODS: ReadonlySet<string> = new Set([
  "OpenSession",
  "ValidateSession",
  "GetSessionById",
  "StoreSessionData",
  "UpdateSessionUser",
  "CloseSession",
]);

/**
 * Bearer API keys (`authorization: Bearer <key>` header or metadata) checked
 * against their configured SHA-256 hashes, with roles. Undefined when no key
 * is configured: the service is then open, as behind a trusted network.
 */
export function createAuthorizer(keys: readonly ApiKey[]): Authorizer | undefined {
  if (keys.length === 0) return undefined;
  const byHash = new Map(keys.map((key) => [key.sha256, key]));
  return (method, authorization) => {
    const match = /^Bearer (\S+)$/i.exec(authorization ?? "");
    if (match === null) {
      throw new ConnectError("missing API key: send the header authorization: Bearer <key>", Code.Unauthenticated);
    }
    // The presented key is hashed before lookup, so the lookup compares hashes, not secrets.
    const key = byHash.get(createHash("sha256").update(match[1]!).digest("hex"));
    if (key === undefined) throw new ConnectError("invalid API key", Code.Unauthenticated);
    if (method !== undefined && key.role !== "admin" && !GATEWAY_METHODS.has(method)) {
      throw new ConnectError(`API key ${key.name} (role ${key.role}) may not call ${method}`, Code.PermissionDenied);
    }
    return key.name;
  };
}

/**
 * Every method of `impl`, unary or streaming, behind any valid API key: for
 * services other than SessionsService that must not be open (reflection,
 * when asked).
 */
export function behindApiKeys<S extends DescService>(service: S, impl: ServiceImpl<S>, authorize: Authorizer): ServiceImpl<S> {
  const handlers = impl as unknown as Record<string, (input: unknown, context: HandlerContext) => unknown>;
  const guarded: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = handlers[method.localName]!;
    guarded[method.localName] =
      method.methodKind === "unary"
        ? (input: unknown, context: HandlerContext) => {
            authorize(undefined, requestHeaderValue(context, "authorization"));
            return handler.call(impl, input, context);
          }
        : async function* (input: unknown, context: HandlerContext) {
            authorize(undefined, requestHeaderValue(context, "authorization"));
            yield* handler.call(impl, input, context) as AsyncIterable<unknown>;
          };
  }
  return guarded as ServiceImpl<S>;
}
