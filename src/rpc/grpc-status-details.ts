import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { ConnectError } from "@connectrpc/connect";

/** The trailer that carries a google.rpc.Status with error details. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/**
 * Encodes an error as google.rpc.Status (code 1, message 2, repeated
 * google.protobuf.Any details 3), the gRPC convention for rich errors.
 * Undefined when the error has no details: the trailer is then left out.
 */
export function encodeStatusDetails(error: ConnectError): Buffer | undefined {
  if (error.details.length === 0) return undefined;
  const status = new BinaryWriter()
    .tag(1, WireType.Varint)
    .int32(error.code)
    .tag(2, WireType.LengthDelimited)
    .string(error.rawMessage);
  for (const detail of error.details) {
    const [typeName, value] =
      "desc" in detail
        ? [detail.desc.typeName, toBinary(detail.desc, create(detail.desc, detail.value))]
        : [detail.type, detail.value];
    const any = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .string(`type.googleapis.com/${typeName}`)
      .tag(2, WireType.LengthDelimited)
      .bytes(value)
      .finish();
    status.tag(3, WireType.LengthDelimited).bytes(any);
  }
  const bytes = status.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
