import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CLIENT_FRAME_TYPES,
  ErrorCode,
  FRAME_TYPES,
  decodeFrame,
  decodeJson,
  decodeProto,
  encodeJson,
  encodeProto,
  expandMessage,
  fromBase64,
  jsonBytes,
  parseJsonBytes,
  toBase64,
  type Frame,
} from "../src/index.js";

const vectorsDir = join(import.meta.dirname, "../../../proto/vectors");

function ok(result: ReturnType<typeof decodeJson>): Frame {
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
  return result.frame;
}

function code(result: ReturnType<typeof decodeJson>): string | undefined {
  return result.ok ? undefined : result.error.code;
}

describe("codec - shared vectors", () => {
  const files = readdirSync(vectorsDir).filter((f) => f.endsWith(".json"));

  it("has a vector for every frame type", () => {
    const types = new Set(files.map((f) => JSON.parse(readFileSync(join(vectorsDir, f), "utf8")).json.type));
    for (const type of FRAME_TYPES.slice(1)) expect(types, type).toContain(type);
  });

  for (const file of files) {
    it(`vector ${file}: binary twin decodes to the JSON frame and back`, () => {
      const vector = JSON.parse(readFileSync(join(vectorsDir, file), "utf8"));
      const fromJson = ok(decodeJson(JSON.stringify(vector.json), { from: "any" }));
      const fromBinary = ok(decodeProto(fromBase64(vector.protobuf)!, { from: "any" }));
      expect(JSON.parse(encodeJson(fromBinary))).toEqual(vector.json);
      expect(toBase64(encodeProto(fromJson))).toBe(vector.protobuf);
    });
  }
});

describe("codec - shared vectors, protocol 1.1", () => {
  const dir11 = join(vectorsDir, "1.1");
  const files = readdirSync(dir11).filter((f) => f.endsWith(".json"));

  it("has 1.1 vectors: a compact message and a history page", () => {
    expect(files).toContain("message.json");
    expect(files).toContain("history_page.json");
  });

  for (const file of files) {
    it(`vector 1.1/${file}: text and binary twin decode to the same frame, encode back, and expand to the 1.0 frame`, () => {
      const vector = JSON.parse(readFileSync(join(dir11, file), "utf8"));
      expect(vector.protocol).toBe("1.1");
      const text = JSON.stringify(vector.json);
      const fromJson = ok(decodeJson(text, { from: "any" }));
      const fromBinary = ok(decodeProto(fromBase64(vector.protobuf)!, { from: "any" }));
      const options = { protocol: "1.1", epoch: "e" in vector.json } as const;
      expect(encodeJson(fromBinary, options)).toBe(text);
      expect(encodeJson(fromJson, options)).toBe(text);
      expect(toBase64(encodeProto(fromJson, options))).toBe(vector.protobuf);
      const expanded =
        fromJson.type === "message"
          ? expandMessage(fromJson, vector.epoch)
          : { ...fromJson, messages: fromJson.messages?.map((m) => expandMessage(m, fromJson.epoch)) };
      expect(JSON.parse(encodeJson(expanded))).toEqual(vector.expanded);
      // The 1.0 frame, written as 1.1, is the vector.
      expect(encodeJson(ok(decodeJson(JSON.stringify(vector.expanded), { from: "any" })), options)).toBe(text);
    });
  }
});

describe("codec - JSON face", () => {
  it("reads the wscat examples", () => {
    expect(ok(decodeJson('{"type":"subscribe","room":"lobby"}'))).toEqual({ type: "subscribe", room: "lobby" });
    const pub = ok(decodeJson('{"type":"publish","room":"lobby","payload":{"text":"hi"}}'));
    expect(pub.type).toBe("publish");
    expect(parseJsonBytes(pub.payload!)).toEqual({ text: "hi" });
  });

  it("accepts snake_case names and writes camelCase", () => {
    const frame = ok(decodeJson('{"type":"publish","room":"a","payload":1,"request_id":"7","idempotency_key":"k"}'));
    expect(encodeJson(frame)).toBe('{"type":"publish","requestId":"7","room":"a","payload":1,"idempotencyKey":"k"}');
  });

  it("lowercases header names", () => {
    const frame = ok(decodeJson('{"type":"publish","room":"a","payload":1,"headers":{"X-Twist-ID":"t1"}}'));
    expect(frame.headers).toEqual({ "x-twist-id": "t1" });
  });

  it("a JSON client and a protobuf client read the same message", () => {
    const published = ok(decodeJson('{"type":"publish","room":"lobby","payload":{"text":"hi","n":[1,2]}}'));
    const message: Frame = { type: "message", room: "lobby", payload: published.payload, offset: 1, epoch: "e" };
    const viaProto = ok(decodeProto(encodeProto(message), { from: "any" }));
    expect(parseJsonBytes(viaProto.payload!)).toEqual({ text: "hi", n: [1, 2] });
    expect(encodeJson(viaProto)).toBe(encodeJson(message));
  });

  it("keeps recovered:false and ifVersion:0, which carry meaning", () => {
    const s = '{"type":"subscribed","room":"r","recovered":false}';
    expect(encodeJson(ok(decodeJson(s, { from: "any" })))).toBe(s);
    const set = '{"type":"state_set","room":"r","state":[{"key":"k","value":1,"ifVersion":0}]}';
    const frame = ok(decodeJson(set));
    expect(frame.state![0]!.ifVersion).toBe(0);
    expect(encodeJson(ok(decodeProto(encodeProto(frame))))).toBe(set);
  });
});

