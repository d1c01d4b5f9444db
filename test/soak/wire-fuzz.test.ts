import Database from "better-sqlite3";
import { create, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { HealthCheckRequestSchema, HealthListRequestSchema } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  CloseExpiredSessionsRequestSchema,
  CloseSessionRequestSchema,
  CloseSessionsRequestSchema,
  CloseUserSessionsRequestSchema,
  DeleteSessionByIdRequestSchema,
  GetSessionByIdRequestSchema,
  GetSessionsRequestSchema,
  OpenSessionRequestSchema,
  StoreSessionDataRequestSchema,
  UpdateSessionUserRequestSchema,
  ValidateSessionRequestSchema,
  WatchSessionEventsRequestSchema,
  SessionFilterSchema,
} from "../../gen/sessions/v1/sessions_pb.js";
import { connectJsonHttp1, grpcJsClient, type TestClient } from "../support/clients.js";
import { kill, startServerProcess, terminate, type ServerProcess } from "../support/server-process.js";
import { tempDir } from "../support/test-server.js";

/**
 * Wire fuzzing of a real server process (the built dist/src/main.js, on a file
 * database): malformed gRPC framing and messages on the gRPC port; malformed
 * Connect (JSON, binary, GET), gRPC-Web and gRPC requests on the HTTP port.
 * Every call must be answered, the process must survive with flat memory,
 * must log no error for mere bad input, and must still serve normally after.
 *
 * Each case is generated from its own PRNG, seeded by (seed, port, index), so
 * a case is reproduced by the seed alone, whatever the scheduling:
 *   WIRE_FUZZ_SEED=1234 npx vitest run --config vitest.soak.config.ts test/soak/wire-fuzz.test.ts
 * WIRE_FUZZ_ONLY=grpc:17,http:2301 (with that seed) sends just those cases, one
 * at a time; WIRE_FUZZ_ITERATIONS sets the requests per port (default 4000).
 * Cases that use a real session id or token (opened before fuzzing) get new
 * ones in a replay; everything else is the same bytes.
 */

const SEED = process.env.WIRE_FUZZ_SEED !== undefined ? Number(process.env.WIRE_FUZZ_SEED) >>> 0 : randomInt(2 ** 32);
const ITERATIONS = Number(process.env.WIRE_FUZZ_ITERATIONS ?? 4000);
/** Replay: only these cases, e.g. "grpc:17,http:2301" (with the seed they were found with). */
const ONLY = process.env.WIRE_FUZZ_ONLY?.split(",").map((entry) => {
  const [port, index] = entry.trim().split(":");
  if ((port !== "grpc" && port !== "http") || !/^\d+$/.test(index ?? "")) throw new Error(`WIRE_FUZZ_ONLY: bad entry ${entry}`);
  return { port: port as PortName, index: Number(index) };
});
/** Requests in flight per port; the two ports are fuzzed at the same time (16 in all). */
const CONCURRENCY = 8;
/** A call not answered within this is a hang. */
const REQUEST_TIMEOUT_MS = 5000;
/** Timeout sent with streaming calls (which otherwise legitimately run until cancelled). */
const STREAM_TIMEOUT_MS = 300;
/**
 * Bound on RSS growth over the second half (after the warm-up half). With the
 * heap capped (below), the second half grew by 2 to 11 MiB over a dozen seeds,
 * and by 2 MiB over 7 500 calls per port in a long run: what moves is the V8
 * heap between collections and the SQLite page cache (a few MiB here). 25 MiB
 * over ~4 000 calls in the second half (both ports) catches anything that keeps
 * more than ~6 KB per call.
 */
const RSS_GROWTH_LIMIT_MIB = 25;
/**
 * The server runs with a fixed old-space cap. Left to itself, V8 keeps
 * raising its heap limit under this allocation rate for minutes (RSS climbs
 * from ~130 to ~200 MiB over 50 000 calls per port with no leak at all), so a
 * run of a few thousand calls could not tell a leak from heap sizing. Capped,
 * the heap reaches its working size (~60 MiB) within the warm-up and RSS stays
 * within a few MiB after it; a leak shows as growth, and past the cap as an
 * out-of-memory crash, which assertion (1) catches. 64 MiB is twice the
 * largest live heap seen (~35 MiB used).
 */
const SERVER_NODE_OPTIONS = "--max-old-space-size=64";

// --- seeded randomness ---------------------------------------------------

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** mulberry32: a float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  /** One of `choices`, by weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [w, value] of choices) {
      if ((r -= w) < 0) return value;
    }
    return choices[choices.length - 1]![1];
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  ascii(n: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

/** A 32-bit finaliser (lowbias32): every input bit affects every output bit. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The PRNG of one case: independent of every other case, of the scheduling, and of other seeds. */
function caseRng(port: PortName, index: number): Rng {
  return new Rng(mix32(mix32(SEED) ^ mix32(index * 2 + (port === "grpc" ? 0 : 1) + 0x9e3779b9)));
}

// --- requests --------------------------------------------------------------

type PortName = "grpc" | "http";

interface WireCase {
  readonly id: string;
  /** What the generator did, for the report. */
  readonly kind: string;
  readonly transport: "h2" | "h1";
  /** How the answer is read. */
  readonly protocol: "grpc" | "grpc-web" | "grpc-web-text" | "connect" | "plain";
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** h1: send the body in two writes (chunked transfer encoding) instead of with a content-length. */
  readonly chunked: boolean;
}

interface Outcome {
  /** What came back, as counted in the summary. */
  readonly label: string;
  readonly answered: boolean;
  /** For an unanswered call: what was seen, to tell a hang from its cause. */
  readonly detail?: string;
}

/** Known session ids and tokens (opened before fuzzing), so mutated requests also reach real sessions. */
interface Pool {
  readonly ids: string[];
  readonly tokens: string[];
}

const SERVICE = "sessions.v1.SessionsService";
const HEALTH = "grpc.health.v1.Health";

interface Target {
  readonly path: string;
  /** The response is a stream: it is sent with a short timeout, since it ends only then. */
  readonly streaming: boolean;
  /** Side-effect-free: Connect GET allowed. */
  readonly idempotent: boolean;
  /** Bidi streaming: answers each request message, ends when the client half-closes. */
  readonly bidi?: boolean;
  /** Builds a valid request; undefined for paths that are no RPC. */
  readonly valid?: (rng: Rng, pool: Pool) => Encoded;
  /** Field names (JSON) of the request, for mutations. */
  readonly fields: readonly string[];
}

interface Encoded {
  readonly bytes: Buffer;
  readonly json: JsonValue;
}

function encode<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Encoded {
  const message = create(schema, init);
  const bytes = Buffer.from(toBinary(schema, message));
  let json: JsonValue;
  try {
    json = toJson(schema, message);
  } catch {
    json = {}; // e.g. a Value holding NaN has no JSON form
  }
  return { bytes, json };
}

// Field values, often valid and often just beyond what is accepted.

function text(rng: Rng): string {
  return rng.weighted<() => string>([
    [4, () => `u${rng.int(20)}`],
    [2, () => ""],
    [2, () => rng.ascii(rng.range(1, 40))],
    [1, () => "ü€😀\u0000\u202e" + rng.ascii(3)],
    [1, () => "\ud800x\udfff"], // lone surrogates
    [1, () => "x".repeat(rng.pick([1024, 1025, 4000]))],
    [1, () => "' OR 1=1; --"],
  ])();
}

function sessionId(rng: Rng, pool: Pool): string {
  return rng.weighted<() => string>([
    [4, () => rng.pick(pool.ids)],
    [2, () => rng.ascii(32, "0123456789abcdef")],
    [1, () => rng.ascii(32, "0123456789ABCDEF")],
    [1, () => rng.ascii(rng.pick([0, 31, 33, 64]), "0123456789abcdef")],
    [1, () => text(rng)],
  ])();
}

