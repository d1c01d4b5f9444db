import {
  create,
  fromBinary,
  toBinary,
  type DescFile,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionRequestSchema as V1AlphaRequestSchema,
  ServerReflectionResponseSchema as V1AlphaResponseSchema,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** gRPC status codes used in reflection's in-band error responses. */
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** The files reflection can show, indexed by file name and by every symbol they define. */
interface Index {
  readonly files: ReadonlyMap<string, DescFile>;
  /** Fully-qualified names of messages, enums, services, methods, fields, extensions. */
  readonly symbols: ReadonlyMap<string, DescFile>;
  /** "extendee.typeName:number" of every extension. */
  readonly extensions: ReadonlyMap<string, DescFile>;
  readonly extensionNumbers: ReadonlyMap<string, number[]>;
}

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) over the file
 * descriptors that protoc-gen-es embeds in the generated code: the real file
 * names, full dependency lists and the well-known types, so grpcurl and buf
 * curl can list, describe and call every service without proto files.
 */
export function createReflectionServices(services: readonly DescService[]) {
  const index = buildIndex(services);
  const serviceNames = services.map((service) => service.typeName);

  async function* serverReflectionInfo(requests: AsyncIterable<ServerReflectionRequest>) {
    const sent = new Set<string>();
    for await (const request of requests) {
      yield answer(index, serviceNames, request, sent);
    }
  }

  const v1: ServiceImpl<typeof ServerReflection> = { serverReflectionInfo };
  // v1alpha has the same messages under another package: convert through the wire format.
  const v1alpha: ServiceImpl<typeof ServerReflectionV1Alpha> = {
    async *serverReflectionInfo(requests) {
      const asV1 = (async function* () {
        for await (const request of requests) {
          yield fromBinary(ServerReflectionRequestSchema, toBinary(V1AlphaRequestSchema, request));
        }
      })();
      for await (const response of serverReflectionInfo(asV1)) {
        yield fromBinary(V1AlphaResponseSchema, toBinary(ServerReflectionResponseSchema, response));
      }
    },
  };
  return { v1, v1alpha };
}

function answer(
  index: Index,
  serviceNames: readonly string[],
  request: ServerReflectionRequest,
  sent: Set<string>,
): ServerReflectionResponse {
  const base = { validHost: request.host, originalRequest: request };
  const files = (file: DescFile | undefined, what: string) =>
    file === undefined
      ? error(`${what} not found`, NOT_FOUND)
      : { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: withDependencies(file, sent) } };
  const error = (message: string, code: number) => ({
    case: "errorResponse" as const,
    value: { errorCode: code, errorMessage: message },
  });
  const { messageRequest: ask } = request;
  let messageResponse: MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"];
  switch (ask.case) {
    case "fileByFilename":
      messageResponse = files(index.files.get(ask.value), `file ${ask.value}`);
      break;
    case "fileContainingSymbol":
      messageResponse = files(index.symbols.get(ask.value), `symbol ${ask.value}`);
      break;
    case "fileContainingExtension":
      messageResponse = files(
        index.extensions.get(`${ask.value.containingType}:${ask.value.extensionNumber}`),
        `extension ${ask.value.extensionNumber} of ${ask.value.containingType}`,
      );
      break;
    case "allExtensionNumbersOfType":
      messageResponse = index.symbols.has(ask.value)
        ? {
            case: "allExtensionNumbersResponse",
            value: { baseTypeName: ask.value, extensionNumber: index.extensionNumbers.get(ask.value) ?? [] },
          }
        : error(`type ${ask.value} not found`, NOT_FOUND);
      break;
    case "listServices":
      messageResponse = { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      break;
    default:
      messageResponse = error("unsupported reflection request", INVALID_ARGUMENT);
  }
  return create(ServerReflectionResponseSchema, { ...base, messageResponse });
}

/**
 * The file, then each of its transitive dependencies not yet sent on this
 * stream, each as a serialized FileDescriptorProto.
 */
function withDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
  const out = [toBinary(FileDescriptorProtoSchema, file.proto)];
  sent.add(file.name);
  const visit = (dependency: DescFile) => {
    if (sent.has(dependency.name)) return;
    sent.add(dependency.name);
    out.push(toBinary(FileDescriptorProtoSchema, dependency.proto));
    dependency.dependencies.forEach(visit);
  };
  file.dependencies.forEach(visit);
  return out;
}

function buildIndex(services: readonly DescService[]): Index {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const extensions = new Map<string, DescFile>();
  const extensionNumbers = new Map<string, number[]>();
  const add = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const type of nestedTypes(file)) {
      symbols.set(type.typeName, file);
      if (type.kind === "service") {
        for (const method of type.methods) symbols.set(`${type.typeName}.${method.name}`, file);
      }
      if (type.kind === "message") {
        for (const field of type.fields) symbols.set(`${type.typeName}.${field.name}`, file);
      }
      if (type.kind === "extension") {
        extensions.set(`${type.extendee.typeName}:${type.number}`, file);
        extensionNumbers.set(type.extendee.typeName, [...(extensionNumbers.get(type.extendee.typeName) ?? []), type.number]);
      }
    }
    file.dependencies.forEach(add);
  };
  services.forEach((service) => add(service.file));
  return { files, symbols, extensions, extensionNumbers };
}
