import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { escapeToken, parseRoomKey, roomKey, roomMatches, unescapeToken } from "../src/room/names.js";

/** Any UTF-16 string, lone surrogates included. */
const anyString = fc.string({ unit: "binary", maxLength: 24 });
/** Strings rich in the characters that matter at a subject boundary. */
const nastyString = fc.string({
  unit: fc.constantFrom(".", "*", ">", "$", " ", "\t", "\n", "~", "%", "a", "Z", "0", "_", "-", "é", "\u{1F600}", "\uD800", "\uDC00"),
  maxLength: 12,
});
const text = fc.oneof(anyString, nastyString);

const KEY_RE = /^[A-Za-z0-9_~-]+\.[A-Za-z0-9_~-]+$/;

describe("room names - property tests", () => {
  it("roomKey - is injective over arbitrary (tenant, room) string pairs", () => {
    fc.assert(
      fc.property(text, text, text, text, (t1, r1, t2, r2) => {
        fc.pre(t1 !== t2 || r1 !== r2);
        expect(roomKey(t1, r1)).not.toBe(roomKey(t2, r2));
      }),
      {
        numRuns: 2000,
        // Lone surrogates once collided with U+FFFD (both became ~ef~bf~bd); an empty part with "~".
        examples: [
          ["\uD800", "r", "\uFFFD", "r"],
          ["t", "\uDC00", "t", "\uFFFD"],
          ["t", "", "t", "~"],
          ["a.b", "c", "a", "b.c"],
        ],
      },
    );
  });

  it("roomKey - distinct pairs that share a concatenation stay distinct", () => {
    fc.assert(
      fc.property(text, text, text, (a, b, c) => {
        fc.pre(b.length > 0);
        expect(roomKey(a + b, c)).not.toBe(roomKey(a, b + c));
        expect(roomKey(`${a}.${b}`, c)).not.toBe(roomKey(a, `${b}.${c}`));
      }),
    );
  });

  it("roomKey - parseRoomKey round-trips every pair, lone surrogates included", () => {
    fc.assert(
      fc.property(text, text, (tenant, room) => {
        expect(parseRoomKey(roomKey(tenant, room))).toEqual({ tenant, room });
      }),
      { numRuns: 2000 },
    );
  });

  it("roomKey - every key is two tokens of [A-Za-z0-9_~-]: no . * > $ or whitespace crosses a boundary", () => {
    fc.assert(
      fc.property(text, text, (tenant, room) => {
        const key = roomKey(tenant, room);
        expect(key).toMatch(KEY_RE);
        expect(key.split(".")).toHaveLength(2);
      }),
      { numRuns: 2000 },
    );
  });

  it("escapeToken - unescapeToken refuses tokens escapeToken never produces", () => {
    for (const bad of ["", "~", "~4", "~zz", "~41", "~7E", "a.b", "a b", "é", "~c3", "~ed~a0~80~ed~b0~80", "~~"]) {
      if (bad === "~") {
        expect(unescapeToken(bad)).toBe("");
        continue;
      }
      expect(() => unescapeToken(bad), bad).toThrow();
    }
    expect(() => parseRoomKey("a")).toThrow();
    expect(() => parseRoomKey("a.b.c")).toThrow();
    fc.assert(
      fc.property(text, (s) => {
        expect(unescapeToken(escapeToken(s))).toBe(s);
      }),
    );
  });
});

/** Reference matcher written independently of the regex in names.ts. */
function reference(pattern: string, room: string): boolean {
  if (pattern === "*" || pattern === "**") return true;
  const sep = (c: string | undefined) => c === ":" || c === "/" || c === ".";
  const match = (i: number, j: number): boolean => {
    if (i === pattern.length) return j === room.length;
    if (pattern[i] === "*" && pattern[i + 1] === "*") {
      for (let k = j; k <= room.length; k++) if (match(i + 2, k)) return true;
      return false;
    }
    if (pattern[i] === "*") {
      for (let k = j; k <= room.length; k++) {
        if (match(i + 1, k)) return true;
        if (k < room.length && sep(room[k])) return false;
      }
      return false;
    }
    return j < room.length && room[j] === pattern[i] && match(i + 1, j + 1);
  };
  return match(0, 0);
}

describe("roomMatches - property tests", () => {
  const segment = fc.string({ unit: fc.constantFrom("a", "b", "-", "_", "@", "=", "+", "!"), maxLength: 5 });
  const sepChar = fc.constantFrom(":", "/", ".");

  it("roomMatches - a pattern without * matches only itself, regex metacharacters included", () => {
    const literal = fc.string({ unit: fc.constantFrom("a", ".", ":", "/", "+", "?", "(", ")", "[", "]", "^", "$", "\\", "|", "{", "}", "\n"), maxLength: 8 });
    fc.assert(
      fc.property(literal, literal, (pattern, room) => {
        expect(roomMatches(pattern, room)).toBe(pattern === room);
        expect(roomMatches(pattern, pattern)).toBe(true);
      }),
    );
  });

  it("roomMatches - * and ** alone match every room", () => {
    fc.assert(
      fc.property(anyString, (room) => {
        expect(roomMatches("*", room)).toBe(true);
        expect(roomMatches("**", room)).toBe(true);
      }),
    );
  });

  it("roomMatches - prefix:* matches one segment, prefix:** matches any depth", () => {
    fc.assert(
      fc.property(segment, segment, sepChar, sepChar, (s1, s2, sep1, sep2) => {
        expect(roomMatches(`chat${sep1}*`, `chat${sep1}${s1}`)).toBe(true);
        expect(roomMatches(`chat${sep1}*`, `chat${sep1}${s1}${sep2}${s2}`)).toBe(false);
        expect(roomMatches(`chat${sep1}**`, `chat${sep1}${s1}${sep2}${s2}`)).toBe(true);
        expect(roomMatches(`chat${sep1}*${sep2}x`, `chat${sep1}${s1}${sep2}x`)).toBe(true);
        expect(roomMatches(`chat${sep1}*`, `chats${sep1}${s1}`)).toBe(false);
      }),
    );
  });

  it("roomMatches - agrees with a reference glob matcher on random patterns and rooms", () => {
    const pat = fc.string({ unit: fc.constantFrom("a", "b", ":", "/", ".", "*"), maxLength: 8 });
    const room = fc.string({ unit: fc.constantFrom("a", "b", ":", "/", "."), maxLength: 8 });
    fc.assert(
      fc.property(pat, room, (p, r) => {
        expect(roomMatches(p, r)).toBe(reference(p, r));
      }),
      { numRuns: 3000 },
    );
  });
});
