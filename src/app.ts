import type { Config } from "./config.js";
import { createHealthState, WHOLE_SERVER } from "./health.js";
import { describeError, type Logger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { behindApiKeys, createAuthorizer } from "./rpc/api-keys.js";
import { createConnectHandler } from "./rpc/connect-handler.js";
import { createHealthService } from "./rpc/health-service.js";
import { createReflectionServices } from "./rpc/reflection-service.js";
import { served } from "./rpc/served-service.js";
import { createSessionsService } from "./rpc/sessions-service.js";
import { readFileSync } from "node:fs";
import { startGrpcServer, type RunningServer, type TlsFiles } from "./server/grpc-server.js";
import { createProbeHandler } from "./server/http-probes.js";
import { startHttpServer } from "./server/http-server.js";
import { systemClock, type Clock } from "./session/clock.js";
import { createSessionController, DEFAULT_EVENT_STREAMS } from "./session/session-controller.js";
import { createTokenHasher } from "./session/session-token.js";
import { startSweeper, type Sweeper } from "./session/sweeper.js";
import { openWhenPossible } from "./sqlite/opening-store.js";
import { createSqliteSessionStore, isTransientOpenError } from "./sqlite/sqlite-session-store.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
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
  // The metrics count the store's active sessions when scraped; the store reports to them.
  const metrics = createMetrics({
    countActiveSessions: () => store.countActive({}),
    countEventStreams: () => controller.eventStreams,
  });
  // A database that cannot be opened yet does not stop the server: it reports
  // NOT_SERVING, and the health check opens it once it can.
  const store = openWhenPossible(() =>
    createSqliteSessionStore({
      path: config.dbPath,
      synchronous: config.dbSynchronous,
      cacheMib: config.dbCacheMib,
      busyTimeoutMs: config.dbLockTimeoutMs,
      eventPollIntervalMs: config.eventPollIntervalMs,
      onCommitted: (events) => {
        for (const event of events) {
          if (event.type === "opened") metrics.observeOpen();
          else if (event.closeReason !== null) metrics.observeClose(event.closeReason, 1);
          metrics.observeEvent(event.type);
        }
      },
      onSqliteError: (code) => metrics.observeSqliteError(code),
    }),
    isTransientOpenError,
  );
  const controller = createSessionController({
    store,
    clock: deps.clock ?? systemClock,
    policy: config.sessions,
    hasher: createTokenHasher(config.tokenPepper),
    events: {
      ...DEFAULT_EVENT_STREAMS,
      heartbeatMs: config.eventHeartbeatMs,
      maxStreams: config.maxEventStreams,
    },
  });
  const health = createHealthState([SessionsService.typeName]);
  const reflection = createReflectionServices([SessionsService, Health, ServerReflection, ServerReflectionV1Alpha]);
  const authorize = createAuthorizer(config.apiKeys);
  const reflectionGuard = config.reflectionRequiresKey ? authorize : undefined;
  const services = [
    served(SessionsService, createSessionsService(controller, { logger, metrics, authorize })),
    served(Health, createHealthService(health)),
    served(
      ServerReflection,
      reflectionGuard ? behindApiKeys(ServerReflection, reflection.v1, reflectionGuard) : reflection.v1,
    ),
    served(
      ServerReflectionV1Alpha,
      reflectionGuard ? behindApiKeys(ServerReflectionV1Alpha, reflection.v1alpha, reflectionGuard) : reflection.v1alpha,
    ),
  ];
  const onError = (error: unknown, procedure: string) =>
    logger.error("internal error", { procedure, ...describeError(error) });

  const servers: RunningServer[] = [];
  const sweepers: Sweeper[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    // Tell load balancers and watchers first, then stop taking calls.
    health.setAll("not_serving");
    health.close();
    controller.stopEventStreams();
    controller.stopBulkWork();
    await Promise.all(sweepers.map((sweeper) => sweeper.stop()));
    await Promise.all(servers.map((server) => server.close(config.shutdownGraceMs)));
    await store.dispose();
  };

  try {
    const tls = readTlsFiles(config);
    const grpc = await startGrpcServer({
      tls,
      host: config.host,
      port: config.grpcPort,
      services: services.map((service) => service.grpc(onError)),
      maxReceiveMessageBytes: config.maxReceiveMessageBytes,
    });
    servers.push(grpc);
    const http = await startHttpServer({
      tls,
      host: config.host,
      port: config.httpPort,
      handler: createConnectHandler({
        routes: (router) => services.forEach((service) => service.route(router)),
        // The probes use only url, method, writeHead and end, alike on HTTP/1.1 and HTTP/2.
        fallback: createProbeHandler(() => health.get(WHOLE_SERVER) === "serving", () => metrics.render()) as Parameters<
          typeof createConnectHandler
        >[0]["fallback"],
        maxReceiveMessageBytes: config.maxReceiveMessageBytes,
        onResponseFailed: (procedure, error, clientGone) =>
          clientGone
            ? logger.debug("client went away before the response was written", { procedure })
            : logger.error("response failed", { procedure, ...describeError(error) }),
      }),
    });
    servers.push(http);
    if (config.sweepIntervalMs > 0) {
      sweepers.push(
        startSweeper({
          // Not while the database is unusable: the health check has said why, once.
          sweep: async () =>
            health.get(WHOLE_SERVER) !== "serving"
              ? { closed: 0, purged: 0, purgedEvents: 0 }
              : {
                  closed: await controller.closeExpiredSessions(),
                  purged: await controller.purgeClosedSessions(config.retentionMs),
                  purgedEvents: await controller.purgeEvents(config.eventRetentionMs),
                },
          intervalMs: config.sweepIntervalMs,
          onSwept: ({ closed, purged, purgedEvents }) => {
            metrics.observeSweep(closed, purged, purgedEvents);
            if (closed > 0 || purged > 0 || purgedEvents > 0) {
              logger.info("swept sessions", { closed, purged, purgedEvents });
            }
          },
          onError: (error) => logger.error("sweep failed", describeError(error)),
        }),
      );
    }
    // Serving while the database answers (and takes writes again after a
    // write failed for lack of space, a lock or I/O); NOT_SERVING (and not
    // ready) while it does not. A lasting problem is logged once.
    let problem: string | undefined;
    const probeDatabase = async () => {
      const failure = await store.ping().then(
        () => undefined,
        (error: unknown) => ({ error, message: error instanceof Error ? error.message : String(error) }),
      );
      if (failure?.message !== problem) {
        if (failure !== undefined) logger.error("database unusable", describeError(failure.error));
        else logger.info("database usable again");
        problem = failure?.message;
      }
      if (!stopping) health.setAll(failure === undefined ? "serving" : "not_serving");
    };
    await probeDatabase();
    sweepers.push(
      startSweeper({
        sweep: probeDatabase,
        intervalMs: config.healthCheckIntervalMs,
        onSwept: () => undefined,
        onError: (error) => logger.error("health check failed", describeError(error)),
      }),
    );
    return { grpcPort: grpc.port, httpPort: http.port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The TLS files the configuration names, read once at start-up; undefined for plaintext. */
function readTlsFiles(config: Config): TlsFiles | undefined {
  if (config.tlsCertFile === "") return undefined;
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  return {
    cert: read("certificate", config.tlsCertFile),
    key: read("key", config.tlsKeyFile),
    ...(config.tlsClientCaFile !== "" && { clientCa: read("client CA", config.tlsClientCaFile) }),
  };
}
