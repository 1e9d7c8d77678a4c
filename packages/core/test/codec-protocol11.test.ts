import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  COMPACT_MESSAGE_KEYS,
  ErrorCode,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  decodeJson,
  decodeProto,
  encodeJson,
  encodeProto,
  expandMessage,
  isProtocolVersion,
  jsonBytes,
  jsonCodec,
  protobufCodec,
  utf8Length,
  type Frame,
} from "../src/index.js";

const NOW = 1796597881414;
const EPOCH = "0454dc83f0954fd8";

/** A live message as the gateway builds it (rooms.ts publishMessage). */
function live(overrides: Partial<Frame> = {}): Frame {
  return {
    type: "message",
    id: "-MD6Qrtr-4821",
    room: "lobby",
    payload: jsonBytes({ text: "hi" }),
    headers: { "x-timestamp": String(NOW), "x-twist-id": "main" },
    offset: 4821,
    epoch: EPOCH,
    timestamp: NOW,
    sender: "alice",
    ...overrides,
  };
}

function ok(result: ReturnType<typeof decodeJson>): Frame {
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
  return result.frame;
}

describe("codec - protocol 1.1 versions", () => {
  it("protocol versions - 1.0 stays the default, 1.1 is supported, others are not", () => {
    expect(PROTOCOL_VERSION).toBe("1.0");
    expect(PROTOCOL_VERSIONS).toEqual(["1.0", "1.1"]);
    expect(isProtocolVersion("1.1")).toBe(true);
    for (const v of ["2.0", "abc", "", "1", 1.1, undefined]) expect(isProtocolVersion(v), String(v)).toBe(false);
  });

  it("compact keys - one letter each, m first, p last", () => {
    const keys = Object.keys(COMPACT_MESSAGE_KEYS);
    for (const k of keys) expect(k).toMatch(/^[a-z]$/);
    expect(keys[0]).toBe("m");
    expect(keys.at(-1)).toBe("p");
    expect(new Set(Object.values(COMPACT_MESSAGE_KEYS)).size).toBe(keys.length);
  });
});

