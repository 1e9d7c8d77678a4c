import { describe, expect, it } from "vitest";
import { backoffDelay } from "../src/index.js";
import { resolveReconnect } from "../src/backoff.js";

describe("backoff", () => {
  it("backoff - the ceiling doubles per attempt and never passes maxDelayMs", () => {
    const top = resolveReconnect({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6, 50, 5000].map((a) => backoffDelay(a, top))).toEqual([99, 199, 399, 799, 999, 999, 999, 999]);
  });

  it("backoff - full jitter: the delay is uniform from 0 up to the ceiling", () => {
    const bottom = resolveReconnect({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0 });
    expect(backoffDelay(7, bottom)).toBe(0);
    const mid = resolveReconnect({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 });
    expect(backoffDelay(3, mid)).toBe(200);
  });

  it("backoff - defaults are 500 ms doubling to 10 s, unlimited attempts; false disables", () => {
    expect(resolveReconnect(undefined)).toMatchObject({ enabled: true, initialDelayMs: 500, maxDelayMs: 10_000, maxAttempts: Infinity });
    expect(resolveReconnect(false).enabled).toBe(false);
    expect(resolveReconnect({ initialDelayMs: 2000, maxDelayMs: 100 }).maxDelayMs).toBe(2000);
  });
});
