import { describe, expect, it } from "vitest";
import { STANDARD_OPERATORS } from "../src/index.js";

describe("operators names", () => {
  it("names - every standard operator lives under op.", () => {
    for (const name of STANDARD_OPERATORS) expect(name).toMatch(/^op\.[a-z]+$/);
  });
});