describe("codec - protocol 1.1 JSON message", () => {
  it("compact message - the ordinary message is the documented text, 77 bytes over its payload", () => {
    const text = encodeJson(live(), { protocol: "1.1", epoch: false });
    expect(text).toBe('{"m":"lobby","i":"-MD6Qrtr-4821","o":4821,"t":1796597881414,"s":"alice","p":{"text":"hi"}}');
    expect(utf8Length(text) - '{"text":"hi"}'.length).toBe(77);
    // The same message in 1.0, for the record: every field, both headers, the epoch.
    expect(utf8Length(encodeJson(live())) - '{"text":"hi"}'.length).toBe(211);
  });

  it("compact message - carries the epoch only when asked (default: yes)", () => {
    expect(encodeJson(live(), { protocol: "1.1" })).toBe(
      '{"m":"lobby","i":"-MD6Qrtr-4821","o":4821,"e":"0454dc83f0954fd8","t":1796597881414,"s":"alice","p":{"text":"hi"}}',
    );
    // 1.0 ignores the epoch option: every message carries it.
    expect(encodeJson(live(), { epoch: false })).toBe(encodeJson(live()));
  });

  it("compact message - decodes to what the wire had; expandMessage gives the 1.0 frame back", () => {
    const wire = ok(decodeJson(encodeJson(live(), { protocol: "1.1", epoch: false }), { from: "any" }));
    expect(wire).toEqual({ type: "message", id: "-MD6Qrtr-4821", room: "lobby", payload: jsonBytes({ text: "hi" }), offset: 4821, timestamp: NOW, sender: "alice" });
    const expanded = expandMessage(wire, EPOCH);
    expect(expanded).toEqual(ok(decodeJson(encodeJson(live()), { from: "any" })));
    // An epoch on the wire wins over the one the subscription knew.
    const withEpoch = ok(decodeJson(encodeJson(live(), { protocol: "1.1" }), { from: "any" }));
    expect(expandMessage(withEpoch, "older").epoch).toBe(EPOCH);
  });

  it("compact message - rare fields: other headers, non-default twist, inspection, delta, binary payload", () => {
    const frame = live({
      headers: { "x-timestamp": String(NOW), "x-twist-id": "draft-2", trace: "abc" },
      inspection: { decision: "redact", reasonCode: "CASIL_POLICY_REDACTED", flags: ["contains_probable_secret"], policyVersion: 7 },
      payload: new Uint8Array([1, 2, 3, 255]),
      payloadFormat: "binary",
      delta: true,
    });
    const text = encodeJson(frame, { protocol: "1.1" });
    expect(text).toBe(
      '{"m":"lobby","i":"-MD6Qrtr-4821","o":4821,"e":"0454dc83f0954fd8","t":1796597881414,"s":"alice",' +
        '"h":{"x-twist-id":"draft-2","trace":"abc"},' +
        '"c":{"decision":"redact","reasonCode":"CASIL_POLICY_REDACTED","flags":["contains_probable_secret"],"policyVersion":7},' +
        '"d":true,"f":"binary","p":"AQID/w=="}',
    );
    expect(expandMessage(ok(decodeJson(text, { from: "any" })), undefined)).toEqual(frame);
  });

  it("compact message - an x-timestamp header that is not the timestamp is kept", () => {
    const frame = live({ headers: { "x-timestamp": "12", "x-twist-id": "main" } });
    expect(JSON.parse(encodeJson(frame, { protocol: "1.1" })).h).toEqual({ "x-timestamp": "12" });
  });

  it("compact message - a message field without a compact key keeps the 1.0 shape, with the 1.1 omissions", () => {
    const text = encodeJson(live({ tenant: "acme" }), { protocol: "1.1", epoch: false });
    expect(JSON.parse(text)).toEqual({ type: "message", id: "-MD6Qrtr-4821", tenant: "acme", room: "lobby", payload: { text: "hi" }, offset: 4821, timestamp: NOW, sender: "alice" });
  });

  it("compact message - other frames are the same in 1.0 and 1.1", () => {
    const frames: Frame[] = [
      { type: "ack", id: "m1", room: "lobby", offset: 3, epoch: "e" },
      { type: "subscribed", room: "lobby", offset: 3, epoch: "e", recovered: true },
      { type: "welcome", clientId: "c", protocol: "1.1" },
    ];
    for (const f of frames) {
      expect(encodeJson(f, { protocol: "1.1" })).toBe(encodeJson(f));
      expect(encodeProto(f, { protocol: "1.1" })).toEqual(encodeProto(f));
    }
  });

  it("compact message - messages of a list carry the epoch only when it differs from the list frame's", () => {
    const page: Frame = {
      type: "history_page",
      room: "lobby",
      offset: 4822,
      epoch: EPOCH,
      messages: [live(), live({ offset: 4822, id: "-MD6Qrtr-4822", epoch: "other" })],
    };
    const parsed = JSON.parse(encodeJson(page, { protocol: "1.1" }));
    expect(parsed.type).toBe("history_page");
    expect(parsed.epoch).toBe(EPOCH);
    expect(parsed.messages[0]).toEqual({ m: "lobby", i: "-MD6Qrtr-4821", o: 4821, t: NOW, s: "alice", p: { text: "hi" } });
    expect(parsed.messages[1].e).toBe("other");
    const decoded = ok(decodeJson(JSON.stringify(parsed), { from: "any" }));
    expect(decoded.messages!.map((m) => expandMessage(m, decoded.epoch))).toEqual(page.messages);
  });

  it("compact message - bad values get the codes of the 1.0 fields they stand for", () => {
    const cases: Array<[string, string]> = [
      ['{"m":1}', ErrorCode.FRAME_WRONG_TYPE],
      ['{"m":"lobby","o":-1}', ErrorCode.FRAME_WRONG_TYPE],
      ['{"m":"lobby","t":"soon"}', ErrorCode.FRAME_WRONG_TYPE],
      ['{"m":"lobby","f":"binary","p":"not base64!"}', ErrorCode.FRAME_WRONG_TYPE],
      ['{"m":"lobby","f":"zip","p":"x"}', ErrorCode.FRAME_WRONG_TYPE],
      ['{"m":"lobby","h":{"Bad Name":"x"}}', ErrorCode.HEADER_INVALID],
      ['{"m":"lobby","d":"yes"}', ErrorCode.FRAME_WRONG_TYPE],
      ['{"type":"history_page","messages":[{"m":"lobby","i":7}]}', ErrorCode.FRAME_WRONG_TYPE],
    ];
    for (const [text, code] of cases) {
      const result = decodeJson(text, { from: "any" });
      expect(result.ok, text).toBe(false);
      if (!result.ok) expect(result.error.code, text).toBe(code);
    }
    // Unknown keys are ignored, as unknown fields are.
    expect(ok(decodeJson('{"m":"lobby","z":1,"o":2}', { from: "any" }))).toEqual({ type: "message", room: "lobby", offset: 2 });
  });

  it("compact message - a client cannot send one (messages are server frames)", () => {
    const result = decodeJson('{"m":"lobby","p":1}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe(ErrorCode.FRAME_UNEXPECTED);
  });

  it("compact message - encode, decode and expand give back any message the gateway sends", () => {
    const text = fc.string({ maxLength: 12 });
    const room = fc.stringMatching(/^[a-z][a-z0-9:._-]{0,20}$/);
    const frame = fc.record(
      {
        id: text,
        room,
        payload: fc.jsonValue().map((v) => jsonBytes(v)),
        offset: fc.nat(),
        epoch: fc.stringMatching(/^[0-9a-f]{1,16}$/),
        timestamp: fc.integer({ min: 1, max: 2 ** 45 }),
        sender: text,
        twist: fc.option(fc.stringMatching(/^[a-z0-9_-]{1,10}$/), { nil: undefined }),
        extra: fc.option(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), text, { maxKeys: 3 }), { nil: undefined }),
      },
      { requiredKeys: ["room", "epoch", "timestamp"] },
    );
    fc.assert(
      fc.property(frame, fc.boolean(), (f, withEpoch) => {
        const headers: Record<string, string> = { ...f.extra, "x-timestamp": String(f.timestamp), "x-twist-id": f.twist ?? "main" };
        const canonical = ok(
          decodeJson(
            encodeJson({ type: "message", id: f.id, room: f.room, payload: f.payload, headers, offset: f.offset, epoch: f.epoch, timestamp: f.timestamp, sender: f.sender }),
            { from: "any" },
          ),
        );
        const json = ok(decodeJson(encodeJson(canonical, { protocol: "1.1", epoch: withEpoch }), { from: "any" }));
        const proto = ok(decodeProto(encodeProto(canonical, { protocol: "1.1", epoch: withEpoch }), { from: "any" }));
        expect(encodeJson(proto)).toBe(encodeJson(json));
        expect(json.epoch).toBe(withEpoch ? canonical.epoch : undefined);
        expect(expandMessage(json, canonical.epoch)).toEqual(canonical);
      }),
      { numRuns: 300 },
    );
  });
});