function token(rng: Rng, pool: Pool): string {
  return rng.weighted<() => string>([
    [4, () => rng.pick(pool.tokens)],
    [2, () => `${rng.pick(pool.ids)}.${rng.ascii(43)}`],
    [1, () => `${rng.ascii(32, "0123456789abcdef")}.${rng.ascii(rng.pick([42, 43, 44]))}`],
    [1, () => text(rng)],
  ])();
}

function interestingNumber(rng: Rng): number {
  return rng.pick([0, 1, -1, 0.5, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), rng.int(1000)]);
}

function randomJson(rng: Rng, depth = 0): JsonValue {
  switch (rng.int(depth > 3 ? 4 : 6)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return interestingNumber(rng);
    case 3:
      return rng.chance(0.9) ? rng.ascii(rng.int(20)) : text(rng);
    case 4:
      return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1));
    default: {
      const out: Record<string, JsonValue> = {};
      for (let i = rng.int(5); i > 0; i--) out[rng.chance(0.8) ? rng.ascii(rng.range(1, 8)) : text(rng)] = randomJson(rng, depth + 1);
      return out;
    }
  }
}

/** Nested arrays, `depth` deep (MAX_JSON_DEPTH is 32; protobuf-es builds at most ~100). */
function nested(depth: number): JsonValue {
  let value: JsonValue = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function jsonValue(rng: Rng): Value {
  return rng.weighted<() => Value>([
    [6, () => fromJson(ValueSchema, randomJson(rng))],
    [1, () => fromJson(ValueSchema, nested(rng.pick([31, 32, 33, 90])))],
    [1, () => fromJson(ValueSchema, { big: "x".repeat(rng.pick([1000, 16 * 1024, 70 * 1024])) })],
    [1, () => create(ValueSchema, { kind: { case: "numberValue", value: rng.pick([NaN, Infinity, -Infinity]) } })],
    [1, () => create(ValueSchema)], // no kind set
  ])();
}

function duration(rng: Rng) {
  return {
    seconds: rng.pick([0n, 1n, 60n, 86_400n, -1n, 315_576_000_000n, 315_576_000_001n, 2n ** 62n]),
    nanos: rng.pick([0, 1, 999_999_999, -1, 1_000_000_000]),
  };
}

function timestamp(rng: Rng) {
  return {
    seconds: rng.pick([0n, 1_767_225_600n, -62_135_596_800n, -62_135_596_801n, 253_402_300_799n, 2n ** 62n]),
    nanos: rng.pick([0, 500_000, 999_999_999, -1, 1_000_000_000]),
  };
}

function filter(rng: Rng): MessageInitShape<typeof SessionFilterSchema> {
  const f: Record<string, unknown> = {};
  if (rng.chance(0.5)) f.userId = text(rng);
  if (rng.chance(0.3)) f.active = rng.chance(0.5);
  if (rng.chance(0.2)) f.fromTime = timestamp(rng);
  if (rng.chance(0.2)) f.toTime = timestamp(rng);
  if (rng.chance(0.2)) f.address = text(rng);
  if (rng.chance(0.2)) f.client = text(rng);
  if (rng.chance(0.2)) f.closeReason = rng.pick([0, 1, 4, 6, 7, 99, -1]);
  return f as MessageInitShape<typeof SessionFilterSchema>;
}

const int32 = (rng: Rng) => rng.pick([0, 1, 10, 100, 1000, -1, 2 ** 31 - 1, -(2 ** 31), rng.int(50)]);
const version = (rng: Rng) => rng.pick([undefined, 0n, 1n, 2n, -1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)]);

/** An RPC whose request is just a session id. */
function idTarget(
  name: string,
  schema: typeof GetSessionByIdRequestSchema | typeof CloseSessionRequestSchema | typeof DeleteSessionByIdRequestSchema,
  idempotent: boolean,
): Target {
  return {
    path: `/${SERVICE}/${name}`,
    streaming: false,
    idempotent,
    fields: ["id"],
    valid: (rng, pool) => encode(schema as typeof GetSessionByIdRequestSchema, { id: sessionId(rng, pool) }),
  };
}

/** StoreSessionData and UpdateSessionUser: an id, a JSON value in `field`, maybe an expected version. */
function contentTarget(
  name: string,
  schema: typeof StoreSessionDataRequestSchema | typeof UpdateSessionUserRequestSchema,
  field: "data" | "user",
): Target {
  return {
    path: `/${SERVICE}/${name}`,
    streaming: false,
    idempotent: false,
    fields: ["id", field, "expectedVersion"],
    valid: (rng, pool) => {
      const expectedVersion = version(rng);
      return encode(schema as typeof StoreSessionDataRequestSchema, {
        id: sessionId(rng, pool),
        ...(rng.chance(0.8) && { [field]: jsonValue(rng) }),
        ...(expectedVersion !== undefined && { expectedVersion }),
      });
    },
  };
}

const sessionTargets: Target[] = [
  {
    path: `/${SERVICE}/OpenSession`,
    streaming: false,
    idempotent: false,
    fields: ["userId", "userName", "address", "client", "user", "data", "idleTimeout", "absoluteTimeout"],
    valid: (rng) =>
      encode(OpenSessionRequestSchema, {
        userId: rng.chance(0.8) ? `fuzz-${rng.int(50)}` : text(rng),
        userName: text(rng),
        address: rng.pick(["", "10.0.0.1", "::1", "not an address"]),
        client: text(rng),
        ...(rng.chance(0.4) && { user: jsonValue(rng) }),
        ...(rng.chance(0.4) && { data: jsonValue(rng) }),
        ...(rng.chance(0.2) && { idleTimeout: duration(rng) }),
        ...(rng.chance(0.2) && { absoluteTimeout: duration(rng) }),
      }),
  },
  {
    path: `/${SERVICE}/ValidateSession`,
    streaming: false,
    idempotent: false,
    fields: ["token", "address", "client", "includeData"],
    valid: (rng, pool) =>
      encode(ValidateSessionRequestSchema, {
        token: token(rng, pool),
        address: rng.pick(["", "10.0.0.2", "fe80::1"]),
        client: text(rng),
        includeData: rng.chance(0.5),
      }),
  },
  idTarget("GetSessionById", GetSessionByIdRequestSchema, true),
  {
    path: `/${SERVICE}/GetSessions`,
    streaming: false,
    idempotent: true,
    fields: ["filter", "skip", "take", "total", "includeData"],
    valid: (rng) =>
      encode(GetSessionsRequestSchema, {
        ...(rng.chance(0.7) && { filter: filter(rng) }),
        skip: int32(rng),
        take: int32(rng),
        total: rng.chance(0.5),
        includeData: rng.chance(0.5),
      }),
  },
  contentTarget("StoreSessionData", StoreSessionDataRequestSchema, "data"),
  contentTarget("UpdateSessionUser", UpdateSessionUserRequestSchema, "user"),
  idTarget("CloseSession", CloseSessionRequestSchema, false),
  {
    path: `/${SERVICE}/CloseExpiredSessions`,
    streaming: false,
    idempotent: false,
    fields: [],
    valid: () => encode(CloseExpiredSessionsRequestSchema, {}),
  },
  idTarget("DeleteSessionById", DeleteSessionByIdRequestSchema, false),
  {
    path: `/${SERVICE}/CloseUserSessions`,
    streaming: false,
    idempotent: false,
    fields: ["userId", "exceptSessionId"],
    valid: (rng, pool) =>
      encode(CloseUserSessionsRequestSchema, {
        userId: rng.chance(0.7) ? `fuzz-${rng.int(50)}` : text(rng),
        exceptSessionId: rng.chance(0.5) ? sessionId(rng, pool) : "",
      }),
  },
  {
    path: `/${SERVICE}/CloseSessions`,
    streaming: false,
    idempotent: false,
    fields: ["filter", "dryRun"],
    // Mostly dry runs: a real one with an empty filter would close the pool.
    valid: (rng) => encode(CloseSessionsRequestSchema, { filter: filter(rng), dryRun: rng.chance(0.8) }),
  },
  {
    path: `/${SERVICE}/WatchSessionEvents`,
    streaming: true,
    idempotent: true,
    fields: ["afterCursor", "fromOldest", "userId", "types"],
    valid: (rng) =>
      encode(WatchSessionEventsRequestSchema, {
        afterCursor: rng.chance(0.7) ? "" : rng.chance(0.5) ? rng.ascii(rng.range(1, 60)) : text(rng),
        fromOldest: rng.chance(0.3),
        userId: rng.chance(0.5) ? "" : `fuzz-${rng.int(50)}`,
        types: Array.from({ length: rng.int(3) }, () => rng.pick([1, 2, 5, 0, 11, 999])),
      }),
  },
];

