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
