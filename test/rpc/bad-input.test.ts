/**
 * Bad input, table-driven, for every RPC of sessions.v1.SessionsService on both ports:
 * the gRPC port (grpc-js, raw request bytes; raw node:http2 where grpc-js cannot send what
 * we need) and the HTTP port (Connect JSON over HTTP/1.1 with plain fetch; Connect binary
 * for the protobuf cases). Every case asserts the exact status code (and, on Connect, the
 * HTTP status that goes with it), that the message names the problem (exact where the
 * service defines it), that no session token comes back in the message, and that the
 * database is unchanged: a read-only connection snapshots it before and after each call.
 *
 * Documented behaviour asserted here, not changed: unknown JSON fields and unknown enum
 * names are ignored (as binary protobuf ignores unknown fields); an undecodable protobuf
 * body is INTERNAL, as the gRPC status-code table specifies ("Error parsing request
 * protocol buffer"), on both ports.
 *
 * Known defects of a dependency, run as `it.fails` so that an upgrade that fixes them is
 * noticed: three Connect JSON cases that @bufbuild/protobuf's JSON parsing accepts or words
 * badly: "2026-02-30T00:00:00Z" (read as 2 March), idle_timeout "120s of idling" (opens a
 * session with 120 s), idle_timeout "120.0000000001s" ("Invalid count value: -1").
 */
import { create, fromBinary, fromJson, toBinary, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorDetailSchema, ErrorReasonSchema, SessionsService } from "../../gen/sessions/v1/sessions_pb.js";
import { eventTag, type SessionEvent } from "../../src/session/session-events.js";
import type { EventRow } from "../../src/sqlite/event-sql.js";
import { grpcJsClient, reasonFromStatusDetails } from "../support/clients.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

// --- the RPCs and the wire ---------------------------------------------------------------

const RPCS = [
  "OpenSession",
  "ValidateSession",
  "GetSessionById",
  "GetSessions",
  "StoreSessionData",
  "UpdateSessionUser",
  "CloseSession",
  "CloseExpiredSessions",
  "DeleteSessionById",
  "CloseUserSessions",
  "CloseSessions",
  "WatchSessionEvents",
] as const;
type Rpc = (typeof RPCS)[number];

const methodOf = (rpc: Rpc) => SessionsService.methods.find((m) => m.name === rpc)!;
const streaming = (rpc: Rpc) => methodOf(rpc).methodKind === "server_streaming";
const pathOf = (rpc: Rpc) => `/${SessionsService.typeName}/${rpc}`;

const S = grpc.status;
/** Connect's name and HTTP status for each gRPC code (the Connect protocol's table). */
const CONNECT: Partial<Record<grpc.status, { name: string; http: number }>> = {
  [S.OK]: { name: "ok", http: 200 },
  [S.INVALID_ARGUMENT]: { name: "invalid_argument", http: 400 },
  [S.DEADLINE_EXCEEDED]: { name: "deadline_exceeded", http: 504 },
  [S.NOT_FOUND]: { name: "not_found", http: 404 },
  [S.RESOURCE_EXHAUSTED]: { name: "resource_exhausted", http: 429 },
  [S.FAILED_PRECONDITION]: { name: "failed_precondition", http: 400 },
  [S.ABORTED]: { name: "aborted", http: 409 },
  [S.OUT_OF_RANGE]: { name: "out_of_range", http: 400 },
  [S.UNIMPLEMENTED]: { name: "unimplemented", http: 501 },
  [S.INTERNAL]: { name: "internal", http: 500 },
  [S.UNAUTHENTICATED]: { name: "unauthenticated", http: 401 },
};
const codeByConnectName = (name: string): number =>
  Number(Object.entries(CONNECT).find(([, v]) => v?.name === name)?.[0] ?? -1);
const codeName = (code: number) => (code === -1 ? "(no status)" : (S[code] ?? String(code)));

/** What a call came back with; code -1 when there was no status at all (e.g. HTTP 415). */
interface Outcome {
  code: number;
  message: string;
  /** ErrorDetail reason, e.g. "ERROR_REASON_TOKEN_UNKNOWN". */
  reason?: string | undefined;
  /** The HTTP status of a Connect unary response, or of a raw HTTP/2 response. */
  http?: number | undefined;
  /** True for Connect unary responses, whose HTTP status must match the code. */
  connectUnary?: boolean;
}

/** What a case expects. `code` undefined: only the HTTP status is checked (no RPC status exists). */
interface Expect {
  code?: grpc.status;
  message?: string | RegExp;
  /** ErrorReason without its prefix, e.g. "TOKEN_UNKNOWN". */
  reason?: string;
  http?: number;
}

const reasonName = (value: number) => ErrorReasonSchema.values.find((v) => v.number === value)?.name;


interface ConnectErrorJson {
  code: string;
  message?: string;
  details?: { type: string; value: string }[];
}
function fromConnectError(error: ConnectErrorJson): Outcome {
  const detail = error.details?.find((d) => d.type === ErrorDetailSchema.typeName);
  return {
    code: codeByConnectName(error.code),
    message: error.message ?? "",
    reason: detail === undefined ? undefined : reasonName(fromBinary(ErrorDetailSchema, Buffer.from(detail.value, "base64")).reason),
  };
}

const OK: Outcome = { code: S.OK, message: "" };
const NO_ANSWER = (what: string): Outcome => ({ code: -1, message: `no answer within 5 s (${what})` });
const identity = (b: Buffer) => b;

/** A request as the protobuf binary encoding, from proto JSON. */
const encodeJson = (rpc: Rpc, json: JsonValue) => toBinary(methodOf(rpc).input, fromJson(methodOf(rpc).input, json));
/** A request as the protobuf binary encoding, from a message init (what JSON cannot say). */
const encodeInit = (rpc: Rpc, init: object) => toBinary(methodOf(rpc).input, create(methodOf(rpc).input, init as never));
/** A gRPC (and Connect streaming) message envelope. */
function envelope(payload: Uint8Array, flags = 0): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** One call over grpc-js with raw bytes (identity serializers). */
function grpcCall(client: grpc.Client, rpc: Rpc, bytes: Uint8Array, options: grpc.CallOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const guard = setTimeout(() => resolve(NO_ANSWER("grpc-js")), 5000);
    const done = (outcome: Outcome) => {
      clearTimeout(guard);
      resolve(outcome);
    };
    const failed = (err: grpc.ServiceError) =>
      done({
        code: err.code,
        message: err.details,
        reason: reasonFromStatusDetails(err.metadata?.get("grpc-status-details-bin")[0] as Buffer | undefined),
      });
    const metadata = new grpc.Metadata();
    if (streaming(rpc)) {
      const call = client.makeServerStreamRequest(pathOf(rpc), identity, identity, Buffer.from(bytes), metadata, options);
      call.on("data", () => {
        done(OK);
        call.cancel();
      });
      call.on("error", failed);
      call.on("end", () => done(OK));
    } else {
      client.makeUnaryRequest(pathOf(rpc), identity, identity, Buffer.from(bytes), metadata, options, (err) =>
        err ? failed(err) : done(OK),
      );
    }
  });
}

