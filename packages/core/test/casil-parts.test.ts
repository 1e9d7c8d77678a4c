import { describe, expect, it } from "vitest";
import { compilePolicyRegex, findSecrets, luhnValid, parseJsonPath, redactPath, regexProblem, schemaProblem } from "../src/casil/index.js";

describe("casil parts", () => {
  it("json path - parses the supported subset and rejects the rest with a reason", () => {
    expect(parseJsonPath("$.user.password")).toEqual([{ type: "child", name: "user" }, { type: "child", name: "password" }]);
    expect(parseJsonPath("$..token")).toEqual([{ type: "descend", name: "token" }]);
    expect(parseJsonPath("$['a b'][2][*].c")).toEqual([{ type: "child", name: "a b" }, { type: "index", index: 2 }, { type: "wildcard" }, { type: "child", name: "c" }]);
    expect(parseJsonPath("$..*")).toEqual([{ type: "descend", name: undefined }]);
    expect(parseJsonPath("user")).toBe('path "user" must start with "$"');
    expect(parseJsonPath("$")).toBe('path "$" selects the whole payload; name a field');
    expect(parseJsonPath("$.a[?(@.x)]")).toMatch(/unexpected "\[" at 3/);
    expect(parseJsonPath("$.")).toMatch(/expected a name after "\."/);
  });

  it("json path - redaction replaces exactly the selected values and counts them", () => {
    const doc = { a: [{ t: 1, token: "x" }, { b: { token: "y" } }], token: "z", list: [1, 2, 3], keep: "token" };
    expect(redactPath(doc, parseJsonPath("$..token") as never)).toBe(3);
    expect(doc).toEqual({ a: [{ t: 1, token: "[REDACTED]" }, { b: { token: "[REDACTED]" } }], token: "[REDACTED]", list: [1, 2, 3], keep: "token" });
    expect(redactPath(doc, parseJsonPath("$.list[*]") as never)).toBe(3);
    expect(redactPath(doc, parseJsonPath("$.list[7]") as never)).toBe(0);
    expect(redactPath(doc, parseJsonPath("$.missing.deeper") as never)).toBe(0);
    expect(redactPath("a string", parseJsonPath("$.a") as never)).toBe(0);
  });

  it("regex safety - the red-team patterns run in linear time; backreferences, lookaheads and huge programs are refused", () => {
    // Each of these took seconds on a backtracking engine with a 30-character input (issue 21's red-team pass).
    const evil = ["(a|a?)+$", "(a|aa)+$", "(\\w|\\d)+$", "(.|\\s)+$", "(a+)+$", "^(a+)+$", "(?:\\w+\\s?)*$"];
    const attack = "a".repeat(20000) + "!";
    for (const source of evil) {
      expect(regexProblem(source)).toBeUndefined();
      const re = compilePolicyRegex(source);
      if (typeof re === "string") throw new Error(re);
      const started = performance.now();
      re.test(attack);
      // Linear: 20k characters in well under a second even on a loaded machine (a backtracking engine never ends).
      expect(performance.now() - started).toBeLessThan(1000);
    }
    expect(regexProblem("(x)\\1")).toMatch(/backreferences/);
    expect(regexProblem("(?<q>x)\\k<q>")).toMatch(/backreferences/);
    expect(regexProblem("a(?=b)")).toMatch(/lookaheads/);
    expect(regexProblem("[\\1]")).toMatch(/does not compile/);
    expect(regexProblem("(?<=a)b")).toBeUndefined();
    expect(regexProblem("(?:[a-z]{1,40}){1,10}")).toMatch(/instructions, more than 400/);
    expect(regexProblem("(ab")).toMatch(/does not compile/);
    expect(regexProblem("x", "g")).toMatch(/flags "g" are not allowed/);
    expect(regexProblem("x".repeat(513))).toMatch(/longer than 512/);
    expect(regexProblem("")).toBe("pattern is empty");
    const mask = compilePolicyRegex("\\d{3}-\\d{4}");
    if (typeof mask === "string") throw new Error(mask);
    expect(mask.replace("call 555-1234 or 555-9876", "$1[R]")).toBe("call $1[R] or $1[R]");
  });

  it("schema safety - recursive references, remote references and unbounded uniqueItems are refused", () => {
    expect(schemaProblem({ type: "object", properties: { a: { type: "string", pattern: "^(a+)+$" } } })).toBeUndefined();
    expect(schemaProblem({ definitions: { n: { type: "object", properties: { c: { $ref: "#/definitions/n" } } } }, $ref: "#/definitions/n" })).toMatch(/recursive/);
    expect(schemaProblem({ $ref: "https://example.com/s.json" })).toMatch(/only "#"/);
    expect(schemaProblem({ type: "array", uniqueItems: true, items: { type: "object" } })).toMatch(/uniqueItems/);
    expect(schemaProblem({ type: "array", uniqueItems: true, items: { type: "string" } })).toBeUndefined();
    expect(schemaProblem({ type: "array", uniqueItems: true, maxItems: 100 })).toBeUndefined();
    const wide = { definitions: { d: { enum: Array.from({ length: 600 }, (_, i) => i) } }, allOf: [{ $ref: "#/definitions/d" }, { $ref: "#/definitions/d" }] };
    expect(schemaProblem(wide)).toMatch(/more than 1000 subschemas/);
    expect(schemaProblem({ properties: { x: { $anchor: "a" } } })).toMatch(/"\$anchor" is not supported/);
  });

  it("secrets - Luhn, card boundaries and first-hit mode", () => {
    expect(luhnValid("4111111111111111")).toBe(true);
    expect(luhnValid("4111111111111112")).toBe(false);
    expect(findSecrets("order 44111111111111111 ref")).toEqual([]);
    expect(findSecrets("v1.4111111111111111")).toEqual([]);
    const all = findSecrets('{"password":"a","k":"AKIAIOSFODNN7EXAMPLE"}', true);
    expect(all.map((h) => h.kind).sort()).toEqual(["aws_access_key", "password_field"]);
    expect(findSecrets('{"password":"a","k":"AKIAIOSFODNN7EXAMPLE"}')).toHaveLength(1);
  });
});
