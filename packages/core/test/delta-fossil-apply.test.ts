import fc from "fast-check";
import fossilDelta from "fossil-delta";
import { describe, expect, it } from "vitest";
import { fossilApply, fossilChecksum, fossilOutputSize } from "../src/delta/fossil-apply.js";

const enc = new TextEncoder();

/** The reference decoder's verdict: the rebuilt bytes, or "error". */
function reference(base: Uint8Array, delta: Uint8Array): number[] | "error" {
  try {
    return fossilDelta.apply(base, delta);
  } catch {
    return "error";
  }
}

/** Our decoder's verdict, in the same form. */
function ours(base: Uint8Array, delta: Uint8Array): number[] | "error" {
  try {
    return Array.from(fossilApply(base, delta));
  } catch {
    return "error";
  }
}

/** A base and an edited copy of it: so that the encoder finds copies, not only inserts. */
const edited = fc
  .tuple(fc.uint8Array({ maxLength: 600 }), fc.array(fc.tuple(fc.nat(), fc.nat(40), fc.uint8Array({ maxLength: 30 })), { maxLength: 6 }))
  .map(([base, edits]) => {
    let next = Array.from(base);
    for (const [at, cut, insert] of edits) {
      const i = next.length === 0 ? 0 : at % (next.length + 1);
      next = [...next.slice(0, i), ...insert, ...next.slice(i + cut)];
    }
    return { base, next: Uint8Array.from(next) };
  });

describe("delta - our fossil decoder agrees with the fossil-delta package", () => {
  // Each successful apply also proves the checksums agree: ours verifies the one the encoder wrote.
  it("delta - rebuilds every delta the encoder makes, byte for byte (property)", () => {
    fc.assert(
      fc.property(edited, ({ base, next }) => {
        const delta = Uint8Array.from(fossilDelta.create(base, next));
        expect(fossilOutputSize(delta)).toBe(fossilDelta.outputSize(delta));
        expect(Array.from(fossilApply(base, delta))).toEqual(Array.from(next));
      }),
      { numRuns: 400 },
    );
  });

  // Ours is the stricter one: the reference reads a non-digit byte inside a number as a terminator and can then accept a
  // delta with a damaged checksum. What the reference refuses, ours refuses; where both accept, the bytes agree.
  it("delta - a corrupted delta or a wrong base never rebuilds anything the reference would not (property)", () => {
    fc.assert(
      fc.property(edited, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 80 }), ({ base, next }, at, value, other) => {
        const delta = Uint8Array.from(fossilDelta.create(base, next));
        const corrupt = delta.slice();
        corrupt[at % corrupt.length] = value;
        for (const [b, d] of [[base, corrupt], [other, delta]] as const) {
          const mine = ours(b, d);
          const theirs = reference(b, d);
          if (theirs === "error") expect(mine).toBe("error");
          else if (mine !== "error") expect(mine).toEqual(theirs);
        }
        expect(ours(base, delta.subarray(0, at % delta.length))).toBe("error");
      }),
      { numRuns: 400 },
    );
  });

  it("delta - refuses hand-made deltas that reach outside the base or the output, and unknown commands", () => {
    const base = enc.encode("hello world");
    expect(new TextDecoder().decode(fossilApply(base, enc.encode(`5\n5@0,${sumOf("hello")};`)))).toBe("hello");
    expect(() => fossilApply(base, enc.encode("5\n5@9,0;"))).toThrow(/past the end of the base/);
    expect(() => fossilApply(base, enc.encode("2\n5@0,0;"))).toThrow(/exceeds the output size/);
    expect(() => fossilApply(base, enc.encode("3\n9:ab"))).toThrow(/exceeds the output size/);
    expect(() => fossilApply(base, enc.encode("3\n3:ab"))).toThrow(/past the end of the delta/);
    expect(() => fossilApply(base, enc.encode("3\n3!abc"))).toThrow(/unknown delta command/);
    expect(() => fossilApply(base, enc.encode("3\n3:abc"))).toThrow(/without a checksum/);
    expect(() => fossilApply(base, enc.encode("3\n3:abc0;"))).toThrow(/checksum mismatch/);
    expect(() => fossilApply(base, enc.encode("4\n3:abc0;"))).toThrow(/header says 4/);
    expect(() => fossilApply(base, enc.encode("~~~~~~~\n"))).toThrow(/out of range/);
    expect(() => fossilApply(base, enc.encode(`5\n5@0,${sumOf("hello")};`), 4)).toThrow(/exceeds 4/);
    expect(() => fossilOutputSize(enc.encode("5;"))).toThrow(/newline/);
  });
});

/** The checksum of `text`, written as the format's base-64 integer. */
function sumOf(text: string): string {
  const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";
  let n = fossilChecksum(enc.encode(text));
  let out = "";
  do {
    out = digits[n % 64] + out;
    n = Math.floor(n / 64);
  } while (n > 0);
  return out;
}
