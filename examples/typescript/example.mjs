// The TypeScript SDK, end to end. Run from the repository, with the service running:
//   node examples/typescript/example.mjs grpc 127.0.0.1:8090
//   node examples/typescript/example.mjs connect http://127.0.0.1:8080
// (Plain JavaScript, so that it runs as it is. In TypeScript, response fields that are
// messages are optional: write opened.session!.id, or check them.)
import { createSessionsClient, fromJsonValue, jsonValue, SessionsError } from "sessions";

const [kind = "grpc", target = "127.0.0.1:8090"] = process.argv.slice(2);
const client = createSessionsClient({
  transport: kind === "grpc" ? { kind: "grpc", address: target } : { kind: "connect", baseUrl: target },
  timeoutMs: 3000, // each call's deadline unless it sets its own
});

try {
  // user and data are any JSON, as google.protobuf.Value: jsonValue() converts.
  const { session, token } = await client.openSession({ userId: "123", client: "web", data: jsonValue({ theme: "dark" }) });
  console.log(`opened ${session.id} for ${session.userId}`);

  // What a gateway does on every request: the token proves the session.
  const valid = await client.validateSession({ token, client: "web" });
  console.log(`validated ${valid.session.id}`);

  const stored = await client.storeSessionData({ id: session.id, data: jsonValue({ theme: "light" }), expectedVersion: 1n });
  console.log(`stored ${JSON.stringify(fromJsonValue(stored.session.data))}, version ${stored.session.version}`);

  const page = await client.getSessions({ filter: { userId: "123", active: true }, total: true });
  console.log(`listed ${page.sessions.length} of ${page.total}`);

  const closed = await client.closeSession({ id: session.id });
  console.log(`closed: active=${closed.session.active}`);

  await client.deleteSessionById({ id: session.id });
  console.log("deleted");

  // Errors are SessionsError: switch on code and reason, not on the message.
  try {
    await client.validateSession({ token });
  } catch (error) {
    if (!(error instanceof SessionsError)) throw error;
    console.log(`refused: ${error.code} ${error.reason}`);
  }
} finally {
  client.close();
}
