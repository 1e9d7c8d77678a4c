import { describe, expect, it } from "vitest";
import { MAX_OVERLOAD_STEPS, OVERLOAD_FACTOR, OVERLOAD_GAIN, searchSaturation, type StepResult } from "../src/harness.js";

/**
 * A modelled system as a fan-out search sees one: it keeps up (>= 93% delivered) up to `keepsUp`; above that it
 * delivers `deliver(offer)` (a coalescing server delivers more the more it is offered).
 */
function modelled(keepsUp: number, deliver: (offer: number) => number) {
  return async (target: number): Promise<StepResult> => {
    const kept = target <= keepsUp;
    const achieved = kept ? target * 0.98 : deliver(target);
    return {
      target,
      msgRate: target / 1000,
      sent: Math.round(target / 1000),
      expected: Math.round(target),
      received: Math.round(achieved),
      achieved,
      offered: target,
      drained: kept,
      keptUp: kept,
      latency: { samples: 100, p50: 1, p99: 2, max: 3, mean: 1 },
      serverCpu: 0.5,
      serverCpuUsPerDelivery: 1,
      serverUserUsPerDelivery: 0.5,
      serverWritesPerDelivery: 0.5,
      serverReadsPerDelivery: 0.01,
      receiverCpuUsPerDelivery: 1,
      clientCpu: [0.4, 0.4],
      machineBusy: 0.9,
    };
  };
}

/** Runs a search; returns it with its overload steps (the last steps, one per "overload:" log line). */
async function search(step: (t: number) => Promise<StepResult>, start: number, maxRate = 1e12) {
  const lines: string[] = [];
  const r = await searchSaturation(step, { start, maxSteps: 12, maxRate, log: (m) => lines.push(m) });
  const n = lines.filter((l) => l.includes("overload:")).length;
  return { r, searchSteps: r.steps.slice(0, r.steps.length - n), overload: r.steps.slice(r.steps.length - n) };
}

const plateau = (top: number) => (offer: number) => top * (1 - Math.exp(-offer / top));

describe("searchSaturation's overload steps", () => {
  it("reach the same plateau whatever the search started from", async () => {
    const found: number[] = [];
    for (const start of [25_000, 100_000, 400_000]) {
      const { r } = await search(modelled(60_000, plateau(1_000_000)), start);
      found.push(r.saturation);
    }
    for (const s of found) expect(s).toBeGreaterThan(850_000);
    expect(Math.max(...found) / Math.min(...found)).toBeLessThan(1.1);
  });

  it("each offer three times the best delivered so far, until one gains 10% or less", async () => {
    const { r, searchSteps, overload } = await search(modelled(200_000, plateau(500_000)), 25_000);
    expect(overload.length).toBeGreaterThanOrEqual(2);
    expect(overload.length).toBeLessThan(MAX_OVERLOAD_STEPS);
    let best = Math.max(...searchSteps.map((s) => s.achieved));
    overload.forEach((s, i) => {
      expect(s.target).toBeCloseTo(OVERLOAD_FACTOR * best, 6);
      const gained = s.achieved > best * (1 + OVERLOAD_GAIN);
      expect(gained).toBe(i < overload.length - 1);
      best = Math.max(best, s.achieved);
    });
    expect(r.saturation).toBe(best);
  });

  it("stop after MAX_OVERLOAD_STEPS even while each still gains", async () => {
    // Delivers 40% of any offer above 50k: every overload step (3x the best) raises the best by 20%.
    const { overload } = await search(modelled(50_000, (offer) => offer * 0.4), 25_000);
    expect(overload.length).toBe(MAX_OVERLOAD_STEPS);
  });

  it("never offer more than maxRate, and stop once there", async () => {
    // Delivers 90% of any offer above 50k: each overload step would nearly triple the best, but 1M/s is the ceiling.
    const { overload } = await search(modelled(50_000, (offer) => offer * 0.9), 25_000, 1_000_000);
    expect(overload.length).toBeGreaterThanOrEqual(1);
    for (const s of overload) expect(s.target).toBeLessThanOrEqual(1_000_000);
    expect(overload.at(-1)!.target).toBe(1_000_000);
    expect(overload.filter((s) => s.target === 1_000_000).length).toBe(1);
  });
});
