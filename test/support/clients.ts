import { create, fromBinary, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import {
  durationFromMs,
  durationMs,
  timestampFromMs,
  timestampMs,
  ValueSchema,
  type Duration,
  type Timestamp,
  type Value,
} from "@bufbuild/protobuf/wkt";
import { createClient, ConnectError, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import {
  CloseReasonSchema,
  ErrorDetailSchema,
  ErrorReasonSchema,
  SessionEventTypeSchema,
  SessionsService,
} from "../../gen/sessions/v1/sessions_pb.js";

/** The RPCs, by their local (camelCase) names. */
export type MethodName = keyof typeof SessionsService.method;

/**
 * A request in test-friendly form: proto JSON field names, `user` and `data`
 * as plain JSON (undefined = unset), filter times, idleTimeout and
 * absoluteTimeout as milliseconds, expectedVersion as a number, and enums by
 * their proto names ("CLOSE_REASON_REVOKED").
 */
export type TestRequest = {
  [key: string]: unknown;
  filter?: { [key: string]: unknown; fromTime?: number; toTime?: number };
};

/** A session as every client reports it: times in ms, unset fields absent. */
export interface TestSession {
  id: string;
  userId: string;
  userName: string;
  active: boolean;
  openTime: number;
  closeTime?: number;
  requestTime: number;
  address: string;
  client: string;
  user?: JsonValue;
  data?: JsonValue;
  version: number;
  expireTime?: number;
  /** The proto enum value's name; absent when unspecified. */
  closeReason?: string;
  idleTimeout: number;
  absoluteTimeout: number;
  lastAddress: string;
  lastClient: string;
}

export interface TestResponse {
  session?: TestSession;
  sessions?: TestSession[];
  total?: number;
  closedCount?: number;
  token?: string;
  newToken?: string;
  evictedSessionIds?: string[];
}

/** A session event as every client reports it: enums by proto name, times in ms. */
export interface TestEvent {
  cursor: string;
  /** e.g. "SESSION_EVENT_TYPE_OPENED". */
  type: string;
  sessionId: string;
  userId: string;
  client: string;
  address: string;
  /** Absent when unspecified. */
  closeReason?: string;
  time: number;
  version: number;
}

/** One message of a WatchSessionEvents stream. */
export interface TestEventBatch {
  events: TestEvent[];
  cursor: string;
}

/** A WatchSessionEvents request: types by proto name. */
export interface TestWatchRequest {
  afterCursor?: string;
  fromOldest?: boolean;
  userId?: string;
  types?: string[];
}

/** A failed call: the status code (gRPC numbering), message and ErrorDetail reason. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** The ErrorReason value's proto name, e.g. "ERROR_REASON_TOKEN_UNKNOWN", if one came. */
    readonly reason?: string,
  ) {
    super(message);
  }
}

const enumName = (schema: typeof CloseReasonSchema | typeof ErrorReasonSchema, value: number) =>
  schema.values.find((v) => v.number === value)?.name;

/** A client of one port and protocol, normalised so tests can run on any. */
export interface TestClient {
  readonly name: string;
  call(method: MethodName, request?: TestRequest): Promise<TestResponse>;
  /** WatchSessionEvents until `signal` aborts (the iteration then just ends) or the server ends it (RpcError). */
  watch(request: TestWatchRequest, signal: AbortSignal, options?: { timeoutMs?: number }): AsyncIterable<TestEventBatch>;
  close(): void;
}

const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

/**
 * An independent client: @grpc/grpc-js with messages encoded by protobufjs
 * from the .proto source (via @grpc/proto-loader), not by our generated code.
 */
