import { describe, expect, it } from "vitest";
import { DEFAULT_NATS_URL } from "../src/index.js";

describe("nats defaults", () => {
  it("defaults - connects to a local nats-server on loopback", () => {
    expect(new URL(DEFAULT_NATS_URL).hostname).toBe("127.0.0.1");
  });
});
