/**
 * The TypeScript SDK of the sessions service, exported as the "sessions"
 * package (`createSessionsClient` and the generated messages). It depends on
 * the generated code and the RPC libraries only, never on the server.
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
