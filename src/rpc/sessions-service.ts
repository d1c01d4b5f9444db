import { create, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Authorizer } from "./api-keys.js";
import { requestHeaderValue, setResponseHeaderValue } from "./context-headers.js";
import type { SessionController } from "../session/session-controller.js";
import {
  CloseExpiredSessionsResponseSchema,
  CloseSessionResponseSchema,
  CloseSessionsResponseSchema,
  CloseUserSessionsResponseSchema,
  DeleteSessionByIdResponseSchema,
  GetSessionByIdResponseSchema,
  GetSessionsResponseSchema,
  OpenSessionResponseSchema,
  SessionsService,
  StoreSessionDataResponseSchema,
  UpdateSessionUserResponseSchema,
  ValidateSessionResponseSchema,
} from "../../gen/sessions/v1/sessions_pb.js";
import {
  durationToMs,
  eventBatchToProto,
  eventTypesFromProto,
  filterFromProto,
  sessionToProto,
  valueToJson,
  versionToNumber,
} from "./convert.js";
import { toConnectError } from "./status.js";

/**
 * The one implementation of SessionsService, served by both listeners. Each
 * handler decodes the request into domain terms, calls the controller, and
 * encodes the result; errors become status codes, and calls are logged, in
 * `instrumented`.
 */
export interface SessionsServiceOptions {
  readonly logger: Logger;
  readonly metrics?: Pick<Metrics, "observeCall">;
  /** Checks API keys before every call; absent, the service is open. */
  readonly authorize?: Authorizer | undefined;
}

export function createSessionsService(
  controller: SessionController,
  options: SessionsServiceOptions,
): ServiceImpl<typeof SessionsService> {
  const impl: ServiceImpl<typeof SessionsService> = {
    async openSession(req) {
      const idleTimeoutMs = durationToMs("idle_timeout", req.idleTimeout);
      const absoluteTimeoutMs = durationToMs("absolute_timeout", req.absoluteTimeout);
      const opened = await controller.openSession({
        userId: req.userId,
        userName: req.userName,
        address: req.address,
        client: req.client,
        user: valueToJson("user", req.user) ?? null,
        data: valueToJson("data", req.data) ?? null,
        ...(idleTimeoutMs !== undefined && { idleTimeoutMs }),
        ...(absoluteTimeoutMs !== undefined && { absoluteTimeoutMs }),
      });
      return create(OpenSessionResponseSchema, {
        session: sessionToProto(opened.session),
        token: opened.token,
        evictedSessionIds: [...opened.evictedIds],
      });
    },

    async validateSession(req) {
      const validated = await controller.validateSession({
        token: req.token,
        address: req.address,
        client: req.client,
        includeData: req.includeData,
      });
      return create(ValidateSessionResponseSchema, {
        session: sessionToProto(validated.session),
        newToken: validated.newToken ?? "",
      });
    },

    async getSessionById(req) {
      const session = await controller.getSessionById(req.id);
      return create(GetSessionByIdResponseSchema, { session: sessionToProto(session) });
    },

    async getSessions(req) {
      const page = await controller.getSessions({
        filter: filterFromProto(req.filter),
        skip: req.skip,
        take: req.take,
        includeTotal: req.total,
        includeData: req.includeData,
      });
      const response = create(GetSessionsResponseSchema, {
        sessions: page.items.map(sessionToProto),
      });
      if (page.total !== undefined) response.total = page.total;
      return response;
    },

    async storeSessionData(req) {
      const session = await controller.storeSessionData(
        req.id,
        valueToJson("data", req.data),
        versionToNumber("expected_version", req.expectedVersion),
      );
      return create(StoreSessionDataResponseSchema, { session: sessionToProto(session) });
    },

    async updateSessionUser(req) {
      const session = await controller.updateSessionUser(
        req.id,
        valueToJson("user", req.user),
        versionToNumber("expected_version", req.expectedVersion),
      );
      return create(UpdateSessionUserResponseSchema, { session: sessionToProto(session) });
    },

    async closeSession(req) {
      const session = await controller.closeSession(req.id);
      return create(CloseSessionResponseSchema, { session: sessionToProto(session) });
    },

    async closeExpiredSessions() {
      const closedCount = await controller.closeExpiredSessions();
      return create(CloseExpiredSessionsResponseSchema, { closedCount });
    },

    async deleteSessionById(req) {
      const session = await controller.deleteSessionById(req.id);
      return create(DeleteSessionByIdResponseSchema, { session: sessionToProto(session) });
    },

    async closeUserSessions(req) {
      const closedCount = await controller.closeUserSessions(req.userId, req.exceptSessionId);
      return create(CloseUserSessionsResponseSchema, { closedCount });
    },

    async closeSessions(req) {
      const closedCount = await controller.closeSessions(filterFromProto(req.filter), req.dryRun);
      return create(CloseSessionsResponseSchema, { closedCount });
    },

    async *watchSessionEvents(req, context) {
      const batches = controller.watchSessionEvents(
        {
          afterCursor: req.afterCursor,
          fromOldest: req.fromOldest,
          userId: req.userId,
          types: eventTypesFromProto(req.types),
        },
        context.signal,
      );
      for await (const batch of batches) yield eventBatchToProto(batch);
    },
  };
  return instrumented(SessionsService, impl, options);
}

