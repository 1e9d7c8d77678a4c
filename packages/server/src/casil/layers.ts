import { createHash } from "node:crypto";
import {
  ArqonError,
  ErrorCode,
  CasilTelemetry,
  assertTenant,
  casilLayerModules,
  casilLayerSpec,
  createCasilEngine,
  fromBase64,
  parseCasilLayer,
  utf8Decode,
  utf8Encode,
  validateCasilLayer,
  type CasilAuditRecord,
  type CasilEngine,
  type CasilInspectOptions,
  type CasilLayerDocument,
  type CasilMode,
  type CasilStatsSnapshot,
  type Decision,
  type InspectionInput,
  type Inspector,
  type KeyValueStore,
  type KvEntry,
} from "@arqon/core";
import type { CasilController, CasilLogger } from "./controller.js";
import { WasmPolicyHost, type WasmBreakerStatus } from "./wasm-host.js";

/** The key-value namespace tenant layers live in; the key is the tenant. */
export const CASIL_LAYER_NAMESPACE = "arqon.casil.layers";

/** What one tenant's Wasm policies may use. */
export interface CasilTenantBudget {
  /** Time budget of one call (past it the call fails closed and the tenant's worker is replaced). @default 10 */
  budgetMs: number;
  /** Largest declared memory maximum of a module, in 64 KiB pages. @default 64 (4 MiB) */
  maxMemoryPages: number;
  /** Calls per second; more fail closed at once (flag `wasm_rate_limited`), never queued. @default 1000 */
  callsPerSecond: number;
  /** Largest decoded module. @default 262144 (256 KiB) */
  maxModuleBytes: number;
  /** Timeouts in a row that disable a policy (circuit breaker; its calls then fail closed at once). @default 3 */
  breakerThreshold: number;
  /** How long a disabled policy stays disabled before one trial call. @default 30000 */
  breakerCooldownMs: number;
}

/** The Wasm budget of a tenant whose `budgetFor` leaves a field unset (the defaults listed on `CasilTenantBudget`). */
export const DEFAULT_TENANT_BUDGET: Readonly<CasilTenantBudget> = Object.freeze({
  budgetMs: 10,
  maxMemoryPages: 64,
  callsPerSecond: 1000,
  maxModuleBytes: 256 * 1024,
  breakerThreshold: 3,
  breakerCooldownMs: 30_000,
});

/** Options of `LayeredCasil`. */
export interface LayeredCasilOptions {
  /** The operator's policy: applies to every tenant, no layer can weaken it. Closed by `close()`. */
  baseline: CasilController;
  /** Where layers persist (namespace CASIL_LAYER_NAMESPACE). Shared by every node of a cluster; not closed by `close()`. */
  kv: KeyValueStore;
  /** A tenant's Wasm budget; unset fields take DEFAULT_TENANT_BUDGET's. */
  budgetFor?: (tenant: string) => Partial<CasilTenantBudget> | undefined;
  /** How many tenants may run Wasm layers on this server (each has its own worker thread). @default 32 */
  maxWasmTenants?: number;
  /** Called after every local change (set, patch, clear) with the new stored version, e.g. to notify other nodes. */
  onChange?: (tenant: string, version: number) => void;
  /** One record per block and redaction a layer makes (`layer: true`). @default logged at warn when a logger is given */
  audit?: (record: CasilAuditRecord) => void;
  /** Where layers that cannot be activated, Wasm breaker changes and (by default) audit records are logged. */
  logger?: CasilLogger;
}

/** A stored layer, as JSON under CASIL_LAYER_NAMESPACE/<tenant>. `document: null` marks a cleared layer. */
export interface StoredCasilLayer {
  /** The layer's version: 1 for the first write, +1 for every write after (a clear included). */
  version: number;
  /** The layer document; null when the layer was cleared. */
  document: CasilLayerDocument | null;
  /** When it was written, as an ISO 8601 timestamp. */
  updatedAt: string;
  /** Who wrote it (`CasilLayerWriteOptions.by`). */
  updatedBy: string;
}

/** How a layer write (`setLayer`, `patchLayer`, `clearLayer`) is made. */
export interface CasilLayerWriteOptions {
  /** Who changes it (the admin's subject), stored as `updatedBy`. @default "unknown" */
  by?: string;
  /** Validate completely and answer what would change; store and swap nothing. @default false */
  dryRun?: boolean;
  /** Apply only when the stored version is this one (0: no layer yet), else reject with CONFLICT. */
  ifVersion?: number;
}

