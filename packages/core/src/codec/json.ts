import { ErrorCode, FrameError } from "../errors.js";
import { FRAME_TYPES, type Frame, type FrameType } from "../frame/types.js";
import { fromBase64, jsonBytes, toBase64, utf8Decode, utf8Encode, utf8Length } from "./bytes.js";
import {
  BY_JSON_KEY,
  HEADER_NAME_RE,
  MAX_HEADERS,
  MAX_HEADER_NAME,
  MAX_HEADER_VALUE,
  SCHEMA,
  type FieldSpec,
  type MessageName,
} from "./schema.js";
import { COMPACT_FIELDS, COMPACT_MESSAGE_KEYS, headers11, isDefaultHeader } from "./message11.js";
import type { Codec, DecodeOptions, DecodeResult, EncodeOptions } from "./types.js";
import { validateClientFrame } from "./validate.js";

/** Frame size limit the decoders apply when `DecodeOptions.maxBytes` is not given: 1 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** JSON nesting limit `decodeJson` applies when `DecodeOptions.maxDepth` is not given: 32 levels. */
export const DEFAULT_MAX_DEPTH = 32;

const TYPE_NAMES: ReadonlySet<string> = new Set(FRAME_TYPES.slice(1));

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Writes a canonical frame as its JSON face. Fields appear in proto order; default values are left out. With
 * `protocol: "1.1"`, message frames (and the messages of a `messages` list) are written as compact message objects.
 */
export function encodeJson(frame: Frame, options?: EncodeOptions): string {
  if (frame.type === "ack") {
    const ack = writeAck(frame);
    if (ack !== undefined) return ack;
  }
  if (options !== undefined && options.protocol === "1.1") {
    if (frame.type === "message") return writeMessage11(frame, options.epoch !== false);
    if (frame.messages !== undefined) {
      return writeFrame(frame, (item) => (item.type === "message" ? writeMessage11(item, item.epoch !== frame.epoch) : writeFrame(item, undefined)));
    }
  }
  return writeFrame(frame, undefined);
}

/**
 * {@link encodeJson} without options: the protocol 1.0 JSON face, which is every frame a client sends. It leaves the
 * protocol 1.1 message writer out of a bundle that imports only this (the browser SDK).
 */
export function encodeJson10(frame: Frame): string {
  return writeFrame(frame, undefined);
}

/** How a protocol 1.1 frame writes the frames of its `messages` list (undefined: as they are, protocol 1.0). */
type ListWriter = ((item: Frame) => string) | undefined;

/**
 * A frame's JSON face in three parts, for writers that assemble bytes: `head`, then the frame's own JSON `payload`
 * bytes exactly as they are (not decoded and encoded again), then `tail`. Concatenated (UTF-8) they are what
 * {@link encodeJson} returns for the same frame and options. A frame without a JSON payload (none, empty, binary)
 * comes back whole in `head`, with `tail` empty.
 */
export interface JsonParts {
  /** The JSON text before the payload (the whole frame when `payload` is undefined). */
  head: string;
  /** The payload's UTF-8 JSON bytes, to be written between `head` and `tail`. */
  payload: Uint8Array | undefined;
  /** The JSON text after the payload. */
  tail: string;
}

/** Set while `encodeJsonParts` writes the top level of a frame: the text written before its payload. */
let splitHead: string | undefined;
let splitting = false;

/** {@link encodeJson} in parts: the payload bytes are handed back instead of being decoded into the text. */
export function encodeJsonParts(frame: Frame, options?: EncodeOptions): JsonParts {
  const payload = frame.payload;
  if (payload === undefined || payload.length === 0 || frame.payloadFormat === "binary") {
    return { head: encodeJson(frame, options), payload: undefined, tail: "" };
  }
  splitting = true;
  splitHead = undefined;
  let text: string;
  try {
    text = encodeJson(frame, options);
  } finally {
    splitting = false;
  }
  const head = splitHead;
  splitHead = undefined;
  // Defensive: no top-level payload was split off, so the text is the whole frame.
  if (head === undefined) return { head: text, payload: undefined, tail: "" };
  return { head, payload, tail: text };
}