/** One gRPC call over raw HTTP/2, for what grpc-js will not send (wrong content type, no message, a 0 timeout). */
function h2Call(session: http2.ClientHttp2Session, rpc: Rpc, headers: Record<string, string>, body: Uint8Array): Promise<Outcome> {
  return new Promise((resolve) => {
    const request = session.request({ ":method": "POST", ":path": pathOf(rpc), te: "trailers", ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const guard = setTimeout(() => {
      request.close();
      resolve(NO_ANSWER("http2"));
    }, 5000);
    request.on("response", (h) => (responseHeaders = h));
    request.on("trailers", (t) => (trailers = t));
    request.on("data", () => {
      if (streaming(rpc)) request.close(); // a stream that started: OK, unless the status says otherwise
    });
    request.on("close", () => {
      clearTimeout(guard);
      const status = trailers["grpc-status"] ?? responseHeaders["grpc-status"];
      const message = trailers["grpc-message"] ?? responseHeaders["grpc-message"];
      const details = trailers["grpc-status-details-bin"] ?? responseHeaders["grpc-status-details-bin"];
      resolve({
        code: status === undefined ? (streaming(rpc) && Number(responseHeaders[":status"]) === 200 ? S.OK : -1) : Number(status),
        message: typeof message === "string" ? decodeURIComponent(message) : "",
        reason: typeof details === "string" ? reasonFromStatusDetails(Buffer.from(details, "base64")) : undefined,
        http: Number(responseHeaders[":status"]),
      });
    });
    request.end(Buffer.from(body));
  });
}

/** The first envelope of a Connect stream: a message (OK) or the end-stream error. */
async function readConnectStream(response: Response): Promise<Outcome> {
  const reader = response.body!.getReader();
  let buffer = Buffer.alloc(0);
  try {
    for (;;) {
      if (buffer.length >= 5 && buffer.length >= 5 + buffer.readUInt32BE(1)) {
        if ((buffer[0]! & 2) === 0) return OK;
        const end = JSON.parse(buffer.subarray(5, 5 + buffer.readUInt32BE(1)).toString()) as { error?: ConnectErrorJson };
        return end.error === undefined ? OK : fromConnectError(end.error);
      }
      const { done, value } = await reader.read();
      if (done) return { code: -1, message: "the stream ended without an end-stream message" };
      buffer = Buffer.concat([buffer, value]);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

interface HttpRequest {
  body?: string | Uint8Array | undefined;
  /** null: no content-type header at all. */
  contentType: string | null;
  headers?: Record<string, string>;
  method?: "POST" | "GET";
  query?: string;
}

/** One call on the HTTP port with fetch (HTTP/1.1). */
async function httpCall(port: number, rpc: Rpc, request: HttpRequest): Promise<Outcome> {
  const headers: Record<string, string> = { ...request.headers };
  if (request.contentType !== null) headers["content-type"] = request.contentType;
  let response: Response;
  try {
    response = await fetch(`http://127.0.0.1:${port}${pathOf(rpc)}${request.query ?? ""}`, {
      method: request.method ?? "POST",
      headers,
      ...(request.body !== undefined && { body: request.body }),
      signal: AbortSignal.timeout(5000),
    });
  } catch (error) {
    return NO_ANSWER(String(error));
  }
  if (response.status === 200 && response.headers.get("content-type")?.startsWith("application/connect+")) {
    return readConnectStream(response);
  }
  const text = await response.text();
  if (response.status === 200) return { ...OK, http: 200, connectUnary: true };
  if (text === "") return { code: -1, message: "", http: response.status };
  return { ...fromConnectError(JSON.parse(text) as ConnectErrorJson), http: response.status, connectUnary: true };
}

/** Connect JSON for a request: plain for unary, enveloped (application/connect+json) for streams. */
const connectJson = (rpc: Rpc, text: string, headers: Record<string, string> = {}): HttpRequest =>
  streaming(rpc)
    ? { body: envelope(Buffer.from(text)), contentType: "application/connect+json", headers }
    : { body: text, contentType: "application/json", headers };
/** A Connect GET query for a request (side-effect-free RPCs only). */
const getQuery = (request: JsonValue) => `?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(request))}`;
/** Connect binary for a request. */
const connectProto = (rpc: Rpc, bytes: Uint8Array): HttpRequest =>
  streaming(rpc) ? { body: envelope(bytes), contentType: "application/connect+proto" } : { body: bytes, contentType: "application/proto" };

// --- placeholders: the tables name seeded values as {key} --------------------------------

type Seeds = Record<string, string>;
function fill<T>(value: T, seeds: Seeds): T {
  if (typeof value === "string") {
    return value.replace(/\{(\w+)\}/g, (whole, key: string) => seeds[key] ?? whole) as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => fill(v, seeds)) as T;
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, seeds)])) as T;
  }
  return value;
}

// --- the cases ---------------------------------------------------------------------------

const LIMIT = 1024;
const LONG = "x".repeat(LIMIT + 1);
const LONG_UNICODE = "é".repeat(LIMIT + 1);
const tooLong = (field: string) => `${field}: must be at most ${LIMIT} characters`;
const REQUIRED = (field: string) => `${field}: is required`;
const NOT_AN_ID = (field: string) => `${field}: must be a session id: 32 lowercase hexadecimal characters`;
const NOT_JSON = (field: string) => `${field}: must be a JSON value (a kind must be set, numbers must be finite)`;
const TOKEN_REFUSED = "the session token is not valid";
const NOT_A_CURSOR = "after_cursor: is not a cursor from this service's events";
const CURSOR_UNKNOWN =
  "this cursor is not from this server's event log (another or a restored database); resynchronise, then watch from the live tail";
const SECRET_A = "A".repeat(43);
const nestArrays = (depth: number): JsonValue => {
  let value: JsonValue = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};
const nestObjects = (depth: number): JsonValue => {
  let value: JsonValue = "leaf";
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};
const DEPTH_REFUSED = (field: string) => `${field}: must not nest arrays and objects more than 32 deep`;

interface JsonCase extends Expect {
  rpc: Rpc;
  name: string;
  /** Proto JSON: sent as is on the HTTP port, encoded to protobuf binary for the gRPC port. */
  req: JsonObject;
}
/** One row of a table: the expectation is a code, then the exact message (or a pattern), then the reason. */
const expecting = (code: grpc.status, message?: string | RegExp, reason?: string): Expect => ({
  code,
  ...(message !== undefined && { message }),
  ...(reason !== undefined && { reason }),
});
const INVALID = S.INVALID_ARGUMENT;
const row = (rpc: Rpc, name: string, req: JsonObject, code: grpc.status, message?: string | RegExp, reason?: string): JsonCase => ({
  rpc,
  name,
  req,
  ...expecting(code, message, reason),
});

/** Where a session id goes: [rpc, JSON field, field as messages name it, the rest of a request that is otherwise valid]. */
const ID_FIELDS: [Rpc, string, string, JsonObject][] = [
  ["GetSessionById", "id", "id", {}],
  ["StoreSessionData", "id", "id", { data: { k: 1 } }],
  ["UpdateSessionUser", "id", "id", { user: { k: 1 } }],
  ["CloseSession", "id", "id", {}],
  ["DeleteSessionById", "id", "id", {}],
  ["CloseUserSessions", "exceptSessionId", "except_session_id", { userId: "alice" }],
];
const BAD_IDS: [string, string | undefined][] = [
  ["missing", undefined],
  ["empty", ""],
  ["whitespace-only", "   "],
  ["31 hex characters", "{open_short}"],
  ["33 hex characters", "{open}0"],
  ["uppercase hex", "{open_upper}"],
  ["not hexadecimal", "g".repeat(32)],
  ["over-long (10,000 characters)", "a".repeat(10_000)],
  ["unicode", "é".repeat(32)],
  ["NUL bytes", "\u0000".repeat(32)],
  ["a trailing newline", "{open}\n"],
  ["SQL in it", "0123456789abcdef' OR '1'='1"],
  ["a session token instead of an id", "{open_token}"],
];
const idCases = ID_FIELDS.flatMap(([rpc, field, name, rest]) =>
  BAD_IDS.filter(([, id]) => field === "id" || (id !== undefined && id !== "")) // except_session_id is optional
    .map(([what, id]) =>
      row(rpc, `${name} ${what}`, { ...rest, ...(id !== undefined && { [field]: id }) }, INVALID, id ? NOT_AN_ID(name) : REQUIRED(name)),
    ),
);

/** Text fields with a length limit: [rpc, path in the request, field as messages name it, the rest of the request]. */
const TEXT_FIELDS: [Rpc, string[], string, JsonObject][] = [
  ["OpenSession", ["userId"], "user_id", {}],
  ["OpenSession", ["userName"], "user_name", { userId: "u" }],
  ["OpenSession", ["address"], "address", { userId: "u" }],
  ["OpenSession", ["client"], "client", { userId: "u" }],
  ["ValidateSession", ["address"], "address", { token: "{open_token}" }], // a valid token: nothing may be recorded
  ["ValidateSession", ["client"], "client", { token: "{open_token}" }],
  ["GetSessions", ["filter", "userId"], "filter.user_id", {}],
  ["GetSessions", ["filter", "address"], "filter.address", {}],
  ["GetSessions", ["filter", "client"], "filter.client", {}],
  ["CloseUserSessions", ["userId"], "user_id", {}],
  ["CloseSessions", ["filter", "userId"], "filter.user_id", { filter: { active: true } }],
  ["CloseSessions", ["filter", "address"], "filter.address", { filter: { active: true } }],
  ["CloseSessions", ["filter", "client"], "filter.client", { filter: { active: true } }],
  ["WatchSessionEvents", ["userId"], "user_id", {}],
];
const withField = (base: JsonObject, path: string[], value: JsonValue): JsonObject => {
  const [head, ...rest] = path;
  if (head === undefined) return base;
  return { ...base, [head]: rest.length === 0 ? value : withField((base[head] ?? {}) as JsonObject, rest, value) };
};
const textCases = TEXT_FIELDS.flatMap(([rpc, path, field, base]) => [
  row(rpc, `${field} of 1,025 characters`, withField(base, path, LONG), INVALID, tooLong(field)),
  row(rpc, `${field} of 1,025 non-ASCII characters`, withField(base, path, LONG_UNICODE), INVALID, tooLong(field)),
]);