/** What a layer write answers (and what `op.casil.reload` answers). */
export interface CasilLayerWriteResult {
  /** Always true: an invalid layer rejects instead. */
  valid: true;
  /** Whether this was a dry run (nothing stored or swapped). */
  dryRun: boolean;
  /** The tenant whose layer it is. */
  tenant: string;
  /** The version stored (or, for a dry run, the version it would get). */
  version: number;
  /** The version stored before (0: no layer yet). */
  previousVersion: number;
  /** What changed, one line per field: "mode: unset -> enforce", "patterns: +1", "layer removed", ... */
  changes: string[];
}

/** The only fields `patchLayer` changes. */
export interface CasilLayerPatch {
  /** The layer's mode: "enforce" also makes the baseline enforce for the tenant; "monitor" leaves it alone. */
  mode?: CasilMode;
}

/** What a tenant admin may see (`describe(tenant)`): the baseline's public part and the tenant's own layer. */
export interface CasilTenantView {
  /** The tenant it describes. */
  tenant: string;
  /** The public part of the baseline as it applies to this tenant (never its rules). */
  baseline: {
    /** The baseline's version. */
    version: number;
    /** Whether the baseline inspects at all. */
    enabled: boolean;
    /** The baseline's own mode for this tenant (see `effectiveMode` for the one in force). */
    mode: CasilMode;
    /** Payloads larger than this many bytes get CASIL_POLICY_OVERSIZE. */
    maxPayloadBytes: number;
    /** How many leading bytes of a payload the regex policies (secrets, patterns) scan. */
    maxInspectBytes: number;
  };
  /** The tenant's layer, or null when it has none. */
  layer: {
    /** The layer's version. */
    version: number;
    /** When it was written, as an ISO 8601 timestamp. */
    updatedAt: string;
    /** Who wrote it. */
    updatedBy: string;
    /** The layer's mode ("monitor" when the layer does not set one). */
    mode: CasilMode;
    /** The stored layer; each Wasm rule's `wasm` is `{ bytes, sha256 }` instead of the module. */
    document: unknown;
    /** The layer's Wasm policies whose circuit breaker is open, half open, or counting timeouts. */
    wasmBreakers: WasmBreakerStatus[];
    /** Set when the stored layer could not be activated: the tenant's inspections then fail closed. */
    error?: string;
  } | null;
  /** The mode the baseline runs in for this tenant (enforce when the layer says so), and the layer's own mode. */
  effectiveMode: {
    /** The mode the baseline runs in for this tenant. */
    baseline: CasilMode;
    /** The layer's mode; null without a layer. */
    layer: CasilMode | null;
  };
}

/** One tenant's layer as the operator's overview lists it (`describeBaseline`, `summaries`). */
export interface CasilLayerSummary {
  /** The tenant. */
  tenant: string;
  /** The layer's version. */
  version: number;
  /** The layer's mode ("monitor" when the layer does not set one). */
  mode: CasilMode;
  /** The names of the layer's loaded Wasm policies (none for a broken layer). */
  wasm: string[];
  /** When it was written, as an ISO 8601 timestamp. */
  updatedAt: string;
  /** Who wrote it. */
  updatedBy: string;
  /** Set when the stored layer could not be activated: the tenant's inspections then fail closed. */
  error?: string;
}

interface ActiveLayer {
  kind: "active";
  version: number;
  document: CasilLayerDocument;
  updatedAt: string;
  updatedBy: string;
  engine: CasilEngine;
  host?: WasmPolicyHost;
  enforce: boolean;
  /** The combined allow for the last flag-less baseline allow seen (baseline allows are shared per version). */
  allowOf?: { base: Decision; decision: Decision };
}

interface BrokenLayer {
  kind: "broken";
  version: number;
  document: unknown;
  updatedAt: string;
  updatedBy: string;
  error: string;
}

type LayerEntry = ActiveLayer | BrokenLayer;

const ENFORCE: CasilInspectOptions = Object.freeze({ enforce: true });
const MAX_WRITE_ATTEMPTS = 5;
const LIST_LIMIT = 1_000_000;

