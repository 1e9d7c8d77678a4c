import type { CasilMode } from "./config.js";

/** What a policy decides for one input: let it through, rewrite its payload, or stop it. */
export type CasilAction = "allow" | "redact" | "block";

/** One counter row: how many inspections of `tenant` in `mode` reached `decision` for `reason` ("" for allow). */
export interface CasilDecisionCount {
  /** The tenant inspected ("_other" for tenants beyond the first 10,000 counted). */
  tenant: string;
  /** The mode the inspection ran in. */
  mode: CasilMode;
  /** What the policy decided (in monitor mode: what enforce would have done; traffic was not changed). */
  decision: CasilAction;
  /** The reason code of the decision (a CASIL_* error code); "" for a plain allow. */
  reason: string;
  /** Inspections counted since the telemetry was created. */
  count: number;
}

/** A copy of every CASIL counter at one moment, as `CasilTelemetry.snapshot()` and `CasilEngine.stats()` return it. */
export interface CasilStatsSnapshot {
  /** One row per tenant, mode, decision and reason that occurred at least once. */
  decisions: CasilDecisionCount[];
  /** Inspections where the shadow policy's decision differed from the live one, by tenant. */
  shadowDifferences: Array<{
    /** The tenant whose inspections differed ("_other" for tenants beyond the first 10,000 with a difference). */
    tenant: string;
    /** How many of its inspections differed. */
    count: number;
  }>;
  /** Wasm policy calls by policy name and outcome (allow, deny, trap, timeout, error). */
  wasm: Array<{
    /** The Wasm policy's name. */
    policy: string;
    /** "allow", "deny", or the error the host reported ("trap", "timeout", "disabled", ...; "error" when unnamed). */
    outcome: string;
    /** How many calls of the policy had this outcome. */
    count: number;
  }>;
}

interface TenantCounters {
  allowMonitor: number;
  allowEnforce: number;
  other: Map<string, number>;
}

const MAX_TENANTS = 10_000;
const OVERFLOW_TENANT = "_other";

/**
 * Monotonic decision counters, shared by successive engines (a reload keeps counting). Read with `snapshot()`; the
 * server's Prometheus collector turns it into `arqon_casil_decisions_total{tenant,mode,decision,reason}`.
 * Tenants beyond the first 10,000 counted are counted under "_other" to bound label cardinality, in the decision
 * counters and the shadow-difference counters alike (each keeps its own first 10,000).
 */
export class CasilTelemetry {
  private readonly tenants = new Map<string, TenantCounters>();
  private readonly shadow = new Map<string, number>();
  private readonly wasmCounts = new Map<string, number>();
  private readonly maxTenants: number;

  /** `maxTenants`: tenants counted by name before the rest go to "_other". @default 10000 */
  constructor(options: { maxTenants?: number } = {}) {
    this.maxTenants = options.maxTenants ?? MAX_TENANTS;
  }

  private countersOf(tenant: string): TenantCounters {
    let c = this.tenants.get(tenant);
    if (!c) {
      if (this.tenants.size >= this.maxTenants && tenant !== OVERFLOW_TENANT) return this.countersOf(OVERFLOW_TENANT);
      c = { allowMonitor: 0, allowEnforce: 0, other: new Map() };
      this.tenants.set(tenant, c);
    }
    return c;
  }

  /** Counts one allow without a reason for `tenant` in `mode` (the hot path: no string key is built). */
  recordAllow(tenant: string, mode: CasilMode): void {
    const c = this.countersOf(tenant);
    if (mode === "enforce") c.allowEnforce++;
    else c.allowMonitor++;
  }

  /** Counts one inspection of `tenant` in `mode` that reached `decision` for `reason` ("" for a plain allow). */
  record(tenant: string, mode: CasilMode, decision: CasilAction, reason: string): void {
    if (decision === "allow" && reason === "") return this.recordAllow(tenant, mode);
    const c = this.countersOf(tenant);
    const key = `${mode}\u0000${decision}\u0000${reason}`;
    c.other.set(key, (c.other.get(key) ?? 0) + 1);
  }

  /** Counts one inspection of `tenant` whose shadow decision differed from the live one. */
  recordShadowDifference(tenant: string): void {
    const key = this.shadow.has(tenant) || this.shadow.size < this.maxTenants ? tenant : OVERFLOW_TENANT;
    this.shadow.set(key, (this.shadow.get(key) ?? 0) + 1);
  }

  /** Counts one call of Wasm policy `policy` that ended in `outcome` (allow, deny, or the host's error name). */
  recordWasm(policy: string, outcome: string): void {
    const key = `${policy}\u0000${outcome}`;
    this.wasmCounts.set(key, (this.wasmCounts.get(key) ?? 0) + 1);
  }

  /** A copy of the counters; later inspections do not change it. Rows with a zero count are left out. */
  snapshot(): CasilStatsSnapshot {
    const decisions: CasilDecisionCount[] = [];
    for (const [tenant, c] of this.tenants) {
      if (c.allowMonitor) decisions.push({ tenant, mode: "monitor", decision: "allow", reason: "", count: c.allowMonitor });
      if (c.allowEnforce) decisions.push({ tenant, mode: "enforce", decision: "allow", reason: "", count: c.allowEnforce });
      for (const [key, count] of c.other) {
        const [mode, decision, reason] = key.split("\u0000") as [CasilMode, CasilAction, string];
        decisions.push({ tenant, mode, decision, reason, count });
      }
    }
    return {
      decisions,
      shadowDifferences: [...this.shadow].map(([tenant, count]) => ({ tenant, count })),
      wasm: [...this.wasmCounts].map(([key, count]) => {
        const [policy, outcome] = key.split("\u0000") as [string, string];
        return { policy, outcome, count };
      }),
    };
  }
}