/** Tokens ValidateSession must refuse as unknown, without saying more. */
const TOKEN_SHAPES: [string, string][] = [
  ["whitespace-only", "   "],
  ["no dot", "not-a-token"],
  ["many dots", "a.b.c.d.e"],
  ["id and secret twice", "{open_token}.{open_secret}"],
  ["only the id", "{open}"],
  ["the id and an empty secret", "{open}."],
  ["no id part", ".{open_secret}"],
  ["a wrong id part with the right secret", "{unknown}.{open_secret}"],
  ["another session's id with this secret", "{open2}.{open_secret}"],
  ["the right id with a wrong secret", `{open}.${SECRET_A}`],
  ["a closed session's id with a wrong secret", `{closed}.${SECRET_A}`],
  ["the id in uppercase", "{open_upper}.{open_secret}"],
  ["the secret one character short", "{open}.{open_secret_short}"],
  ["one character too many", "{open_token}A"],
  ["base64 padding", "{open_token}="],
  ["non-base64url characters (+)", `{open}.${"+".repeat(43)}`],
  ["non-base64url characters (/)", `{open}.${"/".repeat(43)}`],
  ["a leading space", " {open_token}"],
  ["a trailing space", "{open_token} "],
  ["a trailing newline", "{open_token}\n"],
  ["over-long (100,000 characters)", "A".repeat(100_000)],
  ["an over-long secret", `{open}.${"A".repeat(10_000)}`],
  ["unicode in the secret", `{open}.${"é".repeat(43)}`],
  ["emoji in the secret", `{open}.${"😀".repeat(22)}`],
  ["a NUL byte appended", "{open_token}\u0000"],
  ["a NUL byte in the secret", `{open}.\u0000${"A".repeat(42)}`],
  ["only NUL bytes", "\u0000".repeat(76)],
];
const tokenCases = [
  row("ValidateSession", "token missing", {}, INVALID, REQUIRED("token")),
  row("ValidateSession", "token empty", { token: "" }, INVALID, REQUIRED("token")),
  row("ValidateSession", "token empty, with a client", { token: "", client: "web" }, INVALID, REQUIRED("token")),
  ...TOKEN_SHAPES.map(([what, token]) => row("ValidateSession", `token with ${what}`, { token }, S.UNAUTHENTICATED, TOKEN_REFUSED, "TOKEN_UNKNOWN")),
];

const SIZE = (field: string, bytes: number) => `${field}: is ${bytes} bytes as JSON; the limit is 65536 bytes`;
const NOT_A_VERSION = "expected_version: must be a version number (0 or more)";
const NO_FILTER = "filter: must set at least one field (active = true closes every session)";
const jsonCases: JsonCase[] = [
  ...idCases,
  ...textCases,
  ...tokenCases,

  // OpenSession
  row("OpenSession", "user_id missing", {}, INVALID, REQUIRED("user_id")),
  row("OpenSession", "user_id empty", { userId: "" }, INVALID, REQUIRED("user_id")),
  row("OpenSession", "user_id empty, everything else set", { userId: "", userName: "A", client: "web", data: { a: 1 }, user: { b: 2 } }, INVALID, REQUIRED("user_id")),
  row("OpenSession", "data of 65,537 bytes", { userId: "u", data: "x".repeat(65_535) }, INVALID, SIZE("data", 65_537)),
  row("OpenSession", "data of 65,538 bytes in 32,768 characters", { userId: "u", data: "é".repeat(32_768) }, INVALID, SIZE("data", 65_538)),
  row("OpenSession", "user of 70,011 bytes", { userId: "u", user: { name: "x".repeat(70_000) } }, INVALID, SIZE("user", 70_011)),
  row("OpenSession", "data 33 arrays deep", { userId: "u", data: nestArrays(33) }, INVALID, DEPTH_REFUSED("data")),
  row("OpenSession", "user 33 objects deep", { userId: "u", user: nestObjects(33) }, INVALID, DEPTH_REFUSED("user")),
  row("OpenSession", "idle_timeout of 0 s", { userId: "u", idleTimeout: "0s" }, INVALID, "idle_timeout: must be a positive whole number of milliseconds"),
  row("OpenSession", "idle_timeout negative", { userId: "u", idleTimeout: "-1s" }, INVALID, "idle_timeout: must be a positive whole number of milliseconds"),
  row("OpenSession", "idle_timeout not above the touch interval", { userId: "u", idleTimeout: "60s" }, INVALID, "idle_timeout: must be longer than the server's touch interval (60000 ms)"),
  row("OpenSession", "idle_timeout over the maximum", { userId: "u", idleTimeout: "86401s" }, INVALID, "idle_timeout: must be at most the server's maximum of 86400000 ms"),
  row("OpenSession", "absolute_timeout of 0 s", { userId: "u", absoluteTimeout: "0s" }, INVALID, "absolute_timeout: must be a positive whole number of milliseconds"),
  row("OpenSession", "absolute_timeout of 10,000 years", { userId: "u", absoluteTimeout: "315576000000s" }, INVALID, "absolute_timeout: must be at most the server's maximum of 2592000000 ms"),

  // Well-formed ids of no session.
  ...(["GetSessionById", "CloseSession", "DeleteSessionById"] as const).map((rpc) =>
    row(rpc, "an id of no session", { id: "{unknown}" }, S.NOT_FOUND, "session {unknown} not found"),
  ),

  // GetSessions: skip, take, filter; and what it accepts, as documented (capped take, empty page, the 1,024 limit).
  row("GetSessions", "skip -1", { skip: -1 }, INVALID, "skip: must not be negative"),
  row("GetSessions", "take -1", { take: -1 }, INVALID, "take: must not be negative"),
  row("GetSessions", "skip -2147483648", { skip: -2147483648, take: 5 }, INVALID, "skip: must not be negative"),
  row("GetSessions", "take -2147483648", { take: -2147483648 }, INVALID, "take: must not be negative"),
  row("GetSessions", "filter.close_reason 77", { filter: { closeReason: 77 } }, INVALID, "filter.close_reason: has no value 77"),
  row("GetSessions", "filter.close_reason -1", { filter: { closeReason: -1 } }, INVALID, "filter.close_reason: has no value -1"),
  row("GetSessions", "filter.from_time after filter.to_time", { filter: { fromTime: "2026-01-02T00:00:00Z", toTime: "2026-01-01T00:00:00Z" } }, INVALID, "filter.from_time: must not be after filter.to_time"),
  row("GetSessions", "take 2147483647 (capped: OK)", { take: 2147483647 }, S.OK),
  row("GetSessions", "skip 2147483647 (an empty page: OK)", { skip: 2147483647 }, S.OK),
  row("GetSessions", "filter.user_id of exactly 1,024 characters (OK)", { filter: { userId: "x".repeat(LIMIT) } }, S.OK),

  // StoreSessionData and UpdateSessionUser: content, sizes, versions, state.
  ...(["data", "user"] as const).flatMap((field) => {
    const rpc = field === "data" ? "StoreSessionData" : "UpdateSessionUser";
    const on = (id: string, extra: JsonObject = {}): JsonObject => ({ id, [field]: 1, ...extra });
    return [
      row(rpc, `${field} missing`, { id: "{open}" }, INVALID, `${field}: is required (send a JSON null to clear the ${field})`),
      row(rpc, `${field} of 65,537 bytes`, on("{open}", { [field]: "x".repeat(65_535) }), INVALID, SIZE(field, 65_537)),
      row(rpc, `${field} of 80,010 bytes in 40,000 characters`, on("{open}", { [field]: { bio: "ü".repeat(40_000) } }), INVALID, SIZE(field, 80_010)),
      row(rpc, `${field} 33 arrays deep`, on("{open}", { [field]: nestArrays(33) }), INVALID, DEPTH_REFUSED(field)),
      row(rpc, `${field} 33 objects deep`, on("{open}", { [field]: nestObjects(33) }), INVALID, DEPTH_REFUSED(field)),
      row(rpc, "expected_version -1", on("{open}", { expectedVersion: "-1" }), INVALID, NOT_A_VERSION),
      row(rpc, "expected_version 2^53", on("{open}", { expectedVersion: "9007199254740992" }), INVALID, NOT_A_VERSION),
      row(rpc, "expected_version 2^63-1", on("{open}", { expectedVersion: "9223372036854775807" }), INVALID, NOT_A_VERSION),
      row(rpc, "a stale expected_version", on("{open}", { expectedVersion: "1" }), S.ABORTED, "session {open} is at version 2, not the expected 1; nothing changed", "VERSION_MISMATCH"),
      row(rpc, "an id of no session", on("{unknown}"), S.NOT_FOUND, "session {unknown} not found"),
      row(rpc, "a closed session", on("{closed}"), S.FAILED_PRECONDITION, "session {closed} is closed", "SESSION_CLOSED"),
    ];
  }),

  // CloseUserSessions
  row("CloseUserSessions", "user_id missing", {}, INVALID, REQUIRED("user_id")),
  row("CloseUserSessions", "user_id empty", { userId: "" }, INVALID, REQUIRED("user_id")),
  row("CloseUserSessions", "user_id empty with a valid except_session_id", { userId: "", exceptSessionId: "{open}" }, INVALID, REQUIRED("user_id")),

  // CloseSessions: the filter.
  row("CloseSessions", "no filter", {}, INVALID, NO_FILTER),
  row("CloseSessions", "an empty filter", { filter: {} }, INVALID, NO_FILTER),
  row("CloseSessions", "an empty filter with dry_run", { filter: {}, dryRun: true }, INVALID, NO_FILTER),
  row("CloseSessions", "only an unspecified close_reason", { filter: { closeReason: "CLOSE_REASON_UNSPECIFIED" } }, INVALID, NO_FILTER),
  row("CloseSessions", "filter.active false", { filter: { active: false, userId: "alice" } }, INVALID, "filter.active: must not be false: only active sessions can be closed"),
  row("CloseSessions", "filter.close_reason set", { filter: { active: true, closeReason: "CLOSE_REASON_LOGOUT" } }, INVALID, "filter.close_reason: must not be set: only active sessions can be closed"),
  row("CloseSessions", "filter.close_reason 77", { filter: { active: true, closeReason: 77 } }, INVALID, "filter.close_reason: has no value 77"),
  row("CloseSessions", "filter.from_time after filter.to_time", { filter: { active: true, fromTime: "2026-01-02T00:00:00Z", toTime: "2026-01-01T00:00:00Z" } }, INVALID, "filter.from_time: must not be after filter.to_time"),

  // WatchSessionEvents: cursors and types.
  ...(
    [
      ["garbage", "garbage"],
      ["whitespace-only", "   "],
      ["without its tag", "{log_id}-1"],
      ["in uppercase", "{log_id_upper}-1-00000000"],
      ["with a leading zero in the sequence", "{log_id}-01-00000000"],
      ["with a sequence beyond 2^53", "{log_id}-9999999999999999-00000000"],
      ["with a negative sequence", "{log_id}--1-00000000"],
      ["with a trailing newline", "{log_id}-0-00000000\n"],
      ["over-long (5,000 characters)", "x".repeat(5000)],
      ["a session token", "{open_token}"],
    ] as const
  ).map(([what, afterCursor]) => row("WatchSessionEvents", `after_cursor ${what}`, { afterCursor }, INVALID, NOT_A_CURSOR)),
  row("WatchSessionEvents", "after_cursor of another event log", { afterCursor: "{other_log_id}-1-00000000" }, S.OUT_OF_RANGE, CURSOR_UNKNOWN, "CURSOR_UNKNOWN"),
  row("WatchSessionEvents", "after_cursor beyond the newest event", { afterCursor: "{log_id}-999999-00000000" }, S.OUT_OF_RANGE, CURSOR_UNKNOWN, "CURSOR_UNKNOWN"),
  row("WatchSessionEvents", "after_cursor with a wrong tag", { afterCursor: "{log_id}-1-{wrong_tag}" }, S.OUT_OF_RANGE, CURSOR_UNKNOWN, "CURSOR_UNKNOWN"),
  row("WatchSessionEvents", "from_oldest with after_cursor", { afterCursor: "{log_id}-0-00000000", fromOldest: true }, INVALID, "from_oldest: must not be set with after_cursor"),
  row("WatchSessionEvents", "types [UNSPECIFIED]", { types: ["SESSION_EVENT_TYPE_UNSPECIFIED"] }, INVALID, "types[0]: has no event type 0"),
  row("WatchSessionEvents", "types [OPENED, 99]", { types: ["SESSION_EVENT_TYPE_OPENED", 99] }, INVALID, "types[1]: has no event type 99"),
];

