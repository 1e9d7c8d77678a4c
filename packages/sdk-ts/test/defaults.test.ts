import { describe, expect, it } from "vitest";
import { DEFAULT_URL } from "../src/index.js";

describe("sdk defaults", () => {
  it("defaults - targets the local gateway's /ws endpoint", () => {
    const url = new URL(DEFAULT_URL);
    expect(url.protocol).toBe("ws:");
    expect(url.pathname).toBe("/ws");
  });
});
