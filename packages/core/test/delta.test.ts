import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyDelta, createDelta, DeltaCursor, DeltaDecoder, DeltaEncoder } from "../src/delta/index.js";
import { ErrorCode } from "../src/errors.js";
import type { Frame } from "../src/frame/types.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (value: unknown) => enc.encode(JSON.stringify(value));

function ticker(price: number, volume: number) {
  return { symbol: "BTC-EUR", bid: price - 1, ask: price + 1, last: price, volume, open: 100, high: 120, low: 90, ts: 1767225600000 };
}

describe("delta - createDelta / applyDelta", () => {
  it("delta - a small change gives a delta smaller than the payload that rebuilds it exactly", () => {
    const prev = bytes(ticker(101, 5000));
    const next = bytes(ticker(102, 5001));
    const delta = createDelta(prev, next)!;
    expect(delta).toBeInstanceOf(Uint8Array);
    expect(delta.length).toBeLessThan(next.length);
    expect(Array.from(applyDelta(prev, delta))).toEqual(Array.from(next));
  });

  it("delta - no delta when it would not be smaller (unrelated or empty payloads)", () => {
    expect(createDelta(bytes({ a: 1 }), bytes({ zzzz: "qqqq" }))).toBeUndefined();
    expect(createDelta(bytes({ a: 1 }), new Uint8Array(0))).toBeUndefined();
  });

  it("delta - a delta applied to the wrong base or corrupted fails with ARQ_FRAME_MALFORMED", () => {
    const prev = bytes(ticker(101, 5000));
    const delta = createDelta(prev, bytes(ticker(102, 5000)))!;
    const other = bytes(ticker(555, 1));
    expect(() => applyDelta(other, delta)).toThrow(expect.objectContaining({ code: ErrorCode.FRAME_MALFORMED }));
    expect(() => applyDelta(prev, delta.slice(0, delta.length - 3))).toThrow(expect.objectContaining({ code: ErrorCode.FRAME_MALFORMED }));
    expect(() => applyDelta(prev, enc.encode("garbage"))).toThrow(expect.objectContaining({ code: ErrorCode.FRAME_MALFORMED }));
    expect(() => applyDelta(prev, delta, 10)).toThrow(expect.objectContaining({ code: ErrorCode.FRAME_MALFORMED }));
  });
});

