import { fromJson, toJson, type DescMethod, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as http from "node:http";
import * as https from "node:https";
import { ErrorDetailSchema, ErrorReason, SessionsService } from "../../gen/sessions/v1/sessions_pb.js";
import { createGrpcJsTransport } from "./grpc-js-transport.js";

/** How the client reaches the service. */
export type SessionsTransport =
  /** gRPC with @grpc/grpc-js, to the gRPC port: `host:port`. */
  | { readonly kind: "grpc"; readonly address: string }
  /** The Connect protocol (binary) over HTTP/1.1 or HTTP/2, to the HTTP port: `http(s)://host:port`. */
  | { readonly kind: "connect"; readonly baseUrl: string; readonly httpVersion?: "1.1" | "2" };

export interface SessionsClientOptions {
  readonly transport: SessionsTransport;
  /** Sent as `authorization: Bearer <key>` on every call. */
  readonly apiKey?: string;
  /**
   * TLS: the CA that signed the server's certificate (PEM), and for mTLS the
   * client's certificate and key. Needs `https://` for connect.
   */
  readonly tls?: { readonly ca?: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer };
  /**
   * Deadline of each unary call unless the call sets its own (ms); 0 or less
   * for none. Default 5000. Streams have none unless the call sets one.
   */
  readonly timeoutMs?: number;
  /**
   * Retries of idempotent calls (the proto's NO_SIDE_EFFECTS and IDEMPOTENT
   * methods) that fail with UNAVAILABLE, with exponential backoff and jitter,
   * within the call's deadline. Other calls and codes are never retried.
   */
  readonly retry?: { readonly maxAttempts?: number; readonly initialBackoffMs?: number; readonly maxBackoffMs?: number };
}

/** Every RPC of SessionsService as a typed method, plus close(). */
export type SessionsClient = Client<typeof SessionsService> & {
  /** Ends streams still open (CANCELLED) and releases the connections. */
  close(): void;
};

/** gRPC status codes by name. */
export type StatusCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

/** The machine-readable reasons (sessions.v1.ErrorReason without its prefix). */
export type SessionsErrorReason = Exclude<keyof typeof ErrorReason, "UNSPECIFIED" | number>;

/** What every failed call throws: the status code, and the reason when the server gave one. */
export class SessionsError extends Error {
  override name = "SessionsError";

  constructor(
    /** The gRPC status code, e.g. "NOT_FOUND". */
    readonly code: StatusCode,
    /** The server's message (for people; switch on code and reason). */
    message: string,
    /** The ErrorDetail reason, e.g. "TOKEN_REUSED", if the error carried one. */
    readonly reason: SessionsErrorReason | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Any error as a SessionsError (UNKNOWN if it is neither this nor a Connect error). */
  static from(error: unknown): SessionsError {
    if (error instanceof SessionsError) return error;
    const connectError = ConnectError.from(error);
    const [detail] = connectError.findDetails(ErrorDetailSchema);
    const reason = detail === undefined ? undefined : (ErrorReason[detail.reason] as SessionsErrorReason | undefined);
    return new SessionsError(codeName(connectError.code), connectError.rawMessage, reason, { cause: error });
  }
}

const codeName = (code: Code): StatusCode =>
  code === Code.Canceled ? "CANCELLED" : (Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() as StatusCode);

const DEFAULTS = { timeoutMs: 5000, maxAttempts: 4, initialBackoffMs: 50, maxBackoffMs: 1000 };

/**
 * A client of SessionsService over either port. Methods take the request
 * (plain object or message) and optional CallOptions (signal, timeoutMs,
 * headers); unary ones resolve to the response message, WatchSessionEvents
 * is an async iterable. Every failure is a SessionsError.
 */
export function createSessionsClient(options: SessionsClientOptions): SessionsClient {
  const { transport, close } = connect(options);
  const raw = createClient(SessionsService, transport) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const retry = { ...DEFAULTS, ...options.retry };
  const headersOf = (call: CallOptions | undefined) => {
    const headers = new Headers(call?.headers);
    if (options.apiKey !== undefined) headers.set("authorization", `Bearer ${options.apiKey}`);
    return headers;
  };
  /** Streams not yet ended: close() ends them, so that nothing keeps the process alive. */
  const streams = new Set<AbortController>();
  const client: Record<string, unknown> = {
    close() {
      streams.forEach((stream) => stream.abort(new ConnectError("the client was closed", Code.Canceled)));
      close();
    },
  };
  for (const method of SessionsService.methods) {
    const call = raw[method.localName]!;
    if (method.methodKind === "server_streaming") {
      client[method.localName] = (request: unknown, callOptions?: CallOptions) => {
        // A signal of the stream's own: Connect's iterable has no return(), so a
        // consumer's break reaches the call only through this.
        const stream = new AbortController();
        const follow = () => stream.abort(callOptions?.signal?.reason);
        if (callOptions?.signal?.aborted) follow();
        else callOptions?.signal?.addEventListener("abort", follow, { once: true });
        streams.add(stream);
        const messages = call(request, { ...callOptions, signal: stream.signal, headers: headersOf(callOptions) }) as AsyncIterable<unknown>;
        return rethrowing(messages, () => {
          callOptions?.signal?.removeEventListener("abort", follow);
          streams.delete(stream);
          stream.abort(new ConnectError("the stream was left", Code.Canceled));
        });
      };
      continue;
    }
    const retryable = isIdempotent(method);
    client[method.localName] = async (request: unknown, callOptions?: CallOptions) => {
      // As in Connect, a timeout of 0 or less means no deadline.
      const ms = callOptions?.timeoutMs ?? timeoutMs;
      const deadline = ms > 0 ? Date.now() + ms : Infinity;
      const signal = callOptions?.signal;
      for (let attempt = 1; ; attempt++) {
        try {
          const remaining = deadline === Infinity ? undefined : Math.max(1, deadline - Date.now());
          return await call(request, { ...callOptions, timeoutMs: remaining ?? 0, headers: headersOf(callOptions) });
        } catch (error) {
          const failure = SessionsError.from(error);
          const backoff = Math.min(retry.maxBackoffMs, retry.initialBackoffMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
          const again =
            retryable &&
            failure.code === "UNAVAILABLE" &&
            attempt < retry.maxAttempts &&
            signal?.aborted !== true &&
            Date.now() + backoff < deadline;
          if (!again) throw failure;
          await pause(backoff, signal);
        }
      }
    };
  }
  return client as SessionsClient;
}

/** Waits `ms`, or rejects (CANCELLED) as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(SessionsError.from(new ConnectError("the call was cancelled", Code.Canceled, undefined, undefined, signal?.reason)));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isIdempotent(method: DescMethod): boolean {
  // 1 = NO_SIDE_EFFECTS, 2 = IDEMPOTENT (google.protobuf.MethodOptions.IdempotencyLevel).
  return method.idempotency === 1 || method.idempotency === 2;
}

async function* rethrowing<T>(messages: AsyncIterable<T>, end: () => void): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    throw SessionsError.from(error);
  } finally {
    end();
  }
}

function connect(options: SessionsClientOptions): { transport: Transport; close: () => void } {
  const { tls } = options;
  if (options.transport.kind === "grpc") {
    const credentials =
      tls === undefined
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(bufferOf(tls.ca), bufferOf(tls.key), bufferOf(tls.cert));
    const transport = createGrpcJsTransport(options.transport.address, credentials);
    return { transport, close: () => transport.close() };
  }
  const nodeOptions = tls === undefined ? {} : { ...(tls.ca && { ca: tls.ca }), ...(tls.cert && { cert: tls.cert }), ...(tls.key && { key: tls.key }) };
  const { baseUrl } = options.transport;
  if (options.transport.httpVersion === "1.1") {
    // An agent of our own, so that close() can end its connections.
    const agent = baseUrl.startsWith("https:") ? new https.Agent({ keepAlive: true, ...nodeOptions }) : new http.Agent({ keepAlive: true });
    const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true, nodeOptions: { agent } });
    return { transport, close: () => agent.destroy() };
  }
  // Our own session manager, so that close() can end the HTTP/2 connection.
  const sessionManager = new Http2SessionManager(baseUrl, {}, nodeOptions);
  const transport = createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, sessionManager });
  return { transport, close: () => sessionManager.abort() };
}

const bufferOf = (pem: string | Buffer | undefined) => (pem === undefined ? null : Buffer.from(pem));

/** Plain JSON as the google.protobuf.Value that `user` and `data` take. */
export function jsonValue(value: JsonValue): Value {
  return fromJson(ValueSchema, value);
}

/** A session's `user` or `data` as plain JSON; undefined when unset. */
export function fromJsonValue(value: Value | undefined): JsonValue | undefined {
  return value === undefined ? undefined : toJson(ValueSchema, value);
}
