import { describe, expect, it } from "vitest";
import { findSecrets, luhnValid, parseJsonPath, redactPath, regexProblem } from "../src/casil/index.js";

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

  it("regex safety - the star-height rule, alternatives and backreferences", () => {
    expect(regexProblem("(a+)+")).toMatch(/nested quantifier near position 4/);
    expect(regexProblem("(?:x|y+)*")).toMatch(/nested quantifier/);
    expect(regexProblem("(?<name>a*)+")).toMatch(/nested quantifier/);
    expect(regexProblem("(?=a+)+b")).toMatch(/nested quantifier/);
    expect(regexProblem("(a|b|a)+")).toMatch(/identical alternatives/);
    expect(regexProblem("[(]+[)]+")).toBeUndefined();
    expect(regexProblem("\\(a+\\)+")).toBeUndefined();
    expect(regexProblem("(a+)?")).toBeUndefined();
    expect(regexProblem("(a+){1}")).toBeUndefined();
    expect(regexProblem("x".repeat(513))).toMatch(/longer than 512/);
    expect(regexProblem("")).toBe("pattern is empty");
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
