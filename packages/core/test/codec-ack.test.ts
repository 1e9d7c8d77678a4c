import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeJson, encodeJson, encodeJson10, type Frame } from "../src/index.js";

describe("the ack writer", () => {
  it("writes any ack exactly as the schema-driven writer does, in both protocol versions", () => {
    const text = fc.oneof(fc.constant(""), fc.string({ maxLength: 12 }), fc.constantFrom('q"uo\\te', "é\u{1F600}", "\u0001"));
    const ack = fc.record(
      {
        id: text,
        requestId: text,
        room: text,
        offset: fc.oneof(fc.constant(0), fc.nat(), fc.constant(2 ** 53 - 1)),
        epoch: text,
        duplicate: fc.boolean(),
        // Not in the writer's set: such an ack goes to the schema-driven writer.
        tenant: text,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(ack, (fields) => {
        const frame = { type: "ack", ...fields } as Frame;
        const expected = encodeJson10(frame);
        expect(encodeJson(frame)).toBe(expected);
        expect(encodeJson(frame, { protocol: "1.1" })).toBe(expected);
        // An undefined field is no field.
        expect(encodeJson({ ...frame, error: undefined, epoch: undefined })).toBe(encodeJson10({ ...frame, epoch: undefined }));
      }),
      { numRuns: 1000 },
    );
  });

  it("writes the gateway's ack as a frame that decodes back to it", () => {
    const frame: Frame = { type: "ack", id: "m-1", room: "lobby", offset: 42, epoch: "e1", requestId: "r7", duplicate: true };
    const text = encodeJson(frame);
    expect(text).toBe('{"type":"ack","id":"m-1","requestId":"r7","room":"lobby","offset":42,"epoch":"e1","duplicate":true}');
    const back = decodeJson(text, { from: "any" });
    expect(back.ok && back.frame).toMatchObject(frame);
  });
});
