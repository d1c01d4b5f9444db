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
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { EventEmitter } from "node:events";

import type { HeaderShortcuts } from "./context-headers.js";
import { encodeStatusDetails, STATUS_DETAILS_KEY } from "./grpc-status-details.js";
import { createBinaryEncoder } from "./session-wire.js";

/** What `grpc.Server.addService` takes. */
export interface GrpcService {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

type Handler = (request: unknown, context: HandlerContext) => unknown;

/**
 * Serves a Connect `ServiceImpl` on @grpc/grpc-js. Method paths and
 * (de)serializers come from the generated descriptor, so a new RPC in the
 * proto needs no code here. Unary, server-streaming and bidi-streaming
 * methods are served; client streaming is refused at start-up.
 */
export function createGrpcService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  /** Told of an unexpected error (sent to the caller as INTERNAL), or a failure to send a response. */
  onError: (error: unknown, procedure: string) => void,
): GrpcService {
  const definition: Record<string, ServiceDefinition[string]> = {};
  const implementation: UntypedServiceImplementation = {};
  const handlers = impl as unknown as Record<string, Handler>;
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (handler === undefined) {
      throw new Error(`${service.typeName}.${method.name} is not implemented`);
    }
    if (method.methodKind === "client_streaming") {
      throw new Error(`${service.typeName}.${method.name}: the grpc-js adapter does not serve client streaming`);
    }
    const procedure = `/${service.typeName}/${method.name}`;
    const streamingResponse = method.methodKind !== "unary";
    definition[method.localName] = {
      path: procedure,
      requestStream: method.methodKind === "bidi_streaming",
      responseStream: streamingResponse,
      originalName: method.name,
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
    const toMessage = (response: unknown) =>
      isMessage(response) ? response : create(method.output, response as never);
    const failed = (error: unknown) => {
      if (!(error instanceof ConnectError)) onError(error, procedure);
      return toServiceError(error);
    };

    if (method.methodKind === "unary") {
      implementation[method.localName] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const context = new GrpcHandlerContext(service, method, call);
        Promise.resolve()
          .then(() => handler.call(impl, call.request, context))
          .then(
            (response) => {
              context.sendHeaders(call);
              callback(null, toMessage(response));
            },
            (error: unknown) => {
              context.sendHeaders(call);
              callback(failed(error));
            },
          )
          .catch((error: unknown) => onError(error, procedure))
          .finally(() => context.done());
      };
      continue;
    }
    implementation[method.localName] = (
      call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
    ) => {
      const context = new GrpcHandlerContext(service, method, call);
      // A bidi handler reads the call itself, a Duplex of decoded messages. Its
      // default async iterator destroys the whole Duplex when the client
      // half-closes, which would lose the responses still to come and the status.
      const input =
        method.methodKind === "bidi_streaming"
          ? (call as ServerDuplexStream<unknown, unknown>).iterator({ destroyOnReturn: false })
          : (call as ServerWritableStream<unknown, unknown>).request;
      (async () => {
        const responses = handler.call(impl, input, context) as AsyncIterable<unknown>;
        // The call is an object-mode Writable whose buffer holds 16 messages
        // before write() says to wait, whatever their size. Waiting instead
        // for the previous message to reach HTTP/2 (which stops taking data
        // when the client's flow-control window is full) keeps at most two
        // messages of a slow client's stream in memory.
        let previous: Promise<void> | undefined;
        // Once the deadline has passed, grpc-js ends the call with DEADLINE_EXCEEDED
        // itself, and marks it cancelled only when that is done: a write or end()
        // meanwhile goes to an ended HTTP/2 stream, and the status never leaves.
        // Its timer may fire a little early, hence the margin.
        const tooLate = () => {
          const left = context.timeoutMs();
          return call.cancelled || (left !== undefined && left <= DEADLINE_MARGIN_MS);
        };
        for await (const response of responses) {
          if (tooLate()) return;
          context.sendHeaders(call);
          const written = writeMessage(call, toMessage(response), context.signal);
          // A failed write also shows as an error or cancellation of the call.
          written.catch(() => undefined);
          if (previous !== undefined) await previous;
          previous = written;
        }
        if (previous !== undefined) await previous;
        if (tooLate()) return;
        context.sendHeaders(call);
        call.end();
      })()
        .catch((error: unknown) => {
          if (!call.cancelled) call.emit("error", failed(error));
        })
        .finally(() => context.done());
    };
  }
  return { definition: definition as ServiceDefinition, implementation };
}