describe("codec - protocol 1.1 protobuf message", () => {
  it("protobuf - leaves out the default headers and, when asked, the epoch", () => {
    const bytes = encodeProto(live(), { protocol: "1.1", epoch: false });
    expect(bytes.length).toBeLessThan(encodeProto(live()).length - 40);
    const decoded = ok(decodeProto(bytes, { from: "any" }));
    expect(decoded.headers).toBeUndefined();
    expect(decoded.epoch).toBeUndefined();
    expect(expandMessage(decoded, EPOCH)).toEqual(ok(decodeProto(encodeProto(live()), { from: "any" })));
    const twisted = ok(decodeProto(encodeProto(live({ headers: { "x-timestamp": String(NOW), "x-twist-id": "t2" } }), { protocol: "1.1" }), { from: "any" }));
    expect(twisted.headers).toEqual({ "x-twist-id": "t2" });
    expect(twisted.epoch).toBe(EPOCH);
  });

  it("codecs - take the encode options through the Codec interface", () => {
    expect(jsonCodec.encode(live(), { protocol: "1.1", epoch: false })).toBe(encodeJson(live(), { protocol: "1.1", epoch: false }));
    expect(protobufCodec.encode(live(), { protocol: "1.1" })).toEqual(encodeProto(live(), { protocol: "1.1" }));
  });
});