export function grpcJsClient(port: number, headers: Record<string, string> = {}): TestClient {
  const definition = protoLoader.loadSync("sessions/v1/sessions.proto", {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    sessions: { v1: { SessionsService: grpc.ServiceClientConstructor } };
  };
  const client = new loaded.sessions.v1.SessionsService(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  const unary = client as unknown as Record<
    string,
    (req: unknown, metadata: grpc.Metadata, callback: (err: grpc.ServiceError | null, res: unknown) => void) => void
  >;
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
  return {
    name: "grpc-js (protobufjs)",
    call(method, request = {}) {
      const rpcName = SessionsService.method[method].name;
      return new Promise((resolve, reject) => {
        unary[rpcName]?.call(client, toPbjsRequest(request), metadata, (err, res) => {
          if (err) reject(new RpcError(err.code, err.details, reasonFromTrailer(err.metadata)));
          else resolve(normalize(method, res as Record<string, unknown>, fromPbjsSession));
        });
      });
    },
    async *watch(request, signal, options = {}) {
      const open = (
        client as unknown as Record<string, (req: unknown, metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientReadableStream<unknown>>
      ).WatchSessionEvents!;
      const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
      const call = open.call(client, request, metadata, { deadline });
      const cancel = () => call.cancel();
      signal.addEventListener("abort", cancel);
      try {
        for await (const message of call) yield fromPbjsBatch(message as Record<string, any>);
      } catch (error) {
        if (signal.aborted) return;
        const err = error as grpc.ServiceError;
        throw new RpcError(err.code, err.details, reasonFromTrailer(err.metadata));
      } finally {
        signal.removeEventListener("abort", cancel);
        call.cancel();
      }
    },
    close: () => client.close(),
  };
}

/** A Connect-ES client's error as an RpcError. */
function rpcErrorOf(error: unknown): RpcError {
  const connectError = ConnectError.from(error);
  const [detail] = connectError.findDetails(ErrorDetailSchema);
  const reason = detail === undefined ? undefined : enumName(ErrorReasonSchema, detail.reason);
  return new RpcError(connectError.code, connectError.rawMessage, reason);
}

/** A Connect-ES client over the given transport. */
export function connectClient(name: string, transport: Transport): TestClient {
  const client = createClient(SessionsService, transport);
  const methods = client as unknown as Record<string, (req: unknown) => Promise<unknown>>;
  return {
    name,
    async call(method, request = {}) {
      const desc = SessionsService.method[method];
      try {
        const response = await methods[method]?.(create(desc.input, toEsRequest(request) as never));
        return normalize(method, response as Record<string, unknown>, fromEsSession);
      } catch (error) {
        throw rpcErrorOf(error);
      }
    },
    async *watch(request, signal, options = {}) {
      const types = (request.types ?? []).map((name) => SessionEventTypeSchema.values.find((v) => v.name === name)?.number ?? 999);
      try {
        for await (const batch of client.watchSessionEvents({ ...request, types }, { signal, ...options })) {
          yield {
            cursor: batch.cursor,
            events: batch.events.map((event) => ({
              cursor: event.cursor,
              type: SessionEventTypeSchema.values.find((v) => v.number === event.type)!.name,
              sessionId: event.sessionId,
              userId: event.userId,
              client: event.client,
              address: event.address,
              ...(event.closeReason !== 0 && { closeReason: enumName(CloseReasonSchema, event.closeReason)! }),
              time: timestampMs(event.time!),
              version: Number(event.version),
            })),
          };
        }
      } catch (error) {
        if (signal.aborted) return;
        throw rpcErrorOf(error);
      }
    },
    close: () => undefined,
  };
}

export const connectJsonHttp1 = (port: number, headers: Record<string, string> = {}) =>
  connectClient(
    "Connect JSON over HTTP/1.1",
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "1.1",
      interceptors: [
        (next) => (request) => {
          for (const [key, value] of Object.entries(headers)) request.header.set(key, value);
          return next(request);
        },
      ],
    }),
  );

export const connectBinaryHttp2 = (port: number) =>
  connectClient(
    "Connect binary over h2c",
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "2",
      useBinaryFormat: true,
    }),
  );

export const grpcWebHttp1 = (port: number) =>
  connectClient(
    "gRPC-Web over HTTP/1.1",
    createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
  );

export const grpcOverH2c = (port: number) =>
  connectClient(
    "gRPC over h2c (connect-node client)",
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
  );

// --- protobufjs (proto-loader) object form ---

function toPbjsValue(json: JsonValue): Record<string, unknown> {
  if (json === null) return { nullValue: "NULL_VALUE" };
  if (typeof json === "number") return { numberValue: json };
  if (typeof json === "string") return { stringValue: json };
  if (typeof json === "boolean") return { boolValue: json };
  if (Array.isArray(json)) return { listValue: { values: json.map(toPbjsValue) } };
  return {
    structValue: {
      fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, toPbjsValue(v)])),
    },
  };
}

function fromPbjsValue(value: Record<string, any>): JsonValue {
  switch (value.kind) {
    case "nullValue":
      return null;
    case "numberValue":
      return value.numberValue as number;
    case "stringValue":
      return value.stringValue as string;
    case "boolValue":
      return value.boolValue as boolean;
    case "listValue":
      return ((value.listValue?.values ?? []) as Record<string, any>[]).map(fromPbjsValue);
    case "structValue":
      return Object.fromEntries(
        Object.entries((value.structValue?.fields ?? {}) as Record<string, Record<string, any>>).map(
          ([k, v]) => [k, fromPbjsValue(v)],
        ),
      );
    default:
      throw new Error(`Value without a kind: ${JSON.stringify(value)}`);
  }
}