/**
 * The ack of a publish (one per publish, the gateway's most frequent reply) written field by field, as `writeFrame`
 * writes it: `id`, `requestId`, `room`, `offset`, `epoch`, `duplicate`, each left out at its default. An ack with any
 * other field goes to `writeFrame` (undefined here).
 */
function writeAck(frame: Frame): string | undefined {
  for (const name in frame) {
    switch (name) {
      case "type":
      case "id":
      case "requestId":
      case "room":
      case "offset":
      case "epoch":
      case "duplicate":
        continue;
      default:
        if ((frame as unknown as Record<string, unknown>)[name] != null) return undefined;
    }
  }
  let out = '{"type":"ack"';
  if (frame.id != null && frame.id !== "") out += ',"id":' + JSON.stringify(frame.id);
  if (frame.requestId != null && frame.requestId !== "") out += ',"requestId":' + JSON.stringify(frame.requestId);
  if (frame.room != null && frame.room !== "") out += ',"room":' + JSON.stringify(frame.room);
  if (frame.offset != null && frame.offset !== 0) out += ',"offset":' + String(frame.offset);
  if (frame.epoch != null && frame.epoch !== "") out += ',"epoch":' + JSON.stringify(frame.epoch);
  if (frame.duplicate === true) out += ',"duplicate":true';
  return out + "}";
}

/** `list11`: protocol 1.1, how the frames of the `messages` list are written (their epoch depends on this frame's). */
function writeFrame(frame: Frame, list11: ListWriter): string {
  const prefix = '{"type":' + JSON.stringify(frame.type);
  if (!splitting) return prefix + writeFields(frame as unknown as Record<string, unknown>, "Frame", frame.payloadFormat === "binary", list11);
  // The top level of an `encodeJsonParts` frame: its payload ends the head (nested frames never split).
  splitting = false;
  const rest = writeFields(frame as unknown as Record<string, unknown>, "Frame", frame.payloadFormat === "binary", list11, true);
  if (splitHead !== undefined) splitHead = prefix + splitHead;
  return splitHead === undefined ? prefix + rest : rest;
}

function writeMessage(obj: Record<string, unknown>, message: MessageName): string {
  const body = writeFields(obj, message, false, undefined);
  return body === "}" ? "{}" : "{" + body.slice(1);
}

/** A protocol 1.1 message: the compact object, or (a message with a field it has no key for) the 1.1 omissions only. */
function writeMessage11(frame: Frame, withEpoch: boolean): string {
  for (const name in frame) {
    if (!COMPACT_FIELDS.has(name) && (frame as unknown as Record<string, unknown>)[name] !== undefined) {
      const reduced: Frame = Object.assign({}, frame);
      reduced.headers = headers11(frame);
      if (!withEpoch) reduced.epoch = undefined;
      return writeFrame(reduced, undefined);
    }
  }
  const split = splitting;
  splitting = false;
  let out = '{"m":' + (frame.room === undefined ? '""' : JSON.stringify(frame.room));
  if (frame.id !== undefined && frame.id !== "") out += ',"i":' + JSON.stringify(frame.id);
  if (frame.offset !== undefined && frame.offset !== 0) out += ',"o":' + String(frame.offset);
  if (withEpoch && frame.epoch !== undefined && frame.epoch !== "") out += ',"e":' + JSON.stringify(frame.epoch);
  if (frame.timestamp !== undefined && frame.timestamp !== 0) out += ',"t":' + String(frame.timestamp);
  if (frame.sender !== undefined && frame.sender !== "") out += ',"s":' + JSON.stringify(frame.sender);
  const headers = frame.headers;
  if (headers !== undefined) {
    let h = "";
    for (const name in headers) {
      const value = headers[name]!;
      if (isDefaultHeader(name, value, frame.timestamp)) continue;
      h += (h === "" ? "{" : ",") + JSON.stringify(name) + ":" + JSON.stringify(value);
    }
    if (h !== "") out += ',"h":' + h + "}";
  }
  if (frame.inspection !== undefined) out += ',"c":' + writeMessage(frame.inspection as unknown as Record<string, unknown>, "Inspection");
  if (frame.delta === true) out += ',"d":true';
  const binary = frame.payloadFormat === "binary";
  if (binary) out += ',"f":"binary"';
  const payload = frame.payload;
  if (payload === undefined) return out + "}";
  if (split && !binary && payload.length > 0) {
    splitHead = out + ',"p":';
    return "}";
  }
  return out + ',"p":' + (binary ? '"' + toBase64(payload) + '"' : jsonText(payload)) + "}";
}

