import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeJson, jsonBytes, utf8Decode, type Frame } from "../src/index.js";

/** Decodes a publish frame as the gateway does (the text with the bytes it came from); the payload and those bytes. */
function decodeWithSource(text: string, withSource = true): { payload: Uint8Array; source: Buffer } {
  const source = Buffer.from(text, "utf8");
  const result = decodeJson(text, withSource ? { source } : {});
  if (!result.ok) throw result.error;
  const frame = result.frame as Frame & { payload?: Uint8Array };
  expect(frame.type).toBe("publish");
  return { payload: frame.payload!, source };
}

function decodePublish(text: string, withSource = true): Uint8Array {
  return decodeWithSource(text, withSource).payload;
}

function frameWith(payloadText: string, extra = ""): string {
  return `{"type":"publish","requestId":"r1","room":"lobby","payload":${payloadText}${extra}}`;
}

describe("JSON publish payload pass-through", () => {
  it("gives the same bytes as re-serialising, for any value JSON.stringify writes", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        fc.pre(value !== null); // a null payload is no payload (ARQ_FRAME_MISSING_FIELD)
        const raw = JSON.stringify(value);
        const canonical = jsonBytes(JSON.parse(raw));
        expect(utf8Decode(decodePublish(frameWith(raw)))).toBe(utf8Decode(canonical));
        expect(utf8Decode(decodePublish(frameWith(raw), false))).toBe(utf8Decode(canonical));
        // The same frame with the payload first and fields after it.
        const first = `{"payload":${raw},"type":"publish","room":"lobby"}`;
        expect(utf8Decode(decodePublish(first))).toBe(utf8Decode(canonical));
      }),
      { numRuns: 400 },
    );
  });

  it("gives the same bytes as re-serialising for any number literal, canonical or not", () => {
    const digits = (max: number) => fc.string({ unit: fc.constantFrom("0", "1", "5", "9"), minLength: 1, maxLength: max });
    const literal = fc
      .tuple(fc.boolean(), digits(18), fc.option(digits(20)), fc.option(fc.tuple(fc.constantFrom("e", "E", "e+", "e-"), digits(3))))
      .map(([neg, int, frac, exp]) => {
        const whole = int.length > 1 ? int.replace(/^0+(?=.)/, "") : int; // JSON allows no leading zero
        return `${neg ? "-" : ""}${whole}${frac === null ? "" : "." + frac}${exp === null ? "" : exp[0] + exp[1]}`;
      });
    fc.assert(
      fc.property(literal, fc.double({ noNaN: true, noDefaultInfinity: true }), (text, d) => {
        for (const raw of [text, `[${text},"x"]`, JSON.stringify(d)]) {
          expect(utf8Decode(decodePublish(frameWith(raw))), raw).toBe(utf8Decode(jsonBytes(JSON.parse(raw))));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("judges 16- and 17-digit decimals as JSON.stringify does, on both sides of 2^52", () => {
    // Millisecond timestamps with decimals (16-17 digits), and the digits of 2^52 +- a little with the point anywhere.
    const stamp = fc.tuple(fc.double({ min: 1e12, max: 9e15, noNaN: true }), fc.integer({ min: 0, max: 6 })).map(([v, k]) => v.toFixed(k));
    const nearBound = fc.tuple(fc.integer({ min: -3000, max: 3000 }), fc.integer({ min: 0, max: 18 })).map(([delta, k]) => {
      const m = String(2 ** 52 + delta);
      return k === 0 ? m : k >= m.length ? `0.${"0".repeat(k - m.length)}${m}` : `${m.slice(0, m.length - k)}.${m.slice(m.length - k)}`;
    });
    fc.assert(
      fc.property(fc.oneof(stamp, nearBound), fc.boolean(), (literal, neg) => {
        const raw = `{"ts":${neg ? "-" : ""}${literal},"seq":1}`;
        const { payload, source } = decodeWithSource(frameWith(raw));
        const canonical = JSON.stringify(JSON.parse(raw));
        expect(utf8Decode(payload), raw).toBe(canonical);
        // Kept as the client's bytes exactly when they already are the canonical form.
        expect(payload.buffer === source.buffer, raw).toBe(raw === canonical);
      }),
      { numRuns: 3000 },
    );
    for (const raw of ["1796696553669.815", "4503599627370495", "0.4503599627370495", "4503599627370496", "45035996273704.97"]) {
      expect(utf8Decode(decodePublish(frameWith(raw))), raw).toBe(JSON.stringify(JSON.parse(raw)));
    }
  });

  it("passes a compact ASCII payload through as a view of the message, not a copy", () => {
    const text = frameWith('{"text":"hi","n":[1,2,{"k":null}],"ok":true}', ',"idempotencyKey":"k"');
    const source = Buffer.from(text, "utf8");
    const result = decodeJson(text, { source });
    if (!result.ok) throw result.error;
    const payload = (result.frame as Frame & { payload: Uint8Array }).payload;
    expect(payload.buffer).toBe(source.buffer);
    expect(utf8Decode(payload)).toBe('{"text":"hi","n":[1,2,{"k":null}],"ok":true}');
    expect(result.frame).toMatchObject({ requestId: "r1", room: "lobby", idempotencyKey: "k" });
  });

  it("re-serialises what inspection would read differently: escapes, whitespace, fractions and exponents", () => {
    const cases: Array<[string, string]> = [
      ['{"k":"\\u0070assword"}', '{"k":"password"}'],
      ['{"k":"a\\/b"}', '{"k":"a/b"}'],
      ['{ "k" : "v" }', '{"k":"v"}'],
      ['{"k":\n"v"}', '{"k":"v"}'],
      ["4.111111111111111e15", "4111111111111111"],
      ["4111111111111111E0", "4111111111111111"],
      ["1.0", "1"],
      ["-0.0", "0"],
      ["1e21", "1e+21"],
      ["1E+21", "1e+21"],
      ['{"n":2.50}', '{"n":2.5}'],
      ["[0.1,1733.560]", "[0.1,1733.56]"],
    ];
    for (const [raw, canonical] of cases) {
      const payload = decodePublish(frameWith(raw));
      expect(utf8Decode(payload), raw).toBe(canonical);
    }
    // An escape or a space anywhere in the frame (not only in the payload) takes the same safe path.
    expect(utf8Decode(decodePublish('{"type":"publish", "room":"lobby","payload":{"a":1}}'))).toBe('{"a":1}');
    expect(utf8Decode(decodePublish('{"type":"publish","room":"lobby","requestId":"\\u0031","payload":{"a":1}}'))).toBe('{"a":1}');
  });

  it("keeps letters that are not exponents, and strings holding what would otherwise disqualify", () => {
    for (const raw of ["true", "false", '"1.5e3 and spaces"', '{"e":-12,"E":[true,false]}', '"\u00e9t\u00e9 \u{1F600}"']) {
      const { payload, source } = decodeWithSource(frameWith(raw));
      expect(utf8Decode(payload), raw).toBe(utf8Decode(jsonBytes(JSON.parse(raw))));
      // ASCII frames are viewed in place; others are encoded from the text's span (still not re-serialised).
      expect(payload.buffer === source.buffer, raw).toBe(/^[\x20-\x7e]*$/.test(raw));
    }
  });

  it("takes the last of duplicate payload keys, as JSON.parse does, and keeps a payload's own duplicate keys for inspection", () => {
    expect(utf8Decode(decodePublish('{"type":"publish","room":"lobby","payload":{"a":1},"payload":[2]}'))).toBe("[2]");
    // Inspection of these bytes sees both values; a JSON reader takes the last, like the parsed value.
    expect(utf8Decode(decodePublish(frameWith('{"s":"AKIAIOSFODNN7EXAMPLE","s":"x"}')))).toBe('{"s":"AKIAIOSFODNN7EXAMPLE","s":"x"}');
  });

  it("passes numbers with fractions or exponents through when they are written as JSON.stringify writes them", () => {
    for (const raw of ['{"ts":1733.567,"seq":7}', "1e+21", "-0.5", "[1.5e-7,0.1]"]) {
      const { payload, source } = decodeWithSource(frameWith(raw));
      expect(utf8Decode(payload), raw).toBe(raw);
      expect(payload.buffer === source.buffer, raw).toBe(true);
    }
  });

  it("re-serialises -0 and integers past 2^53, as JSON.stringify writes them", () => {
    expect(utf8Decode(decodePublish(frameWith('{"id":12345678901234567890}')))).toBe('{"id":12345678901234567000}');
    expect(utf8Decode(decodePublish(frameWith("[-0,1]")))).toBe("[0,1]");
    const { payload, source } = decodeWithSource(frameWith("[-1,0,123456789012345]"));
    expect(payload.buffer).toBe(source.buffer);
  });

  it("does not look at nested payload keys or at a binary payload", () => {
    const nested = decodePublish(frameWith('{"payload":{"x":1}}'));
    expect(utf8Decode(nested)).toBe('{"payload":{"x":1}}');
    const text = '{"type":"publish","room":"lobby","payloadFormat":"binary","payload":"AAEC"}';
    const result = decodeJson(text, { source: Buffer.from(text) });
    if (!result.ok) throw result.error;
    expect(Array.from((result.frame as Frame & { payload: Uint8Array }).payload)).toEqual([0, 1, 2]);
  });

  it("does not keep the message after the decode: the next frame without a payload gets none", () => {
    decodePublish(frameWith('{"a":1}'));
    const result = decodeJson('{"type":"subscribe","room":"lobby"}', { source: Buffer.from('{"type":"subscribe","room":"lobby"}') });
    expect(result.ok && (result.frame as Frame & { payload?: Uint8Array }).payload).toBeFalsy();
  });
});