function mergeFlags(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (!b || b.length === 0) return a;
  if (!a || a.length === 0) return b;
  const out = [...a];
  for (const f of b) if (!out.includes(f)) out.push(f);
  return out;
}

function parseStored(entry: KvEntry): StoredCasilLayer {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(entry.value));
  } catch {
    throw new ArqonError(ErrorCode.INTERNAL_ERROR, `stored CASIL layer "${entry.key}" is not JSON`);
  }
  const v = value as Partial<StoredCasilLayer> | null;
  if (
    typeof v !== "object" ||
    v === null ||
    !Number.isInteger(v.version) ||
    (v.version as number) < 1 ||
    (v.document !== null && (typeof v.document !== "object" || Array.isArray(v.document)))
  ) {
    throw new ArqonError(ErrorCode.INTERNAL_ERROR, `stored CASIL layer "${entry.key}" is malformed`);
  }
  return { version: v.version as number, document: v.document ?? null, updatedAt: String(v.updatedAt ?? ""), updatedBy: String(v.updatedBy ?? "") };
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The layer with each Wasm module replaced by its size and digest. */
function publicDocument(doc: unknown): unknown {
  const d = doc as CasilLayerDocument | null;
  if (!d || typeof d !== "object" || !Array.isArray(d.wasm)) return doc;
  return {
    ...d,
    wasm: d.wasm.map((rule) => {
      const bytes = typeof rule?.wasm === "string" ? fromBase64(rule.wasm) : undefined;
      return { ...rule, wasm: bytes ? { bytes: bytes.length, sha256: sha256(bytes) } : { bytes: 0, sha256: "" } };
    }),
  };
}

const SCALARS = ["mode", "defaultDecision", "maxInspectBytes", "maxPayloadBytes", "blockOnProbableSecret", "transportRedaction"] as const;
const LISTS = ["redactionPaths", "redactionPatterns", "neverLogPayloadFor", "patterns", "wasm", "paths"] as const;

function listDelta(name: string, before: unknown[] | undefined, after: unknown[] | undefined): string | undefined {
  const left = (before ?? []).map((x) => JSON.stringify(x));
  const right = (after ?? []).map((x) => JSON.stringify(x));
  const remaining = [...left];
  let added = 0;
  for (const r of right) {
    const at = remaining.indexOf(r);
    if (at >= 0) remaining.splice(at, 1);
    else added++;
  }
  const removed = remaining.length;
  const reordered = added === 0 && removed === 0 && left.join("\n") !== right.join("\n");
  if (added === 0 && removed === 0 && !reordered) return undefined;
  if (reordered) return `${name}: reordered`;
  return `${name}: ${[added ? `+${added}` : "", removed ? `-${removed}` : ""].filter(Boolean).join(" ")}`;
}

/** One line per changed field between two layers (undefined: no layer). */
export function describeLayerChanges(before: CasilLayerDocument | undefined, after: CasilLayerDocument | null): string[] {
  if (after === null) return before ? ["layer removed"] : [];
  const out: string[] = before ? [] : ["layer created"];
  const b = before ?? {};
  const fmt = (v: unknown): string => (v === undefined ? "unset" : String(v));
  for (const key of SCALARS) if (b[key] !== after[key]) out.push(`${key}: ${fmt(b[key])} -> ${fmt(after[key])}`);
  for (const side of ["include", "exclude"] as const) {
    const line = listDelta(`scope.${side}`, b.scope?.[side], after.scope?.[side]);
    if (line) out.push(line);
  }
  for (const key of LISTS) {
    const line = listDelta(key, b[key] as unknown[] | undefined, after[key] as unknown[] | undefined);
    if (line) out.push(line);
  }
  const bs = b.schemas ?? {};
  const as = after.schemas ?? {};
  let added = 0;
  let removed = 0;
  let changed = 0;
  for (const k of Object.keys(as)) {
    if (!(k in bs)) added++;
    else if (JSON.stringify(bs[k]) !== JSON.stringify(as[k])) changed++;
  }
  for (const k of Object.keys(bs)) if (!(k in as)) removed++;
  if (added || removed || changed) out.push(`schemas: ${[added ? `+${added}` : "", removed ? `-${removed}` : "", changed ? `~${changed}` : ""].filter(Boolean).join(" ")}`);
  return out;
}