const otherTargets: Target[] = [
  {
    path: `/${HEALTH}/Check`,
    streaming: false,
    idempotent: false,
    fields: ["service"],
    valid: (rng) => encode(HealthCheckRequestSchema, { service: rng.pick(["", SERVICE, "nope", text(rng)]) }),
  },
  {
    path: `/${HEALTH}/Watch`,
    streaming: true,
    idempotent: false,
    fields: ["service"],
    valid: (rng) => encode(HealthCheckRequestSchema, { service: rng.pick(["", SERVICE, "nope"]) }),
  },
  { path: `/${HEALTH}/List`, streaming: false, idempotent: false, fields: [], valid: () => encode(HealthListRequestSchema, {}) },
  ...["grpc.reflection.v1", "grpc.reflection.v1alpha"].map(
    (pkg): Target => ({
      path: `/${pkg}.ServerReflection/ServerReflectionInfo`,
      // Ends when the client half-closes, as every case does.
      streaming: false,
      bidi: true,
      idempotent: false,
      fields: ["host", "listServices", "fileContainingSymbol", "fileByFilename"],
      valid: (rng) =>
        encode(ServerReflectionRequestSchema, {
          host: rng.chance(0.8) ? "" : text(rng),
          messageRequest: rng.pick([
            { case: "listServices" as const, value: "" },
            { case: "fileContainingSymbol" as const, value: rng.pick([SERVICE, `${SERVICE}.OpenSession`, "nope", text(rng)]) },
            { case: "fileByFilename" as const, value: rng.pick(["sessions/v1/sessions.proto", "google/protobuf/struct.proto", "nope.proto"]) },
            { case: "allExtensionNumbersOfType" as const, value: rng.pick(["sessions.v1.Session", "x"]) },
            {
              case: "fileContainingExtension" as const,
              value: { containingType: "google.protobuf.MethodOptions", extensionNumber: rng.int(100000) },
            },
          ]),
        }),
    }),
  ),
];

function unknownTarget(rng: Rng): Target {
  const path = rng.pick([
    `/${SERVICE}/NoSuchMethod`,
    `/${SERVICE}/opensession`,
    `/${SERVICE}/`,
    `/sessions.v1.Nope/OpenSession`,
    `/${SERVICE}/OpenSession/extra`,
    `/${SERVICE}/GetSessionById?x=1`,
    "/",
    "/healthz",
    "/metrics",
    `/${rng.ascii(rng.range(1, 30), "abcdefghijklmnopqrstuvwxyz./%")}`,
  ]);
  return { path, streaming: false, idempotent: false, fields: [] };
}

function pickTarget(rng: Rng): Target {
  return rng.weighted<() => Target>([
    [14, () => rng.pick(sessionTargets)],
    [2, () => rng.pick(otherTargets)],
    [1, () => unknownTarget(rng)],
  ])();
}

// Payload mutations.

function mutateBytes(rng: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input);
  for (let n = rng.range(1, 3); n > 0; n--) {
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(8)) {
      case 0: // flip bits
        if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1: // random byte
        if (b.length > 0) b[at] = rng.int(256);
        break;
      case 2: // truncate
        b = b.subarray(0, at);
        break;
      case 3: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 8)), b.subarray(at)]);
        break;
      case 4: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + rng.range(1, 8))]);
        break;
      case 5: // duplicate a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + rng.range(1, 16)), b.subarray(at)]);
        break;
      case 6: // an unterminated or overlong varint
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(rng.range(1, 11), 0xff), b.subarray(at)]);
        break;
      default: // an unknown field (valid protobuf) or a bad wire type / huge length
        b = Buffer.concat([
          b,
          rng.pick([
            Buffer.from([0xa0, 0x06, 0x01]), // field 100, varint
            Buffer.from([0xa2, 0x06, 0x02, 0x41, 0x42]), // field 100, bytes
            Buffer.from([0x0f]), // field 1, wire type 7
            Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // field 1, length 4 GiB
            Buffer.from([0x0b, 0x0a, 0x00]), // field 1, start group
            Buffer.from([0x00]), // field 0
          ]),
        ]);
    }
  }
  return b;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/**
 * An OpenSessionRequest whose data Value nests `depth` lists deep, written
 * directly (protobuf-es would recurse to build it): stack depth, not size.
 */
function deepValueRequest(depth: number): Buffer {
  // Inside out: sizes of the ListValue and the Value at each level.
  const valueLen: number[] = [0];
  const listLen: number[] = [0];
  for (let k = 1; k <= depth; k++) {
    listLen[k] = 1 + varint(valueLen[k - 1]!).length + valueLen[k - 1]!;
    valueLen[k] = 1 + varint(listLen[k]!).length + listLen[k]!;
  }
  const head = [0x0a, 0x01, 0x75, 0x32, ...varint(valueLen[depth]!)]; // user_id "u", data (field 6)
  const out = Buffer.alloc(head.length + valueLen[depth]!);
  out.set(head);
  let pos = head.length;
  for (let k = depth; k >= 1; k--) {
    // Value.list_value (field 6) then ListValue.values (field 1)
    for (const byte of [0x32, ...varint(listLen[k]!), 0x0a, ...varint(valueLen[k - 1]!)]) out[pos++] = byte;
  }
  return out;
}

/** A message payload for `target`, and what was done to it. */
function payload(rng: Rng, target: Target, pool: Pool): [string, Buffer] {
  const valid = target.valid;
  if (valid === undefined) return ["random", rng.bytes(rng.int(64))];
  return rng.weighted<() => [string, Buffer]>([
    [3, () => ["valid", valid(rng, pool).bytes]],
    [6, () => ["mutated", mutateBytes(rng, valid(rng, pool).bytes)]],
    [2, () => ["random", rng.bytes(rng.chance(0.9) ? rng.int(256) : rng.int(8192))]],
    [1, () => ["empty-message", Buffer.alloc(0)]],
    [0.5, () => [`deep-value`, deepValueRequest(rng.pick([33, 200, 5_000, 20_000]))]],
  ])();
}

/** A gRPC length-prefixed message. */
function frame(message: Buffer, flags = 0, length = message.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([head, message]);
}

const MAX_MESSAGE = 4 * 1024 * 1024;

