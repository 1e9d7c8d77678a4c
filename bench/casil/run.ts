/**
 * CASIL's part of `npm run bench:full` (bench/src/run.ts runs it as an extra with ARQON_BENCH_OUT set): the inspect
 * cost per configuration (inspect.ts) and the rough in-process fan-out comparison, CASIL off against the default
 * policies in enforce mode (fanout.ts). Both print their tables; this writes their figures as metrics.
 *
 *   node --conditions=arqon-source --import tsx bench/casil/run.ts
 */
import { writeFileSync } from "node:fs";
import { rows } from "./inspect.js";
import { results } from "./fanout.js";

const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, "_").replace(/^_|_$/g, "").toLowerCase();

const metrics = rows.flatMap((r) => [
  { key: `casil.inspect.${slug(r.name)}.median`, label: `CASIL inspect, ${r.name}, median`, unit: "µs", value: round(r.median, 2) },
  { key: `casil.inspect.${slug(r.name)}.p99`, label: `CASIL inspect, ${r.name}, p99`, unit: "µs", value: round(r.p99, 2) },
]);
const off = median(results.get("off") ?? [NaN]);
const enforce = median(results.get("default (enforce)") ?? [NaN]);
metrics.push(
  { key: "casil.fanout.off", label: "CASIL fan-out (in-process, 10 subscribers): off, median msg/s", unit: "/s", value: Math.round(off) },
  { key: "casil.fanout.enforce", label: "CASIL fan-out (in-process, 10 subscribers): default policies, median msg/s", unit: "/s", value: Math.round(enforce) },
  { key: "casil.fanout.cost", label: "CASIL fan-out cost of the default policies", unit: "%", value: round(100 * (1 - enforce / off), 1) },
);
console.log(metrics.slice(-1).map((m) => `${m.label}: ${m.value} ${m.unit}`).join("\n"));
if (process.env.ARQON_BENCH_OUT) writeFileSync(process.env.ARQON_BENCH_OUT, JSON.stringify({ metrics, rows, fanout: Object.fromEntries(results) }, null, 2));