/**
 * Returns `,"a":1,"b":2}` style text (leading comma, closing brace) for the fields of `obj`, in proto order. The
 * object's own keys are walked (a frame has a few of the schema's many fields, and looking up absent ones is what
 * cost most) and their positions collected in two 32-bit masks, which are then read in ascending order.
 * `split`: the top level of an `encodeJsonParts` frame, whose JSON payload ends the head (`splitHead`).
 */
function writeFields(obj: Record<string, unknown>, message: MessageName, binaryPayload: boolean, list11: ListWriter, split = false): string {
  const specs = SCHEMA[message];
  const byKey = BY_JSON_KEY[message];
  let low = 0;
  let high = 0;
  for (const name in obj) {
    const i = byKey.get(name)?.index;
    if (i === undefined) continue;
    if (i < 32) low |= 1 << i;
    else high |= 1 << (i - 32);
  }
  let out = "";
  for (let word = 0; word < 2; word++) {
    let bits = word === 0 ? low : high;
    while (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits);
      bits &= bits - 1;
      const i = word * 32 + bit;
      const spec = specs[i]!;
      const value = obj[spec.name];
      if (value === undefined || value === null) continue;
      if (split && spec.kind === "payload" && !binaryPayload && (value as Uint8Array).length > 0) {
        splitHead = out + spec.prefix;
        out = "";
        continue;
      }
      const text = writeValue(spec, value, binaryPayload, list11);
      if (text !== undefined) out += spec.prefix + text;
    }
  }
  return out + "}";
}

function writeValue(spec: FieldSpec, value: unknown, binaryPayload: boolean, list11: ListWriter): string | undefined {
  const kind = spec.kind;
  switch (kind) {
    case "string":
      return value === "" && !spec.required ? undefined : JSON.stringify(value);
    case "uint":
    case "uint32":
    case "int":
      return value === 0 ? undefined : String(value);
    case "uintPresent":
      return String(value);
    case "bool":
      return value === true ? "true" : undefined;
    case "boolPresent":
      return value ? "true" : "false";
    case "payload":
      return binaryPayload ? '"' + toBase64(value as Uint8Array) + '"' : jsonText(value as Uint8Array);
    case "json":
      return jsonText(value as Uint8Array);
    case "payloadFormat":
      return value === "binary" ? '"binary"' : undefined;
    case "headers":
      return writeHeaders(value as Record<string, string>);
    case "stringList":
      return (value as string[]).length === 0 ? undefined : JSON.stringify(value);
    default:
      if ("message" in kind) return writeMessage(value as Record<string, unknown>, kind.message);
      {
        const list = value as Record<string, unknown>[];
        if (list.length === 0) return undefined;
        let out = "[";
        for (let i = 0; i < list.length; i++) {
          if (i > 0) out += ",";
          if (kind.list !== "Frame") out += writeMessage(list[i]!, kind.list);
          else {
            const item = list[i] as unknown as Frame;
            out += list11 !== undefined ? list11(item) : writeFrame(item, undefined);
          }
        }
        return out + "]";
      }
  }
}

/** A headers object as JSON (names and values are strings); undefined when it has none. */
function writeHeaders(headers: Record<string, string>): string | undefined {
  for (const _ in headers) return JSON.stringify(headers);
  return undefined;
}