describe("codec - faults get their documented code and never throw", () => {
  const cases: [string, string, string][] = [
    ["garbage text", "hello there", ErrorCode.FRAME_MALFORMED],
    ["a JSON array", "[1,2]", ErrorCode.FRAME_MALFORMED],
    ["a JSON string", '"subscribe"', ErrorCode.FRAME_MALFORMED],
    ["no type", '{"room":"a"}', ErrorCode.FRAME_MISSING_FIELD],
    ["numeric type", '{"type":3}', ErrorCode.FRAME_WRONG_TYPE],
    ["unknown type", '{"type":"teleport"}', ErrorCode.FRAME_UNKNOWN_TYPE],
    ["server-only type", '{"type":"message","room":"a","payload":1}', ErrorCode.FRAME_UNEXPECTED],
    ["subscribe without room", '{"type":"subscribe"}', ErrorCode.FRAME_MISSING_FIELD],
    ["room with a space", '{"type":"subscribe","room":"a b"}', ErrorCode.ROOM_INVALID],
    ["publish to a room pattern", '{"type":"publish","room":"a.*","payload":1}', ErrorCode.ROOM_INVALID],
    ["history of a room pattern", '{"type":"history","room":"a.*"}', ErrorCode.ROOM_INVALID],
    ["subscribe to a pattern with >", '{"type":"subscribe","room":"a.>"}', ErrorCode.ROOM_INVALID],
    ["room with $", '{"type":"subscribe","room":"$SYS"}', ErrorCode.ROOM_INVALID],
    ["too long room", JSON.stringify({ type: "subscribe", room: "x".repeat(201) }), ErrorCode.ROOM_INVALID],
    ["room as number", '{"type":"subscribe","room":5}', ErrorCode.FRAME_WRONG_TYPE],
    ["publish without payload", '{"type":"publish","room":"a"}', ErrorCode.FRAME_MISSING_FIELD],
    ["negative offset", '{"type":"subscribe","room":"a","since":{"offset":-1,"epoch":"e"}}', ErrorCode.FRAME_WRONG_TYPE],
    ["fractional offset", '{"type":"subscribe","room":"a","since":{"offset":1.5,"epoch":"e"}}', ErrorCode.FRAME_WRONG_TYPE],
    ["echo as string", '{"type":"publish","room":"a","payload":1,"echo":"yes"}', ErrorCode.FRAME_WRONG_TYPE],
    ["headers as list", '{"type":"publish","room":"a","payload":1,"headers":["x"]}', ErrorCode.FRAME_WRONG_TYPE],
    ["header with a space", '{"type":"publish","room":"a","payload":1,"headers":{"a b":"x"}}', ErrorCode.HEADER_INVALID],
    ["bad twist id", '{"type":"publish","room":"a","payload":1,"headers":{"x-twist-id":"a b"}}', ErrorCode.HEADER_INVALID],
    ["bad base64", '{"type":"publish","room":"a","payload":"!!","payloadFormat":"binary"}', ErrorCode.FRAME_WRONG_TYPE],
    ["state key missing", '{"type":"state_set","room":"a","state":[{"value":1}]}', ErrorCode.FRAME_MISSING_FIELD],
    ["state key invalid", '{"type":"state_set","room":"a","state":[{"key":"a b","value":1}]}', ErrorCode.STATE_KEY_INVALID],
    ["bad command name", '{"type":"command","command":"rm -rf"}', ErrorCode.FRAME_WRONG_TYPE],
    ["deeply nested", '{"type":"publish","room":"a","payload":' + "[".repeat(10000) + "]".repeat(10000) + "}", ErrorCode.FRAME_TOO_DEEP],
  ];
  for (const [name, text, expected] of cases) {
    it(`${name} → ${expected}`, () => expect(code(decodeJson(text))).toBe(expected));
  }

  it("too deep → ARQ_FRAME_TOO_DEEP still carries the frame's top-level requestId, like every other frame error", () => {
    const deep = "[".repeat(100) + "]".repeat(100);
    const after = decodeJson(`{"type":"publish","room":"a","payload":${deep},"requestId":"r-after"}`);
    expect(after.ok ? undefined : [after.error.code, after.requestId]).toEqual([ErrorCode.FRAME_TOO_DEEP, "r-after"]);
    const before = decodeJson(`{"request_id" : "r-1", "type":"publish","room":"a","payload":${deep}}`);
    expect(before.ok ? undefined : before.requestId).toBe("r-1");
    // A requestId inside the payload is not the frame's.
    const nested = decodeJson(`{"type":"publish","room":"a","payload":{"requestId":"inner","x":${deep}}}`);
    expect(nested.ok ? "parsed" : nested.requestId).toBeUndefined();
  });

  it("oversize → ARQ_FRAME_TOO_LARGE before parsing", () => {
    const big = JSON.stringify({ type: "publish", room: "a", payload: "x".repeat(2000) });
    expect(code(decodeJson(big, { maxBytes: 1000 }))).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(code(decodeProto(new Uint8Array(1001), { maxBytes: 1000 }))).toBe(ErrorCode.FRAME_TOO_LARGE);
    // multi-byte characters count as bytes, not as UTF-16 units
    expect(code(decodeJson(JSON.stringify({ type: "publish", room: "a", payload: "é".repeat(400) }), { maxBytes: 800 }))).toBe(
      ErrorCode.FRAME_TOO_LARGE,
    );
  });

  it("returns the request id with the fault when it could be read", () => {
    const result = decodeJson('{"type":"subscribe","room":"a b","requestId":"q9"}');
    expect(result).toMatchObject({ ok: false, requestId: "q9" });
  });

  it("protobuf: invalid bytes, unknown type numbers and non-JSON payloads", () => {
    expect(code(decodeProto(new Uint8Array([0x0a, 0xff, 0xff, 0xff])))).toBe(ErrorCode.FRAME_MALFORMED);
    expect(code(decodeProto(new Uint8Array([0x08, 0x63])))).toBe(ErrorCode.FRAME_UNKNOWN_TYPE); // type = 99
    expect(code(decodeProto(new Uint8Array([])))).toBe(ErrorCode.FRAME_MISSING_FIELD);
    const notJson = encodeProto({ type: "publish", room: "a", payload: new Uint8Array([0xff, 0x00]) });
    expect(code(decodeProto(notJson))).toBe(ErrorCode.FRAME_WRONG_TYPE);
    const binary = encodeProto({ type: "publish", room: "a", payload: new Uint8Array([0xff, 0x00]), payloadFormat: "binary" });
    expect(decodeProto(binary).ok).toBe(true);
  });

  it("decodeFrame routes text to JSON and bytes to protobuf", () => {
    expect(ok(decodeFrame('{"type":"ping"}'))).toEqual({ type: "ping" });
    expect(ok(decodeFrame(encodeProto({ type: "ping", requestId: "1" })))).toEqual({ type: "ping", requestId: "1" });
  });

  it("property: arbitrary text and bytes never throw out of the decoders", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const r = decodeJson(text);
        return r.ok || typeof r.error.code === "string";
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const r = decodeProto(bytes);
        return r.ok || typeof r.error.code === "string";
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const r = decodeJson(JSON.stringify({ type: "publish", room: "r", payload: value, headers: value, since: value, echo: value }));
        return r.ok || typeof r.error.code === "string";
      }),
      { numRuns: 1000 },
    );
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------------------------
// Round trip: JSON → frame → protobuf → frame → JSON is the identity for valid canonical frames.

