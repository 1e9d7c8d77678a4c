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

/**
 * One of the issue's targets for ArqonBus (issue 23, item 4), read from one metric as a same-run ratio (or an absolute
 * value). Every run that has the metric for the system and for the reference gives one ratio; the target is judged on
 * their median. A run without either — the reference system not in it, the size not run, the system not available —
 * gives none, and a target with none is "not measured", never met.
 */
export interface Target {
  /** Stable id, for the results JSON and tests. */
  id: string;
  /** What is compared, as printed: "fan-out N=1,000 deliveries/s vs the floor carrying the same frame". */
  text: string;
  /** The metric's key. */
  key: string;
  /**
   * What the value is divided by: a system id measured in the same run, `same-frame` (the floor carrying this
   * system's own frame: `floor-arqon-json` for `arqon-json`), or `absolute` (the value itself).
   */
  against: string;
  op: ">=" | "<=";
  value: number;
  /** The unit of an absolute target ("KB"); ratios print as "x". */
  unit?: string;
  /** Only metrics measured this way count (e.g. idle memory at 10,000 connections); says what it needs. */
  measuredAt?: { test: (m: Metric) => boolean; needs: string };
  /** Which run measures the metric, for a "not measured" verdict (e.g. "--full or --sizes 1000,10000"). */
  runBy?: string;
}

/** The ArqonBus systems the targets are for. */
export const TARGET_SYSTEMS = ["arqon-json", "arqon-proto"];

/** Where the N=10,000 fan-out runs (the short run has N=1,000 only). */
const N10K = "--full, or --sizes 1000,10000";

const fanoutTargets = (n: number): Target[] => {
  const N = n.toLocaleString("en-US");
  const runBy = n === 10_000 ? N10K : undefined;
  return [
    { id: `fanout.n${n}.same-frame`, text: `fan-out N=${N} deliveries/s vs the floor carrying the same frame`, key: `fanout.n${n}.deliveries`, against: "same-frame", op: ">=", value: 0.9, runBy },
    { id: `fanout.n${n}.floor`, text: `fan-out N=${N} deliveries/s vs the floor`, key: `fanout.n${n}.deliveries`, against: "floor", op: ">=", value: 0.8, runBy },
  ];
};

/** Idle memory counts only at 10,000 connections (the short run measures 1,000: not measured there). */
const AT_10K: Target["measuredAt"] = {
  test: (m) => (m.detail as { n?: number } | undefined)?.n === 10_000,
  needs: "10,000 connections (--idle 10000 or --full)",
};

/** The issue's targets for ArqonBus (issue 23, item 4); docs/benchmarks.md, "Targets", lists the same. */
export const TARGETS: Target[] = [
  ...fanoutTargets(1000),
  ...fanoutTargets(10_000),
  { id: "rooms.floor", text: "rooms of 2-4: messages/s vs the floor", key: "rooms.messages", against: "floor", op: ">=", value: 0.6 },
  { id: "rooms.socketio", text: "rooms of 2-4: messages/s vs Socket.IO", key: "rooms.messages", against: "socketio", op: ">=", value: 2 },
  { id: "rooms.centrifugo", text: "rooms of 2-4: messages/s vs Centrifugo", key: "rooms.messages", against: "centrifugo", op: ">=", value: 1 },
  { id: "rooms.cpu", text: "rooms of 2-4: server CPU per message vs the floor", key: "rooms.cpu", against: "floor", op: "<=", value: 2.5 },
  { id: "fanout.n1000.p99", text: "fan-out N=1,000: p99 at half load vs the floor", key: "fanout.n1000.half.p99", against: "floor", op: "<=", value: 1.25 },
  { id: "fanout.n10000.p99", text: "fan-out N=10,000: p99 at half load vs the floor", key: "fanout.n10000.half.p99", against: "floor", op: "<=", value: 1.25, runBy: N10K },
  { id: "rooms.p99", text: "rooms of 2-4: p99 at half load vs the floor", key: "rooms.half.p99", against: "floor", op: "<=", value: 1.25 },
  { id: "idle.rss", text: "idle RSS per connection at 10,000 connections", key: "idle.rss", against: "absolute", op: "<=", value: 6.5, unit: "KB", measuredAt: AT_10K },
  { id: "connect.rate", text: "connection setup with JWT, handshakes/s vs the floor", key: "connect.rate", against: "floor", op: ">=", value: 0.8 },
  { id: "slow.p99", text: "slow consumer: the others' p99 with / without a paused reader", key: "slow.p99_ratio", against: "absolute", op: "<=", value: 1.25, unit: "x" },
];

/** A target judged for one system: `met` undefined = not measured (`why` says what was missing). */
export interface TargetResult {
  id: string;
  text: string;
  system: string;
  /** "<= 1.25x the floor", ">= 6.5 KB" … */
  needed: string;
  /** Median over runs of the same-run ratio (or of the value, for an absolute target); spread in `runs`. */
  value?: Spread;
  met: boolean | undefined;
  why?: string;
}