/** JSON bytes as JSON text; empty bytes stand for `null`. */
function jsonText(bytes: Uint8Array): string {
  return bytes.length === 0 ? "null" : utf8Decode(bytes);
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

/** Nesting depth of JSON text, scanning once and stopping as soon as `limit` is passed. */
function exceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

// The top-level `payload` value of the client frame being decoded, as the client's own bytes: set by `scanClientFrame`
// when the frame's text is already in the form `JSON.stringify` would give it (see there), read by `readValue`, and
// cleared when the decode ends, so no buffer outlives its frame.
let passText = "";
let passSource: Uint8Array | undefined;
let passStart = -1;
let passEnd = -1;
/** Set while a kept span is there: `readValue` calls it (the server-frame decode never sets it). */
let passPayload: (() => Uint8Array) | undefined;

/**
 * `exceedsDepth` for client frames that also finds the span of the top-level `payload` value, so that `readValue`
 * can take the payload as the client's bytes instead of re-serialising the parsed value. The span is kept only when
 * those bytes are what `JSON.stringify` of the parsed value would write for every pattern CASIL could match: no
 * escape in it (`\u0070assword` is `password` only once parsed), no whitespace between its tokens, and every number
 * with a fraction or an exponent written as `JSON.stringify` writes it (`1234.5` is, `2.50` and `4.1e15` are not:
 * parsed, they are `2.5` and `4100000000000000`), and likewise every integer (`-0` and integers past 2^53 are
 * re-serialised). What still differs is harmless to inspection: duplicate keys are all kept (inspection sees more).
 */
function scanClientFrame(text: string, limit: number): boolean {
  let depth = 0;
  let expectKey = false; // at depth 1 of the top object, the next string is a key
  let keyIsPayload = false;
  let open = -1; // start of the payload value being scanned
  let clean = true; // that value needs no re-serialising so far
  let start = -1;
  let end = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const from = i + 1;
      for (i = from; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) {
          if (open >= 0) clean = false;
          i++;
        } else if (d === 34) break;
      }
      if (expectKey && depth === 1) {
        expectKey = false;
        keyIsPayload = i - from === 7 && text.startsWith("payload", from);
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > limit) return true;
      if (depth === 1) expectKey = c === 123;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      if (depth-- === 1 && open >= 0) {
        start = clean ? open : -1;
        end = i;
        open = -1;
      }
    } else if (depth === 1 && c === 58 /* : */) {
      if (keyIsPayload) {
        open = i + 1;
        clean = true;
      }
      keyIsPayload = false;
    } else if (depth === 1 && c === 44 /* , */) {
      if (open >= 0) {
        start = clean ? open : -1; // a later "payload" key replaces this one, as in JSON.parse
        end = i;
        open = -1;
      }
      expectKey = true;
    } else if (open >= 0) {
      if (c === 32 || c === 10 || c === 13 || c === 9) clean = false;
      else if (isDigit(c) || c === 45 /* - */) {
        // Integers of up to 15 digits (all but -0) are as JSON.stringify writes them; anything else is checked.
        let j = i + 1;
        while (j < text.length && isDigit(text.charCodeAt(j))) j++;
        const next = j < text.length ? text.charCodeAt(j) : 0;
        if (next === 46 /* . */ || next === 101 /* e */ || next === 69 /* E */ || j - i > 15 || (c === 45 && text.charCodeAt(i + 1) === 48)) {
          const to = numberEnd(text, j);
          if (!stringifiedNumber(text, i, to)) clean = false;
          j = to;
        }
        i = j - 1;
      }
    }
  }
  if (start >= 0 && end > start) {
    passStart = start;
    passEnd = end;
    passPayload = passedPayload;
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** The end of the JSON number that goes on at `i`. */
function numberEnd(text: string, i: number): number {
  let j = i;
  for (; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (!isDigit(c) && c !== 46 && c !== 101 && c !== 69 && c !== 43 && c !== 45) break;
  }
  return j;
}

/** Below this, a decimal's digits read as one integer name a value too coarse for two doubles to share them. */
const SHORTEST_DIGITS = 2 ** 52;

/**
 * Whether the number literal `text[from, to)` is written as `JSON.stringify` writes its value. An integer or a plain
 * decimal with no trailing zero in its fraction is, when its digits read as one integer M are below 2^52, unless it
 * is `-0` or below 1e-6 (written `1e-7` by JS): next to its value, doubles are closer together than 1 in the
 * literal's last digit (their spacing is at most value / 2^52 = M / 2^52 last-digit units), so no other decimal of
 * that length, and none shorter, reads as the same double, and the shortest form is the literal itself. That covers
 * a millisecond timestamp with three decimals (16 digits), the common case past 15 digits. Anything else (exponents,
 * longer literals) is compared with `String(Number(literal))`, which costs about as much as the rest of the decode.
 */
function stringifiedNumber(text: string, from: number, to: number): boolean {
  let i = from;
  if (text.charCodeAt(i) === 45 /* - */) i++;
  const intStart = i;
  let digits = 0; // exact while below 2^53, and past 2^52 either way once it is not
  for (let c = text.charCodeAt(i); i < to && isDigit(c); c = text.charCodeAt(++i)) digits = digits * 10 + (c - 48);
  const zero = i - intStart === 1 && text.charCodeAt(intStart) === 48; /* 0 */
  if (i === to) {
    if (digits < SHORTEST_DIGITS && !(zero && intStart !== from)) return true;
  } else if (text.charCodeAt(i) === 46 /* . */) {
    const fracStart = i + 1;
    let j = fracStart;
    for (let c = text.charCodeAt(j); j < to && isDigit(c); c = text.charCodeAt(++j)) digits = digits * 10 + (c - 48);
    const plain = j === to && j > fracStart && text.charCodeAt(to - 1) !== 48;
    if (plain && digits < SHORTEST_DIGITS && !(zero && text.startsWith("000000", fracStart))) return true;
  }
  const literal = text.slice(from, to);
  return String(Number(literal)) === literal;
}

/** The payload span `scanClientFrame` kept, as bytes: a view of the WebSocket message when its text is ASCII. */
function passedPayload(): Uint8Array {
  const source = passSource;
  return source !== undefined && source.length === passText.length
    ? source.subarray(passStart, passEnd)
    : utf8Encode(passText.slice(passStart, passEnd));
}

/**
 * The top-level `requestId` (or `request_id`) string of JSON text that is not parsed (too deep), so that its error
 * still names the request. Scans once; keys or values with escapes are not matched.
 */
function topLevelRequestId(text: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const start = i + 1;
      let escaped = false;
      for (i = start; i < text.length && text.charCodeAt(i) !== 34; i++) {
        if (text.charCodeAt(i) === 92 /* \ */) {
          escaped = true;
          i++;
        }
      }
      if (depth !== 1 || escaped) continue;
      const key = text.slice(start, i);
      if (key !== "requestId" && key !== "request_id") continue;
      const value = /^\s*:\s*"([^"\\]{0,256})"/.exec(text.slice(i + 1, i + 300));
      if (value) return value[1];
    } else if (c === 123 /* { */ || c === 91 /* [ */) depth++;
    else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return undefined;
}

