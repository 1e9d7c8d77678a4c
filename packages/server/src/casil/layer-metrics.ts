import { Counter, Gauge, type Registry } from "prom-client";
import type { LayeredCasil } from "./layers.js";

/**
 * Exposes the tenant layers' own counters on a Prometheus registry, read at scrape time (the baseline's stay with
 * registerCasilMetrics): `arqon_casil_layer_decisions_total{tenant,mode,decision,reason}` (decisions the tenant's
 * layer made; in monitor mode what enforce would have done), `arqon_casil_layer_wasm_calls_total{tenant,policy,outcome}`
 * `arqon_casil_layer_wasm_disabled{tenant,policy}` (circuit breaker) and `arqon_casil_layers` (tenants with a layer). `tenantLabel` bounds the tenant label (ServerMetrics.tenant). Returns a function that removes them.
 */
export function registerCasilLayerMetrics(registry: Registry, layered: LayeredCasil, tenantLabel: (tenant: string) => string = (t) => t): () => void {
  const registers = [registry];
  const decisions = new Counter({
    name: "arqon_casil_layer_decisions_total",
    help: "Decisions made by tenant CASIL layers, by tenant, mode, decision and reason code",
    labelNames: ["tenant", "mode", "decision", "reason"],
    registers,
    collect() {
      this.reset();
      for (const { stats } of layered.layerStats()) {
        for (const d of stats.decisions) this.inc({ tenant: tenantLabel(d.tenant), mode: d.mode, decision: d.decision, reason: d.reason }, d.count);
      }
    },
  });
  const wasm = new Counter({
    name: "arqon_casil_layer_wasm_calls_total",
    help: "Wasm calls of tenant CASIL layers by tenant, policy and outcome (allow, deny, trap, timeout, rate_limited, ...)",
    labelNames: ["tenant", "policy", "outcome"],
    registers,
    collect() {
      this.reset();
      for (const { tenant, stats } of layered.layerStats()) {
        for (const w of stats.wasm) this.inc({ tenant: tenantLabel(tenant), policy: w.policy, outcome: w.outcome }, w.count);
      }
    },
  });
  const disabled = new Gauge({
    name: "arqon_casil_layer_wasm_disabled",
    help: "Wasm policies of tenant layers disabled by the circuit breaker (1 open, 0.5 half open)",
    labelNames: ["tenant", "policy"],
    registers,
    collect() {
      this.reset();
      for (const b of layered.wasmBreakers()) if (b.state !== "closed") this.set({ tenant: tenantLabel(b.tenant), policy: b.policy }, b.state === "open" ? 1 : 0.5);
    },
  });
  const layers = new Gauge({
    name: "arqon_casil_layers",
    help: "Tenants with a CASIL layer on this server",
    registers,
    collect() {
      this.set(layered.summaries().length);
    },
  });
  return () => {
    for (const name of [decisions, wasm, disabled, layers].map((m) => (m as unknown as { name: string }).name)) registry.removeSingleMetric(name);
  };
}