const toPbjsTimestamp = (ms: number) => ({
  seconds: String(Math.floor(ms / 1000)),
  nanos: (((ms % 1000) + 1000) % 1000) * 1_000_000,
});

const toPbjsDuration = (ms: number) => ({
  seconds: String(Math.floor(ms / 1000)),
  nanos: (ms % 1000) * 1_000_000,
});

/**
 * The ErrorDetail reason in a grpc-status-details-bin trailer's bytes: a
 * google.rpc.Status (details = field 3, each a google.protobuf.Any).
 */
export function reasonFromStatusDetails(bin: Uint8Array | undefined): string | undefined {
  if (bin === undefined) return undefined;
  const status = new BinaryReader(bin);
  while (status.pos < status.len) {
    const [field, wireType] = status.tag();
    if (field !== 3) {
      status.skip(wireType);
      continue;
    }
    const any = new BinaryReader(status.bytes());
    let typeUrl = "";
    let value: Uint8Array = new Uint8Array();
    while (any.pos < any.len) {
      const [anyField, anyWire] = any.tag();
      if (anyField === 1) typeUrl = any.string();
      else if (anyField === 2) value = any.bytes();
      else any.skip(anyWire);
    }
    if (typeUrl === `type.googleapis.com/${ErrorDetailSchema.typeName}`) {
      return enumName(ErrorReasonSchema, fromBinary(ErrorDetailSchema, value).reason);
    }
  }
  return undefined;
}

function reasonFromTrailer(metadata: grpc.Metadata | undefined): string | undefined {
  const [bin] = metadata?.get("grpc-status-details-bin") ?? [];
  return bin instanceof Buffer ? reasonFromStatusDetails(bin) : undefined;
}

function toPbjsRequest(request: TestRequest): Record<string, unknown> {
  const out: Record<string, unknown> = { ...request };
  for (const key of ["user", "data"]) {
    if (request[key] !== undefined) out[key] = toPbjsValue(request[key] as JsonValue);
  }
  for (const key of ["idleTimeout", "absoluteTimeout"]) {
    if (typeof request[key] === "number") out[key] = toPbjsDuration(request[key]);
  }
  if (typeof request.expectedVersion === "number") out.expectedVersion = String(request.expectedVersion);
  if (request.filter) {
    const filter: Record<string, unknown> = { ...request.filter };
    for (const key of ["fromTime", "toTime"] as const) {
      const ms: unknown = request.filter[key];
      // A number is milliseconds; an object is sent as it is, to test bad input.
      if (typeof ms === "number") filter[key] = toPbjsTimestamp(ms);
    }
    out.filter = filter;
  }
  return out;
}

function fromPbjsBatch(batch: Record<string, any>): TestEventBatch {
  const time = (ts: { seconds: string; nanos?: number }) =>
    Number(ts.seconds) * 1000 + Math.floor((ts.nanos ?? 0) / 1_000_000);
  return {
    cursor: batch.cursor ?? "",
    events: ((batch.events ?? []) as Record<string, any>[]).map((e) => ({
      cursor: e.cursor ?? "",
      type: e.type ?? "SESSION_EVENT_TYPE_UNSPECIFIED",
      sessionId: e.sessionId ?? "",
      userId: e.userId ?? "",
      client: e.client ?? "",
      address: e.address ?? "",
      ...(e.closeReason && e.closeReason !== "CLOSE_REASON_UNSPECIFIED" && { closeReason: e.closeReason as string }),
      time: time(e.time),
      version: Number(e.version ?? 0),
    })),
  };
}