// Binary-only cases: what proto JSON cannot express. Sent as protobuf on both ports.
interface BinaryCase extends Expect {
  rpc: Rpc;
  name: string;
  bytes: (seeds: Seeds) => Uint8Array;
}
const binRow = (rpc: Rpc, name: string, bytes: (seeds: Seeds) => Uint8Array, expected: Expect): BinaryCase => ({ rpc, name, bytes, ...expected });
/** A binary case built with create(): what JSON has no words for (NaN, kind-less values, out-of-range times). */
const initRow = (rpc: Rpc, name: string, make: (seeds: Seeds) => object, expected: Expect) =>
  binRow(rpc, name, (seeds) => encodeInit(rpc, make(seeds)), expected);
const ts = (seconds: bigint, nanos = 0) => ({ seconds, nanos });
const value = (kind: object) => ({ kind });
const num = (n: number) => value({ case: "numberValue", value: n });
const NO_KIND = value({ case: undefined });
/** A Value nested `depth` lists deep, encoded by hand (protobuf-es will not encode past its limit of 100). */
function deepValueBytes(depth: number): Uint8Array {
  let inner: Uint8Array = new BinaryWriter().tag(1, WireType.Varint).int32(0).finish(); // null_value
  for (let i = 0; i < depth; i++) {
    const list = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(inner).finish(); // ListValue.values
    inner = new BinaryWriter().tag(6, WireType.LengthDelimited).bytes(list).finish(); // Value.list_value
  }
  return inner;
}
/** Valid requests, to cut short: every one of them ends inside a field. */
const VALID: Record<Rpc, JsonObject> = {
  OpenSession: { userId: "alice" },
  ValidateSession: { token: "{open_token}" },
  GetSessionById: { id: "{open}" },
  GetSessions: { filter: { userId: "alice" } },
  StoreSessionData: { id: "{open}", data: { k: 1 } },
  UpdateSessionUser: { id: "{open}", user: { k: 1 } },
  CloseSession: { id: "{open}" },
  CloseExpiredSessions: {},
  DeleteSessionById: { id: "{open}" },
  CloseUserSessions: { userId: "alice" },
  CloseSessions: { filter: { active: true } },
  WatchSessionEvents: { userId: "alice" },
};
/** An undecodable protobuf body: INTERNAL, as the gRPC status-code table says ("Error parsing request protocol buffer"). */
const UNDECODABLE = expecting(S.INTERNAL, /^(Error deserializing request|parse binary: .+)$/);
const BAD_TIME = (field: string) => expecting(INVALID, `filter.${field}: is not a valid timestamp`);

