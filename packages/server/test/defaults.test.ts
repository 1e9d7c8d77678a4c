import { describe, expect, it } from "vitest";
import { DEFAULT_PORT, WS_PATH } from "../src/index.js";

describe("server defaults", () => {
  it("defaults - listens on 9100 at /ws", () => {
    expect(DEFAULT_PORT).toBe(9100);
    expect(WS_PATH).toBe("/ws");
  });
});