describe("delta - encoder, cursor, decoder", () => {
  it("delta - the encoder computes one delta per message shared by all subscribers; new ones start full", () => {
    const encoder = new DeltaEncoder();
    const a = new DeltaCursor();
    const b = new DeltaCursor();
    const first = encoder.encode("t.r", bytes(ticker(100, 1)));
    expect(first.delta).toBeUndefined();
    expect(a.next(first)).toEqual({ payload: first.full, delta: false });
    const second = encoder.encode("t.r", bytes(ticker(101, 1)));
    expect(second.baseSeq).toBe(first.seq);
    expect(a.next(second)).toEqual({ payload: second.delta, delta: true });
    // b joins now: its first message is full even though a delta exists, then it gets deltas.
    expect(b.next(second).delta).toBe(false);
    const third = encoder.encode("t.r", bytes(ticker(102, 1)));
    expect(a.next(third).delta).toBe(true);
    expect(b.next(third).delta).toBe(true);
    // After a reset (resubscribe or recovery) the next one is full.
    a.reset();
    expect(a.next(encoder.encode("t.r", bytes(ticker(103, 1)))).delta).toBe(false);
  });

  it("delta - a subscriber that skipped a message gets the next one full; forgotten rooms restart full", () => {
    const encoder = new DeltaEncoder({ maxRooms: 1 });
    const c = new DeltaCursor();
    c.next(encoder.encode("t.r", bytes(ticker(100, 1))));
    encoder.encode("t.r", bytes(ticker(101, 1))); // not sent to c (e.g. its own publish with echo off)
    expect(c.next(encoder.encode("t.r", bytes(ticker(102, 1)))).delta).toBe(false);
    encoder.encode("t.other", bytes(ticker(1, 1))); // evicts t.r
    const after = encoder.encode("t.r", bytes(ticker(103, 1)));
    expect(after.delta).toBeUndefined();
    expect(c.next(after).delta).toBe(false);
  });

  it("delta - a change of payload format is never sent as a delta", () => {
    const encoder = new DeltaEncoder();
    encoder.encode("r", bytes({ a: 1 }), "json");
    expect(encoder.encode("r", bytes({ a: 1 }), "binary").delta).toBeUndefined();
  });

  it("delta - the decoder rebuilds deltas, restores the base format, and refuses a delta without a base", () => {
    const decoder = new DeltaDecoder();
    const prev = new Uint8Array(Array.from({ length: 64 }, (_, i) => i));
    const next = prev.slice();
    next[10] = 255;
    expect(decoder.apply("r", { type: "message", payload: prev, payloadFormat: "binary", offset: 1 })).toMatchObject({ offset: 1 });
    const delta = createDelta(prev, next)!;
    const out = decoder.apply("r", { type: "message", payload: delta, payloadFormat: "binary", delta: true, offset: 2 });
    expect(out.delta).toBeUndefined();
    expect(out.payloadFormat).toBe("binary");
    expect(Array.from(out.payload!)).toEqual(Array.from(next));
    decoder.reset("r");
    expect(() => decoder.apply("r", { type: "message", payload: delta, delta: true })).toThrow(
      expect.objectContaining({ code: ErrorCode.FRAME_MALFORMED }),
    );
  });

  it("delta - property: random JSON sequences reconstruct exactly through encoder, cursors and decoders", () => {
    const value = fc.jsonValue({ maxDepth: 3 });
    // Sequences where each value is often a small edit of the previous one, like real room streams.
    let deltas = 0;
    const sequence = fc.array(fc.tuple(value, fc.boolean(), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 25 });
    fc.assert(
      fc.property(sequence, fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }), (steps, resets) => {
        const encoder = new DeltaEncoder();
        const cursors = [new DeltaCursor(), new DeltaCursor()];
        const decoders = [new DeltaDecoder(), new DeltaDecoder()];
        let doc: unknown = { base: "x".repeat(40), n: 0 };
        steps.forEach(([v, replace, field], i) => {
          doc = replace ? v : { ...(doc as object), [`f${field}`]: v, n: i };
          const payload = bytes(doc);
          const encoding = encoder.encode("t.room", payload);
          cursors.forEach((cursor, s) => {
            if (s === 1 && resets[i]) {
              cursor.reset();
              decoders[s]!.reset("t.room");
            }
            const sent = cursor.next(encoding);
            const frame: Frame = { type: "message", room: "room", payload: sent.payload, offset: i + 1 };
            if (sent.delta) {
              deltas++;
              frame.delta = true;
              frame.payloadFormat = "binary";
            }
            const got = decoders[s]!.apply("t.room", frame);
            expect(dec.decode(got.payload)).toBe(JSON.stringify(doc));
            expect(got.delta).toBeUndefined();
            expect(got.payloadFormat).toBeUndefined();
          });
        });
      }),
      { numRuns: 200 },
    );
    expect(deltas).toBeGreaterThan(100);
  });

  it("delta - works without Node's Buffer (as in browsers)", () => {
    const g = globalThis as Record<string, unknown>;
    const saved = g["Buffer"];
    g["Buffer"] = undefined;
    try {
      const prev = bytes(ticker(1, 1));
      const next = bytes(ticker(2, 1));
      const delta = createDelta(prev, next)!;
      expect(Object.getPrototypeOf(delta)).toBe(Uint8Array.prototype);
      const out = applyDelta(prev, delta);
      expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
      expect(dec.decode(out)).toBe(dec.decode(next));
    } finally {
      g["Buffer"] = saved;
    }
  });
});