const binaryCases: BinaryCase[] = [
  initRow("GetSessions", "filter.from_time nanos -1", () => ({ filter: { fromTime: ts(0n, -1) } }), BAD_TIME("from_time")),
  initRow("GetSessions", "filter.to_time nanos 1e9", () => ({ filter: { toTime: ts(0n, 1_000_000_000) } }), BAD_TIME("to_time")),
  initRow("GetSessions", "filter.from_time before year 1", () => ({ filter: { fromTime: ts(-62135596801n) } }), BAD_TIME("from_time")),
  initRow("GetSessions", "filter.to_time after year 9999", () => ({ filter: { toTime: ts(253402300800n) } }), BAD_TIME("to_time")),
  initRow("CloseSessions", "filter.from_time nanos -5", () => ({ filter: { active: true, fromTime: ts(1767225600n, -5) } }), BAD_TIME("from_time")),
  initRow("CloseSessions", "filter.to_time after year 9999", () => ({ filter: { active: true, toTime: ts(253402300800n) } }), BAD_TIME("to_time")),
  initRow("OpenSession", "data without a kind", () => ({ userId: "u", data: NO_KIND }), expecting(INVALID, NOT_JSON("data"))),
  initRow("OpenSession", "user NaN", () => ({ userId: "u", user: num(Number.NaN) }), expecting(INVALID, NOT_JSON("user"))),
  initRow("StoreSessionData", "data Infinity", (s) => ({ id: s.open, data: num(Infinity) }), expecting(INVALID, NOT_JSON("data"))),
  initRow("StoreSessionData", "data with a kind-less value in a struct", (s) => ({ id: s.open, data: value({ case: "structValue", value: { fields: { a: NO_KIND } } }) }), expecting(INVALID, NOT_JSON("data"))),
  initRow("StoreSessionData", "data with NaN in a list", (s) => ({ id: s.open, data: value({ case: "listValue", value: { values: [num(1), num(Number.NaN)] } }) }), expecting(INVALID, NOT_JSON("data"))),
  initRow("UpdateSessionUser", "user -Infinity", (s) => ({ id: s.open, user: num(-Infinity) }), expecting(INVALID, NOT_JSON("user"))),
  initRow("UpdateSessionUser", "user without a kind", (s) => ({ id: s.open, user: NO_KIND }), expecting(INVALID, NOT_JSON("user"))),
  initRow("OpenSession", "idle_timeout {seconds: 1, nanos: -1}", () => ({ userId: "u", idleTimeout: { seconds: 1n, nanos: -1 } }), expecting(INVALID, "idle_timeout: is not a valid duration")),
  initRow("OpenSession", "idle_timeout {nanos: 1e9}", () => ({ userId: "u", idleTimeout: { nanos: 1_000_000_000 } }), expecting(INVALID, "idle_timeout: is not a valid duration")),
  initRow("OpenSession", "absolute_timeout over 10,000 years", () => ({ userId: "u", absoluteTimeout: { seconds: 315576000001n } }), expecting(INVALID, "absolute_timeout: is not a valid duration")),
  binRow("GetSessionById", "an unknown field is ignored: id still required", (s) => new BinaryWriter().tag(99, WireType.LengthDelimited).string(s.open!).finish(), expecting(INVALID, REQUIRED("id"))),
  binRow("GetSessions", "an unknown field is ignored (OK)", () => new BinaryWriter().tag(99, WireType.Varint).int32(1).finish(), expecting(S.OK)),
  // Undecodable bodies: every RPC cut short, and a few broken encodings.
  ...RPCS.map((rpc) =>
    binRow(rpc, "a truncated body", (seeds) => {
      const whole = encodeJson(rpc, fill(VALID[rpc], seeds));
      return whole.length === 0 ? Uint8Array.from([0x0a, 0x05, 0x61]) : whole.subarray(0, whole.length - 1);
    }, UNDECODABLE),
  ),
  binRow("GetSessionById", "field number 0", () => Uint8Array.from([0x00, 0x01]), UNDECODABLE),
  binRow("GetSessionById", "a varint of 11 bytes", () => Uint8Array.from([0x0a, ...Array<number>(10).fill(0xff), 0x01]), UNDECODABLE),
  binRow("GetSessionById", "an id that is not UTF-8", () => Uint8Array.from([0x0a, 0x02, 0xff, 0xfe]), UNDECODABLE),
  binRow("ValidateSession", "a token that is not UTF-8", () => Uint8Array.from([0x0a, 0x03, 0x61, 0xc3, 0x28]), UNDECODABLE),
  binRow("OpenSession", "data 101 lists deep (past protobuf-es's recursion limit)",
    () => new BinaryWriter().tag(1, WireType.LengthDelimited).string("u").tag(6, WireType.LengthDelimited).bytes(deepValueBytes(101)).finish(),
    expecting(S.INTERNAL, /^(Error deserializing request|parse binary: .*maximum recursion depth of 100 reached)$/)),
];

// HTTP-only cases: raw Connect requests (JSON text, content types, headers, methods).
interface HttpCase extends Expect {
  rpc: Rpc;
  name: string;
  request: (seeds: Seeds) => HttpRequest;
  /**
   * A defect of a dependency, not of this service, that the case shows: it runs
   * as `it.fails`, so it fails loudly once a dependency upgrade fixes it.
   */
  upstreamDefect?: string;
}
/** Marks a case as showing a defect of @bufbuild/protobuf's JSON parsing (2.13.0, still in 2.17.0). */
const protobufEsDefect = (c: HttpCase, what: string): HttpCase => ({ ...c, upstreamDefect: `@bufbuild/protobuf ${what}` });
/** A Connect JSON body as text ({key} placeholders filled), with the expectation and any extra headers. */
const text = (rpc: Rpc, name: string, body: string, expected: Expect, headers: Record<string, string> = {}): HttpCase => ({
  rpc,
  name,
  request: (seeds) => connectJson(rpc, fill(body, seeds), headers),
  ...expected,
});
const raw = (rpc: Rpc, name: string, request: (seeds: Seeds) => HttpRequest, expected: Expect): HttpCase => ({ rpc, name, request, ...expected });
const escaped = (s: string) => s.replace(/[.()[\]]/g, "\\$&");
/** connect-es's message for a body that is no request message: it names the message type. */
const undecodable = (rpc: Rpc, what: string) =>
  expecting(INVALID, new RegExp(`^cannot decode message ${escaped(methodOf(rpc).input.typeName)} from JSON: .*${escaped(what)}`));
/** connect-es's message for a field of the wrong JSON type: it names the field. */
const badField = (rpc: Rpc, field: string, message = methodOf(rpc).input.typeName) =>
  expecting(INVALID, new RegExp(`^cannot decode field ${escaped(message)}\\.${field} from JSON: `));
const BAD_TIMESTAMP = expecting(INVALID, /^cannot decode message google\.protobuf\.Timestamp from JSON: (invalid RFC 3339 string|must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z inclusive|\d+)$/);
const BAD_DURATION = expecting(INVALID, /^cannot decode message google\.protobuf\.Duration from JSON: /);
const TOO_DEEP = expecting(INVALID, "cannot decode google.protobuf.Value from JSON: maximum recursion depth of 100 reached");
const UNSUPPORTED: Expect = { http: 415, message: "" };

