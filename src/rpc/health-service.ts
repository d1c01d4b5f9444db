import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { HealthState, ServingStatus } from "../health.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as WireStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";

const WIRE: Record<ServingStatus, WireStatus> = {
  serving: WireStatus.SERVING,
  not_serving: WireStatus.NOT_SERVING,
};

/**
 * grpc.health.v1.Health over the shared health state: Check answers NOT_FOUND
 * for an unknown service, Watch sends SERVICE_UNKNOWN for one (as the
 * protocol asks) and then every change, until the client goes or the server
 * closes the state.
 */
export function createHealthService(state: HealthState): ServiceImpl<typeof Health> {
  return {
    check(request) {
      const status = state.get(request.service);
      if (status === undefined) {
        throw new ConnectError(`unknown service ${JSON.stringify(request.service)}`, Code.NotFound);
      }
      return create(HealthCheckResponseSchema, { status: WIRE[status] });
    },
    watch(request, context) {
      return watchStatus(state, request.service, context);
    },
    list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const [service, status] of state.all()) {
        statuses[service] = create(HealthCheckResponseSchema, { status: WIRE[status] });
      }
      return create(HealthListResponseSchema, { statuses });
    },
  };
}

async function* watchStatus(
  state: HealthState,
  service: string,
  context: HandlerContext,
): AsyncGenerator<HealthCheckResponse> {
  const pending: WireStatus[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  const unwatch = state.watch(
    service,
    (status) => {
      pending.push(status === undefined ? WireStatus.SERVICE_UNKNOWN : WIRE[status]);
      wake?.();
    },
    () => {
      closed = true;
      wake?.();
    },
  );
  const onAbort = () => {
    closed = true;
    wake?.();
  };
  context.signal.addEventListener("abort", onAbort);
  try {
    for (;;) {
      const status = pending.shift();
      if (status !== undefined) {
        yield create(HealthCheckResponseSchema, { status });
        continue;
      }
      if (closed) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    unwatch();
    context.signal.removeEventListener("abort", onAbort);
  }
}
