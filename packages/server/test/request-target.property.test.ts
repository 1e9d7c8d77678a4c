import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseTarget, queryParam } from "../src/http-util.js";

/** Characters that matter to URL parsing of a request target: separators, escapes, dots, quotes, non-ASCII. */
const targetChar = fc.constantFrom("/", ".", "?", "&", "=", "#", "%", "%2", "%2B", "%zz", "+", "\\", '"', " ", "\t", "'", "é", "a", "Z", "0", "-", "_", "~", "ws", "token", "codec");
const target = fc.oneof(
  fc.string({ unit: targetChar, maxLength: 16 }).map((s) => "/" + s),
  fc.string({ unit: targetChar, maxLength: 16 }),
  fc.tuple(fc.constantFrom("/ws", "/ws/", "/a/../ws", "//ws"), fc.string({ unit: targetChar, maxLength: 16 })).map(([p, q]) => `${p}?${q}`),
);

describe("request targets - the upgrade's fast parse agrees with WHATWG URL", () => {
  it("parseTarget / queryParam - same path and parameters as new URL(target).searchParams", () => {
    fc.assert(
      fc.property(target, (raw) => {
        let url: URL | undefined;
        try {
          url = new URL(raw, "http://localhost");
        } catch {
          url = undefined;
        }
        const t = parseTarget(raw);
        expect(t?.pathname).toBe(url?.pathname);
        if (!t || !url) return;
        for (const name of ["token", "codec", "a"]) expect(queryParam(t.query, name)).toBe(url.searchParams.get(name));
      }),
      {
        numRuns: 5000,
        examples: [
          ["/ws?codec=json&token=eyJ.eyJ.sig"],
          ["/ws/../ws?token=x"],
          ["//ws?token=x"],
          ["/ws?token"],
          ["/ws?token=a+b&token=c"],
          ["/ws?tok=1&token=&codec=protobuf#frag"],
          ['/w"s?token=é'],
          ["/ws??token=%zz"],
        ],
      },
    );
  });

  it("parseTarget - keeps the common shape as it came (no URL built)", () => {
    expect(parseTarget("/ws?codec=json&token=abc.def-_")).toEqual({ pathname: "/ws", query: "codec=json&token=abc.def-_" });
    expect(parseTarget("/ws")).toEqual({ pathname: "/ws", query: "" });
  });
});