const httpCases: HttpCase[] = [
  // Every RPC: bodies that are no JSON object, and content types that are not the protocol's.
  ...RPCS.flatMap((rpc): HttpCase[] => [
    streaming(rpc)
      ? raw(rpc, "an empty body (no envelope)", () => ({ body: "", contentType: "application/connect+json" }),
          expecting(S.UNIMPLEMENTED, "protocol error: missing input message for server-streaming method"))
      : text(rpc, "an empty body", "", undecodable(rpc, "Unexpected end of JSON input")),
    text(rpc, "invalid JSON text", "{", undecodable(rpc, "JSON")),
    text(rpc, "a JSON array", "[]", undecodable(rpc, "Array(0)")),
    text(rpc, "JSON null", "null", undecodable(rpc, "null")),
    text(rpc, "a JSON number", "42", undecodable(rpc, "42")),
    ...(["text/plain", "application/xml", null] as const).map((contentType) =>
      raw(rpc, `content-type ${contentType ?? "missing"}`, () => ({ body: streaming(rpc) ? envelope(Buffer.from("{}")) : "{}", contentType }), UNSUPPORTED),
    ),
    streaming(rpc)
      ? raw(rpc, "content-type application/json (unary) on a stream", () => ({ body: "{}", contentType: "application/json" }), UNSUPPORTED)
      : raw(rpc, "content-type application/connect+json (stream) on a unary RPC", () => ({ body: envelope(Buffer.from("{}")), contentType: "application/connect+json" }), UNSUPPORTED),
  ]),

  // Wrong JSON types: the message names the field (and never repeats a token).
  text("OpenSession", "user_id a number", '{"userId":5}', badField("OpenSession", "user_id")),
  text("OpenSession", "user_name an array", '{"userId":"u","userName":["a"]}', badField("OpenSession", "user_name")),
  text("OpenSession", "idle_timeout a number", '{"userId":"u","idleTimeout":60}', BAD_DURATION),
  text("ValidateSession", "token an array", '{"token":["{open_token}"]}', badField("ValidateSession", "token")),
  text("ValidateSession", "token an object", '{"token":{"value":"{open_token}"}}', badField("ValidateSession", "token")),
  text("ValidateSession", "token a number", '{"token":12345}', badField("ValidateSession", "token")),
  text("ValidateSession", "include_data a string (the token)", '{"token":"{open_token}","includeData":"{open_token}"}', badField("ValidateSession", "include_data")),
  text("GetSessionById", "id a number", '{"id":5}', badField("GetSessionById", "id")),
  text("GetSessionById", "id an array", '{"id":["{open}"]}', badField("GetSessionById", "id")),
  text("GetSessions", "take a string", '{"take":"many"}', badField("GetSessions", "take")),
  text("GetSessions", "take a fraction", '{"take":1.5}', badField("GetSessions", "take")),
  text("GetSessions", "take 2147483648", '{"take":2147483648}', expecting(INVALID, /take from JSON: expected number \(int32\): 2147483648 out of range$/)),
  text("GetSessions", "skip -2147483649", '{"skip":-2147483649}', expecting(INVALID, /skip from JSON: expected number \(int32\): -2147483649 out of range$/)),
  text("GetSessions", "skip a boolean", '{"skip":true}', badField("GetSessions", "skip")),
  text("GetSessions", "total a string", '{"total":"yes"}', badField("GetSessions", "total")),
  text("GetSessions", "filter an array", '{"filter":[]}', expecting(INVALID, /^cannot decode message sessions\.v1\.SessionFilter from JSON: Array\(0\)$/)),
  text("GetSessions", "filter a string", '{"filter":"alice"}', expecting(INVALID, /^cannot decode message sessions\.v1\.SessionFilter from JSON/)),
  text("GetSessions", "filter.active a string", '{"filter":{"active":"true"}}', badField("GetSessions", "active", "sessions.v1.SessionFilter")),
  text("StoreSessionData", "id an object", '{"id":{"id":"{open}"},"data":1}', badField("StoreSessionData", "id")),
  text("StoreSessionData", "expected_version not a number", '{"id":"{open}","data":1,"expectedVersion":"abc"}', badField("StoreSessionData", "expected_version")),
  text("StoreSessionData", "expected_version beyond int64", '{"id":"{open}","data":1,"expectedVersion":"99999999999999999999"}', badField("StoreSessionData", "expected_version")),
  text("UpdateSessionUser", "id a boolean", '{"id":true,"user":1}', badField("UpdateSessionUser", "id")),
  text("UpdateSessionUser", "expected_version a fraction", '{"id":"{open}","user":1,"expectedVersion":1.5}', badField("UpdateSessionUser", "expected_version")),
  text("CloseSession", "id a number", '{"id":123}', badField("CloseSession", "id")),
  text("CloseExpiredSessions", "a JSON string", '"now"', undecodable("CloseExpiredSessions", '"now"')),
  text("DeleteSessionById", "id a boolean", '{"id":true}', badField("DeleteSessionById", "id")),
  text("CloseUserSessions", "user_id a number", '{"userId":1}', badField("CloseUserSessions", "user_id")),
  text("CloseUserSessions", "except_session_id an array", '{"userId":"alice","exceptSessionId":["{open}"]}', badField("CloseUserSessions", "except_session_id")),
  text("CloseSessions", "filter.active a string", '{"filter":{"active":"yes"}}', badField("CloseSessions", "active", "sessions.v1.SessionFilter")),
  text("CloseSessions", "dry_run a string", '{"filter":{"active":true},"dryRun":"no"}', badField("CloseSessions", "dry_run")),
  text("CloseSessions", "filter a number", '{"filter":1}', expecting(INVALID, /^cannot decode message sessions\.v1\.SessionFilter from JSON/)),
  text("WatchSessionEvents", "from_oldest a string", '{"fromOldest":"yes"}', badField("WatchSessionEvents", "from_oldest")),
  text("WatchSessionEvents", "types a string", '{"types":"SESSION_EVENT_TYPE_OPENED"}', badField("WatchSessionEvents", "types")),
  text("WatchSessionEvents", "after_cursor a number", '{"afterCursor":1}', badField("WatchSessionEvents", "after_cursor")),

  // Unknown fields and unknown enum names are ignored (documented): the request is judged without them.
  text("GetSessionById", "an unknown field instead of id", '{"sessionId":"{open}"}', expecting(INVALID, REQUIRED("id"))),
  text("StoreSessionData", "data misspelt as Data", '{"id":"{open}","Data":{"a":1}}', expecting(INVALID, "data: is required (send a JSON null to clear the data)")),
  text("CloseSessions", "a filter of only a misspelt field", '{"filter":{"userID":"alice"}}', expecting(INVALID, NO_FILTER)),
  text("GetSessionById", "id null means unset", '{"id":null}', expecting(INVALID, REQUIRED("id"))),
  text("GetSessions", "an unknown field (OK)", '{"fieldFromANewerClient":{"a":[1]}}', expecting(S.OK)),
  text("GetSessions", "an unknown close_reason name (OK)", '{"filter":{"closeReason":"CLOSE_REASON_NOPE"}}', expecting(S.OK)),
  text("WatchSessionEvents", "an unknown event type name (OK)", '{"types":["SESSION_EVENT_TYPE_NOPE"]}', expecting(S.OK)),
  text("GetSessions", "skip as a decimal string (OK, proto JSON)", '{"skip":"1"}', expecting(S.OK)),

  // Timestamps and durations as text.
  ...[
    "2026-13-01T00:00:00Z",
    "2026-01-01",
    "2026-01-01T00:00:00",
    "2026-01-01T25:00:00Z",
    "2026-01-01T00:00:00+25:00",
    " 2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.1234567891Z",
    "0000-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z",
    "yesterday",
  ].map((time) => text("GetSessions", `filter.from_time ${JSON.stringify(time)}`, JSON.stringify({ filter: { fromTime: time } }), BAD_TIMESTAMP)),
  text("GetSessions", "filter.to_time a number", '{"filter":{"toTime":1767225600}}', BAD_TIMESTAMP),
  text("CloseSessions", 'filter.to_time "2026-01-01T00:00:00" (no offset)', '{"filter":{"active":true,"toTime":"2026-01-01T00:00:00"}}', BAD_TIMESTAMP),
  // A day that does not exist: protobuf-es lets Date.parse roll it over to 2 March (a defect, see the report).
  protobufEsDefect(
    text("GetSessions", 'filter.from_time "2026-02-30T00:00:00Z" (no such day)', '{"filter":{"fromTime":"2026-02-30T00:00:00Z"}}', BAD_TIMESTAMP),
    "timestampFromJson: Date.parse rolls a day past the month's end over",
  ),
  ...["1.5", "abc", "-", "315576000001s"].map((duration) =>
    text("OpenSession", `idle_timeout ${JSON.stringify(duration)}`, JSON.stringify({ userId: "u", idleTimeout: duration }), BAD_DURATION),
  ),
  // protobuf-es defects (see the report): ten fraction digits, and text after the "s".
  protobufEsDefect(
    text("OpenSession", 'idle_timeout "120.0000000001s" (ten fraction digits)', '{"userId":"u","idleTimeout":"120.0000000001s"}', BAD_DURATION),
    "durationFromJson: no limit of 9 fraction digits; the message is 'Invalid count value: -1'",
  ),
  protobufEsDefect(
    text("OpenSession", 'idle_timeout "120s of idling" (text after the unit)', '{"userId":"u","idleTimeout":"120s of idling"}', BAD_DURATION),
    "durationFromJson: its pattern is not anchored at the end",
  ),

  // JSON nested past protobuf-es's limit of 100: refused before the service sees it.
  text("OpenSession", "data 101 arrays deep", JSON.stringify({ userId: "u", data: nestArrays(101) }), TOO_DEEP),
  text("StoreSessionData", "data 10,000 objects deep", `{"id":"{open}","data":${'{"a":'.repeat(10_000)}"leaf"${"}".repeat(10_000)}}`, TOO_DEEP),

  // Protocol headers and methods.
  ...["-5", "abc", "12345678901"].map((timeout) =>
    text("OpenSession", `connect-timeout-ms ${JSON.stringify(timeout)}`, '{"userId":"u"}', expecting(INVALID, `protocol error: invalid connect timeout value: ${timeout}`), { "connect-timeout-ms": timeout }),
  ),
  text("OpenSession", "content-encoding gzip on a plain body", '{"userId":"u"}', expecting(INVALID, "decompression failed"), { "content-encoding": "gzip" }),
  text("CloseSession", "content-encoding zstd", '{"id":"{open}"}', expecting(S.UNIMPLEMENTED, 'unknown compression "zstd": supported encodings are gzip,br'), { "content-encoding": "zstd" }),
  ...(["OpenSession", "CloseSession", "DeleteSessionById", "CloseSessions"] as const).map((rpc) =>
    raw(rpc, "GET for an RPC with side effects", (seeds) => ({ method: "GET", contentType: null, query: getQuery(fill(VALID[rpc], seeds)) }), { http: 405, message: "" }),
  ),
  raw("GetSessionById", "GET with a message that is not JSON", () => ({ method: "GET", contentType: null, query: "?connect=v1&encoding=json&message=%7B" }), undecodable("GetSessionById", "JSON")),
  raw("GetSessions", "GET with a negative take", () => ({ method: "GET", contentType: null, query: getQuery({ take: -1 }) }), expecting(INVALID, "take: must not be negative")),
];