/**
 * Parses a JSON frame: the JSON face of any frame, or a protocol 1.1 compact message object (see `encodeJson`), which
 * decodes to its `message` frame with what the wire carried (`expandMessage` adds the epoch and default headers).
 * Never throws: every fault comes back as a FrameError with its code (ARQ_FRAME_TOO_LARGE,
 * ARQ_FRAME_TOO_DEEP, ARQ_FRAME_MALFORMED, ARQ_FRAME_MISSING_FIELD, ARQ_FRAME_WRONG_TYPE, ARQ_FRAME_UNKNOWN_TYPE,
 * ARQ_FRAME_UNEXPECTED, ARQ_ROOM_INVALID, ARQ_HEADER_INVALID, ARQ_STATE_KEY_INVALID).
 */
export function decodeJson(text: string, options: DecodeOptions = {}): DecodeResult {
  passText = text;
  passSource = options.source;
  try {
    return decodeChecked(text, options, (options.from ?? "client") === "client" ? validateClientFrame : undefined, scanClientFrame);
  } finally {
    passText = "";
    passSource = undefined;
    passPayload = undefined;
  }
}

/**
 * {@link decodeJson} with `from: "any"`, for frames a server sent: the client-frame rules (which types a client may
 * send, room names, state keys) are not applied, so a bundle that decodes only server frames (the browser SDK) does
 * not carry them.
 */
export function decodeServerJson(text: string, options: Omit<DecodeOptions, "from"> = {}): DecodeResult {
  return decodeChecked(text, options, undefined, exceedsDepth);
}

