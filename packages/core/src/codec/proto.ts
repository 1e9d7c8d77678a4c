import { ErrorCode, FrameError } from "../errors.js";
import { FRAME_TYPES, type Frame, type FrameType } from "../frame/types.js";
import { arqon } from "../gen/arqon.js";
import { utf8DecodeStrict } from "./bytes.js";
import { DEFAULT_MAX_FRAME_BYTES } from "./json.js";
import { HEADER_NAME_RE, MAX_HEADERS, MAX_HEADER_NAME, MAX_HEADER_VALUE, SCHEMA, type FieldSpec, type MessageName } from "./schema.js";
import { headers11 } from "./message11.js";
import type { Codec, DecodeOptions, DecodeResult, EncodeOptions } from "./types.js";
import { validateClientFrame } from "./validate.js";

const ProtoFrame = arqon.v1.Frame;
const TYPE_NUMBER = new Map<string, number>(FRAME_TYPES.map((name, i) => [name, i]));

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes a frame as protobuf bytes (arqon.v1.Frame). With `protocol: "1.1"`, message frames (and the messages of a
 * `messages` list) leave out the default headers and, as `options.epoch` says, the epoch (same schema, fewer fields).
 */
export function encodeProto(frame: Frame, options?: EncodeOptions): Uint8Array {
  const p11 = options !== undefined && options.protocol === "1.1";
  return ProtoFrame.encode(toProto(frame, p11, !p11 || options.epoch !== false) as arqon.v1.IFrame).finish();
}

