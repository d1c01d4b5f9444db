import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, ValueSchema, type Timestamp, type Value } from "@bufbuild/protobuf/wkt";
import { createClient, ConnectError, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { SessionsService } from "../../gen/sessions/v1/sessions_pb.js";

/** The RPCs, by their local (camelCase) names. */
export type MethodName = keyof typeof SessionsService.method;

/**
 * A request in test-friendly form: proto JSON field names, `user` and `data`
 * as plain JSON (undefined = unset), and filter times as milliseconds.
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
}

export interface TestResponse {
  session?: TestSession;
  sessions?: TestSession[];
  total?: number;
  closedCount?: number;
}

/** A failed call: the status code (gRPC numbering) and message. */
export class RpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** A client of one port and protocol, normalised so tests can run on any. */
export interface TestClient {
  readonly name: string;
  call(method: MethodName, request?: TestRequest): Promise<TestResponse>;
  close(): void;
}

const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

/**
 * An independent client: @grpc/grpc-js with messages encoded by protobufjs
 * from the .proto source (via @grpc/proto-loader), not by our generated code.
 */
export function grpcJsClient(port: number): TestClient {
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
    (req: unknown, callback: (err: grpc.ServiceError | null, res: unknown) => void) => void
  >;
  return {
    name: "grpc-js (protobufjs)",
    call(method, request = {}) {
      const rpcName = SessionsService.method[method].name;
      return new Promise((resolve, reject) => {
        unary[rpcName]?.call(client, toPbjsRequest(request), (err, res) => {
          if (err) reject(new RpcError(err.code, err.details));
          else resolve(normalize(method, res as Record<string, unknown>, fromPbjsSession));
        });
      });
    },
    close: () => client.close(),
  };
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
        const connectError = ConnectError.from(error);
        throw new RpcError(connectError.code, connectError.rawMessage);
      }
    },
    close: () => undefined,
  };
}

export const connectJsonHttp1 = (port: number) =>
  connectClient(
    "Connect JSON over HTTP/1.1",
    createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
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

function toPbjsRequest(request: TestRequest): Record<string, unknown> {
  const out: Record<string, unknown> = { ...request };
  for (const key of ["user", "data"]) {
    if (request[key] !== undefined) out[key] = toPbjsValue(request[key] as JsonValue);
  }
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
  };
}

// --- protobuf-es form ---

function toEsRequest(request: TestRequest): Record<string, unknown> {
  const out: Record<string, unknown> = { ...request };
  for (const key of ["user", "data"]) {
    if (request[key] !== undefined) out[key] = fromJson(ValueSchema, request[key] as JsonValue);
  }
  if (request.filter) {
    const filter: Record<string, unknown> = { ...request.filter };
    for (const key of ["fromTime", "toTime"] as const) {
      const ms = request.filter[key];
      if (ms !== undefined) filter[key] = timestampFromMs(ms);
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
      return { closedCount: (res.closedCount ?? 0) as number };
    default:
      return { session: toSession(res.session as Record<string, any>) };
  }
}
