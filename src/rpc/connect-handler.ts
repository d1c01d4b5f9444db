import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { SessionsService } from "../../gen/sessions/v1/sessions_pb.js";

export interface ConnectHandlerOptions {
  /** Registers every service the port serves. */
  readonly routes: (router: ConnectRouter) => void;
  /** Answers requests that are no RPC. */
  readonly fallback: NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;
  /** Largest request accepted, in bytes. */
  readonly maxReceiveMessageBytes: number;
}

/** The Connect routes of the HTTP port; tests mount the same ones in memory. */
export function sessionsRoutes(service: ServiceImpl<typeof SessionsService>) {
  return (router: ConnectRouter) => router.service(SessionsService, service);
}

/**
 * The HTTP port's request handler: the Connect protocol (JSON and binary),
 * gRPC-Web and gRPC, for the same service implementation as the gRPC port.
 */
export function createConnectHandler(
  options: ConnectHandlerOptions,
): ReturnType<typeof connectNodeAdapter> {
  return connectNodeAdapter({
    routes: options.routes,
    fallback: options.fallback,
    readMaxBytes: options.maxReceiveMessageBytes,
  });
}
