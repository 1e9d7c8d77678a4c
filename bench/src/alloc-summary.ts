import { readFileSync } from "node:fs";
import path from "node:path";

interface HeapNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children: HeapNode[];
}

/**
 * Bytes allocated per unit (`per`: a delivery, a message) in a sampled window (a `.heapprofile` of the server process's
 * `allocations` command), in all and by function (the five largest).
 */
export function allocSummary(file: string, units: number, per = "delivery"): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { head: HeapNode; samples: Array<{ size: number; nodeId: number }> };
  const names = new Map<number, string>();
  const visit = (node: HeapNode): void => {
    names.set(node.id, `${node.callFrame.functionName || "(anonymous)"} ${path.basename(node.callFrame.url)}`.trim());
    for (const c of node.children) visit(c);
  };
  visit(profile.head);
  const by = new Map<string, number>();
  let total = 0;
  for (const sample of profile.samples) {
    const name = names.get(sample.nodeId) ?? "?";
    by.set(name, (by.get(name) ?? 0) + sample.size);
    total += sample.size;
  }
  const top = [...by].sort((a, b) => b[1] - a[1]).slice(0, 5);
  const bytesPer = (bytes: number) => (bytes / Math.max(1, units)).toFixed(0);
  return `${bytesPer(total)} B per ${per} (${top.map(([name, bytes]) => `${name} ${bytesPer(bytes)}`).join("; ")})`;
}

/** Where one step's CPU profile and allocation sample go (either may be off), and how to report them. */
export interface StepCapture {
  /** `.cpuprofile` path, or undefined for no CPU profile. */
  profFile: string | undefined;
  /** `.heapprofile` path, or undefined for no allocation sample. */
  allocFile: string | undefined;
  /** CPU profiler sampling interval. */
  intervalUs: number;
  /** Names the step in the log, e.g. `arqon-json at 40000/s offered`. */
  label: string;
  /** The unit the figures are per ("delivery", "message") and how many of them the step had. */
  per: string;
}

/**
 * Runs one load step with the server process CPU-profiled and/or its allocations sampled over that window only (its
 * `profile` and `allocations` commands), then logs where the files went and the bytes allocated per unit.
 */
export async function captureStep<T>(
  server: { call(cmd: string, args: unknown): Promise<unknown> },
  capture: StepCapture,
  units: (step: T) => number,
  step: () => Promise<T>,
): Promise<T> {
  if (capture.profFile) await server.call("profile", { action: "start", intervalUs: capture.intervalUs });
  if (capture.allocFile) await server.call("allocations", { action: "start" });
  const result = await step();
  const n = units(result);
  if (capture.profFile) {
    await server.call("profile", { action: "stop", file: capture.profFile });
    console.log(`profile: ${capture.profFile} (${n.toFixed(0)} ${capture.per === "delivery" ? "deliveries" : capture.per + "s"}; per ${capture.per}: --per ${n.toFixed(0)})`);
  }
  if (capture.allocFile) {
    await server.call("allocations", { action: "stop", file: capture.allocFile });
    console.log(`allocations: ${capture.label}: ${allocSummary(capture.allocFile, n, capture.per)} — ${capture.allocFile}`);
  }
  return result;
}