/** A gRPC (or gRPC-Web, or Connect streaming) request body: framing valid or not. */
function framedBody(rng: Rng, target: Target, pool: Pool): { kind: string; body: Buffer; headers: Record<string, string> } {
  const [what, message] = payload(rng, target, pool);
  const framing = rng.weighted<string>([
    [10, "one"],
    [1, "none"],
    [1, "partial-header"],
    [1, "length-short"],
    [1, "length-long"],
    [1, "length-huge"],
    [1, "compressed-flag"],
    [1, "gzip"],
    [1, "bad-flags"],
    [1, "several"],
    [1, "trailing-garbage"],
    [0.05, "oversized"],
  ]);
  const headers: Record<string, string> = {};
  let body: Buffer;
  switch (framing) {
    case "none":
      body = Buffer.alloc(0);
      break;
    case "partial-header":
      body = frame(message).subarray(0, rng.range(1, 4));
      break;
    case "length-short":
      body = frame(message, 0, Math.max(0, message.length - rng.range(1, 10)));
      break;
    case "length-long":
      body = frame(message, 0, message.length + rng.range(1, 1000));
      break;
    case "length-huge":
      body = frame(message, 0, rng.pick([0xffffffff, 0x7fffffff, MAX_MESSAGE + 1, MAX_MESSAGE, 0x80000000]));
      break;
    case "compressed-flag": // set without any grpc-encoding
      body = frame(message, 1);
      break;
    case "gzip": {
      const real = rng.chance(0.5);
      headers["grpc-encoding"] = rng.pick(["gzip", "gzip", "deflate", "snappy", "identity", rng.ascii(5)]);
      body = frame(real ? gzipSync(message) : message, rng.chance(0.8) ? 1 : 0);
      break;
    }
    case "bad-flags":
      body = frame(message, rng.range(2, 255));
      break;
    case "several":
      body = Buffer.concat(Array.from({ length: rng.range(2, 8) }, () => frame(target.valid?.(rng, pool).bytes ?? message)));
      break;
    case "trailing-garbage":
      body = Buffer.concat([frame(message), rng.bytes(rng.range(1, 20))]);
      break;
    case "oversized": // an honest prefix, one message just over the 4 MiB limit
      body = frame(Buffer.alloc(MAX_MESSAGE + rng.range(1, 1000), 0x41));
      break;
    default:
      body = frame(message);
  }
  return { kind: `${what}/${framing}`, body, headers };
}

const CORRELATION = "x-request-id";

function grpcHeaders(rng: Rng, target: Target, id: string): { kind: string; headers: Record<string, string>; method: string } {
  const headers: Record<string, string> = { [CORRELATION]: id };
  const contentType = rng.weighted<string | undefined>([
    [20, "application/grpc"],
    [2, "application/grpc+proto"],
    [1, "application/grpc+json"],
    [1, "application/json"],
    [1, "text/plain"],
    [1, ""],
    [1, undefined],
    [1, "application/grpcx"],
  ]);
  if (contentType !== undefined) headers["content-type"] = contentType;
  if (rng.chance(0.9)) headers.te = "trailers";
  let kind = contentType === undefined ? "ct:absent" : `ct:${contentType || "empty"}`;
  if (target.streaming) {
    headers["grpc-timeout"] = `${STREAM_TIMEOUT_MS}m`;
  } else if (target.bidi === true && rng.chance(0.5)) {
    // A deadline that may pass while the answers are being written.
    headers["grpc-timeout"] = rng.pick(["1m", "2m", "5m", "10m", "100m", "1S"]);
    kind += ` timeout:${headers["grpc-timeout"]}`;
  } else if (rng.chance(0.1)) {
    headers["grpc-timeout"] = rng.pick(["1S", "0m", "1m", "3m", "10m", "1u", "100000000H", "abc", "-1S", "1x", "99999999999S"]);
    kind += ` timeout:${headers["grpc-timeout"]}`;
  }
  if (rng.chance(0.1)) {
    const [name, value] = rng.pick<[string, string]>([
      ["x-fuzz-bin", rng.chance(0.5) ? rng.bytes(8).toString("base64") : "!!not base64!!"],
      ["grpc-accept-encoding", rng.pick(["gzip", "bogus", ""])],
      ["authorization", rng.pick(["Bearer x", "", "Basic !!"])],
      ["grpc-fuzz", rng.ascii(10)],
      ["user-agent", rng.ascii(rng.range(0, 300))],
    ]);
    headers[name] = value;
    kind += ` hdr:${name}`;
  }
  const method = rng.chance(0.97) ? "POST" : rng.pick(["GET", "PUT", "DELETE"]);
  if (method !== "POST") kind += ` ${method}`;
  return { kind, headers, method };
}

/** A gRPC request (the gRPC port, or gRPC over h2c on the HTTP port). */
function grpcCase(rng: Rng, pool: Pool, id: string, label: string): WireCase {
  const target = pickTarget(rng);
  const h = grpcHeaders(rng, target, id);
  const b = framedBody(rng, target, pool);
  // A known defect of @grpc/grpc-js (1.14.7): a request it refuses before any
  // handler runs (a content type that is not gRPC's, a method that is not
  // POST, a path that is no method) is answered without reading or closing its
  // stream, and the unread data counts against the HTTP/2 session's memory
  // (10 MiB by default) until every new stream on the connection is refused
  // with ENHANCE_YOUR_CALM. No code of ours sees those streams. On the gRPC
  // port such bodies are cut to 1 KiB, so that the fuzzing goes on finding
  // other things; the README says what a client must not do.
  const refusedUnread =
    !/^application\/grpc(\+proto)?$/.test(h.headers["content-type"] ?? "") || h.method !== "POST" || target.valid === undefined;
  if (label === "grpc" && refusedUnread && b.body.length > 1024) {
    b.body = b.body.subarray(0, 1024);
    b.kind += " (cut to 1 KiB)";
  }
  return {
    id,
    kind: `${label} ${b.kind} ${h.kind}`,
    transport: "h2",
    protocol: "grpc",
    method: h.method,
    path: target.path,
    headers: { ...h.headers, ...b.headers },
    body: b.body,
    chunked: false,
  };
}

// JSON mutations (Connect).

const BAD_VALUES: JsonValue[] = [
  null, "", 0, -1, 1.5, true, [], {}, "abc", "1e3", "9223372036854775808", "-9223372036854775809",
  1e308, "NaN", "Infinity", 2 ** 53 + 2, "2026-13-45T99:00:00Z", "1.5s", "-3s", "3", "0.000000001s",
  "CLOSE_REASON_REVOKED", "SESSION_EVENT_TYPE_OPENED", "NOPE", [[1]], { a: { b: {} } }, "x".repeat(2000),
];

function mutateJson(rng: Rng, value: JsonValue, fields: readonly string[]): JsonValue {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const obj: Record<string, JsonValue> = { ...value };
  for (let n = rng.range(1, 3); n > 0; n--) {
    const keys = Object.keys(obj);
    const field = rng.chance(0.7) && fields.length > 0 ? rng.pick(fields) : rng.chance(0.5) && keys.length > 0 ? rng.pick(keys) : rng.ascii(6);
    switch (rng.int(6)) {
      case 0:
        obj[field] = rng.pick(BAD_VALUES);
        break;
      case 1:
        obj[field] = randomJson(rng);
        break;
      case 2:
        delete obj[field];
        break;
      case 3: {
        // snake_case alias, sometimes together with the camelCase name
        const snake = field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
        obj[snake] = obj[field] ?? rng.pick(BAD_VALUES);
        if (rng.chance(0.5)) delete obj[field];
        break;
      }
      case 4: {
        const inner = obj[field];
        obj[field] = inner !== undefined && inner !== null && typeof inner === "object" && !Array.isArray(inner)
          ? mutateJson(rng, inner, Object.keys(inner).concat(["userId", "active", "fromTime", "closeReason"]))
          : [inner ?? null];
        break;
      }
      default:
        return rng.pick<JsonValue>([[obj], "string", 42, null, true]);
    }
  }
  return obj;
}

