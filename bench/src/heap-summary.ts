import { readFileSync } from "node:fs";

/**
 * Compares two V8 heap snapshots (idle-memory with ARQON_BENCH_HEAPSNAP=<dir>): retained objects by type and
 * constructor name, what grew between them, per connection. Usage:
 * npm run heap -w @arqon/bench -- base.heapsnapshot after.heapsnapshot <connections> [--top 30]
 */
interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

function groups(file: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const f = snap.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf("type");
  const iName = f.indexOf("name");
  const iSize = f.indexOf("self_size");
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    let name = type === "object" || type === "closure" || type === "native" ? snap.strings[snap.nodes[i + iName]!]! : "";
    if (name.length > 60) name = name.slice(0, 60) + "…";
    const key = `${type} ${name}`.trim();
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += snap.nodes[i + iSize]!;
    out.set(key, g);
  }
  return out;
}

const argv = process.argv.slice(2);
const topAt = argv.indexOf("--top");
const top = topAt >= 0 ? Number(argv[topAt + 1]) : 30;
const [baseFile, afterFile, connsText] = argv.filter((a, i) => !a.startsWith("--") && (topAt < 0 || i !== topAt + 1));
const conns = Number(connsText ?? 1);
const base = groups(baseFile!);
const after = groups(afterFile!);
const diff: Array<[string, number, number]> = [];
let total = 0;
for (const [k, g] of after) {
  const b = base.get(k) ?? { count: 0, size: 0 };
  const d = g.size - b.size;
  total += d;
  diff.push([k, d, g.count - b.count]);
}
diff.sort((a, b) => b[1] - a[1]);
console.log(`heap growth ${(total / 1024 / 1024).toFixed(1)} MiB = ${(total / conns).toFixed(0)} bytes per connection (${conns} connections)`);
console.log("bytes/conn  objects/conn  type name");
for (const [k, d, c] of diff.slice(0, top)) console.log(`${(d / conns).toFixed(0).padStart(10)}  ${(c / conns).toFixed(2).padStart(12)}  ${k}`);