function decodeChecked(
  text: string,
  options: DecodeOptions,
  check: ((frame: Frame) => FrameError | undefined) | undefined,
  tooDeep: (text: string, limit: number) => boolean,
): DecodeResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES;
  let requestId: string | undefined;
  try {
    if (text.length > maxBytes || (text.length * 3 > maxBytes && utf8Length(text) > maxBytes)) {
      fault(ErrorCode.FRAME_TOO_LARGE, `frame exceeds ${maxBytes} bytes`);
    }
    if (tooDeep(text, options.maxDepth ?? DEFAULT_MAX_DEPTH)) {
      requestId = topLevelRequestId(text);
      fault(ErrorCode.FRAME_TOO_DEEP, `frame nests deeper than ${options.maxDepth ?? DEFAULT_MAX_DEPTH} levels`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      fault(ErrorCode.FRAME_MALFORMED, "frame is not valid JSON");
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fault(ErrorCode.FRAME_MALFORMED, "frame must be a JSON object");
    }
    const obj = raw as Record<string, unknown>;
    const rid = obj.requestId ?? obj.request_id;
    if (typeof rid === "string") requestId = rid;
    const frame = readFrame(obj, "");
    if (check !== undefined) {
      const error = check(frame);
      if (error) return { ok: false, error, requestId };
    }
    return { ok: true, frame };
  } catch (err) {
    if (err instanceof Fault) return requestId === undefined ? { ok: false, error: err.error } : { ok: false, error: err.error, requestId };
    // Anything else is a bug in this decoder; report it as malformed input rather than letting it escape.
    return { ok: false, error: new FrameError(ErrorCode.FRAME_MALFORMED, "frame could not be decoded", { cause: err }), requestId };
  }
}

/** Compact message key → the field spec it stands for. */
const COMPACT_SPECS: ReadonlyMap<string, FieldSpec> = new Map(
  Object.entries(COMPACT_MESSAGE_KEYS).map(([key, name]) => [key, SCHEMA.Frame.find((spec) => spec.name === name)!]),
);

/** Whether a JSON object is a protocol 1.1 compact message: no `type`, and the room under `m`. */
function isCompactMessage(obj: Record<string, unknown>): boolean {
  return obj.type === undefined && obj.m !== undefined;
}

/**
 * Reads a compact message object into the frame it stands for. The frame has what the wire had: the caller fills in
 * the epoch and the default headers from its subscription (`expandMessage`).
 */
function readCompactMessage(obj: Record<string, unknown>, path: string): Frame {
  const frame = { type: "message" } as Frame;
  const format = obj.f;
  const out = frame as unknown as Record<string, unknown>;
  for (const key in obj) {
    const spec = COMPACT_SPECS.get(key);
    if (spec === undefined) continue; // unknown keys are ignored (forward compatibility)
    const value = obj[key];
    if (value === undefined || value === null) continue;
    const converted = readValue(spec, value, path + key, format === "binary");
    if (converted !== undefined) out[spec.name] = converted;
  }
  return frame;
}

function readFrame(obj: Record<string, unknown>, path: string): Frame {
  if (isCompactMessage(obj)) return readCompactMessage(obj, path);
  const type = obj.type;
  if (type === undefined) fault(ErrorCode.FRAME_MISSING_FIELD, `frame needs "${path}type"`, path + "type");
  if (typeof type !== "string") fault(ErrorCode.FRAME_WRONG_TYPE, `"${path}type" must be a string`, path + "type");
  if (!TYPE_NAMES.has(type)) fault(ErrorCode.FRAME_UNKNOWN_TYPE, `unknown frame type "${type.slice(0, 64)}"`, path + "type");
  const frame = { type: type as FrameType } as Frame;
  const format = obj.payloadFormat ?? obj.payload_format;
  readFields(obj, "Frame", frame as unknown as Record<string, unknown>, path, format === "binary");
  return frame;
}

function readMessage(value: unknown, message: MessageName, path: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fault(ErrorCode.FRAME_WRONG_TYPE, `"${path}" must be an object`, path);
  }
  const out: Record<string, unknown> = {};
  readFields(value as Record<string, unknown>, message, out, path + ".", false);
  for (const spec of SCHEMA[message]) {
    if (spec.required && out[spec.name] === undefined) {
      if (message === "ErrorInfo" || message === "Position") out[spec.name] = "";
      else fault(ErrorCode.FRAME_MISSING_FIELD, `"${path}" needs "${spec.name}"`, `${path}.${spec.name}`);
    }
  }
  return out;
}

