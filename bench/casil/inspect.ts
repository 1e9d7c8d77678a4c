/**
 * CASIL inspect cost for a 1 KB JSON payload: CASIL off, the default policies (size + probable secrets), the default
 * policies plus JSON-path redaction, and one Wasm policy (the AssemblyScript deny-word example in the worker pool).
 * Prints median / p99 per call in µs and calls per second, one row per configuration.
 *
 *   node --conditions=arqon-source --import tsx bench/casil/inspect.ts [--calls 20000] [--wasm-calls 5000]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { allowAll, createCasilEngine, jsonBytes, type InspectionInput, type Inspector } from "@arqon/core";
import { WasmPolicyHost } from "@arqon/server";

const { values } = parseArgs({ options: { calls: { type: "string", default: "20000" }, "wasm-calls": { type: "string", default: "5000" } } });
const CALLS = Number(values.calls);
const WASM_CALLS = Number(values["wasm-calls"]);

function payloadOf(size: number): Uint8Array {
  const base = { type: "chat", user: { id: "u-1842", name: "Ada Lovelace" }, ts: 1763790000000, tags: ["general", "en"], text: "" };
  const filler = "The quick brown fox jumps over the lazy dog while the bus carries every message to its room. ";
  let text = "";
  while (jsonBytes({ ...base, text: text + filler }).length <= size) text += filler;
  text += "x".repeat(size - jsonBytes({ ...base, text }).length);
  return jsonBytes({ ...base, text });
}

const payload = payloadOf(1024);
const input: InspectionInput = { tenant: "acme", room: "chat.general", path: "publish", subject: "alice", payload };

export interface Row {
  name: string;
  median: number;
  p99: number;
  perSec: number;
  decision: string;
}

function summarize(name: string, samplesNs: number[], totalNs: number, decision: string): Row {
  const us = samplesNs.map((n) => n / 1000).sort((a, b) => a - b);
  const at = (q: number) => us[Math.min(us.length - 1, Math.floor(q * us.length))]!;
  return { name, median: at(0.5), p99: at(0.99), perSec: (samplesNs.length / totalNs) * 1e9, decision };
}

async function measure(name: string, inspector: Inspector, calls: number): Promise<Row> {
  const warm = Math.min(2000, calls);
  let decision = "";
  for (let i = 0; i < warm; i++) {
    const d = await inspector.inspect(input);
    decision = d.action;
  }
  const samples = new Array<number>(calls);
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    const d = inspector.inspect(input);
    if (d instanceof Promise) await d;
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  const total = Number(process.hrtime.bigint() - start);
  return summarize(name, samples, total, decision);
}

export const rows: Row[] = [];
rows.push(await measure("off (allowAll)", allowAll, CALLS));
rows.push(await measure("default policies (enforce)", createCasilEngine({ policy: { mode: "enforce" } }), CALLS));
rows.push(await measure("default + redaction paths", createCasilEngine({ policy: { mode: "enforce", redactionPaths: ["$.user.password", "$..token"] } }), CALLS));
rows.push(await measure("default + 4 custom patterns", createCasilEngine({ policy: { mode: "enforce", patterns: ["drop\\s+table", "\\bssn\\b", "rm -rf", "<script"].map((pattern, i) => ({ name: `p${i}`, pattern, flags: "i" })) } }), CALLS));

const host = new WasmPolicyHost({ budgetMs: 50 });
const wasmFile = fileURLToPath(new URL("../../apps/examples/casil-wasm-policy/build/deny-word.wasm", import.meta.url));
await host.load("deny-word", new Uint8Array(readFileSync(wasmFile)));
rows.push(await measure("default + 1 Wasm policy", createCasilEngine({ policy: { mode: "enforce", wasm: [{ name: "deny-word" }] }, wasm: host }), WASM_CALLS));
rows.push(
  await measure("Wasm host call alone", { inspect: async (i) => ((await host.evaluate("deny-word", i.payload)).verdict === "allow" ? { action: "allow" } : { action: "block", reasonCode: "x", message: "x" }) }, WASM_CALLS),
);
await host.close();

const pad = (s: string, n: number) => s.padEnd(n);
const num = (v: number, d = 2) => v.toFixed(d).padStart(10);
console.log(`CASIL inspect, ${payload.length}-byte JSON payload, node ${process.version}, ${CALLS} calls (${WASM_CALLS} for Wasm)`);
console.log(`${pad("configuration", 30)}${"median µs".padStart(10)}${"p99 µs".padStart(10)}${"calls/s".padStart(12)}  decision`);
for (const r of rows) console.log(`${pad(r.name, 30)}${num(r.median)}${num(r.p99)}${r.perSec.toFixed(0).padStart(12)}  ${r.decision}`);
