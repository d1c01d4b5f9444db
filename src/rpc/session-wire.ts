import { toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence as FieldPresence } from "@bufbuild/protobuf/wkt";
import { ValueSchema, type Duration, type Timestamp, type Value } from "@bufbuild/protobuf/wkt";
import { SessionSchema, type Session } from "../../gen/sessions/v1/sessions_pb.js";

/**
 * A hand-written protobuf encoder for `sessions.v1.Session`, the message in
 * almost every response. protobuf-es's reflective toBinary spent about 16 µs
 * per session (a page of 50 cost more than the rest of the call); this one
 * sizes the message, then writes it into one buffer, in the same field order,
 * so its output is byte for byte what toBinary writes (checked by tests).
 *
 * It knows Session's fields as the proto declares them today. If the
 * generated schema ever differs from what it knows (a field added, renumbered
 * or retyped), `SESSION_ENCODER_MATCHES` is false and every encoding falls
 * back to toBinary, so a proto change can make responses slower, never wrong.
 */
type Kind =
  | "string"
  | "bool"
  | "int64"
  | "enum"
  | "google.protobuf.Timestamp"
  | "google.protobuf.Duration"
  | "google.protobuf.Value";

const KNOWN_FIELDS: readonly (readonly [number, keyof Session & string, Kind])[] = [
  [1, "id", "string"],
  [2, "userId", "string"],
  [3, "userName", "string"],
  [4, "active", "bool"],
  [5, "openTime", "google.protobuf.Timestamp"],
  [6, "closeTime", "google.protobuf.Timestamp"],
  [7, "requestTime", "google.protobuf.Timestamp"],
  [8, "address", "string"],
  [9, "client", "string"],
  [10, "user", "google.protobuf.Value"],
  [11, "data", "google.protobuf.Value"],
  [12, "version", "int64"],
  [13, "expireTime", "google.protobuf.Timestamp"],
  [14, "closeReason", "enum"],
  [15, "idleTimeout", "google.protobuf.Duration"],
  [16, "absoluteTimeout", "google.protobuf.Duration"],
  [17, "lastAddress", "string"],
  [18, "lastClient", "string"],
];

const kindOf = (field: DescField): string => {
  if (field.fieldKind === "message") return field.message.typeName;
  if (field.fieldKind === "enum") return "enum";
  if (field.fieldKind === "scalar") return ["", "double", "float", "int64", "uint64", "int32", "", "", "bool", "string"][field.scalar] ?? "?";
  return field.fieldKind;
};

/** Whether the generated Session schema is exactly the one this encoder was written for. */
export const SESSION_ENCODER_MATCHES =
  SessionSchema.fields.length === KNOWN_FIELDS.length &&
  SessionSchema.fields.every((field, i) => {
    const [number, name, kind] = KNOWN_FIELDS[i]!;
    return (
      field.number === number &&
      field.localName === name &&
      kindOf(field) === kind &&
      field.fieldKind !== "list" &&
      field.oneof === undefined &&
      // proto3 implicit presence for scalars and enums (the encoder skips zero values), explicit for messages.
      field.presence === (field.fieldKind === "message" ? FieldPresence.EXPLICIT : FieldPresence.IMPLICIT)
    );
  });

// Tags: field number << 3 | wire type (0 varint, 2 length-delimited).
const tag = (number: number, wireType: 0 | 2) => (number << 3) | wireType;

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** An int64 as the varint protobuf writes: its two's complement, 10 bytes when negative. */
function int64Varint(value: bigint): bigint {
  return BigInt.asUintN(64, value);
}

function bigVarintSize(value: bigint): number {
  let size = 1;
  while (value >= 0x80n) {
    value >>= 7n;
    size++;
  }
  return size;
}

class Writer {
  private offset = 0;
  constructor(readonly buffer: Buffer) {}