// --- the fixture -------------------------------------------------------------------------

type Port = "gRPC port" | "HTTP port";
const counts: Record<Port, number> = { "gRPC port": 0, "HTTP port": 0 };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Fixture {
  server: TestServer;
  db: Database.Database;
  seeds: Seeds;
  grpc: grpc.Client;
  h2: http2.ClientHttp2Session;
  /** The clock's time when the seeds were opened. */
  seededAt: number;
  /** Every real token, which no message may contain. */
  tokens: string[];
}

/** How long ago the seeds were opened when the cases start: past the touch interval, so a use records activity. */
const SEEDED_AGO_MS = 62_000;
/** Lets the idle session of the `index`th variant (and those before it) expire, and no other. */
function expireFor(f: Fixture, index: number) {
  f.server.clock.set(f.seededAt + SEEDED_AGO_MS + 10_000 * index);
}

/** Per-case targets for the deadline and receive-limit cases: each refused call has its own session to spoil. */
const TARGETED: Rpc[] = ["ValidateSession", "StoreSessionData", "UpdateSessionUser", "CloseSession", "DeleteSessionById", "CloseUserSessions", "CloseSessions"];
/** A valid request for every RPC, aimed at the targets of `variant`. */
function validRequest(rpc: Rpc, variant: string): JsonObject {
  const target = `{t_${variant}_${rpc}}`;
  switch (rpc) {
    case "OpenSession":
      return { userId: `opened-${variant}`, data: { a: 1 } };
    case "ValidateSession":
      return { token: `{t_${variant}_${rpc}_token}`, address: "10.9.9.9", client: "gateway" };
    case "GetSessionById":
      return { id: "{open}" };
    case "GetSessions":
      return { total: true };
    case "StoreSessionData":
      return { id: target, data: { changed: true } };
    case "UpdateSessionUser":
      return { id: target, user: { changed: true } };
    case "CloseSession":
    case "DeleteSessionById":
      return { id: target };
    case "CloseExpiredSessions":
      return {};
    case "CloseUserSessions":
      return { userId: `{t_${variant}_${rpc}_user}` };
    case "CloseSessions":
      return { filter: { userId: `{t_${variant}_${rpc}_user}` } };
    case "WatchSessionEvents":
      return {};
  }
}

async function startFixture(dbPath: string, variants: string[], config: { maxReceiveMessageBytes?: number } = {}): Promise<Fixture> {
  const server = await startTestServer({ dbPath, ...config });
  const client = grpcJsClient(server.app.grpcPort);
  const tokens: string[] = [];
  const open = async (request: Record<string, unknown>) => {
    const opened = await client.call("openSession", request);
    tokens.push(opened.token!);
    return { id: opened.session!.id, token: opened.token! };
  };
  const seeds: Seeds = { unknown: "0".repeat(32) };
  const seededAt = server.clock.now();
  try {
    const first = await open({ userId: "alice", client: "web", address: "10.0.0.1", data: { theme: "dark" } });
    await client.call("storeSessionData", { id: first.id, data: { theme: "dark", cart: [1, 2] } }); // version 2
    const second = await open({ userId: "alice", client: "mobile", user: { name: "Alice" } });
    const closed = await open({ userId: "bob", data: { x: 1 } });
    await client.call("closeSession", { id: closed.id });
    // One session per variant that expires when that variant's CloseExpiredSessions case sets the clock
    // (expireFor): only CloseExpiredSessions (or a use) would close it.
    for (const [i, variant] of variants.entries()) {
      seeds[`expired_${variant}`] = (await open({ userId: `idle-${variant}`, idleTimeout: 61_000 + 10_000 * i })).id;
    }
    for (const variant of variants) {
      for (const rpc of TARGETED) {
        const userId = `target-${variant}-${rpc}`;
        const target = await open({ userId, client: "web", data: { before: true } });
        seeds[`t_${variant}_${rpc}`] = target.id;
        seeds[`t_${variant}_${rpc}_token`] = target.token;
        seeds[`t_${variant}_${rpc}_user`] = userId;
      }
    }
    server.clock.advance(SEEDED_AGO_MS);
    const [, secret = ""] = first.token.split(".");
    Object.assign(seeds, {
      open: first.id,
      open_token: first.token,
      open_secret: secret,
      open_secret_short: secret.slice(0, -1),
      open_short: first.id.slice(0, -1),
      open_upper: first.id.toUpperCase(),
      open2: second.id,
      closed: closed.id,
    });
  } finally {
    client.close();
  }
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  const { log_id: logId } = db.prepare("SELECT log_id FROM event_log").get() as { log_id: string };
  const first = db.prepare("SELECT seq, session_id, type, time FROM session_events WHERE seq = 1").get() as EventRow;
  const firstTag = eventTag({ seq: first.seq, sessionId: first.session_id, type: first.type, time: first.time } as SessionEvent);
  Object.assign(seeds, {
    log_id: logId,
    log_id_upper: logId.toUpperCase(),
    other_log_id: logId === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef",
    wrong_tag: firstTag === "ffffffff" ? "00000000" : "ffffffff",
  });
  return {
    server,
    db,
    seeds,
    grpc: new grpc.Client(`127.0.0.1:${server.app.grpcPort}`, grpc.credentials.createInsecure()),
    h2: http2.connect(`http://127.0.0.1:${server.app.grpcPort}`),
    seededAt,
    tokens,
  };
}

async function stopFixture(fixture: Fixture | undefined) {
  if (fixture === undefined) return;
  fixture.grpc.close();
  fixture.h2.close();
  fixture.db.close();
  await fixture.server.stop();
}

/** What the database holds, in short: any write shows. */
const snapshotQueries = new WeakMap<Database.Database, () => object>();
function snapshot(db: Database.Database): object {
  let take = snapshotQueries.get(db);
  if (take === undefined) {
    const counts = db.prepare(
      `SELECT (SELECT count(*) FROM sessions) AS rows,
              (SELECT coalesce(sum(version), 0) FROM sessions) AS versions,
              (SELECT count(*) FROM session_events) AS events,
              (SELECT coalesce(max(seq), 0) FROM session_events) AS head,
              (SELECT count(*) FROM retired_tokens) AS retiredTokens`,
    );
    const rows = db.prepare(
      `SELECT id, user_id, user_name, active, version, close_reason, close_time, request_time, expire_time,
              address, client, last_address, last_client, user_json, data_json,
              hex(token_hash) AS token, hex(prev_token_hash) AS prev, token_time, prev_token_valid_until
       FROM sessions ORDER BY id`,
    );
    take = () => ({
      ...(counts.get() as object),
      contentHash: createHash("sha256").update(JSON.stringify(rows.all())).digest("hex"),
    });
    snapshotQueries.set(db, take);
  }
  return take();
}

/**
 * Runs one case: snapshot, call, (wait for a handler that may outlive its response),
 * snapshot; then the code, the HTTP status, the message, the reason, no token in the
 * message, and the database unchanged. Soft assertions: a failure reports all of them.
 */
async function runCase(port: Port, fixture: Fixture, call: () => Promise<Outcome>, expected: Expect, settleMs = 0) {
  counts[port]++;
  const before = snapshot(fixture.db);
  const outcome = await call();
  if (settleMs > 0) await sleep(settleMs);
  const after = snapshot(fixture.db);
  const { seeds } = fixture;
  if (expected.http !== undefined) expect.soft(outcome.http, "HTTP status").toBe(expected.http);
  if (expected.code !== undefined) {
    expect.soft(codeName(outcome.code), `status code (message: ${JSON.stringify(outcome.message)})`).toBe(codeName(expected.code));
    if (outcome.connectUnary) expect.soft(outcome.http, "HTTP status for the code").toBe(CONNECT[expected.code]?.http);
  }
  const message = expected.message === undefined ? undefined : fill(expected.message, seeds);
  if (typeof message === "string") expect.soft(outcome.message, "message").toBe(message);
  else if (message instanceof RegExp) expect.soft(outcome.message, "message").toMatch(message);
  if (expected.reason !== undefined) expect.soft(outcome.reason, "error reason").toBe(`ERROR_REASON_${expected.reason}`);
  for (const token of fixture.tokens) expect.soft(outcome.message.includes(token), "a session token in the message").toBe(false);
  expect.soft(after, "the database changed").toEqual(before);
}

