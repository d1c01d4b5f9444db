import { create, type DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
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
  filterFromProto,
  sessionToProto,
  valueToJson,
  versionToNumber,
} from "./convert.js";
import { toConnectError } from "./status.js";

/**
 * The one implementation of SessionsService, served by both listeners. Each
 * handler decodes the request into domain terms, calls the controller, and
 * encodes the result; errors become status codes in `withStatusMapping`.
 */
export function createSessionsService(
  controller: SessionController,
  logger: Logger,
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
  };
  return withStatusMapping(SessionsService, impl, logger);
}

type UnaryHandler = (request: unknown, context: HandlerContext) => Promise<unknown>;

/**
 * Wraps every unary handler of `impl` so that whatever it throws reaches the
 * transport as a ConnectError with the right code (see toConnectError).
 */
function withStatusMapping<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  logger: Logger,
): ServiceImpl<S> {
  const handlers = impl as unknown as Record<string, UnaryHandler>;
  const wrapped: Record<string, UnaryHandler> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary") {
      throw new Error(`${service.typeName}.${method.name}: only unary methods are supported`);
    }
    const handler = handlers[method.localName];
    if (handler === undefined) {
      throw new Error(`${service.typeName}.${method.name} is not implemented`);
    }
    const procedure = `/${service.typeName}/${method.name}`;
    wrapped[method.localName] = async (request, context) => {
      try {
        return await handler.call(impl, request, context);
      } catch (error) {
        throw toConnectError(error, procedure, logger);
      }
    };
  }
  return wrapped as unknown as ServiceImpl<S>;
}
