import type { Metric } from "./workloads/types.js";

/** results[run][system] = metrics of that system in that run. */
export type RunResults = Array<Record<string, Metric[]>>;

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** "median (min-max)" of a sample, as the focused tools (handshakes, fanout-cost) print their cells. */
export function spreadText(values: number[], digits = 2): string {
  const s = spread(values);
  return s ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})` : "-";
}

export interface Target {
  /** Metric key or a prefix ending in "*" (e.g. "fanout.n*.deliveries" is written as a regexp below). */
  pattern: RegExp;
  against: "floor" | "socketio" | "absolute";
  op: ">=" | "<=";
  value: number;
  text: string;
}

/** The targets for ArqonBus (issue 9, item 4). */
export const TARGETS: Target[] = [
  { pattern: /^fanout\.n\d+\.deliveries$/, against: "floor", op: ">=", value: 0.8, text: ">= 0.8x floor" },
  { pattern: /^fanout\.n\d+\.deliveries$/, against: "socketio", op: ">=", value: 15, text: ">= 15x Socket.IO" },
  { pattern: /^fanout\.n\d+\.half\.p99$/, against: "floor", op: "<=", value: 1.25, text: "<= 1.25x floor" },
  { pattern: /^idle\.rss$/, against: "absolute", op: "<=", value: 7.5, text: "<= 7.5 KB" },
  { pattern: /^connect\.rate$/, against: "floor", op: ">=", value: 0.7, text: ">= 0.7x floor" },
  // The same targets read as server CPU per operation: steadier on a shared machine, where rates swing with the
  // neighbours' load. Throughput >= 0.8x the floor needs CPU per delivery <= 1.25x; >= 15x Socket.IO needs <= 1/15.
  { pattern: /^fanout\.n\d+\.cpu$/, against: "floor", op: "<=", value: 1.25, text: "(CPU proxy) <= 1.25x floor" },
  { pattern: /^fanout\.n\d+\.cpu$/, against: "socketio", op: "<=", value: 1 / 15, text: "(CPU proxy) <= 0.067x Socket.IO" },
  { pattern: /^connect\.cpu$/, against: "floor", op: "<=", value: 1 / 0.7, text: "(CPU proxy) <= 1.43x floor" },
];

export interface Row {
  key: string;
  label: string;
  unit: string;
  system: string;
  value: Spread;
  /** Ratio to the floor / Socket.IO / Centrifugo measured in the same run; median and spread over runs. */
  vsFloor?: Spread;
  vsSocketio?: Spread;
  vsCentrifugo?: Spread;
  /**
   * ArqonBus rows: ratio to the floor carrying ArqonBus's own frame (`floor-arqon-json` / `floor-arqon-proto`) when the
   * run has it — the gateway's own share of the gap, with the frame's cost to clients and kernel taken out.
   */
  vsSameFrame?: Spread;
  targets: Array<{ text: string; met: boolean | undefined }>;
}

/** Medians over runs, ratios computed within each run, then their medians; targets checked for ArqonBus rows. */
export function aggregate(results: RunResults, systems: string[]): Row[] {
  const keys: Array<{ key: string; label: string; unit: string }> = [];
  const seen = new Set<string>();
  for (const run of results)
    for (const sys of systems)
      for (const m of run[sys] ?? [])
        if (!seen.has(m.key)) {
          seen.add(m.key);
          keys.push({ key: m.key, label: m.label, unit: m.unit });
        }
  const valueOf = (run: Record<string, Metric[]>, sys: string, key: string): number | undefined => run[sys]?.find((m) => m.key === key)?.value;
  const rows: Row[] = [];
  for (const k of keys) {
    for (const sys of systems) {
      const vals = results.map((r) => valueOf(r, sys, k.key)).filter((v): v is number => v !== undefined);
      const value = spread(vals);
      if (!value) continue;
      const ratio = (other: string): Spread | undefined =>
        sys === other
          ? undefined
          : spread(
              results
                .map((r) => {
                  const a = valueOf(r, sys, k.key);
                  const b = valueOf(r, other, k.key);
                  return a !== undefined && b !== undefined && b !== 0 ? a / b : NaN;
                })
                .filter((x) => Number.isFinite(x)),
            );
      const row: Row = { ...k, system: sys, value, vsFloor: ratio("floor"), vsSocketio: ratio("socketio"), vsCentrifugo: ratio("centrifugo"), targets: [] };
      if (sys.startsWith("arqon")) {
        row.vsSameFrame = ratio(`floor-${sys}`);
        for (const t of TARGETS) {
          if (!t.pattern.test(k.key)) continue;
          const x = t.against === "absolute" ? value.median : t.against === "floor" ? row.vsFloor?.median : row.vsSocketio?.median;
          row.targets.push({ text: t.text, met: x === undefined ? undefined : t.op === ">=" ? x >= t.value : x <= t.value });
        }
      }
      rows.push(row);
    }
  }
  return rows;
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "n/a";
  if (unit === "/s") {
    if (v >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (v >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return v.toFixed(0);
  }
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function ratioText(s: Spread | undefined): string {
  if (!s) return "";
  const r = (x: number) => (x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toFixed(3));
  return s.n > 1 ? `${r(s.median)}x (${r(s.min)}-${r(s.max)})` : `${r(s.median)}x`;
}

/**
 * A Markdown table: one row per metric and system. `unavailable` (system id -> reason): systems that could not run
 * (Centrifugo without Go); each metric gets a "not available" row for them, and the reasons follow the table.
 */
export function table(rows: Row[], unavailable: Record<string, string> = {}): string {
  const out = [
    "| metric | system | median | spread (min-max, runs) | vs floor | vs Socket.IO | vs Centrifugo | vs floor, same frame | target |",
    "|---|---|---:|---|---:|---:|---:|---:|---|",
  ];
  const missing = Object.keys(unavailable);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const label = i > 0 && rows[i - 1]!.key === r.key ? "" : `${r.label} (${r.unit})`;
    const target = r.targets.map((t) => `${t.text} ${t.met === undefined ? "?" : t.met ? "MET" : "MISSED"}`).join("; ");
    out.push(
      `| ${label} | ${r.system} | ${num(r.value.median, r.unit)} | ${num(r.value.min, r.unit)}-${num(r.value.max, r.unit)} (${r.value.n}) | ${ratioText(r.vsFloor)} | ${ratioText(r.vsSocketio)} | ${ratioText(r.vsCentrifugo)} | ${ratioText(r.vsSameFrame)} | ${target} |`,
    );
    if (rows[i + 1]?.key !== r.key) for (const id of missing) out.push(`|  | ${id} | not available |  |  |  |  |  |  |`);
  }
  if (rows.length === 0) for (const id of missing) out.push(`|  | ${id} | not available |  |  |  |  |  |  |`);
  for (const id of missing) out.push("", `${id}: not available: ${unavailable[id]}`);
  return out.join("\n");
}

/**
 * Headline figures: one row per metric, systems side by side, the ArqonBus rows' ratios and targets. A system in
 * `unavailable` shows "not available" in its column.
 */
export function headline(rows: Row[], keys: RegExp, unavailable: Record<string, string> = {}): string {
  const systems = ["arqon-json", "arqon-proto", "socketio", "floor", "centrifugo"];
  const byKey = new Map<string, Row[]>();
  for (const r of rows) if (keys.test(r.key)) (byKey.get(r.key) ?? byKey.set(r.key, []).get(r.key)!).push(r);
  const out = [
    "| metric | ArqonBus JSON | ArqonBus protobuf | Socket.IO | floor | Centrifugo | ArqonBus JSON / proto vs floor | vs Socket.IO | vs Centrifugo | vs floor, same frame | target (JSON / proto) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const rs of byKey.values()) {
    const get = (s: string) => rs.find((r) => r.system === s);
    const cell = (s: string) => {
      const r = get(s);
      return r ? num(r.value.median, r.unit) : s in unavailable ? "not available" : "";
    };
    const ratio = (which: "vsFloor" | "vsSocketio" | "vsCentrifugo" | "vsSameFrame") =>
      ["arqon-json", "arqon-proto"].map((s) => (get(s)?.[which] ? ratioText({ ...get(s)![which]!, n: 1 }) : "-")).join(" / ");
    const targets = (get("arqon-json")?.targets ?? [])
      .map((t, i) => {
        const p = get("arqon-proto")?.targets[i];
        const mark = (m: boolean | undefined) => (m === undefined ? "?" : m ? "met" : "MISSED");
        return `${t.text}: ${mark(t.met)} / ${mark(p?.met)}`;
      })
      .join("; ");
    out.push(
      `| ${rs[0]!.label} (${rs[0]!.unit}) | ${systems.map(cell).join(" | ")} | ${ratio("vsFloor")} | ${ratio("vsSocketio")} | ${ratio("vsCentrifugo")} | ${ratio("vsSameFrame")} | ${targets} |`,
    );
  }
  return out.join("\n");
}