function mutateText(rng: Rng, input: string): Buffer {
  let b = Buffer.from(input);
  switch (rng.int(5)) {
    case 0:
      return b.subarray(0, rng.int(Math.max(1, b.length)));
    case 1: {
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick(["{", "}", "[", "]", '"', ",", ":", "\\", "\\u", "\u0000", "null"])), b.subarray(at)]);
    }
    case 2: // invalid UTF-8
      b = Buffer.from(b);
      if (b.length > 0) b[rng.int(b.length)] = rng.pick([0xff, 0xc0, 0x80, 0xed]);
      return b;
    case 3: // a duplicated key
      return Buffer.from(input.replace(/^\{/, `{"${rng.pick(["userId", "id", "token", "filter"])}":${JSON.stringify(rng.pick(BAD_VALUES))},`));
    default:
      return mutateBytes(rng, b);
  }
}

function jsonBody(rng: Rng, target: Target, pool: Pool): [string, Buffer] {
  const valid = target.valid;
  const validJson = () => (valid === undefined ? randomJson(rng) : valid(rng, pool).json);
  return rng.weighted<() => [string, Buffer]>([
    [3, () => ["json-valid", Buffer.from(JSON.stringify(validJson()))]],
    [6, () => ["json-mutated", Buffer.from(JSON.stringify(mutateJson(rng, validJson(), target.fields)))]],
    [3, () => ["json-text-mutated", mutateText(rng, JSON.stringify(validJson()))]],
    [2, () => ["json-random", Buffer.from(JSON.stringify(randomJson(rng)))]],
    [1, () => ["json-truncated", Buffer.from(JSON.stringify(validJson())).subarray(0, rng.int(10))]],
    [1, () => ["random-bytes", rng.bytes(rng.int(200))]],
    [1, () => ["empty", Buffer.alloc(0)]],
    [0.05, () => ["json-oversized", Buffer.from(`{"userId":"${"x".repeat(MAX_MESSAGE + rng.range(1, 1000))}"}`)]],
    [
      0.5,
      () => {
        const depth = rng.pick([33, 1_000, 20_000]);
        const field = rng.pick(["data", "user", "filter", "userId"]);
        return [`json-deep-${depth}`, Buffer.from(`{"userId":"u","${field}":${"[".repeat(depth)}${"]".repeat(depth)}}`)];
      },
    ],
  ])();
}

function protoBody(rng: Rng, target: Target, pool: Pool): [string, Buffer] {
  const [what, message] = payload(rng, target, pool);
  return [`proto-${what}`, message];
}

/** A Connect unary POST (or streaming, for streaming targets), over HTTP/1.1 or h2c. */
function connectCase(rng: Rng, pool: Pool, id: string): WireCase {
  const target = pickTarget(rng);
  const headers: Record<string, string> = { [CORRELATION]: id };
  const transport = rng.chance(0.25) ? "h2" : "h1";
  let kind: string;
  let body: Buffer;
  if (target.streaming && rng.chance(0.8)) {
    // Connect streaming: enveloped messages (flag 2 ends the stream).
    const json = rng.chance(0.5);
    headers["content-type"] = json ? "application/connect+json" : "application/connect+proto";
    headers["connect-timeout-ms"] = `${STREAM_TIMEOUT_MS}`;
    const b = json
      ? (() => {
          const [what, message] = jsonBody(rng, target, pool);
          return { kind: what, body: frame(message, rng.pick([0, 0, 0, 1, 2, 0x80])) };
        })()
      : framedBody(rng, target, pool);
    kind = `connect-stream ${b.kind}`;
    body = b.body;
  } else {
    const codec = rng.weighted<"json" | "proto">([
      [7, "json"],
      [3, "proto"],
    ]);
    [kind, body] = codec === "json" ? jsonBody(rng, target, pool) : protoBody(rng, target, pool);
    const contentType = rng.weighted<string | undefined>([
      [20, codec === "json" ? "application/json" : "application/proto"],
      [1, "application/json; charset=utf-8"],
      [1, "application/json; charset=latin1"],
      [1, codec === "json" ? "application/proto" : "application/json"],
      [1, "text/plain"],
      [1, "application/connect+json"],
      [1, undefined],
      [1, ""],
      [1, `${rng.ascii(5)}/${rng.ascii(5)}`],
    ]);
    if (contentType !== undefined) headers["content-type"] = contentType;
    kind = `connect ${kind} ct:${contentType ?? "absent"}`;
    if (target.streaming) headers["connect-timeout-ms"] = `${STREAM_TIMEOUT_MS}`;
  }
  if (rng.chance(0.5)) headers["connect-protocol-version"] = rng.chance(0.9) ? "1" : rng.pick(["2", "", "x"]);
  if (rng.chance(0.08)) {
    const encoding = rng.pick(["gzip", "gzip", "br", "bogus", "identity"]);
    headers["content-encoding"] = encoding;
    if (encoding === "gzip" && rng.chance(0.5)) body = gzipSync(body);
    kind += ` ce:${encoding}`;
  }
  if (!target.streaming && rng.chance(0.05)) {
    headers["connect-timeout-ms"] = rng.pick(["0", "-1", "abc", "99999999999", "1"]);
    kind += ` timeout:${headers["connect-timeout-ms"]}`;
  }
  return { id, kind: `${kind} ${transport}`, transport, protocol: "connect", method: "POST", path: target.path, headers, body, chunked: rng.chance(0.2) };
}

/** A Connect GET: the request in the query string. */
function connectGetCase(rng: Rng, pool: Pool, id: string): WireCase {
  const target = rng.chance(0.8) ? rng.pick(sessionTargets.filter((t) => t.idempotent && !t.streaming)) : pickTarget(rng);
  const params: string[] = [];
  let kind: string;
  const proto = rng.chance(0.25);
  if (proto) {
    const [what, message] = protoBody(rng, target, pool);
    kind = `get ${what}`;
    params.push("encoding=proto", `message=${encodeURIComponent(message.toString("base64url"))}`);
    if (rng.chance(0.9)) params.push("base64=1");
  } else {
    const [what, message] = rng.chance(0.85) ? jsonBody(rng, target, pool) : (["random-param", Buffer.from(rng.ascii(rng.int(50), "%abc{}[]\":,0123456789"))] as [string, Buffer]);
    kind = `get ${what}`;
    params.push("encoding=json");
    if (rng.chance(0.2)) params.push(`message=${encodeURIComponent(message.toString("base64url"))}`, "base64=1");
    else params.push(`message=${message.toString("latin1").replace(/[^A-Za-z0-9_.~-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}`);
  }
  if (rng.chance(0.9)) params.push("connect=v1");
  if (rng.chance(0.05)) params.push("compression=gzip");
  if (rng.chance(0.1)) params.splice(rng.int(params.length), 1); // drop one
  if (rng.chance(0.05)) params.push(`${rng.ascii(3)}=${rng.ascii(3)}`);
  const headers: Record<string, string> = { [CORRELATION]: id };
  if (target.streaming) headers["connect-timeout-ms"] = `${STREAM_TIMEOUT_MS}`;
  return {
    id,
    kind,
    transport: rng.chance(0.2) ? "h2" : "h1",
    protocol: "connect",
    method: "GET",
    path: `${target.path}?${params.join("&")}`,
    headers,
    body: Buffer.alloc(0),
    chunked: false,
  };
}

/** gRPC-Web over HTTP/1.1 (binary, or base64 "text"). */
function grpcWebCase(rng: Rng, pool: Pool, id: string): WireCase {
  const target = pickTarget(rng);
  const b = framedBody(rng, target, pool);
  const text = rng.chance(0.2);
  const headers: Record<string, string> = {
    [CORRELATION]: id,
    "content-type": text ? "application/grpc-web-text" : rng.pick(["application/grpc-web+proto", "application/grpc-web", "application/grpc-web+json"]),
    ...b.headers,
  };
  if (rng.chance(0.7)) headers["x-grpc-web"] = "1";
  if (target.streaming) headers["grpc-timeout"] = `${STREAM_TIMEOUT_MS}m`;
  let body = b.body;
  let kind = `grpc-web ${b.kind}`;
  if (text) {
    const encoded = body.toString("base64");
    body = rng.chance(0.8) ? Buffer.from(encoded) : mutateText(rng, encoded);
    kind = `grpc-web-text ${b.kind}`;
  }
  return { id, kind, transport: "h1", protocol: text ? "grpc-web-text" : "grpc-web", method: "POST", path: target.path, headers, body, chunked: rng.chance(0.2) };
}

