import { Counter, Gauge, type Registry } from "prom-client";
import type { CasilController } from "./controller.js";

/**
 * Exposes a controller's counters on a Prometheus registry (the server's `metrics`), read at scrape time:
 * `arqon_casil_decisions_total{tenant,mode,decision,reason}` (in monitor mode `decision` is what enforce would have
 * done), `arqon_casil_shadow_differences_total{tenant}`, `arqon_casil_wasm_calls_total{policy,outcome}` and
 * `arqon_casil_policy_version`, `arqon_casil_wasm_disabled{policy}` (circuit breaker). `tenantLabel` bounds the tenant label (ServerMetrics.tenant). Returns a function that removes them.
 */
export function registerCasilMetrics(registry: Registry, controller: CasilController, tenantLabel: (tenant: string) => string = (t) => t): () => void {
  const registers = [registry];
  const decisions = new Counter({
    name: "arqon_casil_decisions_total",
    help: "CASIL inspections by tenant, mode, decision and reason code",
    labelNames: ["tenant", "mode", "decision", "reason"],
    registers,
    collect() {
      this.reset();
      for (const d of controller.stats().decisions) this.inc({ tenant: tenantLabel(d.tenant), mode: d.mode, decision: d.decision, reason: d.reason }, d.count);
    },
  });
  const shadow = new Counter({
    name: "arqon_casil_shadow_differences_total",
    help: "Inspections where the shadow policy decided differently from the live one",
    labelNames: ["tenant"],
    registers,
    collect() {
      this.reset();
      for (const s of controller.stats().shadowDifferences) this.inc({ tenant: tenantLabel(s.tenant) }, s.count);
    },
  });
  const wasm = new Counter({
    name: "arqon_casil_wasm_calls_total",
    help: "Wasm policy calls by policy and outcome (allow, deny, trap, timeout, ...)",
    labelNames: ["policy", "outcome"],
    registers,
    collect() {
      this.reset();
      for (const w of controller.stats().wasm) this.inc({ policy: w.policy, outcome: w.outcome }, w.count);
    },
  });
  const disabled = new Gauge({
    name: "arqon_casil_wasm_disabled",
    help: "Wasm policies of the baseline disabled by the circuit breaker (1 open, 0.5 half open: one trial call allowed)",
    labelNames: ["policy"],
    registers,
    collect() {
      this.reset();
      for (const b of controller.wasmBreakers()) if (b.state !== "closed") this.set({ policy: b.policy }, b.state === "open" ? 1 : 0.5);
    },
  });
  const version = new Gauge({
    name: "arqon_casil_policy_version",
    help: "Version of the active CASIL policy",
    registers,
    collect() {
      this.set(controller.version);
    },
  });
  return () => {
    for (const name of [decisions, shadow, wasm, disabled, version].map((m) => (m as unknown as { name: string }).name)) registry.removeSingleMetric(name);
  };
}