/**
 * CASIL with tenant layers: the gateway's Inspector. Every tenant's traffic passes the operator's baseline (the
 * CasilController, unchanged); a tenant with a layer then passes its layer too, and the stricter decision wins
 * (block over redact over allow). A layer can never loosen the baseline: the baseline runs first, a baseline block is
 * final, a baseline redaction is what the layer sees, and a layer's `mode: "enforce"` makes the baseline enforce for
 * that tenant while its `"monitor"` leaves the baseline's own mode alone. Decisions carry the baseline's
 * `policyVersion` and, for tenants with a layer, `layerVersion`; flags of both are merged.
 *
 * Layers persist in a KeyValueStore (CASIL_LAYER_NAMESPACE, key = tenant) and are written with compare-and-set on the
 * key's revision: concurrent writers on several nodes each get their own version (stored version + 1), none is lost
 * silently. A write is validated completely (including loading its Wasm modules into the tenant's own pool) before
 * anything is stored or swapped. Each tenant with Wasm rules gets its own worker thread and budget, so a slow policy
 * only ever delays its own tenant. Anything that goes wrong during an inspection throws (the gateway blocks with
 * CASIL_INTERNAL_ERROR); a stored layer that cannot be activated makes its tenant's inspections throw until it is
 * fixed or cleared.
 */
export class LayeredCasil implements Inspector {
  /** The operator's baseline policy (`options.baseline`). */
  readonly baseline: CasilController;
  private readonly kv: KeyValueStore;
  private readonly layers = new Map<string, LayerEntry>();
  private readonly telemetries = new Map<string, CasilTelemetry>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Tenants holding a Wasm slot: an active Wasm layer, or one being built. */
  private readonly wasmSlots = new Set<string>();
  private readonly retiring = new Set<{ host: WasmPolicyHost; timer: NodeJS.Timeout }>();
  private readonly maxWasmTenants: number;
  private readonly audit?: (record: CasilAuditRecord) => void;
  private closed = false;

  constructor(private readonly options: LayeredCasilOptions) {
    this.baseline = options.baseline;
    this.kv = options.kv;
    this.maxWasmTenants = options.maxWasmTenants ?? 32;
    const logger = options.logger;
    this.audit = options.audit ?? (logger ? (record: CasilAuditRecord) => logger.warn({ casil: record }, record.event) : undefined);
  }

  /** Baseline first, then the tenant's layer; a tenant without a layer costs one Map lookup over the baseline alone. */
  inspect(input: InspectionInput): Decision | Promise<Decision> {
    const layer = this.layers.get(input.tenant);
    if (layer === undefined) return this.baseline.inspect(input);
    if (layer.kind === "broken") throw new ArqonError(ErrorCode.CASIL_INTERNAL_ERROR, `the CASIL layer of tenant "${input.tenant}" (version ${layer.version}) is not active: ${layer.error}`);
    const base = this.baseline.inspect(input, layer.enforce ? ENFORCE : undefined);
    return base instanceof Promise ? base.then((b) => this.withLayer(layer, input, b)) : this.withLayer(layer, input, base);
  }

  /** Reads every stored layer and activates it (the ones already active at their stored version stay). */
  async load(): Promise<{
    /** Tenants whose layer is active. */
    loaded: string[];
    /** Tenants whose stored layer could not be activated (their inspections fail closed), with why. */
    failed: Array<{
      /** The tenant. */
      tenant: string;
      /** Why its layer could not be activated. */
      error: string;
    }>;
  }> {
    this.assertOpen();
    const entries = await this.kv.list(CASIL_LAYER_NAMESPACE, { limit: LIST_LIMIT });
    const loaded: string[] = [];
    const failed: Array<{ tenant: string; error: string }> = [];
    for (const entry of entries) {
      const tenant = entry.key;
      const outcome = await this.serial(tenant, () => this.adopt(tenant, entry));
      if (outcome.error) failed.push({ tenant, error: outcome.error });
      else if (outcome.active) loaded.push(tenant);
    }
    return { loaded, failed };
  }

