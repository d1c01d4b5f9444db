import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { createGrpcService, type GrpcService } from "./grpc-service.js";

/** One service implementation, ready to be served on both ports. */
export interface ServedService {
  readonly service: DescService;
  /** Registers it with the HTTP port's Connect router. */
  route(router: ConnectRouter): void;
  /** Its grpc-js form for the gRPC port. */
  grpc(onError: (error: unknown, procedure: string) => void): GrpcService;
}

export function served<S extends DescService>(service: S, impl: ServiceImpl<S>): ServedService {
  return {
    service,
    route: (router) => router.service(service, impl),
    grpc: (onError) => createGrpcService(service, impl, onError),
  };
}
