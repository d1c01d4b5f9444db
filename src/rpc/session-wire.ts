import { toBinary, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence as FieldPresence } from "@bufbuild/protobuf/wkt";
import { ValueSchema, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
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
const KNOWN_FIELDS: readonly (readonly [number, string, string])[] = [
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

function writeSecondsNanos(writer: Writer, number: number, value: SecondsNanos, size: number): void {
  writer.varint(tag(number, 2));
  writer.varint(size);
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

const STRING_FIELDS = [
  [1, "id"],
  [2, "userId"],
  [3, "userName"],
] as const;
const STRING_FIELDS_2 = [
  [8, "address"],
  [9, "client"],
] as const;
const STRING_FIELDS_3 = [
  [17, "lastAddress"],
  [18, "lastClient"],
] as const;

/** The wire bytes of a Session, as toBinary(SessionSchema, session) writes them. */
export function encodeSession(session: Session): Uint8Array {
  if (!SESSION_ENCODER_MATCHES || (session.$unknown !== undefined && session.$unknown.length > 0)) {
    return toBinary(SessionSchema, session);
  }
  // Sizes first: every length prefix must be known before its bytes are written.
  const stringBytes = (value: string) => (value === "" ? 0 : Buffer.byteLength(value, "utf8"));
  const s1 = STRING_FIELDS.map(([, name]) => stringBytes(session[name]));
  const s2 = STRING_FIELDS_2.map(([, name]) => stringBytes(session[name]));
  const s3 = STRING_FIELDS_3.map(([, name]) => stringBytes(session[name]));
  const times = [session.openTime, session.closeTime, session.requestTime].map((t) => (t === undefined ? -1 : secondsNanosSize(t)));
  const expire = session.expireTime === undefined ? -1 : secondsNanosSize(session.expireTime);
  const idle = session.idleTimeout === undefined ? -1 : secondsNanosSize(session.idleTimeout);
  const absolute = session.absoluteTimeout === undefined ? -1 : secondsNanosSize(session.absoluteTimeout);
  const user = session.user === undefined ? undefined : toBinary(ValueSchema, session.user);
  const data = session.data === undefined ? undefined : toBinary(ValueSchema, session.data);
  const version = session.version === 0n ? undefined : int64Varint(session.version);
  const closeReason = session.closeReason as number;

  const field = (number: number, payload: number) => varintSize(tag(number, 2)) + varintSize(payload) + payload;
  let size = 0;
  for (const bytes of [...s1, ...s2, ...s3]) if (bytes > 0) size += 1 + varintSize(bytes) + bytes;
  if (session.active) size += 2;
  for (const t of times) if (t >= 0) size += field(5, t);
  if (user !== undefined) size += field(10, user.length);
  if (data !== undefined) size += field(11, data.length);
  if (version !== undefined) size += 1 + bigVarintSize(version);
  if (expire >= 0) size += field(13, expire);
  if (closeReason !== 0) size += 1 + (closeReason < 0 ? 10 : varintSize(closeReason));
  if (idle >= 0) size += field(15, idle);
  if (absolute >= 0) size += field(16, absolute);
  if (s3[0]! > 0) size += 1; // fields 17 and 18 take two-byte tags
  if (s3[1]! > 0) size += 1;

  const writer = new Writer(Buffer.allocUnsafe(size));
  STRING_FIELDS.forEach(([number, name], i) => {
    if (s1[i]! === 0) return;
    writer.varint(tag(number, 2));
    writer.string(session[name], s1[i]!);
  });
  if (session.active) {
    writer.varint(tag(4, 0));
    writer.varint(1);
  }
  if (times[0]! >= 0) writeSecondsNanos(writer, 5, session.openTime!, times[0]!);
  if (times[1]! >= 0) writeSecondsNanos(writer, 6, session.closeTime!, times[1]!);
  if (times[2]! >= 0) writeSecondsNanos(writer, 7, session.requestTime!, times[2]!);
  STRING_FIELDS_2.forEach(([number, name], i) => {
    if (s2[i]! === 0) return;
    writer.varint(tag(number, 2));
    writer.string(session[name], s2[i]!);
  });
  if (user !== undefined) {
    writer.varint(tag(10, 2));
    writer.bytes(user);
  }
  if (data !== undefined) {
    writer.varint(tag(11, 2));
    writer.bytes(data);
  }
  if (version !== undefined) {
    writer.varint(tag(12, 0));
    writer.bigVarint(version);
  }
  if (expire >= 0) writeSecondsNanos(writer, 13, session.expireTime!, expire);
  if (closeReason !== 0) {
    writer.varint(tag(14, 0));
    if (closeReason < 0) writer.bigVarint(int64Varint(BigInt(closeReason)));
    else writer.varint(closeReason);
  }
  if (idle >= 0) writeSecondsNanos(writer, 15, session.idleTimeout!, idle);
  if (absolute >= 0) writeSecondsNanos(writer, 16, session.absoluteTimeout!, absolute);
  STRING_FIELDS_3.forEach(([number, name], i) => {
    if (s3[i]! === 0) return;
    writer.varint(tag(number, 2));
    writer.string(session[name], s3[i]!);
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