type UnaryHandler = (request: unknown, context: HandlerContext) => Promise<unknown>;
type StreamHandler = (request: unknown, context: HandlerContext) => AsyncIterable<unknown>;

/** Requests may carry a correlation id in one of these headers; responses echo it in the first. */
const CORRELATION_HEADERS = ["x-request-id", "x-correlation-id"] as const;
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's correlation id if it looks like one, else a new one. */
function correlationIdOf(context: HandlerContext): string {
  for (const header of CORRELATION_HEADERS) {
    const value = requestHeaderValue(context, header);
    if (value !== null && CORRELATION_ID.test(value)) return value;
  }
  return randomUUID();
}

/** Connect has no Code for success; gRPC's OK is 0. */
const OK = 0 as Code;

/** Connect's code name in gRPC's spelling: InvalidArgument → INVALID_ARGUMENT, Canceled → CANCELLED. */
const codeName = (code: Code) =>
  code === Code.Canceled ? "CANCELLED" : Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();

/**
 * A call whose deadline has already passed when it reaches its handler is not
 * carried out: its client has stopped waiting and would see DEADLINE_EXCEEDED
 * for a change that was made all the same.
 */
function refuseIfPastDeadline(context: HandlerContext): void {
  const left = context.timeoutMs();
  if (left !== undefined && left <= 0) {
    throw new ConnectError("the deadline passed before the call started; nothing was done", Code.DeadlineExceeded);
  }
}

/**
 * Wraps every handler of `impl` (unary or server-streaming): whatever it
 * throws reaches the transport as a ConnectError with the right code (see
 * toConnectError), and each call is logged once, when it ends, with its
 * procedure, status code, duration and correlation id (never its request or
 * response, which may hold secrets); a stream's log also counts the messages
 * it sent. API keys, when configured, are checked first, then the deadline.
 */
function instrumented<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  { logger, metrics, authorize }: SessionsServiceOptions,
): ServiceImpl<S> {
  const handlers = impl as unknown as Record<string, UnaryHandler | StreamHandler>;
  const wrapped: Record<string, UnaryHandler | StreamHandler> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: only unary and server-streaming methods are supported`);
    }
    const handler = handlers[method.localName];
    if (handler === undefined) {
      throw new Error(`${service.typeName}.${method.name} is not implemented`);
    }
    const procedure = `/${service.typeName}/${method.name}`;
    /** Starts a call's bookkeeping; the function it returns logs and counts its end. */
    const begin = (context: HandlerContext) => {
      const started = performance.now();
      const correlationId = correlationIdOf(context);
      setResponseHeaderValue(context, CORRELATION_HEADERS[0], correlationId);
      const done = (code: Code, messages?: number) => {
        const ms = performance.now() - started;
        const name = code === OK ? "OK" : codeName(code);
        metrics?.observeCall(procedure, name, ms / 1000);
        logger.info("rpc", {
          procedure,
          code: name,
          durationMs: Math.round(ms * 1000) / 1000,
          correlationId,
          protocol: context.protocolName,
          ...(messages !== undefined && { messages }),
        });
      };
      return { correlationId, done };
    };

    if (method.methodKind === "server_streaming") {
      wrapped[method.localName] = async function* (request, context) {
        const { correlationId, done } = begin(context);
        let messages = 0;
        let code: Code | undefined;
        try {
          authorize?.(method.name, requestHeaderValue(context, "authorization"));
          refuseIfPastDeadline(context);
          for await (const response of (handler as StreamHandler).call(impl, request, context)) {
            messages++;
            yield response;
          }
          code = OK;
        } catch (error) {
          // The client went away, or its deadline passed, while the stream waited.
          if (context.signal.aborted) {
            code = ConnectError.from(context.signal.reason, Code.Canceled).code;
            throw error;
          }
          const connectError = toConnectError(error, procedure, logger, correlationId);
          code = connectError.code;
          throw connectError;
        } finally {
          // Neither returned nor thrown: the transport stopped reading, the client went away.
          done(code ?? Code.Canceled, messages);
        }
      };
      continue;
    }
    wrapped[method.localName] = async (request, context) => {
      const { correlationId, done } = begin(context);
      try {
        authorize?.(method.name, requestHeaderValue(context, "authorization"));
        refuseIfPastDeadline(context);
        const response = await (handler as UnaryHandler).call(impl, request, context);
        done(OK);
        return response;
      } catch (error) {
        const connectError = toConnectError(error, procedure, logger, correlationId);
        done(connectError.code);
        throw connectError;
      }
    };
  }
  return wrapped as unknown as ServiceImpl<S>;
}
