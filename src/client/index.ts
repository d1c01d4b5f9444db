/**
 * The TypeScript SDK of the sessions service: `import { createSessionsClient }
 * from "sessions"`. It depends on the generated code and the RPC libraries
 * only, never on the server.
 */
export {
  createSessionsClient,
  fromJsonValue,
  jsonValue,
  SessionsError,
  type SessionsClient,
  type SessionsClientOptions,
  type SessionsErrorReason,
  type SessionsTransport,
  type StatusCode,
} from "./sessions-client.js";
export * from "../../gen/sessions/v1/sessions_pb.js";
