import {
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";

/** Certificate and key (PEM) to serve TLS, and the CA whose client certificates are required (mTLS). */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When set, every client must present a certificate signed by this CA. */
  readonly clientCa?: Buffer;
}

export interface GrpcServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly services: readonly {
    readonly definition: ServiceDefinition;
    readonly implementation: UntypedServiceImplementation;
  }[];
  /** Largest request accepted, in bytes. */
  readonly maxReceiveMessageBytes: number;
  /** TLS (and mTLS) instead of plaintext. */
  readonly tls?: TlsFiles | undefined;
}

export interface RunningServer {
  /** The port actually bound. */
  readonly port: number;
  /**
   * Stops accepting calls, lets calls in flight finish for up to `graceMs`,
   * then cancels whatever is left.
   */
  close(graceMs: number): Promise<void>;
}

/** Starts the gRPC listener (HTTP/2; TLS or plaintext) on @grpc/grpc-js. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const server = new Server({
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes,
  });
  for (const service of options.services) {
    server.addService(service.definition, service.implementation);
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${formatHost(options.host)}:${options.port}`,
      options.tls === undefined
        ? ServerCredentials.createInsecure()
        : ServerCredentials.createSsl(
            options.tls.clientCa ?? null,
            [{ cert_chain: options.tls.cert, private_key: options.tls.key }],
            options.tls.clientCa !== undefined,
          ),
      (error, boundPort) => (error ? reject(error) : resolve(boundPort)),
    );
  });
  return {
    port,
    close(graceMs) {
      return new Promise<void>((resolve) => {
        // After the grace, force it. grpc-js never calls tryShutdown back while a
        // connection that never sent the HTTP/2 preface (a TCP health check, a
        // port scan) is open, so resolve on forcing rather than wait for that.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** IPv6 literals need brackets in a host:port string. */
export function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