function readFields(
  obj: Record<string, unknown>,
  message: MessageName,
  out: Record<string, unknown>,
  path: string,
  binaryPayload: boolean,
): void {
  const table = BY_JSON_KEY[message];
  for (const key in obj) {
    const spec = table.get(key);
    if (spec === undefined) continue; // unknown fields are ignored (forward compatibility)
    const value = obj[key];
    if (value === undefined || value === null) continue;
    const converted = readValue(spec, value, path + spec.name, binaryPayload);
    if (converted !== undefined) out[spec.name] = converted;
  }
}

function wrongType(path: string, what: string): never {
  fault(ErrorCode.FRAME_WRONG_TYPE, `"${path}" must be ${what}`, path);
}

function readValue(spec: FieldSpec, value: unknown, path: string, binaryPayload: boolean): unknown {
  const kind = spec.kind;
  switch (kind) {
    case "string":
      if (typeof value !== "string") wrongType(path, "a string");
      return value === "" && !spec.required ? undefined : value;
    case "uint":
    case "uintPresent":
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) wrongType(path, "a non-negative integer");
      return value === 0 && kind === "uint" ? undefined : value;
    case "uint32":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        wrongType(path, "an integer from 0 to 4294967295");
      }
      return value === 0 ? undefined : value;
    case "int":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) wrongType(path, "an integer");
      return value === 0 ? undefined : value;
    case "bool":
      if (typeof value !== "boolean") wrongType(path, "true or false");
      return value ? true : undefined;
    case "boolPresent":
      if (typeof value !== "boolean") wrongType(path, "true or false");
      return value;
    case "payload":
      if (binaryPayload) {
        if (typeof value !== "string") wrongType(path, "a base64 string when payloadFormat is binary");
        const bytes = fromBase64(value);
        if (!bytes) wrongType(path, "valid base64 when payloadFormat is binary");
        return bytes;
      }
      return path === "payload" && passPayload !== undefined ? passPayload() : jsonBytes(value);
    case "json":
      return jsonBytes(value);
    case "payloadFormat":
      if (value !== "json" && value !== "binary") wrongType(path, '"json" or "binary"');
      return value === "binary" ? "binary" : undefined;
    case "headers":
      return readHeaders(value, path);
    case "stringList":
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) wrongType(path, "a list of strings");
      return value.length === 0 ? undefined : value;
    default:
      if ("message" in kind) return readMessage(value, kind.message, path);
      if (!Array.isArray(value)) wrongType(path, "a list");
      if (value.length === 0) return undefined;
      return value.map((item, i) =>
        kind.list === "Frame"
          ? readFrame(typeof item === "object" && item !== null && !Array.isArray(item) ? item : wrongType(`${path}[${i}]`, "an object"), `${path}[${i}].`)
          : readMessage(item, kind.list, `${path}[${i}]`),
      );
  }
}

function readHeaders(value: unknown, path: string): Record<string, string> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) wrongType(path, "an object of strings");
  const out: Record<string, string> = {};
  let count = 0;
  for (const name in value as Record<string, unknown>) {
    const v = (value as Record<string, unknown>)[name];
    if (typeof v !== "string") wrongType(`${path}.${name}`, "a string");
    const lower = name.toLowerCase();
    if (++count > MAX_HEADERS) fault(ErrorCode.HEADER_INVALID, `at most ${MAX_HEADERS} headers`, path);
    if (lower.length > MAX_HEADER_NAME || !HEADER_NAME_RE.test(lower)) {
      fault(ErrorCode.HEADER_INVALID, `header name "${name.slice(0, 64)}" is not allowed`, path);
    }
    if (v.length > MAX_HEADER_VALUE) fault(ErrorCode.HEADER_INVALID, `header "${lower}" is longer than ${MAX_HEADER_VALUE}`, path);
    out[lower] = v;
  }
  return count === 0 ? undefined : out;
}

/**
 * The JSON face as a {@link Codec}: encodes with `encodeJson`, decodes text with `decodeJson`. Binary input is
 * answered with `ARQ_FRAME_MALFORMED` (JSON travels in text WebSocket frames).
 */
export const jsonCodec: Codec = {
  name: "json",
  encode: encodeJson,
  decode(data, options) {
    if (typeof data !== "string") {
      return { ok: false, error: new FrameError(ErrorCode.FRAME_MALFORMED, "the JSON codec reads text frames") };
    }
    return decodeJson(data, options);
  },
};