// --- the suite ---------------------------------------------------------------------------

const dir = tempDir();
let main: Fixture | undefined;
let limited: Fixture | undefined;
const fixture = () => main!;
const DEADLINE_VARIANTS = ["grpcjs", "h2", "connect"];
const LIMIT_VARIANTS = ["grpc", "http"];
const RECEIVE_LIMIT = 1024;

beforeAll(async () => {
  main = await startFixture(join(dir.path, "main.db"), DEADLINE_VARIANTS);
  limited = await startFixture(join(dir.path, "limited.db"), LIMIT_VARIANTS, { maxReceiveMessageBytes: RECEIVE_LIMIT });
});

afterAll(async () => {
  const total = counts["gRPC port"] + counts["HTTP port"];
  console.log(`bad-input cases run: gRPC port ${counts["gRPC port"]}, HTTP port ${counts["HTTP port"]}, total ${total}`);
  await stopFixture(main);
  await stopFixture(limited);
  dir.remove();
});

describe("gRPC port (grpc-js, protobuf bodies)", () => {
  for (const c of jsonCases) {
    it(`${c.rpc}: ${c.name}`, () =>
      runCase("gRPC port", fixture(), () => grpcCall(fixture().grpc, c.rpc, encodeJson(c.rpc, fill(c.req, fixture().seeds))), c));
  }
  for (const c of binaryCases) {
    it(`${c.rpc}: ${c.name} (binary)`, () => runCase("gRPC port", fixture(), () => grpcCall(fixture().grpc, c.rpc, c.bytes(fixture().seeds)), c));
  }
});

describe("HTTP port (Connect JSON over HTTP/1.1; Connect binary for the protobuf cases)", () => {
  for (const c of jsonCases) {
    it(`${c.rpc}: ${c.name}`, () =>
      runCase("HTTP port", fixture(), () => httpCall(fixture().server.app.httpPort, c.rpc, connectJson(c.rpc, JSON.stringify(fill(c.req, fixture().seeds)))), c));
  }
  for (const c of binaryCases) {
    it(`${c.rpc}: ${c.name} (binary)`, () =>
      runCase("HTTP port", fixture(), () => httpCall(fixture().server.app.httpPort, c.rpc, connectProto(c.rpc, c.bytes(fixture().seeds))), c));
  }
  for (const c of httpCases) {
    (c.upstreamDefect === undefined ? it : it.fails)(`${c.rpc}: ${c.name}${c.upstreamDefect === undefined ? "" : ` (known defect: ${c.upstreamDefect})`}`, () =>
      runCase("HTTP port", fixture(), () => httpCall(fixture().server.app.httpPort, c.rpc, c.request(fixture().seeds)), c));
  }
});

describe("gRPC port, raw HTTP/2: what grpc-js will not send", () => {
  const frame = (rpc: Rpc) => envelope(encodeJson(rpc, fill(validRequest(rpc, "h2"), fixture().seeds)));
  for (const rpc of RPCS) {
    for (const contentType of ["application/json", "text/plain", null] as const) {
      it(`${rpc}: content-type ${contentType ?? "missing"}`, () =>
        runCase("gRPC port", fixture(), () => {
          const headers: Record<string, string> = contentType === null ? {} : { "content-type": contentType };
          return h2Call(fixture().h2, rpc, headers, frame(rpc));
        }, { http: 415, code: -1 as grpc.status /* no gRPC status at all */, message: "" }));
    }
    it(`${rpc}: no request message`, () =>
      runCase("gRPC port", fixture(), () => h2Call(fixture().h2, rpc, { "content-type": "application/grpc" }, new Uint8Array()), {
        code: S.UNIMPLEMENTED,
        message: /^Received no request message for (server streaming|unary) method /,
      }));
  }
  for (const rpc of ["OpenSession", "CloseSession"] as const) {
    it(`${rpc}: two request messages`, () =>
      runCase("gRPC port", fixture(), () => h2Call(fixture().h2, rpc, { "content-type": "application/grpc" }, Buffer.concat([frame(rpc), frame(rpc)])), {
        code: S.UNIMPLEMENTED,
        message: /^Received a second request message for (server streaming|unary) method /,
      }));
  }
});

describe("an expired deadline: DEADLINE_EXCEEDED, and nothing done", () => {
  const DEADLINE = { code: S.DEADLINE_EXCEEDED, message: /deadline|timed out/i };
  /** A handler that ignored its deadline may still be writing when the status arrives. */
  const SETTLE_MS = 50;
  const sends: Record<string, [Port, string, (rpc: Rpc, request: JsonObject) => Promise<Outcome>]> = {
    grpcjs: ["gRPC port", "grpc-js with a deadline already past", (rpc, request) =>
      grpcCall(fixture().grpc, rpc, encodeJson(rpc, request), { deadline: Date.now() - 1000 })],
    h2: ["gRPC port", "grpc-timeout 0n (raw HTTP/2)", (rpc, request) =>
      h2Call(fixture().h2, rpc, { "content-type": "application/grpc", "grpc-timeout": "0n" }, envelope(encodeJson(rpc, request)))],
    connect: ["HTTP port", "connect-timeout-ms 0", (rpc, request) =>
      httpCall(fixture().server.app.httpPort, rpc, connectJson(rpc, JSON.stringify(request), { "connect-timeout-ms": "0" }))],
  };
  for (const [index, variant] of DEADLINE_VARIANTS.entries()) {
    const [port, name, send] = sends[variant]!;
    for (const rpc of RPCS) {
      it(`${rpc}: ${name}`, () => {
        if (rpc === "CloseExpiredSessions") expireFor(fixture(), index);
        return runCase(port, fixture(), () => send(rpc, fill(validRequest(rpc, variant), fixture().seeds)), DEADLINE, SETTLE_MS);
      });
    }
  }
});

describe(`a request over the receive limit (${RECEIVE_LIMIT} bytes): RESOURCE_EXHAUSTED, and nothing done`, () => {
  const f = () => limited!;
  /** A valid request, to which each port's case adds 2 KiB as an unknown field (which would otherwise be ignored). */
  const padded = (rpc: Rpc, variant: string) => fill(validRequest(rpc, variant), f().seeds);
  const PADDING = "x".repeat(2 * RECEIVE_LIMIT);
  for (const rpc of RPCS) {
    it(`${rpc}: gRPC port`, () => {
      if (rpc === "CloseExpiredSessions") expireFor(f(), 0);
      return runCase("gRPC port", f(), () => {
        const bytes = Buffer.concat([encodeJson(rpc, padded(rpc, "grpc")), new BinaryWriter().tag(999, WireType.LengthDelimited).string(PADDING).finish()]);
        return grpcCall(f().grpc, rpc, bytes);
      }, { code: S.RESOURCE_EXHAUSTED, message: new RegExp(`^Received message larger than max \\(\\d+ vs ${RECEIVE_LIMIT}\\)$`) });
    });
    it(`${rpc}: HTTP port`, () => {
      if (rpc === "CloseExpiredSessions") expireFor(f(), 1);
      return runCase("HTTP port", f(), () =>
        httpCall(f().server.app.httpPort, rpc, connectJson(rpc, JSON.stringify({ ...padded(rpc, "http"), padding: PADDING }))), {
        code: S.RESOURCE_EXHAUSTED,
        message: new RegExp(`^message size \\d+ is larger than configured readMaxBytes ${RECEIVE_LIMIT}$`),
      });
    });
  }
  it("GetSessions under the limit: OK on both ports (the limit is not refusing everything)", async () => {
    const request = { filter: { userId: "x".repeat(900) } };
    await runCase("gRPC port", f(), () => grpcCall(f().grpc, "GetSessions", encodeJson("GetSessions", request)), { code: S.OK });
    await runCase("HTTP port", f(), () => httpCall(f().server.app.httpPort, "GetSessions", connectJson("GetSessions", JSON.stringify(request))), { code: S.OK });
  });
});

describe("after every case", () => {
  it("the servers logged no error and no session token", () => {
    for (const f of [main!, limited!]) {
      expect(f.server.logs.filter((line) => line.level === "error" || line.level === "fatal")).toEqual([]);
      const logged = JSON.stringify(f.server.logs);
      for (const token of f.tokens) expect(logged.includes(token)).toBe(false);
      expect(logged.includes(f.seeds.open_secret!)).toBe(false);
    }
  });
});