/** Neither RPC protocol: other methods, the probes, random paths. */
function plainCase(rng: Rng, id: string): WireCase {
  const target = rng.chance(0.5) ? pickTarget(rng) : unknownTarget(rng);
  const method = rng.pick(["PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "GET", "POST"]);
  const path = rng.chance(0.3) ? rng.pick(["/healthz", "/readyz", "/metrics", "/healthz?x", "/metrics/"]) : target.path;
  const body = method === "GET" || method === "HEAD" ? Buffer.alloc(0) : rng.bytes(rng.int(100));
  const headers: Record<string, string> = { [CORRELATION]: id };
  if (rng.chance(0.5)) headers["content-type"] = rng.pick(["application/json", "application/grpc", "application/proto", rng.ascii(8)]);
  return { id, kind: `plain ${method}`, transport: rng.chance(0.3) ? "h2" : "h1", protocol: "plain", method, path, headers, body, chunked: false };
}

function makeCase(port: PortName, index: number, pool: Pool): WireCase {
  const rng = caseRng(port, index);
  const id = `fuzz-${port}-${index}`;
  if (port === "grpc") return grpcCase(rng, pool, id, "grpc");
  return rng.weighted<() => WireCase>([
    [45, () => connectCase(rng, pool, id)],
    [10, () => connectGetCase(rng, pool, id)],
    [25, () => grpcWebCase(rng, pool, id)],
    [12, () => grpcCase(rng, pool, id, "grpc-h2c")],
    [8, () => plainCase(rng, id)],
  ])();
}

// --- sending ----------------------------------------------------------------

/** Reads the status of an answer, by protocol. */
function classify(c: WireCase, status: number | undefined, headers: Record<string, unknown>, trailers: Record<string, unknown>, body: Buffer): string {
  const grpcStatus = trailers["grpc-status"] ?? headers["grpc-status"];
  if (c.protocol === "grpc") {
    if (grpcStatus !== undefined) return `grpc-status ${String(grpcStatus)}`;
    return `http ${status} (no grpc-status)`;
  }
  if (c.protocol === "grpc-web" || c.protocol === "grpc-web-text") {
    if (grpcStatus !== undefined) return `${status} grpc-status ${String(grpcStatus)}`;
    if (status !== 200) return `${status} (no grpc-status)`;
    const bytes = c.protocol === "grpc-web-text" ? Buffer.from(body.toString("latin1"), "base64") : body;
    // The trailer frame: flag 0x80, then "grpc-status: N\r\n..."
    for (let at = 0; at + 5 <= bytes.length; ) {
      const length = bytes.readUInt32BE(at + 1);
      if ((bytes[at]! & 0x80) !== 0) {
        const match = /grpc-status:\s*(\d+)/i.exec(bytes.subarray(at + 5, at + 5 + length).toString("latin1"));
        return `${status} grpc-status ${match?.[1] ?? "?"}`;
      }
      at += 5 + length;
    }
    return `${status} (no grpc-status)`;
  }
  if (c.protocol === "connect") {
    const type = String(headers["content-type"] ?? "");
    if (type.startsWith("application/json") && status !== 200) {
      try {
        return `${status} ${(JSON.parse(body.toString()) as { code?: string }).code ?? "?"}`;
      } catch {
        return `${status} (unparsable)`;
      }
    }
    if (type.startsWith("application/connect+")) {
      // The end-stream envelope (flag 2) carries the error, if any.
      for (let at = 0; at + 5 <= body.length; ) {
        const length = body.readUInt32BE(at + 1);
        if ((body[at]! & 0x02) !== 0) {
          try {
            const end = JSON.parse(body.subarray(at + 5, at + 5 + length).toString()) as { error?: { code?: string } };
            return `${status} stream ${end.error?.code ?? "ok"}`;
          } catch {
            return `${status} stream (unparsable end)`;
          }
        }
        at += 5 + length;
      }
      return `${status} stream (no end)`;
    }
    return `${status}`;
  }
  return `${c.method} ${status}`;
}

const MAX_BODY_KEPT = 64 * 1024;
/** Node's default --max-http-header-size. */
const MAX_HTTP1_HEADER_BYTES = 16 * 1024;
/** The case each HTTP/1.1 connection carried last, to tell which request left it stuck. */
const lastCaseOn = new WeakMap<object, string>();

/** Why an HTTP/2 connection ended, if the server ended it. */
const goaways = new WeakMap<http2.Http2Session, string>();

class H2Pool {
  private sessions: (http2.ClientHttp2Session | undefined)[];
  private next = 0;
  private readonly retired: http2.ClientHttp2Session[] = [];
  constructor(
    private readonly port: number,
    size: number,
  ) {
    this.sessions = new Array<http2.ClientHttp2Session | undefined>(size).fill(undefined);
  }
  get(): http2.ClientHttp2Session {
    const slot = this.next++ % this.sessions.length;
    const current = this.sessions[slot];
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = http2.connect(`http://127.0.0.1:${this.port}`);
    session.on("error", (error: Error & { code?: string }) => goaways.set(session, `session error ${error.code ?? error.message}`));
    session.on("goaway", (code: number, lastStreamId: number) => {
      goaways.set(session, `GOAWAY code ${code}, last stream ${lastStreamId}`);
      if (this.sessions[slot] === session) this.sessions[slot] = undefined;
    });
    this.sessions[slot] = session;
    return session;
  }
  /**
   * Stops using a connection the server refused a stream on with
   * ENHANCE_YOUR_CALM: it would refuse every later one too (counted once each
   * in the summary), and the rest of the run would fuzz nothing.
   */
  retire(session: http2.ClientHttp2Session): void {
    const slot = this.sessions.indexOf(session);
    if (slot < 0) return;
    this.sessions[slot] = undefined;
    // Not closed yet: a GOAWAY from the client could cut short the calls still in flight on it.
    this.retired.push(session);
  }
  close(): void {
    for (const session of [...this.sessions, ...this.retired]) session?.close();
  }
}

function sendH2(pool: H2Pool, c: WireCase): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      const seen = status === undefined ? "nothing" : `headers (${status}) and ${kept} bytes of body, then no status`;
      finish({ label: "TIMEOUT (no answer)", answered: false, detail: `after ${REQUEST_TIMEOUT_MS} ms: ${seen}` });
      stream?.close(http2.constants.NGHTTP2_CANCEL);
    }, REQUEST_TIMEOUT_MS);
    let stream: http2.ClientHttp2Stream | undefined;
    let session: http2.ClientHttp2Session;
    try {
      session = pool.get();
      stream = session.request({ ":method": c.method, ":path": c.path, ...c.headers }, { endStream: c.body.length === 0 });
    } catch (error) {
      finish({ label: `CLIENT ERROR ${(error as { code?: string }).code ?? String(error)}`, answered: false });
      return;
    }
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    let status: number | undefined;
    let ended = false;
    const chunks: Buffer[] = [];
    let kept = 0;
    let streamError: string | undefined;
    stream.on("response", (h) => {
      headers = h;
      status = h[":status"];
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => {
      if (kept < MAX_BODY_KEPT) chunks.push(chunk);
      kept += chunk.length;
    });
    const answered = () => finish({ label: classify(c, status, headers, trailers, Buffer.concat(chunks)), answered: true });
    stream.on("end", () => {
      // The server ended its side: the answer is complete, even if the request
      // is not fully sent (an early answer to an upload the server stopped reading).
      ended = true;
      if (status !== undefined) {
        answered();
        if (!stream!.closed) stream!.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    stream.on("error", (error: Error & { code?: string }) => (streamError = error.code ?? error.message));
    stream.on("close", () => {
      const rst = stream!.rstCode ?? 0;
      const grpcAnswered = c.protocol === "grpc" && (trailers["grpc-status"] ?? headers["grpc-status"]) !== undefined;
      if (status !== undefined && (ended || grpcAnswered)) {
        answered();
      } else if (rst !== http2.constants.NGHTTP2_NO_ERROR) {
        const calm = rst === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;
        if (calm) pool.retire(session);
        const name = calm ? " (ENHANCE_YOUR_CALM)" : rst === http2.constants.NGHTTP2_REFUSED_STREAM ? " (REFUSED_STREAM)" : "";
        finish({ label: `RST_STREAM ${rst}${name}${status === undefined ? "" : ` after ${status}`}`, answered: true });
      } else {
        finish({
          label: `CLOSED without an answer (${streamError ?? "no error"})`,
          answered: false,
          detail: `stream ${stream!.id ?? "?"}, rst ${rst}, response headers ${status ?? "none"}, ended ${ended}, ${kept} bytes; connection: ${goaways.get(session) ?? (session.destroyed ? "destroyed" : "open")}`,
        });
      }
    });
    if (c.body.length > 0) stream.end(c.body);
  });
}

/**
 * Keep-alive sockets the client closes after 3 s idle: before the server's
 * 5 s keep-alive timeout, so a request is never written to a socket the
 * server is closing at that moment (EPIPE or ECONNRESET for no fault of
 * either side).
 */
const H1_AGENT: http.AgentOptions = { keepAlive: true, maxSockets: 2 * CONCURRENCY, timeout: 3000 };

function sendH1(agent: http.Agent, port: number, c: WireCase): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const headers: Record<string, string> = { ...c.headers };
    if (!c.chunked && c.method !== "GET" && c.method !== "HEAD") headers["content-length"] = `${c.body.length}`;
    const request = http.request({ agent, host: "127.0.0.1", port, method: c.method, path: c.path, headers });
    /** The request sent before this one on the same keep-alive connection. */
    let previous = "none: a new connection";
    let answeredAs: string | undefined;
    request.on("socket", (socket) => {
      previous = lastCaseOn.get(socket) ?? previous;
      lastCaseOn.set(socket, `${c.id} [${c.kind}, ${c.body.length} body bytes]`);
    });
    const timer = setTimeout(() => {
      if (answeredAs !== undefined) {
        // The response came while the request body was still being sent, and
        // the server then neither read the rest nor closed the connection.
        finish({
          label: "ANSWERED, BUT THE REQUEST BODY WAS LEFT UNREAD (connection stuck)",
          answered: false,
          detail: `answer ${answeredAs}; the ${c.body.length}-byte body was still not sent after ${REQUEST_TIMEOUT_MS} ms`,
        });
      } else {
        finish({
          label: "TIMEOUT (no answer)",
          answered: false,
          detail: request.socket === null ? "no connection was free" : `previous request on this connection: ${previous}`,
        });
      }
      request.destroy();
    }, REQUEST_TIMEOUT_MS);
    const headerBytes = c.path.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    request.on("error", (error: Error & { code?: string }) => {
      const closed = error.code === "ECONNRESET" || error.code === "EPIPE";
      if (closed && headerBytes > MAX_HTTP1_HEADER_BYTES) {
        // Node's HTTP/1.1 server answers 431 and closes; a client still sending sees the reset first.
        finish({ label: `headers too large: ${error.code}`, answered: true });
      } else if (closed && c.body.length > MAX_MESSAGE && !request.writableFinished) {
        // Refused on its content-length (429) and the connection closed, which a server may do
        // (RFC 9112, 9.6); Node's client reports the failed write rather than the early answer.
        finish({ label: `closed during an oversized upload: ${error.code}`, answered: true });
      } else {
        finish({ label: `CONNECTION ERROR ${error.code ?? error.message}`, answered: false, detail: `previous request on this connection: ${previous}` });
      }
    });
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      response.on("data", (chunk: Buffer) => {
        if (kept < MAX_BODY_KEPT) chunks.push(chunk);
        kept += chunk.length;
      });
      response.on("end", () => {
        const label = classify(c, response.statusCode, response.headers, response.trailers, Buffer.concat(chunks));
        if (request.writableFinished) return finish({ label, answered: true });
        // Answered before the whole body was sent: fine if the server reads (or discards) the rest.
        answeredAs = label;
        request.once("finish", () => finish({ label, answered: true }));
      });
      response.on("error", (error: Error & { code?: string }) =>
        finish({ label: `RESPONSE ERROR ${error.code ?? error.message}`, answered: false }),
      );
    });
    if (c.chunked && c.body.length > 1) {
      request.write(c.body.subarray(0, c.body.length >> 1));
      request.end(c.body.subarray(c.body.length >> 1));
    } else {
      request.end(c.method === "GET" || c.method === "HEAD" ? undefined : c.body);
    }
  });
}