function fromPbjsSession(s: Record<string, any>): TestSession {
  const time = (ts: { seconds: string; nanos?: number }) =>
    Number(ts.seconds) * 1000 + Math.floor((ts.nanos ?? 0) / 1_000_000);
  return {
    id: s.id ?? "",
    userId: s.userId ?? "",
    userName: s.userName ?? "",
    active: s.active ?? false,
    openTime: time(s.openTime),
    ...(s.closeTime && { closeTime: time(s.closeTime) }),
    requestTime: time(s.requestTime),
    address: s.address ?? "",
    client: s.client ?? "",
    ...(s.user && { user: fromPbjsValue(s.user) }),
    ...(s.data && { data: fromPbjsValue(s.data) }),
    version: Number(s.version ?? 0),
    ...(s.expireTime && { expireTime: time(s.expireTime) }),
    ...(s.closeReason && s.closeReason !== "CLOSE_REASON_UNSPECIFIED" && { closeReason: s.closeReason as string }),
    idleTimeout: s.idleTimeout ? time(s.idleTimeout) : 0,
    absoluteTimeout: s.absoluteTimeout ? time(s.absoluteTimeout) : 0,
    lastAddress: s.lastAddress ?? "",
    lastClient: s.lastClient ?? "",
  };
}

// --- protobuf-es form ---

function toEsRequest(request: TestRequest): Record<string, unknown> {
  const out: Record<string, unknown> = { ...request };
  for (const key of ["user", "data"]) {
    if (request[key] !== undefined) out[key] = fromJson(ValueSchema, request[key] as JsonValue);
  }
  for (const key of ["idleTimeout", "absoluteTimeout"]) {
    if (typeof request[key] === "number") out[key] = durationFromMs(request[key]);
  }
  if (typeof request.expectedVersion === "number") out.expectedVersion = BigInt(request.expectedVersion);
  if (request.filter) {
    const filter: Record<string, unknown> = { ...request.filter };
    for (const key of ["fromTime", "toTime"] as const) {
      const ms = request.filter[key];
      if (ms !== undefined) filter[key] = timestampFromMs(ms);
    }
    if (typeof request.filter.closeReason === "string") {
      filter.closeReason = CloseReasonSchema.values.find((v) => v.name === request.filter!.closeReason)?.number;
    }
    out.filter = filter;
  }
  return out;
}

function fromEsSession(s: Record<string, any>): TestSession {
  return {
    id: s.id,
    userId: s.userId,
    userName: s.userName,
    active: s.active,
    openTime: timestampMs(s.openTime as Timestamp),
    ...(s.closeTime && { closeTime: timestampMs(s.closeTime as Timestamp) }),
    requestTime: timestampMs(s.requestTime as Timestamp),
    address: s.address,
    client: s.client,
    ...(s.user && { user: toJson(ValueSchema, s.user as Value) }),
    ...(s.data && { data: toJson(ValueSchema, s.data as Value) }),
    version: Number(s.version),
    ...(s.expireTime && { expireTime: timestampMs(s.expireTime as Timestamp) }),
    ...(s.closeReason && { closeReason: enumName(CloseReasonSchema, s.closeReason as number) }),
    idleTimeout: durationMs(s.idleTimeout as Duration),
    absoluteTimeout: durationMs(s.absoluteTimeout as Duration),
    lastAddress: s.lastAddress,
    lastClient: s.lastClient,
  };
}

/** The same shape from either client's response object. */
function normalize(
  method: MethodName,
  res: Record<string, any>,
  toSession: (s: Record<string, any>) => TestSession,
): TestResponse {
  switch (method) {
    case "getSessions":
      return {
        sessions: ((res.sessions ?? []) as Record<string, any>[]).map(toSession),
        ...(res.total !== undefined && { total: res.total as number }),
      };
    case "closeExpiredSessions":
    case "closeUserSessions":
    case "closeSessions":
      return { closedCount: (res.closedCount ?? 0) as number };
    case "openSession":
      return {
        session: toSession(res.session as Record<string, any>),
        token: res.token as string,
        evictedSessionIds: (res.evictedSessionIds ?? []) as string[],
      };
    case "validateSession":
      return {
        session: toSession(res.session as Record<string, any>),
        ...(res.newToken && { newToken: res.newToken as string }),
      };
    default:
      return { session: toSession(res.session as Record<string, any>) };
  }
}

/** Every client the service must answer the same way, and the port each uses. */
export const CLIENTS: { name: string; make: (ports: { grpcPort: number; httpPort: number }) => TestClient }[] = [
  { name: "grpc-js on the gRPC port", make: (p) => grpcJsClient(p.grpcPort) },
  { name: "Connect JSON over HTTP/1.1", make: (p) => connectJsonHttp1(p.httpPort) },
  { name: "Connect binary over h2c", make: (p) => connectBinaryHttp2(p.httpPort) },
  { name: "gRPC-Web over HTTP/1.1", make: (p) => grpcWebHttp1(p.httpPort) },
  { name: "gRPC over h2c on the HTTP port", make: (p) => grpcOverH2c(p.httpPort) },
];