  /**
   * Replaces the tenant's layer with `layer` (a document object, or JSON/YAML text). Throws VALIDATION_ERROR or
   * AUTHORIZATION_ERROR (see validateCasilLayer), VALIDATION_ERROR when the server's Wasm tenant limit is reached, and
   * CONFLICT when `ifVersion` does not match; nothing changes then.
   */
  setLayer(tenant: string, layer: unknown, options: CasilLayerWriteOptions = {}): Promise<CasilLayerWriteResult> {
    if (typeof layer !== "string" && (typeof layer !== "object" || layer === null || Array.isArray(layer))) {
      return Promise.reject(new ArqonError(ErrorCode.VALIDATION_ERROR, "invalid CASIL policy: layer: must be a document object or JSON/YAML text"));
    }
    return this.write(tenant, () => layer, options);
  }

  /**
   * Changes only the listed fields of the stored layer (today: `mode`), starting from an empty layer when there is
   * none — `{ mode: "enforce" }` turns the baseline to enforce for this tenant. Re-applied to the freshly read layer
   * when another node wrote in between.
   */
  patchLayer(tenant: string, patch: CasilLayerPatch, options: CasilLayerWriteOptions = {}): Promise<CasilLayerWriteResult> {
    const p = patch as Record<string, unknown> | null;
    if (typeof p !== "object" || p === null || Array.isArray(p)) return Promise.reject(new ArqonError(ErrorCode.VALIDATION_ERROR, "invalid CASIL policy: a layer patch must be an object"));
    const unknown = Object.keys(p).find((k) => k !== "mode");
    if (unknown !== undefined) return Promise.reject(new ArqonError(ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: a layer patch may only set "mode", not "${unknown}"`));
    if (p.mode !== undefined && p.mode !== "enforce" && p.mode !== "monitor") {
      return Promise.reject(new ArqonError(ErrorCode.VALIDATION_ERROR, 'invalid CASIL policy: mode must be "monitor" or "enforce"'));
    }
    return this.write(tenant, (current) => ({ ...current, ...(p.mode !== undefined ? { mode: p.mode } : {}) }), options);
  }

  /** Removes the tenant's layer (its traffic then passes the baseline alone). A tenant without a layer: no change. */
  clearLayer(tenant: string, options: CasilLayerWriteOptions = {}): Promise<CasilLayerWriteResult> {
    return this.write(tenant, () => null, options);
  }

  /**
   * Re-reads the tenant's stored layer and activates it when its version differs from the active one (another node
   * changed it) or the active one is broken. Resolves with whether anything changed and the active version (0: none).
   */
  refresh(tenant: string): Promise<{
    /** Whether the active layer changed. */
    changed: boolean;
    /** The active layer's version afterwards (0: none). */
    version: number;
  }> {
    try {
      assertTenant(tenant);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.serial(tenant, async () => {
      this.assertOpen();
      const before = this.layers.get(tenant);
      const entry = await this.kv.get(CASIL_LAYER_NAMESPACE, tenant);
      if (!entry) {
        if (before) this.activate(tenant, undefined);
        return { changed: before !== undefined, version: 0 };
      }
      await this.adopt(tenant, entry);
      const after = this.layers.get(tenant);
      return { changed: before !== after, version: after?.version ?? 0 };
    });
  }

  /** The active layer's version for `tenant`, or undefined when it has none. */
  layerVersion(tenant: string): number | undefined {
    return this.layers.get(tenant)?.version;
  }

  /** What `tenant`'s admin may see: the baseline's version, state, mode and size bounds for it, and its own layer. */
  describe(tenant: string): CasilTenantView {
    const engine = this.baseline.engine;
    const settings = engine.settingsFor(tenant);
    const layer = this.layers.get(tenant);
    const layerMode: CasilMode | null = layer ? (((layer.document as CasilLayerDocument | null)?.mode ?? "monitor") as CasilMode) : null;
    const enforce = layer?.kind === "active" && layer.enforce;
    return {
      tenant,
      baseline: { version: engine.version, enabled: engine.enabled, mode: settings.mode, maxPayloadBytes: settings.maxPayloadBytes, maxInspectBytes: settings.maxInspectBytes },
      layer: layer
        ? {
            version: layer.version,
            updatedAt: layer.updatedAt,
            updatedBy: layer.updatedBy,
            mode: layerMode!,
            document: publicDocument(layer.document),
            // Wasm policies disabled by the circuit breaker (or recovering from it), so the tenant admin sees why.
            wasmBreakers: layer.kind === "active" ? (layer.host?.breakers() ?? []) : [],
            ...(layer.kind === "broken" ? { error: layer.error } : {}),
          }
        : null,
      effectiveMode: { baseline: enforce ? "enforce" : settings.mode, layer: layerMode },
    };
  }

  /** What the operator sees: everything `CasilController.describe()` answers, plus every tenant's layer in summary. */
  describeBaseline(): Record<string, unknown> & {
    /** Every tenant with a layer, in tenant order (as `summaries()`). */
    layers: CasilLayerSummary[];
  } {
    return { ...this.baseline.describe(), layers: this.summaries() };
  }

  /** Every tenant layer's Wasm breakers that are open or have failures (for metrics). */
  wasmBreakers(): Array<
    {
      /** The tenant whose layer holds the policy. */
      tenant: string;
    } & WasmBreakerStatus
  > {
    const out: Array<{ tenant: string } & WasmBreakerStatus> = [];
    for (const [tenant, l] of this.layers) if (l.kind === "active" && l.host) for (const b of l.host.breakers()) out.push({ tenant, ...b });
    return out;
  }

  /** Every tenant with a layer, in tenant order. */
  summaries(): CasilLayerSummary[] {
    return [...this.layers.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([tenant, l]) => ({
        tenant,
        version: l.version,
        mode: ((l.document as CasilLayerDocument | null)?.mode ?? "monitor") as CasilMode,
        wasm: l.kind === "active" ? (l.host?.names ?? []) : [],
        updatedAt: l.updatedAt,
        updatedBy: l.updatedBy,
        ...(l.kind === "broken" ? { error: l.error } : {}),
      }));
  }

  /** The baseline's counters (as CasilController.stats()). */
  stats(): CasilStatsSnapshot {
    return this.baseline.stats();
  }

  /** Each layered tenant's own counters (decisions its layer made, its Wasm calls), kept across its layer versions. */
  layerStats(): Array<{
    /** The tenant. */
    tenant: string;
    /** The counters of its layer. */
    stats: CasilStatsSnapshot;
  }> {
    return [...this.telemetries].map(([tenant, t]) => ({ tenant, stats: t.snapshot() }));
  }

  /** Waits for running changes, then closes every layer's Wasm pool and the baseline controller (not the store). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.chains.values()].map((c) => c.catch(() => undefined)));
    const hosts: WasmPolicyHost[] = [];
    for (const layer of this.layers.values()) if (layer.kind === "active" && layer.host) hosts.push(layer.host);
    for (const r of this.retiring) {
      clearTimeout(r.timer);
      hosts.push(r.host);
    }
    this.retiring.clear();
    await Promise.all(hosts.map((h) => h.close()));
    await this.baseline.close();
  }

  private withLayer(layer: ActiveLayer, input: InspectionInput, base: Decision): Decision | Promise<Decision> {
    if (base.action === "block") return { ...base, layerVersion: layer.version };
    const own = layer.engine.inspect(base.action === "redact" ? { ...input, payload: base.payload } : input);
    return own instanceof Promise ? own.then((d) => this.combine(layer, base, d)) : this.combine(layer, base, own);
  }

  private combine(layer: ActiveLayer, base: Decision, own: Decision): Decision {
    const layerVersion = layer.version;
    const policyVersion = base.policyVersion;
    const flags = mergeFlags(base.flags, own.flags);
    if (own.action === "block") return { action: "block", reasonCode: own.reasonCode, message: own.message, flags, policyVersion, layerVersion };
    if (own.action === "redact") return { action: "redact", payload: own.payload, reasonCode: own.reasonCode, flags, policyVersion, layerVersion };
    if (base.action === "redact") return { ...base, flags, layerVersion };
    if (flags !== undefined && flags.length > 0) return { action: "allow", flags, policyVersion, layerVersion };
    const cached = layer.allowOf;
    if (cached !== undefined && cached.base === base) return cached.decision;
    const decision = Object.freeze({ action: "allow", policyVersion, layerVersion }) as Decision;
    layer.allowOf = { base, decision };
    return decision;
  }

  private write(tenant: string, next: (current: CasilLayerDocument | undefined) => unknown, options: CasilLayerWriteOptions): Promise<CasilLayerWriteResult> {
    try {
      assertTenant(tenant);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.serial(tenant, async () => {
      for (let attempt = 1; ; attempt++) {
        this.assertOpen();
        const entry = await this.kv.get(CASIL_LAYER_NAMESPACE, tenant);
        let stored: StoredCasilLayer | undefined;
        let previousVersion = 0;
        if (entry) {
          try {
            stored = parseStored(entry);
            previousVersion = stored.version;
          } catch {
            previousVersion = this.layers.get(tenant)?.version ?? 0;
          }
        }
        if (options.ifVersion !== undefined && options.ifVersion !== previousVersion) {
          throw new ArqonError(ErrorCode.CONFLICT, `the CASIL layer of tenant "${tenant}" is at version ${previousVersion}, not ${options.ifVersion}`, {
            detail: { tenant, expected: options.ifVersion, actual: previousVersion },
          });
        }
        const current = stored?.document ?? undefined;
        const wanted = next(current);
        const document = wanted === null ? null : this.validate(tenant, wanted);
        const changes = describeLayerChanges(current, document);
        const version = previousVersion + 1;
        if (document === null && current === undefined && (entry === undefined || stored !== undefined) && !this.layers.has(tenant)) {
          // Nothing to clear.
          return { valid: true, dryRun: options.dryRun === true, tenant, version: previousVersion, previousVersion, changes };
        }
        const updatedAt = new Date().toISOString();
        const updatedBy = options.by ?? "unknown";
        const built = document ? await this.build(tenant, document, version, updatedAt, updatedBy) : undefined;
        if (options.dryRun) {
          await this.discard(tenant, built);
          return { valid: true, dryRun: true, tenant, version, previousVersion, changes };
        }
        const record: StoredCasilLayer = { version, document, updatedAt, updatedBy };
        try {
          await this.kv.put(CASIL_LAYER_NAMESPACE, tenant, utf8Encode(JSON.stringify(record)), { ifRevision: entry?.revision ?? 0 });
        } catch (err) {
          await this.discard(tenant, built);
          const conflict = err instanceof ArqonError && err.code === ErrorCode.CONFLICT;
          if (conflict && options.ifVersion === undefined && attempt < MAX_WRITE_ATTEMPTS) continue;
          throw err;
        }
        this.activate(tenant, built);
        try {
          this.options.onChange?.(tenant, version);
        } catch (err) {
          this.options.logger?.error({ err, tenant, version }, "casil layer change listener failed");
        }
        return { valid: true, dryRun: false, tenant, version, previousVersion, changes };
      }
    });
  }

  private validate(tenant: string, value: unknown): CasilLayerDocument {
    const limits = { maxWasmModuleBytes: this.budgetOf(tenant).maxModuleBytes };
    return typeof value === "string" ? parseCasilLayer(value, tenant, limits) : validateCasilLayer(value, tenant, limits);
  }

  private budgetOf(tenant: string): CasilTenantBudget {
    const given = this.options.budgetFor?.(tenant) ?? {};
    const out: CasilTenantBudget = { ...DEFAULT_TENANT_BUDGET };
    for (const key of Object.keys(out) as Array<keyof CasilTenantBudget>) {
      const v = given[key];
      if (v === undefined) continue;
      if (typeof v !== "number" || !(v > 0)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `CASIL budget of tenant "${tenant}": ${key} must be a positive number`);
      out[key] = v;
    }
    return out;
  }

  private telemetryOf(tenant: string): CasilTelemetry {
    let t = this.telemetries.get(tenant);
    if (!t) {
      t = new CasilTelemetry();
      this.telemetries.set(tenant, t);
    }
    return t;
  }

  /** Compiles a validated layer, loading its Wasm modules into a fresh pool of the tenant's own. */
  private async build(tenant: string, document: CasilLayerDocument, version: number, updatedAt: string, updatedBy: string): Promise<ActiveLayer> {
    const modules = casilLayerModules(document);
    let host: WasmPolicyHost | undefined;
    if (modules.length > 0) {
      if (!this.wasmSlots.has(tenant) && this.wasmSlots.size >= this.maxWasmTenants) {
        throw new ArqonError(ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: layer.wasm: this server runs Wasm layers for at most ${this.maxWasmTenants} tenants, and that many have one`, {
          detail: { limit: this.maxWasmTenants },
        });
      }
      this.wasmSlots.add(tenant);
      const budget = this.budgetOf(tenant);
      // One pool per tenant: a tenant's looping policy spends its own worker's time, never another tenant's.
      host = new WasmPolicyHost({
        budgetMs: budget.budgetMs,
        maxMemoryPages: budget.maxMemoryPages,
        callsPerSecond: budget.callsPerSecond,
        maxModuleBytes: budget.maxModuleBytes,
        breakerThreshold: budget.breakerThreshold,
        breakerCooldownMs: budget.breakerCooldownMs,
        workers: 1,
        onBreaker: (e) => this.options.logger?.warn({ tenant, version, casilWasmBreaker: e }, e.state === "open" ? "tenant Wasm policy disabled after repeated timeouts" : "tenant Wasm policy enabled again"),
      });
    }
    try {
      for (const m of modules) await host!.load(m.name, m.bytes);
      const engine = createCasilEngine({ policy: casilLayerSpec(document), layer: true, version, wasm: host, audit: this.audit, telemetry: this.telemetryOf(tenant) });
      return { kind: "active", version, document, updatedAt, updatedBy, engine, host, enforce: document.mode === "enforce" };
    } catch (err) {
      await host?.close();
      this.releaseSlot(tenant);
      throw err;
    }
  }

  /** Throws away a built layer that was never activated. */
  private async discard(tenant: string, built: ActiveLayer | undefined): Promise<void> {
    if (built?.host) await built.host.close();
    this.releaseSlot(tenant);
  }

  private releaseSlot(tenant: string): void {
    const active = this.layers.get(tenant);
    if (!(active?.kind === "active" && active.host)) this.wasmSlots.delete(tenant);
  }

  private activate(tenant: string, next: LayerEntry | undefined): void {
    const old = this.layers.get(tenant);
    if (next) this.layers.set(tenant, next);
    else this.layers.delete(tenant);
    if (old?.kind === "active" && old.host && (next?.kind !== "active" || old.host !== next.host)) this.retire(old.host);
    this.releaseSlot(tenant);
  }

  /** Closes a replaced pool after the calls already dispatched to it had their budget. */
  private retire(host: WasmPolicyHost): void {
    const item = {
      host,
      timer: setTimeout(() => {
        this.retiring.delete(item);
        void host.close();
      }, host.budgetMs * 4 + 50),
    };
    item.timer.unref();
    this.retiring.add(item);
  }

  /** Activates a stored entry unless that version is already active; a layer that fails to build is kept as broken. */
  private async adopt(tenant: string, entry: KvEntry): Promise<{ active: boolean; error?: string }> {
    this.assertOpen();
    const current = this.layers.get(tenant);
    let stored: StoredCasilLayer;
    try {
      assertTenant(tenant);
      stored = parseStored(entry);
    } catch (err) {
      const error = (err as Error).message;
      this.options.logger?.error({ err, tenant }, "stored casil layer unreadable; the tenant's inspections fail closed");
      this.activate(tenant, { kind: "broken", version: current?.version ?? 0, document: null, updatedAt: "", updatedBy: "", error });
      return { active: false, error };
    }
    if (stored.document === null) {
      if (current) this.activate(tenant, undefined);
      return { active: false };
    }
    if (current?.kind === "active" && current.version === stored.version) return { active: true };
    try {
      const document = this.validate(tenant, stored.document);
      this.activate(tenant, await this.build(tenant, document, stored.version, stored.updatedAt, stored.updatedBy));
      return { active: true };
    } catch (err) {
      const error = (err as Error).message;
      this.options.logger?.error({ err, tenant, version: stored.version }, "stored casil layer cannot be activated; the tenant's inspections fail closed");
      this.activate(tenant, { kind: "broken", version: stored.version, document: stored.document, updatedAt: stored.updatedAt, updatedBy: stored.updatedBy, error });
      return { active: false, error };
    }
  }

  private serial<T>(tenant: string, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(tenant) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(tenant, tail);
    void tail.then(() => {
      if (this.chains.get(tenant) === tail) this.chains.delete(tenant);
    });
    return run;
  }

  private assertOpen(): void {
    if (this.closed) throw new ArqonError(ErrorCode.SHUTTING_DOWN, "CASIL layers are closed");
  }
}
