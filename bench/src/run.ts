import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { benchRoot } from "./ipc.js";
import { PROFILES, type Profile } from "./profile.js";
import { aggregate, evaluateTargets, headline, table, targetsTable, type RunResults } from "./report.js";
import { DEFAULT_SYSTEMS, getSystem, prepareSystems } from "./systems/index.js";
import { WORKLOADS } from "./workloads/index.js";
import type { Metric } from "./workloads/types.js";

/**
 * `npm run bench` (short) and `npm run bench:full`: runs every workload against every system, one system after the
 * other within each run (the order rotates between runs), then prints medians, spreads and same-run ratios and writes
 * the JSON under bench/results/.
 */
const { values: args } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    runs: { type: "string" },
    systems: { type: "string" },
    workloads: { type: "string" },
    sizes: { type: "string" },
    "step-ms": { type: "string" },
    "latency-ms": { type: "string" },
    rooms: { type: "string" },
    idle: { type: "string" },
    setup: { type: "string" },
    "common-rate": { type: "string" },
    "max-steps": { type: "string" },
    "max-minutes": { type: "string" },
    "cpu-prof": { type: "string" },
    extras: { type: "boolean" },
    out: { type: "string" },
  },
});

const profile: Profile = { ...PROFILES[args.full ? "full" : "short"] };
if (args.runs) profile.runs = Number(args.runs);
if (args.sizes) profile.fanoutSizes = args.sizes.split(",").map(Number);
if (args["step-ms"]) profile.stepMs = Number(args["step-ms"]);
if (args["latency-ms"]) profile.latencyMs = Number(args["latency-ms"]);
if (args.rooms) profile.rooms = Number(args.rooms);
if (args.idle) profile.idleConnections = Number(args.idle);
if (args.setup) profile.setupConnections = Number(args.setup);
if (args["common-rate"]) profile.commonRate = Number(args["common-rate"]);
if (args["max-steps"]) profile.maxSteps = Number(args["max-steps"]);

const systems = args.systems ? args.systems.split(",") : DEFAULT_SYSTEMS;
systems.forEach(getSystem);
const wanted = args.workloads?.split(",");
const workloads = WORKLOADS.filter((w) => {
  if (wanted) return wanted.some((id) => w.id === id || (id === "fanout" && w.id.startsWith("fanout-")));
  return w.enabled(profile);
});
// A fan-out size given with --sizes that has no workload of its own still runs.
if (args.sizes && (!wanted || wanted.includes("fanout"))) {
  const { fanoutWorkload } = await import("./workloads/fanout.js");
  const extra = profile.fanoutSizes.filter((n) => !workloads.some((w) => w.id === `fanout-${n}`)).map(fanoutWorkload);
  workloads.unshift(...extra);
  for (let i = workloads.length - 1; i >= 0; i--) {
    const w = workloads[i]!;
    if (w.id.startsWith("fanout-") && !profile.fanoutSizes.includes(Number(w.id.slice(7)))) workloads.splice(i, 1);
  }
}

// With the default set, a workload's own extra systems join it for that workload (fan-out: the floor carrying
// ArqonBus's frame, for the same-frame targets); with --systems, exactly those run.
const extraSystems = args.systems ? [] : [...new Set(workloads.flatMap((w) => w.extraSystems ?? []))].filter((id) => !systems.includes(id));
extraSystems.forEach(getSystem);
const allSystems = [...systems, ...extraSystems];
const systemsFor = (w: (typeof workloads)[number], ids: string[]): string[] =>
  ids.filter((id) => systems.includes(id) || (!args.systems && (w.extraSystems ?? []).includes(id)));