async function runPool(from: number, to: number, concurrency: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to) await work(next++);
    }),
  );
}

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** V8 heap and external memory, from the server's own /metrics (prom-client default metrics). */
async function heapFigures(httpPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^sessions_${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return `heap ${mib(value("nodejs_heap_size_used_bytes"))} used of ${mib(value("nodejs_heap_size_total_bytes"))}, external ${mib(value("nodejs_external_memory_bytes"))}`;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function describeCase(c: WireCase): string {
  const shown = c.body.subarray(0, 256).toString("hex");
  return [
    `${c.id} [${c.kind}] ${c.transport} ${c.method} ${c.path.length > 300 ? `${c.path.slice(0, 300)}... (${c.path.length} chars)` : c.path}`,
    `  headers ${JSON.stringify(c.headers)}`,
    `  body (${c.body.length} bytes) ${shown}${c.body.length > 256 ? "..." : ""}`,
  ].join("\n");
}

// --- the test ----------------------------------------------------------------

describe("wire fuzzing of both ports of a server process", () => {
  const dir = tempDir();
  let server: ServerProcess | undefined;
  afterAll(async () => {
    if (server !== undefined) await kill(server.child);
    dir.remove();
  });

  it(`answers every malformed call, survives with flat memory, and still serves (seed ${SEED})`, async () => {
    console.log(
      `wire-fuzz: seed ${SEED} (WIRE_FUZZ_SEED=${SEED} to replay), ` +
        (ONLY === undefined ? `${ITERATIONS} requests per port` : `only ${ONLY.map((o) => `${o.port}:${o.index}`).join(", ")}`),
    );
    const started = performance.now();
    const dbPath = join(dir.path, "fuzz.db");
    server = await startServerProcess(dbPath, { NODE_OPTIONS: SERVER_NODE_OPTIONS });
    const { child, grpcPort, httpPort } = server;
    const pid = child.pid!;

    // Real sessions for mutated requests to reach.
    const setup = connectJsonHttp1(httpPort);
    const pool: Pool = { ids: [], tokens: [] };
    for (let i = 0; i < 8; i++) {
      const opened = await setup.call("openSession", { userId: `fuzz-${i}`, data: { i } });
      pool.ids.push(opened.session!.id);
      pool.tokens.push(opened.token!);
    }

    const counts: Record<PortName, Map<string, number>> = { grpc: new Map(), http: new Map() };
    /** The first case of each outcome, to show what led there. */
    const examples = new Map<string, WireCase>();
    const failures: { c: WireCase; outcome: Outcome }[] = [];
    const grpcSessions = new H2Pool(grpcPort, 2);
    const httpSessions = new H2Pool(httpPort, 2);
    let agent = new http.Agent(H1_AGENT);
    const rssSamples: number[] = [];
    const sampler = setInterval(() => {
      if (child.exitCode === null && child.signalCode === null) rssSamples.push(rssBytes(pid));
    }, 250);
    onTestFinished(() => clearInterval(sampler));

    const send = async (port: PortName, index: number) => {
      const c = makeCase(port, index, pool);
      const outcome =
        c.transport === "h1"
          ? await sendH1(agent, httpPort, c)
          : await sendH2(port === "grpc" ? grpcSessions : httpSessions, c);
      counts[port].set(outcome.label, (counts[port].get(outcome.label) ?? 0) + 1);
      if (!examples.has(outcome.label)) examples.set(outcome.label, c);
      if (!outcome.answered) failures.push({ c, outcome });
    };
    const phase = async (from: number, to: number) => {
      if (ONLY !== undefined) {
        // Replay: the listed cases, one at a time, in the first phase only.
        if (from === 0) for (const { port, index } of ONLY) await send(port, index);
      } else {
        await Promise.all([
          runPool(from, to, CONCURRENCY, (i) => send("grpc", i)),
          runPool(from, to, CONCURRENCY, (i) => send("http", i)),
        ]);
      }
      // Fresh HTTP/1.1 connections for the next phase: none goes idle past the server's keep-alive timeout.
      agent.destroy();
      agent = new http.Agent(H1_AGENT);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    };

    const rssStart = rssBytes(pid);
    const half = Math.floor(ITERATIONS / 2);
    await phase(0, half);
    const rssWarm = rssBytes(pid);
    const heapWarm = await heapFigures(httpPort);
    const warmSamples = rssSamples.length;
    await phase(half, ITERATIONS);
    const rssEnd = rssBytes(pid);
    const heapEnd = await heapFigures(httpPort);
    clearInterval(sampler);
    const fuzzSeconds = (performance.now() - started) / 1000;
    const rssPeak = Math.max(...rssSamples.slice(warmSamples), rssEnd);

    // The summary, before any assertion, so a failing run still shows it.
    const labels = [...new Set([...counts.grpc.keys(), ...counts.http.keys()])].sort();
    const table = labels.map((label) => ({
      outcome: label,
      "gRPC port": counts.grpc.get(label) ?? 0,
      "HTTP port": counts.http.get(label) ?? 0,
      "first case": `${examples.get(label)?.id} ${examples.get(label)?.kind} ${examples.get(label)?.path}`.slice(0, 110),
    }));
    console.log(`wire-fuzz: seed ${SEED}, ${ITERATIONS} requests per port in ${fuzzSeconds.toFixed(1)} s, ${CONCURRENCY} in flight per port`);
    console.table(table);
    console.log(
      `wire-fuzz: RSS at start ${mib(rssStart)}, after warm-up ${mib(rssWarm)}, at end ${mib(rssEnd)} ` +
        `(growth over the second half ${mib(rssEnd - rssWarm)}, limit ${RSS_GROWTH_LIMIT_MIB} MiB; peak ${mib(rssPeak)})`,
    );
    console.log(`wire-fuzz: after warm-up ${heapWarm}; at end ${heapEnd}`);
    const curve = rssSamples.filter((_, i) => i % 4 === 0).map((b) => (b / 1024 / 1024).toFixed(0));
    console.log(`wire-fuzz: RSS every second (MiB): ${curve.join(" ")}`);
    for (const { c, outcome } of failures.slice(0, 10)) {
      console.log(`wire-fuzz: UNANSWERED ${outcome.label} (${outcome.detail ?? ""})\n${describeCase(c)}`);
    }

    const errorLines = server.lines.filter((line) => line.level === "error" || line.level === "fatal");
    const internalRpcs = server.lines.filter((line) => line.msg === "rpc" && line.code === "INTERNAL");
    const casesOf = (lines: Record<string, unknown>[]) =>
      lines.slice(0, 5).map((line) => {
        const match = /^fuzz-(grpc|http)-(\d+)$/.exec(String(line.correlationId ?? ""));
        return `${JSON.stringify(line).slice(0, 600)}\n${match ? describeCase(makeCase(match[1] as PortName, Number(match[2]), pool)) : "  (no fuzz case id)"}`;
      });
    for (const line of casesOf(errorLines)) console.log(`wire-fuzz: ERROR LOGGED ${line}`);
    for (const line of casesOf(internalRpcs)) console.log(`wire-fuzz: INTERNAL FROM A HANDLER ${line}`);
    const slowest = server.lines
      .filter((line) => line.msg === "rpc" && typeof line.durationMs === "number" && line.messages === undefined)
      .sort((a, b) => (b.durationMs as number) - (a.durationMs as number))
      .slice(0, 3)
      .map((line) => `${String(line.procedure)} ${String(line.code)} ${String(line.durationMs)} ms (${String(line.correlationId)})`);
    console.log(`wire-fuzz: slowest unary calls: ${slowest.join("; ")}`);
    console.log(`wire-fuzz: log lines ${server.lines.length}, at level error ${errorLines.length}, warn ${server.lines.filter((l) => l.level === "warn").length}, handler INTERNAL ${internalRpcs.length}`);

    // (1) alive; (2) every call answered; (3) flat memory.
    // Soft: each check below reports on its own, and the later ones still run.
    expect.soft(child.exitCode, "the server exited").toBeNull();
    expect.soft(child.signalCode, "the server was killed").toBeNull();
    expect
      .soft(failures.map(({ c, outcome }) => `${c.id}: ${outcome.label} (${outcome.detail ?? ""})`), "calls without an answer")
      .toEqual([]);
    expect.soft((rssEnd - rssWarm) / 1024 / 1024, "RSS growth over the second half (MiB)").toBeLessThan(RSS_GROWTH_LIMIT_MIB);
    // Bad input is the caller's problem: no error logged, never INTERNAL from a handler.
    expect
      .soft(errorLines.map((line) => `${String(line.msg)} ${String(line.procedure)} ${String(line.correlationId)}`), "errors logged")
      .toEqual([]);
    expect
      .soft(internalRpcs.map((line) => `${String(line.procedure)} ${String(line.correlationId)}`), "INTERNAL answered by a handler")
      .toEqual([]);

    // (4) still serves normally on both ports.
    grpcSessions.close();
    httpSessions.close();
    agent.destroy();
    const clients: TestClient[] = [grpcJsClient(grpcPort), setup];
    try {
      for (const client of clients) {
        const opened = await client.call("openSession", { userId: "after-fuzz", data: { ok: true } });
        const validated = await client.call("validateSession", { token: opened.token!, includeData: true });
        expect.soft(validated.session, `round trip on ${client.name}`).toMatchObject({ id: opened.session!.id, active: true, userId: "after-fuzz", data: { ok: true } });
      }
    } finally {
      clients.forEach((client) => client.close());
    }

    expect.soft(await terminate(child, 15_000), "exit code after SIGTERM").toBe(0);
    const db = new Database(dbPath, { readonly: true });
    try {
      expect.soft(db.pragma("integrity_check", { simple: true }), "PRAGMA integrity_check").toBe("ok");
      const sessions = db.prepare("SELECT count(*) AS n, sum(length(data_json)) AS bytes FROM sessions").get() as { n: number; bytes: number | null };
      console.log(`wire-fuzz: database: ${sessions.n} sessions, ${mib(sessions.bytes ?? 0)} of data`);
    } finally {
      db.close();
    }
    console.log(`wire-fuzz: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }, Math.max(180_000, ITERATIONS * 20));
});
