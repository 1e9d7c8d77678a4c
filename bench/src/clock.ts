import { performance } from "node:perf_hooks";

/**
 * Milliseconds on a clock shared by every bench process: `performance.timeOrigin + performance.now()`.
 * Publishers stamp messages with it and subscribers (other processes) subtract it on receipt.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