const resultsDir = path.join(benchRoot, "results");
mkdirSync(resultsDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const profDir = path.join(resultsDir, "prof", stamp);

function hardware() {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  return {
    cpu: model,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg(),
  };
}

const log = (m: string): void => console.log(m);
const secret = randomBytes(32).toString("base64url");
const hw = hardware();
log(
  `bench ${profile.name}: ${profile.runs} run(s), systems ${systems.join(", ")}` +
    `${extraSystems.length ? ` (+ ${extraSystems.join(", ")} for ${workloads.filter((w) => w.extraSystems?.length).map((w) => w.id).join(", ")})` : ""}, ` +
    `workloads ${workloads.map((w) => w.id).join(", ")}`,
);
log(`hardware: ${hw.cpu}, ${hw.cores} cores, ${hw.memoryGiB} GiB, node ${hw.node}, load ${hw.loadavg.map((x) => x.toFixed(2)).join(" ")}`);

// Systems that need something first (Centrifugo: its binary, built with Go the first time) get it now; one that
// cannot be had is reported as not available and the run goes on without it.
const { ready, unavailable } = await prepareSystems(allSystems, log);

const started = Date.now();
const outFile = args.out ?? path.join(resultsDir, `bench-${profile.name}-${stamp}.json`);
const HEADLINE_KEYS = /\.(deliveries|cpu|cpu_half|half\.p99|common\.p99|messages|rss|heap|rate|p99_ratio|cut_s)$/;
/** Everything measured so far goes to disk after each workload, so an interrupted run still leaves its figures. */
function savePartial(done: RunResults): void {
  const rows = aggregate(done, allSystems, unavailable);
  const targets = evaluateTargets(done, allSystems, unavailable);
  const partial = { partial: true, profile, hardware: hw, startedAt: new Date(started).toISOString(), rows, targets, runs: done, failures, unavailable };
  writeFileSync(
    outFile,
    JSON.stringify({ ...partial, table: table(rows, unavailable), headline: headline(rows, HEADLINE_KEYS, unavailable), targetsTable: targetsTable(targets) }, null, 1),
  );
}
const saturations = new Map<string, number>();
/** Time budget: no new workload starts after it (what was measured is still reported). */
const deadline = started + Number(args["max-minutes"] ?? (profile.name === "full" ? 60 : 8)) * 60_000;
let outOfTime = false;
const results: RunResults = [];
const failures: Array<{ run: number; system: string; workload: string; error: string }> = [];
for (let run = 0; run < profile.runs && !outOfTime; run++) {
  const perSystem: Record<string, Metric[]> = {};
  results.push(perSystem);
  for (const w of workloads) {
    // Rotate the order so no system always goes first (warm caches, neighbours' load).
    const mine = systemsFor(w, ready);
    const order = mine.map((_, i) => mine[(i + run) % mine.length]!);
    for (const sys of order) {
      if (Date.now() > deadline) {
        if (!outOfTime) log(`time budget reached: stopping before run ${run + 1} ${w.id} ${sys}`);
        outOfTime = true;
        break;
      }
      log(`run ${run + 1}/${profile.runs} ${w.id} ${sys}`);
      const t0 = Date.now();
      try {
        const metrics = await w.run({
          system: getSystem(sys),
          profile,
          secret,
          run,
          // One folder per server process: tsx's loader thread writes a profile of its own next to the main thread's.
          serverNodeArgs: args["cpu-prof"] === sys ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profDir, `${w.id}-${sys}-run${run + 1}`)}`] : [],
          log,
          searchStart: (fallback) => {
            const last = saturations.get(`${w.id}/${sys}`);
            return last ? Math.max(1000, last * 0.6) : fallback;
          },
          rememberSaturation: (value) => {
            if (value > 0) saturations.set(`${w.id}/${sys}`, value);
          },
        });
        (perSystem[sys] ??= []).push(...metrics);
        log(`  done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        savePartial(results);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        log(`  FAILED: ${error}`);
        failures.push({ run, system: sys, workload: w.id, error });
      }
    }
  }
}

/** Teammates' scripts (bench/casil/run.ts, bench/delta/run.ts) join full runs; see bench/README.md for the contract. */
async function runExtras(): Promise<Record<string, unknown>> {
  const extras: Record<string, unknown> = {};
  for (const name of ["casil", "delta"]) {
    const dir = path.join(benchRoot, name);
    const script = ["run.ts", "run.mjs", "index.ts"].map((f) => path.join(dir, f)).find((f) => existsSync(f));
    if (!script) continue;
    const out = path.join(resultsDir, `${name}-${stamp}.tmp`);
    log(`extra: ${name} (${path.relative(benchRoot, script)})`);
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ["--conditions=arqon-source", "--import", "tsx", script], {
        cwd: benchRoot,
        stdio: ["ignore", "inherit", "inherit"],
        env: { ...process.env, ARQON_BENCH_OUT: out, ARQON_BENCH_PROFILE: profile.name },
      });
      const timer = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), 10 * 60_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    try {
      extras[name] = { exitCode: code, ...JSON.parse(readFileSync(out, "utf8")) };
    } catch {
      extras[name] = { exitCode: code, error: "no JSON written to ARQON_BENCH_OUT" };
    }
  }
  return extras;
}
const extras = (args.extras ?? profile.name === "full") && !outOfTime ? await runExtras() : {};

const rows = aggregate(results, allSystems, unavailable);
const text = table(rows, unavailable);
const targets = evaluateTargets(results, allSystems, unavailable);
const targetsText = targetsTable(targets);
log("");
log(`## ${profile.name} run, ${profile.runs} run(s), ${((Date.now() - started) / 1000).toFixed(0)} s — ${hw.cpu}, ${hw.cores} cores, node ${hw.node}`);
const head = headline(rows, HEADLINE_KEYS, unavailable);
log("");
log(head);
log("");
log("### Targets (issue 23): same-run ratios, median over runs");
log("");
log(targetsText);
log("");
log(text);
for (const [name, e] of Object.entries(extras)) {
  const metrics = (e as { metrics?: Array<{ label?: string; key: string; value: number; unit?: string }> }).metrics ?? [];
  log(`\n${name}: ${metrics.length ? metrics.map((m) => `${m.label ?? m.key} = ${m.value} ${m.unit ?? ""}`).join("; ") : JSON.stringify(e)}`);
}
if (failures.length) {
  log(`\n${failures.length} failure(s):`);
  for (const f of failures) log(`  run ${f.run + 1} ${f.workload} ${f.system}: ${f.error}`);
}
writeFileSync(
  outFile,
  JSON.stringify(
    {
      profile,
      systems: allSystems.map((id) => ({ id, label: getSystem(id).label, clients: getSystem(id).clientNote, ...(id in unavailable ? { unavailable: unavailable[id] } : {}) })),
      hardware: hw,
      startedAt: new Date(started).toISOString(),
      durationSec: (Date.now() - started) / 1000,
      rows,
      targets,
      targetsTable: targetsText,
      runs: results,
      failures,
      unavailable,
      extras,
      table: text,
      headline: head,
      cpuProfiles: existsSync(profDir) ? readdirSync(profDir, { recursive: true }).map((f) => path.join(profDir, String(f))).filter((f) => f.endsWith(".cpuprofile")) : [],
    },
    null,
    1,
  ),
);
log(`\nresults: ${path.relative(process.cwd(), outFile)}`);
process.exit(failures.length && results.every((r) => Object.keys(r).length === 0) ? 1 : 0);
