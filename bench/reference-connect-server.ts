import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as http from "node:http";
import { SessionsService } from "../gen/sessions/v1/sessions_pb.js";
import { referenceResponse } from "./reference-server.js";

/**
 * The reference for the HTTP port: SessionsService on a plain connect-node
 * adapter over HTTP/1.1, doing nothing but answer a fixed response of the
 * right type, as bench/reference-server.ts does on grpc-js. Run as a process:
 * prints {"port":N} and serves until SIGTERM.
 */
const impl: Record<string, () => unknown> = {};
for (const method of SessionsService.methods) {
  if (method.methodKind !== "unary") continue;
  const response = referenceResponse(method);
  impl[method.localName] = () => response;
}

const server = http.createServer(
  connectNodeAdapter({ routes: (router) => router.service(SessionsService, impl as unknown as ServiceImpl<typeof SessionsService>) }),
);
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
