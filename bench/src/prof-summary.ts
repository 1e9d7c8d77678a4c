import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

/**
 * Summarizes V8 .cpuprofile files (from `npm run bench -- --cpu-prof <system>` or `npm run handshakes -- --prof`).
 *
 *   npm run prof -w @arqon/bench -- a.cpuprofile [more…] [--top 40]   self time per function and per package/file
 *   … -- a.cpuprofile --tree [--depth 8] [--min 2] --per 3000          call tree, inclusive µs per operation
 *   … -- a.cpuprofile b.cpuprofile --diff --per 3000                   self µs per operation, a minus b, by function
 *
 * Sampled time is wall time on the main thread: at fine sampling intervals the profiler's own cost inflates every
 * figure, so compare profiles taken the same way rather than reading absolute µs.
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

const { values: opts, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "40" },
    tree: { type: "boolean", default: false },
    diff: { type: "boolean", default: false },
    depth: { type: "string", default: "8" },
    min: { type: "string", default: "2" },
    per: { type: "string", default: "1" },
  },
});
const top = Number(opts.top);
const per = Number(opts.per);

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

const label = (n: Node): string =>
  `${n.callFrame.functionName || "(anonymous)"}  ${where(n.callFrame.url)}${n.callFrame.url ? ":" + (n.callFrame.lineNumber + 1) : ""}`;

function load(file: string) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const inclusive = new Map<number, number>();
  const incl = (id: number): number => {
    const n = byId.get(id)!;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += incl(c);
    inclusive.set(id, t);
    return t;
  };
  incl(p.nodes[0]!.id);
  let idle = 0;
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === "(idle)") {
      idle += us;
      continue;
    }
    fn.set(label(n), (fn.get(label(n)) ?? 0) + us);
    const w = where(n.callFrame.url);
    mod.set(w, (mod.get(w) ?? 0) + us);
  }
  return { p, byId, self, inclusive, total, busy: total - idle, fn, mod };
}

if (opts.diff) {
  if (files.length !== 2) throw new Error("--diff takes two profiles");
  const [a, b] = files.map(load) as [ReturnType<typeof load>, ReturnType<typeof load>];
  const keys = new Set([...a.fn.keys(), ...b.fn.keys()]);
  const rows = [...keys].map((k) => ({ k, a: (a.fn.get(k) ?? 0) / per, b: (b.fn.get(k) ?? 0) / per }));
  rows.sort((x, y) => Math.abs(y.a - y.b) - Math.abs(x.a - x.b));
  console.log(`busy µs per operation: ${files[0]} ${(a.busy / per).toFixed(1)}, ${files[1]} ${(b.busy / per).toFixed(1)}`);
  console.log("  a-b      a      b   function (self)");
  for (const r of rows.slice(0, top)) {
    console.log(`${(r.a - r.b).toFixed(1).padStart(6)} ${r.a.toFixed(1).padStart(6)} ${r.b.toFixed(1).padStart(6)}   ${r.k}`);
  }
} else {
  for (const file of files) {
    const s = load(file);
    const pct = (us: number) => ((us / s.busy) * 100).toFixed(1).padStart(5) + "%";
    console.log(`\n${file}\n  ${(s.total / 1e6).toFixed(1)} s sampled, ${(s.busy / 1e6).toFixed(1)} s busy (percentages of busy time)`);
    if (opts.tree) {
      const maxDepth = Number(opts.depth);
      const min = Number(opts.min);
      const show = (id: number, depth: number): void => {
        const n = s.byId.get(id)!;
        const t = s.inclusive.get(id)! / per;
        if (t < min || n.callFrame.functionName === "(idle)") return;
        console.log(`${"  ".repeat(depth + 1)}${t.toFixed(1)} µs (self ${((s.self.get(id) ?? 0) / per).toFixed(1)})  ${label(n)}`);
        if (depth >= maxDepth) return;
        const kids = [...(n.children ?? [])].sort((x, y) => s.inclusive.get(y)! - s.inclusive.get(x)!);
        for (const c of kids) show(c, depth + 1);
      };
      for (const c of s.byId.get(s.p.nodes[0]!.id)!.children ?? []) show(c, 0);
      continue;
    }
    console.log("  by file/package:");
    for (const [k, v] of [...s.mod].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${pct(v)}  ${k}`);
    console.log("  by function (self):");
    for (const [k, v] of [...s.fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
  }
}
