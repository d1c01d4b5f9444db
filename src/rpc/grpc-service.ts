import {
  create,
  fromBinary,
  isMessage,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
} from "@bufbuild/protobuf";
import {
  ConnectError,
  createContextValues,
  type ContextValues,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  Metadata,
  status as Status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";

import { encodeStatusDetails, STATUS_DETAILS_KEY } from "./grpc-status-details.js";

/** What `grpc.Server.addService` takes. */
export interface GrpcService {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

type UnaryHandler = (request: unknown, context: HandlerContext) => Promise<unknown> | unknown;

/**
 * Serves a Connect `ServiceImpl` on @grpc/grpc-js. Method paths and
 * (de)serializers come from the generated descriptor, so a new unary RPC in
 * the proto needs no code here.
 */
export function createGrpcService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  /** Told of a failure to send a response, which no caller would otherwise see. */
  onError: (error: unknown, procedure: string) => void,
): GrpcService {
  const definition: Record<string, ServiceDefinition[string]> = {};
  const implementation: UntypedServiceImplementation = {};
  const handlers = impl as unknown as Record<string, UnaryHandler>;
  for (const method of service.methods) {
    if (method.methodKind !== "unary") {
      throw new Error(`${service.typeName}.${method.name}: the grpc-js adapter serves unary methods only`);
    }
    const handler = handlers[method.localName];
    if (handler === undefined) {
      throw new Error(`${service.typeName}.${method.name} is not implemented`);
    }
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      originalName: method.name,
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
    implementation[method.localName] = (
      call: ServerUnaryCall<unknown, unknown>,
      callback: sendUnaryData<unknown>,
    ) => {
      const context = new GrpcHandlerContext(service, method, call);
      Promise.resolve()
        .then(() => handler.call(impl, call.request, context))
        .then(
          (response) =>
            callback(null, isMessage(response) ? response : create(method.output, response as never)),
          (error: unknown) => callback(toServiceError(error)),
        )
        .catch((error: unknown) => onError(error, `/${service.typeName}/${method.name}`))
        .finally(() => context.done());
    };
  }
  return { definition: definition as ServiceDefinition, implementation };
}

function serializer(schema: DescMessage) {
  return (message: unknown): Buffer => {
    const bytes = toBinary(schema, message as never);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer): unknown => fromBinary(schema, bytes);
}

/** Connect and gRPC share status code numbers, so the code carries over as is. */
function toServiceError(error: unknown): Partial<ServiceError> {
  const connectError = ConnectError.from(error);
  const metadata = new Metadata();
  connectError.metadata.forEach((value, key) => {
    // grpc-js wants binary (-bin) values as Buffers; Connect keeps them base64-encoded.
    metadata.add(key, key.endsWith("-bin") ? Buffer.from(value, "base64") : value);
  });
  const details = encodeStatusDetails(connectError);
  if (details !== undefined) metadata.set(STATUS_DETAILS_KEY, details);
  return { code: connectError.code as number as Status, details: connectError.rawMessage, metadata };
}

/**
 * HandlerContext for a grpc-js call. Everything a handler rarely uses (the
 * abort signal, headers, context values) is built on first use, so a call that
 * never asks costs no extra allocations. Response headers and trailers set by
 * a handler are not sent on this transport (no handler sets any today).
 */
class GrpcHandlerContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  private abortController: AbortController | undefined;
  private lazyRequestHeader: Headers | undefined;
  private lazyResponseHeader: Headers | undefined;
  private lazyResponseTrailer: Headers | undefined;
  private lazyValues: ContextValues | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    private readonly call: ServerUnaryCall<unknown, unknown>,
  ) {}

  get url(): string {
    return this.call.getPath();
  }

  get signal(): AbortSignal {
    if (this.abortController === undefined) {
      const controller = new AbortController();
      this.abortController = controller;
      if (this.call.cancelled) {
        controller.abort(new ConnectError("the client cancelled the call", 1));
      } else {
        this.call.once("cancelled", () =>
          controller.abort(new ConnectError("the client cancelled the call", 1)),
        );
      }
    }
    return this.abortController.signal;
  }

  readonly timeoutMs = (): number | undefined => {
    const deadline = this.call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
  };

  get requestHeader(): Headers {
    if (this.lazyRequestHeader === undefined) {
      const headers = new Headers();
      for (const [key, values] of Object.entries(this.call.metadata.getMap())) {
        if (typeof values === "string") headers.append(key, values);
      }
      this.lazyRequestHeader = headers;
    }
    return this.lazyRequestHeader;
  }

  get responseHeader(): Headers {
    return (this.lazyResponseHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.lazyResponseTrailer ??= new Headers());
  }

  get values(): ContextValues {
    return (this.lazyValues ??= createContextValues());
  }

  /** Called when the call has ended: a handler's downstream work is aborted. */
  done(): void {
    this.abortController?.abort(new ConnectError("the call has ended", 1));
  }
}