/** `p11`: write messages in their protocol 1.1 form; `withEpoch`: a 1.1 message keeps its epoch. */
function toProto(frame: Frame, p11: boolean, withEpoch: boolean): Record<string, unknown> {
  // Object.assign rather than a spread: V8's spread of a frame is several times slower (see history/memory.ts).
  const out: Record<string, unknown> = Object.assign({}, frame as unknown as Record<string, unknown>);
  out.type = TYPE_NUMBER.get(frame.type) ?? 0;
  if (frame.payloadFormat !== undefined) out.payloadFormat = frame.payloadFormat === "binary" ? 1 : 0;
  if (p11 && frame.type === "message") {
    out.headers = headers11(frame);
    if (!withEpoch) out.epoch = undefined;
  }
  if (frame.messages !== undefined) out.messages = frame.messages.map((m) => toProto(m, p11, !p11 || m.epoch !== frame.epoch));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

class Fault extends Error {
  constructor(readonly error: FrameError) {
    super(error.message);
  }
}

function fault(code: (typeof ErrorCode)[keyof typeof ErrorCode], message: string, field?: string): never {
  throw new Fault(new FrameError(code, message, field === undefined ? undefined : { detail: { field } }));
}

interface ReadContext {
  /** Check that JSON-carrying bytes hold valid UTF-8 JSON (input from clients). */
  checkJson: boolean;
}

/**
 * Decodes protobuf bytes into a canonical frame. Never throws: faults come back with ARQ_FRAME_TOO_LARGE,
 * ARQ_FRAME_MALFORMED (not a valid arqon.v1.Frame), ARQ_FRAME_MISSING_FIELD, ARQ_FRAME_UNKNOWN_TYPE,
 * ARQ_FRAME_WRONG_TYPE (e.g. a JSON payload that is not JSON), and the client-frame checks of the JSON codec.
 */
export function decodeProto(bytes: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (bytes.length > maxBytes) {
    return { ok: false, error: new FrameError(ErrorCode.FRAME_TOO_LARGE, `frame exceeds ${maxBytes} bytes`) };
  }
  let decoded: arqon.v1.Frame;
  try {
    decoded = ProtoFrame.decode(bytes);
  } catch (err) {
    return { ok: false, error: new FrameError(ErrorCode.FRAME_MALFORMED, "frame is not a valid arqon.v1.Frame", { cause: err }) };
  }
  const requestId = decoded.requestId || undefined;
  const fromClient = (options.from ?? "client") === "client";
  try {
    const frame = readFrame(decoded as unknown as Record<string, unknown>, "", { checkJson: fromClient });
    if (fromClient) {
      const error = validateClientFrame(frame);
      if (error) return { ok: false, error, requestId };
    }
    return { ok: true, frame };
  } catch (err) {
    const error = err instanceof Fault ? err.error : new FrameError(ErrorCode.FRAME_MALFORMED, "frame could not be decoded", { cause: err });
    return requestId === undefined ? { ok: false, error } : { ok: false, error, requestId };
  }
}

function readFrame(m: Record<string, unknown>, path: string, ctx: ReadContext): Frame {
  const n = m.type as number;
  if (!n) fault(ErrorCode.FRAME_MISSING_FIELD, `frame needs "${path}type"`, path + "type");
  const type = FRAME_TYPES[n];
  if (type === undefined || type === "unspecified") fault(ErrorCode.FRAME_UNKNOWN_TYPE, `unknown frame type ${n}`, path + "type");
  const frame = { type: type as FrameType } as Frame;
  readFields(m, "Frame", frame as unknown as Record<string, unknown>, path, ctx, m.payloadFormat === 1);
  return frame;
}

function readFields(
  m: Record<string, unknown>,
  message: MessageName,
  out: Record<string, unknown>,
  path: string,
  ctx: ReadContext,
  binaryPayload: boolean,
): void {
  for (const spec of SCHEMA[message]) {
    if (!Object.prototype.hasOwnProperty.call(m, spec.name)) continue; // absent on the wire
    const value = readValue(spec, m[spec.name], path + spec.name, ctx, binaryPayload);
    if (value !== undefined) out[spec.name] = value;
  }
  for (const spec of SCHEMA[message]) {
    if (spec.required && out[spec.name] === undefined) {
      if (message === "ErrorInfo" || message === "Position") out[spec.name] = "";
      else fault(ErrorCode.FRAME_MISSING_FIELD, `"${path.slice(0, -1)}" needs "${spec.name}"`, path + spec.name);
    }
  }
}

function toNumber(value: unknown, path: string): number {
  if (typeof value === "number") return value;
  const long = value as { toNumber(): number; high: number };
  const n = long.toNumber();
  if (!Number.isSafeInteger(n)) fault(ErrorCode.FRAME_WRONG_TYPE, `"${path}" is beyond 2^53`, path);
  return n;
}

function readValue(spec: FieldSpec, value: unknown, path: string, ctx: ReadContext, binaryPayload: boolean): unknown {
  if (value === null || value === undefined) return undefined;
  const kind = spec.kind;
  switch (kind) {
    case "string":
      return value === "" && !spec.required ? undefined : value;
    case "uint":
    case "uint32":
    case "int": {
      const n = toNumber(value, path);
      return n === 0 ? undefined : n;
    }
    case "uintPresent":
      return toNumber(value, path);
    case "bool":
      return value === true ? true : undefined;
    case "boolPresent":
      return value === true;
    case "payload":
    case "json": {
      const bytes = value as Uint8Array;
      if (bytes.length === 0) return undefined;
      if (ctx.checkJson && !(kind === "payload" && binaryPayload)) checkJson(bytes, path);
      return bytes;
    }
    case "payloadFormat":
      if (value === 1) return "binary";
      if (value === 0) return undefined;
      return fault(ErrorCode.FRAME_WRONG_TYPE, `"${path}" is not a known payload format`, path);
    case "headers":
      return readHeaders(value as Record<string, string>, path);
    case "stringList":
      return (value as string[]).length === 0 ? undefined : value;
    default: {
      if ("message" in kind) {
        const out: Record<string, unknown> = {};
        readFields(value as Record<string, unknown>, kind.message, out, path + ".", ctx, false);
        return out;
      }
      const list = value as Record<string, unknown>[];
      if (list.length === 0) return undefined;
      return list.map((item, i) => {
        if (kind.list === "Frame") return readFrame(item, `${path}[${i}].`, ctx);
        const out: Record<string, unknown> = {};
        readFields(item, kind.list, out, `${path}[${i}].`, ctx, false);
        return out;
      });
    }
  }
}

function checkJson(bytes: Uint8Array, path: string): void {
  const text = utf8DecodeStrict(bytes);
  if (text !== undefined) {
    try {
      JSON.parse(text);
      return;
    } catch {
      // fall through
    }
  }
  fault(ErrorCode.FRAME_WRONG_TYPE, `"${path}" must hold UTF-8 JSON (set payload_format to binary for raw bytes)`, path);
}

function readHeaders(value: Record<string, string>, path: string): Record<string, string> | undefined {
  const names = Object.keys(value);
  if (names.length === 0) return undefined;
  if (names.length > MAX_HEADERS) fault(ErrorCode.HEADER_INVALID, `at most ${MAX_HEADERS} headers`, path);
  const out: Record<string, string> = {};
  for (const name of names) {
    const lower = name.toLowerCase();
    if (lower.length > MAX_HEADER_NAME || !HEADER_NAME_RE.test(lower)) {
      fault(ErrorCode.HEADER_INVALID, `header name "${name.slice(0, 64)}" is not allowed`, path);
    }
    const v = value[name]!;
    if (v.length > MAX_HEADER_VALUE) fault(ErrorCode.HEADER_INVALID, `header "${lower}" is longer than ${MAX_HEADER_VALUE}`, path);
    out[lower] = v;
  }
  return out;
}

/**
 * The protobuf face as a {@link Codec}: encodes with `encodeProto`, decodes bytes with `decodeProto`. Text input
 * is answered with `ARQ_FRAME_MALFORMED` (protobuf travels in binary WebSocket frames).
 */
export const protobufCodec: Codec = {
  name: "protobuf",
  encode: encodeProto,
  decode(data, options) {
    if (typeof data === "string") {
      return { ok: false, error: new FrameError(ErrorCode.FRAME_MALFORMED, "the protobuf codec reads binary frames") };
    }
    return decodeProto(data, options);
  },
};