/** How close to its deadline a stream stops writing (see tooLate). */
const DEADLINE_MARGIN_MS = 20;

/**
 * Resolves once grpc-js has handed `message` to HTTP/2; rejects if the call
 * ends first (a cancelled call never calls back).
 */
function writeMessage(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  message: unknown,
  signal: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    call.write(message, (error: Error | null | undefined) => {
      signal.removeEventListener("abort", onAbort);
      if (error) reject(error);
      else resolve();
    });
  });
}

/** toBinary, except that Sessions are written by the hand-written encoder (session-wire.ts). */
function serializer(schema: DescMessage) {
  const encode = createBinaryEncoder(schema);
  return (message: unknown): Buffer => {
    const bytes = encode(message as object);
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer): unknown => fromBinary(schema, bytes);
}

/**
 * Connect and gRPC share status code numbers, so a ConnectError's code carries
 * over as is. Anything else is INTERNAL with a generic message.
 */
function toServiceError(error: unknown): Partial<ServiceError> {
  const connectError =
    error instanceof ConnectError ? error : new ConnectError("internal error", 13 /* INTERNAL */);
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
 * never asks costs no extra allocations; HeaderShortcuts reach the metadata
 * without a Headers copy. Response headers a handler sets are sent as initial
 * metadata; response trailers are not sent on this transport.
 */
class GrpcHandlerContext implements HandlerContext, HeaderShortcuts {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  private abortController: AbortController | undefined;
  private lazyRequestHeader: Headers | undefined;
  private lazyResponseHeader: Headers | undefined;
  private lazyResponseTrailer: Headers | undefined;
  private lazyValues: ContextValues | undefined;
  private responseMetadata: Metadata | undefined;
  private headersSent = false;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    private readonly call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  ) {}

  get url(): string {
    return this.call.getPath();
  }

  get signal(): AbortSignal {
    if (this.abortController === undefined) {
      const controller = new AbortController();
      this.abortController = controller;
      // grpc-js reports a passed deadline as a cancellation too.
      const reason = () =>
        this.timeoutMs() === 0
          ? new ConnectError("the deadline was exceeded", 4 /* DEADLINE_EXCEEDED */)
          : new ConnectError("the client cancelled the call", 1 /* CANCELLED */);
      if (this.call.cancelled) {
        controller.abort(reason());
      } else {
        (this.call as EventEmitter).once("cancelled", () => controller.abort(reason()));
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

  requestHeaderValue(name: string): string | null {
    if (this.lazyRequestHeader !== undefined) return this.lazyRequestHeader.get(name);
    const values = this.call.metadata.get(name).filter((value): value is string => typeof value === "string");
    return values.length === 0 ? null : values.join(", ");
  }

  setResponseHeaderValue(name: string, value: string): void {
    (this.responseMetadata ??= new Metadata()).set(name, value);
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

  /** Sends the response headers the handler set, once, before the first message or the status. */
  sendHeaders(call: { sendMetadata(metadata: Metadata): void }): void {
    if (this.headersSent || (this.lazyResponseHeader === undefined && this.responseMetadata === undefined)) return;
    this.headersSent = true;
    const metadata = this.responseMetadata ?? new Metadata();
    this.lazyResponseHeader?.forEach((value, key) => metadata.add(key, value));
    call.sendMetadata(metadata);
  }

  /** Called when the call has ended: a handler's downstream work is aborted. */
  done(): void {
    this.abortController?.abort(new ConnectError("the call has ended", 1));
  }
}