const str = fc.string({ minLength: 1, maxLength: 12 });
const uint = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const uint32 = fc.integer({ min: 1, max: 0xffffffff });
const int = fc.oneof(fc.integer({ min: -2_000_000_000_000, max: -1 }), fc.integer({ min: 1, max: 2_000_000_000_000 }));
const jsonValue = fc.jsonValue({ maxDepth: 3 }).filter((v) => v !== null);
const room = fc.stringMatching(/^[A-Za-z0-9_\-.:@/=+!]{1,40}$/);
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const member = fc.record(
  { clientId: opt(str), userId: opt(str), info: opt(jsonValue), joinedAt: opt(int), connections: opt(uint32) },
  { requiredKeys: [] },
);
const stateEntry = fc.record(
  {
    key: fc.stringMatching(/^[a-z0-9_.:-]{1,20}$/),
    value: opt(jsonValue),
    version: opt(uint),
    ifVersion: opt(fc.nat()),
    deleted: opt(fc.constant(true)),
    updatedAt: opt(int),
    updatedBy: opt(str),
  },
  { requiredKeys: ["key"] },
);
const baseFields = {
  id: opt(str),
  requestId: opt(str),
  tenant: opt(str),
  room: opt(room),
  payload: opt(jsonValue),
  headers: opt(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.string({ maxLength: 20 }), { minKeys: 1, maxKeys: 4 })),
  offset: opt(uint),
  epoch: opt(str),
  since: opt(fc.record({ offset: opt(uint), epoch: str }, { requiredKeys: ["epoch"] })),
  recovered: opt(fc.boolean()),
  idempotencyKey: opt(str),
  delta: opt(fc.constant(true)),
  error: opt(fc.record({ code: str, message: str, retryable: opt(fc.constant(true)) }, { requiredKeys: ["code", "message"] })),
  members: opt(fc.array(member, { minLength: 1, maxLength: 3 })),
  joined: opt(fc.array(member, { minLength: 1, maxLength: 2 })),
  left: opt(fc.array(member, { minLength: 1, maxLength: 2 })),
  state: opt(fc.array(stateEntry, { minLength: 1, maxLength: 3 })),
  command: opt(str),
  args: opt(jsonValue),
  status: opt(str),
  token: opt(str),
  clientId: opt(str),
  version: opt(str),
  limits: opt(fc.record({ maxPayloadBytes: opt(fc.integer({ min: 1, max: 2 ** 31 })), pingIntervalMs: opt(fc.integer({ min: 1, max: 99999 })) }, { requiredKeys: [] })),
  echo: opt(fc.constant(true)),
  timestamp: opt(int),
  reason: opt(str),
  history: opt(fc.record({ fromOffset: opt(uint), limit: opt(fc.integer({ min: 1, max: 1000 })), reverse: opt(fc.constant(true)), twistId: opt(str) }, { requiredKeys: [] })),
  sender: opt(str),
  inspection: opt(fc.record({ decision: opt(str), flags: opt(fc.array(str, { minLength: 1, maxLength: 2 })), policyVersion: opt(uint32) }, { requiredKeys: [] })),
  expiresAt: opt(int),
  info: opt(member),
  protocol: opt(str),
};
const frameType = fc.constantFrom(...FRAME_TYPES.slice(1));
const leafFrame = fc.record({ type: frameType, ...baseFields }, { requiredKeys: ["type"] });
const anyFrame = fc.record({ type: frameType, ...baseFields, messages: opt(fc.array(leafFrame, { minLength: 1, maxLength: 2 })) }, { requiredKeys: ["type"] });

