import { describe, expect, it } from "vitest";
import { aggregate, evaluateTargets, table, TARGETS, targetsTable, type RunResults, type TargetResult } from "../src/report.js";
import type { Metric } from "../src/workloads/types.js";

const m = (key: string, value: number, detail?: unknown): Metric => ({ key, label: key, unit: "/s", value, better: "higher", detail });
const find = (rs: TargetResult[], id: string, system: string): TargetResult => {
  const r = rs.find((x) => x.id === id && x.system === system);
  if (!r) throw new Error(`no ${id} for ${system}`);
  return r;
};
const ALL = ["arqon-json", "arqon-proto", "socketio", "floor", "centrifugo", "floor-arqon-json", "floor-arqon-proto"];

describe("target evaluation", () => {
  it("judges same-run ratios: met and missed", () => {
    const results: RunResults = [
      {
        "arqon-json": [m("fanout.n1000.deliveries", 950_000)],
        "arqon-proto": [m("fanout.n1000.deliveries", 700_000)],
        floor: [m("fanout.n1000.deliveries", 1_000_000)],
        "floor-arqon-json": [m("fanout.n1000.deliveries", 1_000_000)],
        "floor-arqon-proto": [m("fanout.n1000.deliveries", 1_000_000)],
      },
    ];
    const r = evaluateTargets(results, ALL);
    expect(find(r, "fanout.n1000.same-frame", "arqon-json")).toMatchObject({ met: true, value: { median: 0.95 } });
    expect(find(r, "fanout.n1000.floor", "arqon-json").met).toBe(true);
    expect(find(r, "fanout.n1000.same-frame", "arqon-proto")).toMatchObject({ met: false, value: { median: 0.7 } });
    expect(find(r, "fanout.n1000.floor", "arqon-proto").met).toBe(false);
  });

  it("takes the ratio within each run, then the median over runs", () => {
    // Run 1: 0.5x, run 2: 1.0x, run 3: 0.9x (the floor swings between runs; each ratio is from its own run).
    const run = (a: number, f: number) => ({ "arqon-json": [m("fanout.n1000.deliveries", a)], floor: [m("fanout.n1000.deliveries", f)] });
    const r = find(evaluateTargets([run(500, 1000), run(2000, 2000), run(900, 1000)], ALL), "fanout.n1000.floor", "arqon-json");
    expect(r.value).toEqual({ median: 0.9, min: 0.5, max: 1, n: 3 });
    expect(r.met).toBe(true);
  });

  it("is not measured, never met, when the reference or the size is missing", () => {
    const results: RunResults = [{ "arqon-json": [m("fanout.n1000.deliveries", 950_000)], floor: [m("fanout.n1000.deliveries", 1_000_000)] }];
    const r = evaluateTargets(results, ["arqon-json", "floor"]);
    // The floor carrying the same frame was not in the run.
    expect(find(r, "fanout.n1000.same-frame", "arqon-json")).toMatchObject({ met: undefined, why: "floor-arqon-json not in the run" });
    // N=10,000 was not run.
    expect(find(r, "fanout.n10000.floor", "arqon-json")).toMatchObject({ met: undefined, why: "fanout.n10000.deliveries not measured: --full, or --sizes 1000,10000" });
    // arqon-proto was not in the run at all: no row for it.
    expect(r.some((x) => x.system === "arqon-proto")).toBe(false);
    // A reference in the run that did not measure the metric.
    const r2 = evaluateTargets([{ "arqon-json": [m("rooms.messages", 10)], floor: [m("idle.rss", 5)] }], ["arqon-json", "floor"]);
    expect(find(r2, "rooms.floor", "arqon-json")).toMatchObject({ met: undefined, why: "rooms.messages not measured for floor" });
  });

  it("names a system that was not available", () => {
    const results: RunResults = [{ "arqon-json": [m("rooms.messages", 20_000)], socketio: [m("rooms.messages", 10_000)], floor: [m("rooms.messages", 30_000)] }];
    const r = evaluateTargets(results, ["arqon-json", "socketio", "floor"], { centrifugo: "go not found" });
    expect(find(r, "rooms.centrifugo", "arqon-json")).toMatchObject({ met: undefined, why: "centrifugo not available" });
    expect(find(r, "rooms.socketio", "arqon-json").met).toBe(true);
    expect(find(r, "rooms.floor", "arqon-json").met).toBe(true);
  });

  it("counts idle memory only at 10,000 connections", () => {
    const at = (n: number, kb: number): RunResults => [{ "arqon-json": [m("idle.rss", kb, { n })] }];
    expect(find(evaluateTargets(at(1000, 5), ["arqon-json"]), "idle.rss", "arqon-json")).toMatchObject({ met: undefined });
    expect(find(evaluateTargets(at(1000, 5), ["arqon-json"]), "idle.rss", "arqon-json").why).toContain("10,000 connections");
    expect(find(evaluateTargets(at(10_000, 6.4), ["arqon-json"]), "idle.rss", "arqon-json").met).toBe(true);
    expect(find(evaluateTargets(at(10_000, 6.6), ["arqon-json"]), "idle.rss", "arqon-json").met).toBe(false);
  });

  it("judges lower-is-better ratios and absolute values", () => {
    const results: RunResults = [
      {
        "arqon-json": [m("rooms.cpu", 50), m("slow.p99_ratio", 1.2), m("fanout.n1000.half.p99", 13)],
        "arqon-proto": [m("rooms.cpu", 26), m("slow.p99_ratio", 1.3), m("fanout.n1000.half.p99", NaN)],
        floor: [m("rooms.cpu", 20), m("fanout.n1000.half.p99", 10)],
      },
    ];
    const r = evaluateTargets(results, ["arqon-json", "arqon-proto", "floor"]);
    expect(find(r, "rooms.cpu", "arqon-json").met).toBe(true); // 2.5x: at the limit
    expect(find(r, "rooms.cpu", "arqon-proto").met).toBe(true);
    expect(find(r, "slow.p99", "arqon-json").met).toBe(true);
    expect(find(r, "slow.p99", "arqon-proto").met).toBe(false);
    expect(find(r, "fanout.n1000.p99", "arqon-json").met).toBe(false); // 1.3x
    // A value that is not a number (no samples) is not a measurement.
    expect(find(r, "fanout.n1000.p99", "arqon-proto").met).toBeUndefined();
  });

  it("prints met / MISSED / not measured, and never met for a missing figure", () => {
    const results: RunResults = [{ "arqon-json": [m("connect.rate", 900)], "arqon-proto": [m("connect.rate", 700)], floor: [m("connect.rate", 1000)] }];
    const r = evaluateTargets(results, ["arqon-json", "arqon-proto", "floor"]);
    const text = targetsTable(r);
    const line = (id: string) => text.split("\n").find((l) => l.startsWith(`| ${TARGETS.find((t) => t.id === id)!.text} |`))!;
    expect(line("connect.rate")).toBe("| connection setup with JWT, handshakes/s vs the floor | >= 0.8x the floor | 0.90x: met | 0.70x: MISSED |");
    expect(line("fanout.n10000.floor")).toContain("not measured (fanout.n10000.deliveries not measured: --full, or --sizes 1000,10000)");
    expect(line("slow.p99")).toContain("| <= 1.25x |");
    expect(line("fanout.n10000.floor")).not.toMatch(/: met/);
    // One row per target.
    expect(text.split("\n")).toHaveLength(2 + TARGETS.length);
    // The metric tables carry the same verdicts.
    const rows = aggregate(results, ["arqon-json", "arqon-proto", "floor"]);
    expect(table(rows)).toContain(">= 0.8x the floor MET");
    expect(table(rows)).toContain(">= 0.8x the floor MISSED");
  });
});
