import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeJson, encodeJson, encodeJsonParts, jsonBytes, utf8Decode, type EncodeOptions, type Frame } from "../src/index.js";

const vectorsDir = join(import.meta.dirname, "../../../proto/vectors");

function vectorFrames(): Array<[string, Frame]> {
  const out: Array<[string, Frame]> = [];
  for (const dir of [vectorsDir, join(vectorsDir, "1.1")]) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
      const vector = JSON.parse(readFileSync(join(dir, file), "utf8")) as { json: unknown };
      const decoded = decodeJson(JSON.stringify(vector.json), { from: "any" });
      if (decoded.ok) out.push([file, decoded.frame]);
    }
  }
  return out;
}

const OPTIONS: Array<EncodeOptions | undefined> = [undefined, { protocol: "1.1" }, { protocol: "1.1", epoch: false }];

describe("codec - encodeJsonParts", () => {
  it("head + payload bytes + tail is encodeJson's text, for every shared vector in every protocol form", () => {
    const frames = vectorFrames();
    expect(frames.length).toBeGreaterThan(30);
    let split = 0;
    for (const [file, frame] of frames) {
      for (const options of OPTIONS) {
        const parts = encodeJsonParts(frame, options);
        const joined = parts.head + (parts.payload === undefined ? "" : utf8Decode(parts.payload)) + parts.tail;
        expect(joined, `${file} ${JSON.stringify(options)}`).toBe(encodeJson(frame, options));
        if (parts.payload !== undefined) {
          split++;
          expect(parts.payload).toBe(frame.payload);
        }
      }
    }
    expect(split).toBeGreaterThan(10);
  });

  it("a message whose payload nests frames, or is binary, empty or missing, comes back whole", () => {
    const base: Frame = { type: "message", id: "m1", room: "lobby", offset: 3, epoch: "e1", timestamp: 5 };
    for (const frame of [base, { ...base, payload: new Uint8Array(0) }, { ...base, payload: new Uint8Array([1, 2]), payloadFormat: "binary" as const }]) {
      const parts = encodeJsonParts(frame);
      expect(parts).toEqual({ head: encodeJson(frame), payload: undefined, tail: "" });
    }
    const page: Frame = { type: "history_page", room: "lobby", epoch: "e1", messages: [{ ...base, payload: jsonBytes({ a: 1 }) }] };
    for (const options of OPTIONS) expect(encodeJsonParts(page, options)).toEqual({ head: encodeJson(page, options), payload: undefined, tail: "" });
  });

  it("a 1.1 message with a field the compact object has no key for is split in its 1.0 form", () => {
    const frame: Frame = { type: "message", id: "m1", room: "lobby", payload: jsonBytes({ text: "hé" }), requestId: "r1", headers: { "x-twist-id": "main", a: "b" } };
    const parts = encodeJsonParts(frame, { protocol: "1.1" });
    expect(parts.payload).toBe(frame.payload);
    expect(parts.head + utf8Decode(parts.payload!) + parts.tail).toBe(encodeJson(frame, { protocol: "1.1" }));
    expect(JSON.parse(parts.head + utf8Decode(parts.payload!) + parts.tail)).toMatchObject({ type: "message", headers: { a: "b" } });
  });
});
