import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";

/** A Connect Transport over @grpc/grpc-js, for the gRPC port; close() releases its channel. */
export interface GrpcJsTransport extends Transport {
  close(): void;
}

/**
 * Serves Connect's typed clients over grpc-js: unary and server-streaming
 * methods, metadata both ways, deadlines, cancellation, and errors with their
 * status details (grpc-status-details-bin) as ConnectErrors.
 */
export function createGrpcJsTransport(
  address: string,
  credentials: grpc.ChannelCredentials,
  channelOptions: grpc.ChannelOptions = {},
): GrpcJsTransport {
  const client = new grpc.Client(address, credentials, channelOptions);
  /** Calls in progress: closing the channel does not end them, close() does. */
  const calls = new Set<grpc.ClientUnaryCall | grpc.ClientReadableStream<unknown>>();
  const pathOf = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;
  // As in Connect, a timeout of 0 or less means none.
  const callOptions = (timeoutMs: number | undefined): grpc.CallOptions =>
    timeoutMs === undefined || timeoutMs <= 0 ? {} : { deadline: Date.now() + timeoutMs };

  /**
   * Follows a call until it ends: cancels it if `signal` aborts or the
   * transport closes, and fills in its response headers and trailers as they
   * come. `release` drops the abort listener once the caller is done.
   */
  const track = (call: grpc.ClientUnaryCall | grpc.ClientReadableStream<unknown>, signal: AbortSignal | undefined) => {
    const header = new Headers();
    const trailer = new Headers();
    const cancel = () => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    calls.add(call);
    call.on("metadata", (metadata: grpc.Metadata) => toHeaders(metadata).forEach((value, key) => header.append(key, value)));
    call.on("status", (status: grpc.StatusObject) => {
      calls.delete(call);
      toHeaders(status.metadata).forEach((value, key) => trailer.append(key, value));
    });
    const release = () => {
      signal?.removeEventListener("abort", cancel);
      calls.delete(call);
    };
    return { header, trailer, release };
  };

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(ConnectError.from(signal.reason, Code.Canceled));
        const call = client.makeUnaryRequest(
          pathOf(method),
          serializer(method.input),
          deserializer(method.output),
          create(method.input, input),
          toMetadata(header),
          callOptions(timeoutMs),
          (error: grpc.ServiceError | null, message?: MessageShape<O>) => {
            tracked.release();
            if (error !== null || message === undefined) return reject(toConnectError(error));
            resolve({ stream: false, service: method.parent, method, header: tracked.header, message, trailer: tracked.trailer });
          },
        );
        const tracked = track(call, signal);
      });
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError(`${method.name}: only server streaming is supported`, Code.Unimplemented);
      }
      let request: MessageInitShape<I> | undefined;
      for await (const message of input) request = message;
      if (signal?.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
      const call = client.makeServerStreamRequest(
        pathOf(method),
        serializer(method.input),
        deserializer(method.output),
        create(method.input, request),
        toMetadata(header),
        callOptions(timeoutMs),
      );
      const tracked = track(call, signal);
      async function* messages(): AsyncGenerator<MessageShape<O>> {
        try {
          for await (const message of call) yield message as MessageShape<O>;
        } catch (error) {
          if (signal?.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
          throw toConnectError(error as grpc.ServiceError);
        } finally {
          tracked.release();
          call.cancel();
        }
      }
      return { stream: true, service: method.parent, method, header: tracked.header, message: messages(), trailer: tracked.trailer };
    },

    close() {
      calls.forEach((call) => call.cancel());
      client.close();
    },
  };
}

function serializer(schema: DescMessage) {
  return (message: unknown) => Buffer.from(toBinary(schema, message as never));
}

function deserializer<S extends DescMessage>(schema: S) {
  return (bytes: Buffer): MessageShape<S> => fromBinary(schema, bytes);
}

/** Headers as gRPC metadata; binary (-bin) values travel base64-encoded in Headers, as in Connect. */
function toMetadata(header: ConstructorParameters<typeof Headers>[0]): grpc.Metadata {
  const metadata = new grpc.Metadata();
  new Headers(header).forEach((value, key) => {
    if (!key.endsWith("-bin")) return metadata.add(key, value);
    // Headers joins repeated values with ", "; base64 has no commas.
    for (const item of value.split(/,\s*/)) metadata.add(key, Buffer.from(item, "base64"));
  });
  return metadata;
}

function toHeaders(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const key of Object.keys(metadata.getMap())) {
    for (const value of metadata.get(key)) {
      headers.append(key, typeof value === "string" ? value : value.toString("base64"));
    }
  }
  return headers;
}

const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** A grpc-js error as a ConnectError, with the details of its google.rpc.Status. */
function toConnectError(error: grpc.ServiceError | null): ConnectError {
  if (error === null) return new ConnectError("no response", Code.Internal);
  const connectError = new ConnectError(error.details, error.code as number as Code, toHeaders(error.metadata ?? new grpc.Metadata()), [], error);
  const [bin] = error.metadata?.get(STATUS_DETAILS_KEY) ?? [];
  // Incoming details, as Connect's own gRPC transport keeps them: type name and bytes.
  if (bin instanceof Buffer) connectError.details = statusDetails(bin);
  return connectError;
}

/** The details (google.protobuf.Any, field 3) of an encoded google.rpc.Status. */
function statusDetails(bytes: Uint8Array): { type: string; value: Uint8Array }[] {
  const details: { type: string; value: Uint8Array }[] = [];
  const status = new BinaryReader(bytes);
  while (status.pos < status.len) {
    const [field, wireType] = status.tag();
    if (field !== 3) {
      status.skip(wireType);
      continue;
    }
    const any = new BinaryReader(status.bytes());
    let typeUrl = "";
    let value: Uint8Array = new Uint8Array();
    while (any.pos < any.len) {
      const [anyField, anyWire] = any.tag();
      if (anyField === 1) typeUrl = any.string();
      else if (anyField === 2) value = any.bytes();
      else any.skip(anyWire);
    }
    details.push({ type: typeUrl.slice(typeUrl.lastIndexOf("/") + 1), value });
  }
  return details;
}
