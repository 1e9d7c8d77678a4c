import { readFileSync } from "node:fs";
import path from "node:path";

/**
 * Summarizes V8 .cpuprofile files (from `npm run bench -- --cpu-prof <system>`): self time per function and per
 * package/file, heaviest first. Usage: npm run prof -w @arqon/bench -- <file.cpuprofile> [more…] [--top 40]
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const topAt = argv.indexOf("--top");
const top = topAt >= 0 ? Number(argv[topAt + 1]) : 40;
const files = argv.filter((a, i) => !a.startsWith("--") && (topAt < 0 || i !== topAt + 1));

function where(url: string): string {
  if (!url) return "(native)";
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = u.slice(nm + 13).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (u.startsWith("node:")) return u;
  const m = /\/(packages\/[^/]+\/src\/.*|bench\/src\/.*)$/.exec(u);
  return m ? m[1]! : path.basename(u);
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || "(anonymous)";
    if (name === "(idle)") {
      idle += us;
      continue;
    }
    const w = where(n.callFrame.url);
    const key = `${name}  ${w}${n.callFrame.url ? ":" + (n.callFrame.lineNumber + 1) : ""}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    mod.set(w, (mod.get(w) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => ((us / busy) * 100).toFixed(1).padStart(5) + "%";
  console.log(`\n${file}\n  ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages of busy time)`);
  console.log("  by file/package:");
  for (const [k, v] of [...mod].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${pct(v)}  ${k}`);
  console.log("  by function (self):");
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
}
