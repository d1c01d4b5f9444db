import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { timestampFromMs, durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { SessionSchema, SessionsService } from "../gen/sessions/v1/sessions_pb.js";

/**
 * The reference the benchmarks compare with: SessionsService on
 * @grpc/grpc-js, built from the same generated descriptors, doing nothing
 * but decode each request and answer a fixed response of the right type (a
 * typical session where the response has one), encoded once at start. Run as a process: prints
 * {"port":N} and serves until SIGTERM.
 */
const now = Date.now();
/** The session every no-op reference answers with. */
export const referenceSession = create(SessionSchema, {
  id: "0123456789abcdef0123456789abcdef",
  userId: "user-1",
  userName: "User One",
  active: true,
  openTime: timestampFromMs(now),
  requestTime: timestampFromMs(now),
  expireTime: timestampFromMs(now + 1_800_000),
  address: "10.0.0.1",
  client: "web",
  version: 1n,
  idleTimeout: durationFromMs(1_800_000),
  absoluteTimeout: durationFromMs(86_400_000),
});

/** The fixed response of each unary method: the reference session where it has one, 50 in a page. */
export function referenceResponse(method: DescMethod): Message {
  const output: DescMessage = method.output;
  const fields = new Set(output.fields.map((field) => field.localName));
  return create(output, {
    ...(fields.has("session") && { session: referenceSession }),
    ...(fields.has("sessions") && { sessions: Array.from({ length: 50 }, () => referenceSession) }),
  } as never);
}

const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
const implementation: grpc.UntypedServiceImplementation = {};
for (const method of SessionsService.methods) {
  if (method.methodKind !== "unary") continue;
  const output: DescMessage = method.output;
  const response = referenceResponse(method);
  // Encoded once: a no-op answers with bytes it already has.
  const encoded = Buffer.from(toBinary(output, response as never));
  definition[method.localName] = {
    path: `/${SessionsService.typeName}/${method.name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (message: unknown) => Buffer.from(toBinary(method.input, message as never)),
    requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
    responseSerialize: () => encoded,
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
  };
  implementation[method.localName] = (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
    callback(null, response);
}

// Serves only when run as the entry point, not when imported for its session.
if (process.argv[1] === new URL(import.meta.url).pathname) {
  const server = new grpc.Server();
  server.addService(definition, implementation);
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error;
    console.log(JSON.stringify({ port }));
  });
  process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
}