  varint(value: number): void {
    while (value >= 0x80) {
      this.buffer[this.offset++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buffer[this.offset++] = value;
  }

  bigVarint(value: bigint): void {
    while (value >= 0x80n) {
      this.buffer[this.offset++] = Number(value & 0x7fn) | 0x80;
      value >>= 7n;
    }
    this.buffer[this.offset++] = Number(value);
  }

  string(value: string, bytes: number): void {
    this.varint(bytes);
    this.offset += this.buffer.write(value, this.offset, bytes, "utf8");
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.buffer.set(value, this.offset);
    this.offset += value.length;
  }

  get written(): number {
    return this.offset;
  }
}

/** Timestamp and Duration share their shape: int64 seconds = 1, int32 nanos = 2. */
type SecondsNanos = Timestamp | Duration;

function secondsNanosSize(value: SecondsNanos): number {
  let size = 0;
  if (value.seconds !== 0n) size += 1 + bigVarintSize(int64Varint(value.seconds));
  // int32: a negative value is sign-extended to 10 bytes.
  if (value.nanos !== 0) size += 1 + (value.nanos < 0 ? 10 : varintSize(value.nanos));
  return size;
}

function writeSecondsNanos(writer: Writer, value: SecondsNanos): void {
  if (value.seconds !== 0n) {
    writer.varint(tag(1, 0));
    writer.bigVarint(int64Varint(value.seconds));
  }
  if (value.nanos !== 0) {
    writer.varint(tag(2, 0));
    if (value.nanos < 0) writer.bigVarint(int64Varint(BigInt(value.nanos)));
    else writer.varint(value.nanos);
  }
}

/** An enum or int32 as a varint: a negative value is sign-extended to 10 bytes. */
const int32Size = (value: number) => (value < 0 ? 10 : varintSize(value));

/** Scalars are written as varints; strings and messages are length-delimited. */
const isVarint = (kind: Kind) => kind === "bool" || kind === "int64" || kind === "enum";

/** The wire bytes of a Session, as toBinary(SessionSchema, session) writes them. */
export function encodeSession(session: Session): Uint8Array {
  if (!SESSION_ENCODER_MATCHES || (session.$unknown !== undefined && session.$unknown.length > 0)) {
    return toBinary(SessionSchema, session);
  }
  // Sizes first, field by field: every length prefix must be known before
  // its bytes are written. -1: not written (a proto3 zero value, an unset message).
  const payloads = new Array<number>(KNOWN_FIELDS.length);
  const values = new Array<Uint8Array | undefined>(KNOWN_FIELDS.length);
  let size = 0;
  KNOWN_FIELDS.forEach(([number, name, kind], i) => {
    const value = session[name];
    let payload = -1;
    if (kind === "string") {
      if (value !== "") payload = Buffer.byteLength(value as string, "utf8");
    } else if (kind === "bool") {
      if (value === true) payload = 1;
    } else if (kind === "int64") {
      if (value !== 0n) payload = bigVarintSize(int64Varint(value as bigint));
    } else if (kind === "enum") {
      if (value !== 0) payload = int32Size(value as number);
    } else if (value !== undefined) {
      if (kind === "google.protobuf.Value") {
        values[i] = toBinary(ValueSchema, value as Value);
        payload = values[i]!.length;
      } else {
        payload = secondsNanosSize(value as SecondsNanos);
      }
    }
    payloads[i] = payload;
    if (payload >= 0) size += varintSize(tag(number, 0)) + (isVarint(kind) ? 0 : varintSize(payload)) + payload;
  });

  const writer = new Writer(Buffer.allocUnsafe(size));
  KNOWN_FIELDS.forEach(([number, name, kind], i) => {
    const payload = payloads[i]!;
    if (payload < 0) return;
    const value = session[name];
    if (isVarint(kind)) {
      writer.varint(tag(number, 0));
      if (kind === "bool") writer.varint(1);
      else if (kind === "int64") writer.bigVarint(int64Varint(value as bigint));
      else if ((value as number) < 0) writer.bigVarint(int64Varint(BigInt(value as number)));
      else writer.varint(value as number);
      return;
    }
    writer.varint(tag(number, 2));
    if (kind === "string") writer.string(value as string, payload);
    else if (kind === "google.protobuf.Value") writer.bytes(values[i]!);
    else {
      writer.varint(payload);
      writeSecondsNanos(writer, value as SecondsNanos);
    }
  });
  if (writer.written !== size) throw new Error(`encodeSession wrote ${writer.written} bytes of ${size}`);
  return writer.buffer;
}

/**
 * A binary encoder for any message: toBinary, except that fields holding a
 * Session (singular or repeated) are written by encodeSession, after the
 * message's other fields. Protobuf parsers accept fields in any order, so
 * the bytes decode to the same message.
 */
export function createBinaryEncoder(schema: DescMessage): (message: object) => Uint8Array {
  const sessionFields = schema.fields.filter(
    (field) => (field.fieldKind === "message" || field.fieldKind === "list") && field.message?.typeName === SessionSchema.typeName,
  );
  if (sessionFields.length === 0 || !SESSION_ENCODER_MATCHES) return (message) => toBinary(schema, message as never);
  return (message) => {
    const record = message as Record<string, unknown>;
    const rest: Record<string, unknown> = { ...record };
    const parts: Uint8Array[] = [];
    let size = 0;
    for (const field of sessionFields) {
      const value = record[field.localName];
      const sessions = (field.fieldKind === "list" ? value : value === undefined ? [] : [value]) as Session[];
      rest[field.localName] = field.fieldKind === "list" ? [] : undefined;
      const fieldTag = tag(field.number, 2);
      for (const session of sessions) {
        const bytes = encodeSession(session);
        const header = Buffer.allocUnsafe(varintSize(fieldTag) + varintSize(bytes.length));
        const writer = new Writer(header);
        writer.varint(fieldTag);
        writer.varint(bytes.length);
        parts.push(header, bytes);
        size += header.length + bytes.length;
      }
    }
    const head = toBinary(schema, rest as never);
    return Buffer.concat([head, ...parts], head.length + size);
  };
}