function againstText(t: Target): string {
  const names: Record<string, string> = { floor: "the floor", socketio: "Socket.IO", centrifugo: "Centrifugo", "same-frame": "the floor, same frame" };
  if (t.against === "absolute") return t.unit === "x" ? `${t.op} ${t.value}x` : `${t.op} ${t.value} ${t.unit ?? ""}`.trim();
  return `${t.op} ${t.value}x ${names[t.against] ?? t.against}`;
}

/**
 * Judges every target for every ArqonBus system in `systems`: per run, the system's metric over the reference's
 * (both from that run), then the median over runs. `unavailable`: systems that could not run, named in `why`.
 */
export function evaluateTargets(
  results: RunResults,
  systems: string[],
  unavailable: Record<string, string> = {},
  targets: Target[] = TARGETS,
): TargetResult[] {
  const out: TargetResult[] = [];
  const metric = (run: Record<string, Metric[]>, sys: string, t: Target): Metric | undefined => {
    const m = run[sys]?.find((x) => x.key === t.key);
    return m && Number.isFinite(m.value) && (!t.measuredAt || t.measuredAt.test(m)) ? m : undefined;
  };
  for (const t of targets) {
    for (const sys of TARGET_SYSTEMS) {
      if (!systems.includes(sys) && !(sys in unavailable)) continue;
      const ref = t.against === "same-frame" ? `floor-${sys}` : t.against === "absolute" ? undefined : t.against;
      const xs: number[] = [];
      let mine = 0;
      let theirs = 0;
      for (const run of results) {
        const a = metric(run, sys, t);
        if (a) mine++;
        if (ref === undefined) {
          if (a) xs.push(a.value);
          continue;
        }
        const b = metric(run, ref, t);
        if (b) theirs++;
        if (a && b && b.value !== 0) xs.push(a.value / b.value);
      }
      const value = spread(xs);
      let why: string | undefined;
      if (!value) {
        const missing = (id: string) => (id in unavailable ? `${id} not available` : !systems.includes(id) ? `${id} not in the run` : undefined);
        why =
          missing(sys) ??
          (mine === 0 ? (t.measuredAt ? `needs ${t.measuredAt.needs}` : `${t.key} not measured${t.runBy ? `: ${t.runBy}` : ""}`) : undefined) ??
          (ref !== undefined ? (missing(ref) ?? (theirs === 0 ? `${t.key} not measured for ${ref}` : `no run with both ${sys} and ${ref}`)) : undefined) ??
          "not measured";
      }
      out.push({
        id: t.id,
        text: t.text,
        system: sys,
        needed: againstText(t),
        value,
        met: value === undefined ? undefined : t.op === ">=" ? value.median >= t.value : value.median <= t.value,
        ...(why ? { why } : {}),
      });
    }
  }
  return out;
}

/** "met" / "MISSED" / "not measured". */
export function verdict(met: boolean | undefined): string {
  return met === undefined ? "not measured" : met ? "met" : "MISSED";
}

/**
 * The targets as a Markdown table: one row per target, the measured same-run ratio and the verdict per ArqonBus
 * system (median over runs, with the spread when there were several), or "not measured" and why.
 */
export function targetsTable(results: TargetResult[]): string {
  const out = ["| target | needed | ArqonBus JSON | ArqonBus protobuf |", "|---|---|---|---|"];
  const ids = [...new Set(results.map((r) => r.id))];
  for (const id of ids) {
    const rs = results.filter((r) => r.id === id);
    const cell = (sys: string) => {
      const r = rs.find((x) => x.system === sys);
      if (!r) return "";
      if (!r.value) return `not measured (${r.why})`;
      const unit = r.needed.endsWith("KB") ? " KB" : "x";
      const v = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
      const spreadText = r.value.n > 1 ? ` (${v(r.value.min)}-${v(r.value.max)}, ${r.value.n} runs)` : "";
      return `${v(r.value.median)}${unit}${spreadText}: ${verdict(r.met)}`;
    };
    out.push(`| ${rs[0]!.text} | ${rs[0]!.needed} | ${cell("arqon-json")} | ${cell("arqon-proto")} |`);
  }
  return out.join("\n");
}

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
export function aggregate(results: RunResults, systems: string[], unavailable: Record<string, string> = {}): Row[] {
  const judged = evaluateTargets(results, systems, unavailable);
  const keyOf = new Map(TARGETS.map((t) => [t.id, t.key]));
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
        for (const j of judged) if (j.system === sys && keyOf.get(j.id) === k.key) row.targets.push({ text: j.needed, met: j.met });
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
    const target = r.targets.map((t) => `${t.text} ${t.met === undefined ? "not measured" : t.met ? "MET" : "MISSED"}`).join("; ");
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
        const proto = get("arqon-proto");
        return `${t.text}: ${verdict(t.met)} / ${proto ? verdict(proto.targets[i]?.met) : "-"}`;
      })
      .join("; ");
    out.push(
      `| ${rs[0]!.label} (${rs[0]!.unit}) | ${systems.map(cell).join(" | ")} | ${ratio("vsFloor")} | ${ratio("vsSocketio")} | ${ratio("vsCentrifugo")} | ${ratio("vsSameFrame")} | ${targets} |`,
    );
  }
  return out.join("\n");
}