/** Drops object keys whose value is undefined or an empty object, as the canonical JSON face does. */
function canonicalJson(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, function (this: unknown, _k, v) {
      const emptyObject = v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0;
      return emptyObject && !Array.isArray(this) ? undefined : v;
    }),
  );
}

describe("codec - round trip", () => {
  it("property: JSON → frame → protobuf → frame → JSON is identity", () => {
    fc.assert(
      fc.property(anyFrame, (generated) => {
        const json = JSON.stringify(canonicalJson(generated));
        const first = ok(decodeJson(json, { from: "any" }));
        const second = ok(decodeProto(encodeProto(first), { from: "any" }));
        expect(encodeJson(second)).toBe(encodeJson(first));
        expect(JSON.parse(encodeJson(first))).toEqual(JSON.parse(json));
      }),
      { numRuns: 500 },
    );
  }, 60_000);

  it("property: binary payloads round-trip through both faces", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (bytes) => {
        const frame: Frame = { type: "message", room: "r", payload: bytes, payloadFormat: "binary" };
        const viaJson = ok(decodeJson(encodeJson(frame), { from: "any" }));
        const viaProto = ok(decodeProto(encodeProto(viaJson), { from: "any" }));
        expect(Array.from(viaProto.payload!)).toEqual(Array.from(bytes));
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it("client frames a client may send are accepted from clients", () => {
    for (const type of CLIENT_FRAME_TYPES) expect(FRAME_TYPES).toContain(type);
    expect(parseJsonBytes(jsonBytes({ a: [1, "x"] }))).toEqual({ a: [1, "x"] });
  });
});
