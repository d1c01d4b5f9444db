import type { Config } from "./config.js";
import { describeError, type Logger } from "./logger.js";
import { createConnectHandler } from "./rpc/connect-handler.js";
import { createGrpcService } from "./rpc/grpc-service.js";
import { createSessionsService } from "./rpc/sessions-service.js";
import { startGrpcServer, type RunningServer } from "./server/grpc-server.js";
import { startHttpServer } from "./server/http-server.js";
import { systemClock, type Clock } from "./session/clock.js";
import { startSweeper, type Sweeper } from "./session/sweeper.js";
import { createSessionController } from "./session/session-controller.js";
import { createTokenHasher } from "./session/session-token.js";
import { createSqliteSessionStore } from "./sqlite/sqlite-session-store.js";
import { SessionsService } from "../gen/sessions/v1/sessions_pb.js";

export interface AppDependencies {
  readonly logger: Logger;
  /** Defaults to the system clock; tests inject a fake one. */
  readonly clock?: Clock;
}

export interface App {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Stops both listeners (in-flight calls get the configured grace), then the store. */
  stop(): Promise<void>;
}

/**
 * The composition root: builds the store, the controller and the one service
 * implementation, and serves it on the gRPC port and the HTTP port.
 */
export async function startApp(config: Config, deps: AppDependencies): Promise<App> {
  const { logger } = deps;
  const store = createSqliteSessionStore({ path: config.dbPath, synchronous: config.dbSynchronous });
  const controller = createSessionController({
    store,
    clock: deps.clock ?? systemClock,
    policy: config.sessions,
    hasher: createTokenHasher(config.tokenPepper),
  });
  const service = createSessionsService(controller, logger);

  const servers: RunningServer[] = [];
  let sweeper: Sweeper | undefined;
  const stop = async () => {
    await sweeper?.stop();
    await Promise.all(servers.map((server) => server.close(config.shutdownGraceMs)));
    await store.dispose();
  };

  try {
    const grpc = await startGrpcServer({
      host: config.host,
      port: config.grpcPort,
      services: [
        createGrpcService(SessionsService, service, (error, procedure) =>
          logger.error("failed to send a response", { procedure, ...describeError(error) }),
        ),
      ],
      maxReceiveMessageBytes: config.maxReceiveMessageBytes,
    });
    servers.push(grpc);
    const http = await startHttpServer({
      host: config.host,
      port: config.httpPort,
      handler: createConnectHandler({ service, maxReceiveMessageBytes: config.maxReceiveMessageBytes }),
    });
    servers.push(http);
    if (config.sweepIntervalMs > 0) {
      sweeper = startSweeper({
        sweep: async () => ({
          closed: await controller.closeExpiredSessions(),
          purged: await controller.purgeClosedSessions(config.retentionMs),
        }),
        intervalMs: config.sweepIntervalMs,
        onSwept: ({ closed, purged }) => {
          if (closed > 0 || purged > 0) logger.info("swept sessions", { closed, purged });
        },
        onError: (error) => logger.error("sweep failed", describeError(error)),
      });
    }
    return { grpcPort: grpc.port, httpPort: http.port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
