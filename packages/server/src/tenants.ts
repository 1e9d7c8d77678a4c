import { randomBytes } from "node:crypto";
import { ArqonError, ErrorCode, isValidTenant, jsonBytes, parseJsonBytes, type KeyValueStore } from "@arqon/core";
import type { AuthContext } from "./auth.js";
import { TokenBucket } from "./limits.js";
import type { ResolvedHooks } from "./proxy.js";
import type { TenantProxy } from "./proxy-config.js";

/**
 * Limits of one tenant. Every field is optional: an unset field falls back to the server's default for tenants
 * (`ArqonServerOptions.tenantDefaults`, then the built-in default listed here). Counts and sizes are whole numbers;
 * 0 means "no bound" only where a field says so.
 */
export interface TenantLimits {
  /** Open connections across the cluster (HTTP 429 ARQ_TOO_MANY_CONNECTIONS beyond). @default limits.maxConnectionsPerTenant (100000) */
  maxConnections?: number;
  /** Rooms that hold data (history or state) across the cluster (ARQ_QUOTA_EXCEEDED for a new one beyond). @default 10000 */
  maxRooms?: number;
  /** Publishes per second, all connections and server publishes together; 0 = no bound. @default limits.tenantPublishRatePerSecond (0) */
  publishRatePerSecond?: number;
  /**
   * Publishes allowed at once above the rate. Unset (or 0) it is 2 × the tenant's `publishRatePerSecond`, whichever
   * layer (record, `tenantLimits`, `limits.tenantPublish*`) set the rate; a burst set at the layer that set the rate,
   * or at a higher one, wins. @default 2 × publishRatePerSecond
   */
  publishBurst?: number;
  /** Largest payload of one message (and of one cron payload). @default limits.maxPayloadBytes (1048576) */
  maxMessageBytes?: number;
  /** Age bound of the history of every room of the tenant, in ms; 0 = the store's own rule. @default 0 */
  historyRetentionMs?: number;
  /** Messages kept per room; 0 = the store's own rule. @default 0 */
  historyMaxMessages?: number;
  /** Payload bytes of history kept per room (oldest trimmed first); 0 = no bytes bound. @default 16777216 */
  historyMaxBytes?: number;
  /** Presence members per room (a subscribe beyond is refused with ARQ_QUOTA_EXCEEDED); 0 = no bound. @default 0 */
  maxPresencePerRoom?: number;
  /** State keys per room. @default 1000 */
  maxStateKeys?: number;
  /** Bytes of state values per room. @default 4194304 */
  maxStateBytes?: number;
  /** op.store keys of the tenant, all namespaces together. @default 10000 */
  maxStoreKeys?: number;
  /** Bytes of op.store values of the tenant. @default 67108864 */
  maxStoreBytes?: number;
  /** op.cron schedules. @default 100 */
  maxCronJobs?: number;
  /** Scheduled publishes per second, all schedules together (each schedule counts at its fastest rate). @default 10 */
  cronRatePerSecond?: number;
  /** op.webhook hooks. @default 20 */
  maxWebhooks?: number;
  /** Time budget of one call of the tenant's Wasm policies, in ms. @default 10 */
  wasmBudgetMs?: number;
  /** Largest memory a tenant's Wasm policy may declare, in bytes (a multiple of 64 KiB). @default 4194304 */
  wasmMaxMemoryBytes?: number;
  /** Calls per second of the tenant's Wasm policies; calls beyond fail closed. @default 1000 */
  wasmCallsPerSecond?: number;
}

/** @deprecated the name of `TenantLimits` before tenants had records. */
export type TenantLimitOptions = TenantLimits;

/** Every tenant limit with its value in force (record over configuration over the server's defaults). */
export type ResolvedTenantLimits = Required<TenantLimits>;

/**
 * The burst in force: the burst of the highest layer (record first) that sets the rate or the burst, else the server
 * default; a burst left unset or 0 at that layer is 2 × `rate`, so a tenant given its own rate never keeps a burst
 * meant for another rate.
 */
export function tenantPublishBurst(rate: number, layers: ReadonlyArray<TenantLimits | undefined>, serverBurst: number): number {
  const layer = layers.find((l) => l?.publishRatePerSecond !== undefined || l?.publishBurst !== undefined);
  const burst = layer === undefined ? serverBurst : (layer.publishBurst ?? 0);
  return burst > 0 ? burst : rate * 2;
}

/** Every limit field with its upper bound (values are validated as whole numbers from 0 to it). */
export const TENANT_LIMIT_FIELDS: Readonly<Record<keyof TenantLimits, number>> = {
  maxConnections: 10_000_000,
  maxRooms: 100_000_000,
  publishRatePerSecond: 10_000_000,
  publishBurst: 100_000_000,
  maxMessageBytes: 64 * 1024 * 1024,
  historyRetentionMs: 10 * 365 * 86_400_000,
  historyMaxMessages: 100_000_000,
  historyMaxBytes: 2 ** 40,
  maxPresencePerRoom: 10_000_000,
  maxStateKeys: 10_000_000,
  maxStateBytes: 2 ** 40,
  maxStoreKeys: 100_000_000,
  maxStoreBytes: 2 ** 40,
  maxCronJobs: 100_000,
  cronRatePerSecond: 100_000,
  maxWebhooks: 100_000,
  wasmBudgetMs: 10_000,
  wasmMaxMemoryBytes: 4 * 1024 * 1024 * 1024,
  wasmCallsPerSecond: 10_000_000,
};

/**
 * Checks a limits object (the HTTP API's and the config file's): known fields only, each a whole number within its
 * bound. Throws VALIDATION_ERROR naming the field; the caller's state stays unchanged.
 */
export function parseTenantLimits(value: unknown, where = "limits"): TenantLimits {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where} must be an object`);
  const out: Record<string, number> = {};
  for (const [field, raw] of Object.entries(value)) {
    const max = TENANT_LIMIT_FIELDS[field as keyof TenantLimits];
    if (max === undefined) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}: unknown limit "${field}"`, { detail: { field } });
    if (raw === null) continue;
    if (typeof raw !== "number" || !Number.isSafeInteger(raw) || raw < 0 || raw > max) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}.${field} must be a whole number from 0 to ${max}`, { detail: { field } });
    }
    if (field === "wasmMaxMemoryBytes" && raw % 65536 !== 0) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}.wasmMaxMemoryBytes must be a multiple of 65536 (one Wasm page)`, { detail: { field } });
    }
    out[field] = raw;
  }
  return out as TenantLimits;
}

/** The built-in tenant defaults, given the server's own limits. */
export function builtinTenantLimits(server: {
  maxConnectionsPerTenant: number;
  tenantPublishRatePerSecond: number;
  tenantPublishBurst: number;
  maxPayloadBytes: number;
}): ResolvedTenantLimits {
  return {
    maxConnections: server.maxConnectionsPerTenant,
    maxRooms: 10_000,
    publishRatePerSecond: server.tenantPublishRatePerSecond,
    publishBurst: server.tenantPublishBurst,
    maxMessageBytes: server.maxPayloadBytes,
    historyRetentionMs: 0,
    historyMaxMessages: 0,
    historyMaxBytes: 16 * 1024 * 1024,
    maxPresencePerRoom: 0,
    maxStateKeys: 1000,
    maxStateBytes: 4 * 1024 * 1024,
    maxStoreKeys: 10_000,
    maxStoreBytes: 64 * 1024 * 1024,
    maxCronJobs: 100,
    cronRatePerSecond: 10,
    maxWebhooks: 20,
    wasmBudgetMs: 10,
    wasmMaxMemoryBytes: 4 * 1024 * 1024,
    wasmCallsPerSecond: 1000,
  };
}

/** Whether a tenant with a record may act: "disabled" refuses its upgrades (403) and closes its connections (4503). */
export type TenantStatus = "active" | "disabled";

/** A tenant the operator created (or whose limits or status it set). */
export interface TenantRecord {
  /** The tenant id. */
  name: string;
  /** Whether the tenant may act. */
  status: TenantStatus;
  /** The limits the record sets (only those; the others come from configuration and defaults). */
  limits: TenantLimits;
  /** The operator's note about the tenant (1-512 characters). */
  description?: string;
  /** When the record was created, epoch ms. */
  createdAt: number;
  /** When the record last changed, epoch ms. */
  updatedAt: number;
  /** When the tenant was last disabled, epoch ms; absent while it is active. */
  disabledAt?: number;
  /** The tenant's own proxy hooks (set by the operator only); each replaces the server's hook of that name. */
  proxy?: TenantProxy;
}

/**
 * "open": any valid tenant claim may connect (a tenant without a record gets the defaults); "registered": only
 * tenants the operator created may connect, others get HTTP 403 ARQ_TENANT_UNKNOWN before the upgrade.
 */
export type TenancyMode = "open" | "registered";

/**
 * A revocation: tokens of `tenant` matching every field set here are refused at the upgrade (401 ARQ_AUTH_REVOKED)
 * and live connections holding one are closed with 4500, until `expiresAt`.
 */
export interface RevocationRule {
  /** The rule's id (random), which lifts it again. */
  id: string;
  /** The tenant whose tokens it refuses. */
  tenant: string;
  /** Only tokens of this `sub`. */
  user?: string;
  /** Only the token with this `jti`. */
  jti?: string;
  /** Only tokens issued (`iat`) before this time, ms; a token without `iat` counts as issued before. */
  before?: number;
  /** When it was made, epoch ms. */
  createdAt: number;
  /** When it lapses, epoch ms (then it is dropped). */
  expiresAt: number;
  /** Who made it, as the caller said (the server API: the `sub` of the admin's token, or the operator key's id). */
  by: string;
}

/** The most revocation rules one tenant may hold at a time. */
export const MAX_REVOCATIONS_PER_TENANT = 1000;
/** How long a revocation lasts unless given: a day, the usual longest token lifetime. */
export const DEFAULT_REVOCATION_TTL_MS = 86_400_000;
export const MAX_REVOCATION_TTL_MS = 366 * 86_400_000;

/** Whether a rule refuses a token (the rule not yet expired at `now`). */
export function revokes(rule: RevocationRule, auth: AuthContext, now: number): boolean {
  if (rule.expiresAt <= now || rule.tenant !== auth.tenant) return false;
  if (rule.user !== undefined && rule.user !== auth.sub) return false;
  if (rule.jti !== undefined && auth.claims.jti !== rule.jti) return false;
  if (rule.before !== undefined) {
    const iat = auth.claims.iat;
    if (typeof iat === "number" && iat * 1000 >= rule.before) return false;
  }
  return true;
}

/** What a tenant runs with on this node: its resolved limits and its publish bucket. Rebuilt when a limit changes. */
export interface TenantRuntime {
  readonly name: string;
  readonly status: TenantStatus | "unregistered";
  readonly limits: ResolvedTenantLimits;
  /** The tenant-wide publish bucket; undefined when publishRatePerSecond is 0 (no bound). */
  readonly publishBucket: TokenBucket | undefined;
  /** Live revocation rules. */
  revocations: readonly RevocationRule[];
  /** The proxy hooks in force for the tenant (its own over the server's); undefined when there is none. */
  readonly hooks: ResolvedHooks | undefined;
}

export const TENANTS_NAMESPACE = "arqon.tenants";
export const REVOCATIONS_NAMESPACE = "arqon.revocations";

/** Runtimes of unregistered tenants kept at most (open mode: any tenant name may show up). */
const MAX_CACHED_RUNTIMES = 10_000;

export interface TenantRegistryOptions {
  kv: KeyValueStore;
  mode: TenancyMode;
  /** The server's defaults for every tenant (built-in defaults under `ArqonServerOptions.tenantDefaults`). */
  defaults: ResolvedTenantLimits;
  /** Per-tenant limits from configuration (`ArqonServerOptions.tenantLimits`), under a record's own limits. */
  configured?: Record<string, TenantLimits>;
  now?: () => number;
  /** The proxy hooks in force for a tenant, given its record's `proxy`. @default none */
  resolveHooks?: (tenant: string, own: TenantProxy | undefined) => ResolvedHooks | undefined;
  /** Checks a `proxy` patch and merges it into the record's (`setLimits`). @default refuses every patch */
  mergeProxy?: (current: TenantProxy | undefined, patch: unknown) => TenantProxy | undefined;
}

function notFound(name: string): ArqonError {
  return new ArqonError(ErrorCode.NOT_FOUND, `no tenant "${name}"`, { detail: { tenant: name } });
}

export function assertTenantName(name: unknown): asserts name is string {
  if (!isValidTenant(name)) throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
}

/**
 * The tenants of a server: records created by the operator (kept in the key-value store, so they persist and, on
 * NATS KV, are shared by every node), their limits and status, and the revocation rules. Each node holds a copy in
 * memory for the upgrade and publish paths; `refresh` re-reads one tenant after another node changed it. Writes use
 * compare-and-set on the stored revision, so two operators changing one tenant at once cannot lose an update.
 */
export class TenantRegistry {
  /** Which tenants may connect: any ("open") or only those with a record ("registered"). */
  readonly mode: TenancyMode;
  private readonly kv: KeyValueStore;
  private readonly defaults: ResolvedTenantLimits;
  private readonly configured: Record<string, TenantLimits>;
  private readonly now: () => number;
  private readonly records = new Map<string, TenantRecord>();
  private readonly revocationRules = new Map<string, RevocationRule[]>();
  private readonly runtimes = new Map<string, TenantRuntime>();
  private readonly resolveHooks: NonNullable<TenantRegistryOptions["resolveHooks"]>;
  private readonly mergeProxy: NonNullable<TenantRegistryOptions["mergeProxy"]>;

  constructor(options: TenantRegistryOptions) {
    this.kv = options.kv;
    this.mode = options.mode;
    this.defaults = options.defaults;
    this.configured = options.configured ?? {};
    this.now = options.now ?? Date.now;
    this.resolveHooks = options.resolveHooks ?? (() => undefined);
    this.mergeProxy =
      options.mergeProxy ??
      (() => {
        throw new ArqonError(ErrorCode.VALIDATION_ERROR, "this server has no proxy hooks");
      });
  }

  /** Reads every record and revocation rule from the store (at start). */
  async load(): Promise<void> {
    const [records, rules] = await Promise.all([this.kv.list(TENANTS_NAMESPACE, { limit: 1_000_000 }), this.kv.list(REVOCATIONS_NAMESPACE, { limit: 1_000_000 })]);
    this.records.clear();
    for (const entry of records) {
      const record = this.decode(entry.value);
      if (record) this.records.set(record.name, record);
    }
    this.revocationRules.clear();
    const now = this.now();
    for (const entry of rules) {
      const rule = parseJsonBytes(entry.value) as RevocationRule;
      if (rule.expiresAt <= now) continue;
      let list = this.revocationRules.get(rule.tenant);
      if (!list) this.revocationRules.set(rule.tenant, (list = []));
      list.push(rule);
    }
    this.runtimes.clear();
  }

  /**
   * Re-reads every record and rule and adopts what changed (a control message this node missed while NATS was away);
   * resolves with the tenants whose record or rules changed. Unchanged tenants keep their runtime (and publish bucket).
   */
  async sync(): Promise<string[]> {
    const [entries, ruleEntries] = await Promise.all([this.kv.list(TENANTS_NAMESPACE, { limit: 1_000_000 }), this.kv.list(REVOCATIONS_NAMESPACE, { limit: 1_000_000 })]);
    const changed = new Set<string>();
    const seen = new Set<string>();
    for (const entry of entries) {
      const record = this.decode(entry.value);
      if (!record) continue;
      seen.add(record.name);
      if (JSON.stringify(this.records.get(record.name)) !== JSON.stringify(record)) {
        this.records.set(record.name, record);
        changed.add(record.name);
      }
    }
    for (const name of this.records.keys()) {
      if (seen.has(name)) continue;
      this.records.delete(name);
      changed.add(name);
    }
    const now = this.now();
    const rules = new Map<string, RevocationRule[]>();
    for (const entry of ruleEntries) {
      const rule = parseJsonBytes(entry.value) as RevocationRule;
      if (rule.expiresAt <= now) continue;
      let list = rules.get(rule.tenant);
      if (!list) rules.set(rule.tenant, (list = []));
      list.push(rule);
    }
    const ids = (list: readonly RevocationRule[] | undefined) => (list ?? []).map((r) => r.id).sort().join(",");
    for (const name of new Set([...rules.keys(), ...this.revocationRules.keys()])) {
      if (ids(rules.get(name)) === ids(this.revocationRules.get(name))) continue;
      if (rules.has(name)) this.revocationRules.set(name, rules.get(name)!);
      else this.revocationRules.delete(name);
      changed.add(name);
    }
    for (const name of changed) this.invalidate(name);
    return [...changed];
  }

  private decode(bytes: Uint8Array): TenantRecord | undefined {
    try {
      const record = parseJsonBytes(bytes) as TenantRecord;
      return isValidTenant(record?.name) ? record : undefined;
    } catch {
      return undefined;
    }
  }

  /** The tenant's record as this node holds it, or undefined when it has none. */
  get(name: string): TenantRecord | undefined {
    return this.records.get(name);
  }

  /** Every record this node holds, sorted by name. */
  list(): TenantRecord[] {
    return [...this.records.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The tenant's limits: its record's, over the configured ones, over the server defaults. */
  limitsOf(name: string): ResolvedTenantLimits {
    return this.runtime(name).limits;
  }

  /** The tenant's runtime (cached; rebuilt after a change). */
  runtime(name: string): TenantRuntime {
    let rt = this.runtimes.get(name);
    if (rt === undefined) {
      const record = this.records.get(name);
      const limits: ResolvedTenantLimits = { ...this.defaults, ...this.configured[name], ...record?.limits };
      limits.publishBurst = tenantPublishBurst(limits.publishRatePerSecond, [record?.limits, this.configured[name]], this.defaults.publishBurst);
      const rate = limits.publishRatePerSecond;
      rt = {
        name,
        status: record?.status ?? "unregistered",
        limits,
        publishBucket: rate > 0 ? new TokenBucket(rate, limits.publishBurst) : undefined,
        revocations: this.revocationRules.get(name) ?? [],
        hooks: this.resolveHooks(name, record?.proxy),
      };
      if (!record && this.runtimes.size >= MAX_CACHED_RUNTIMES) this.runtimes.clear();
      this.runtimes.set(name, rt);
    }
    return rt;
  }

  /**
   * Why a tenant may not act now, or undefined when it may: disabled (ARQ_TENANT_DISABLED), or unknown in registered
   * mode (ARQ_TENANT_UNKNOWN).
   */
  refusal(name: string): ArqonError | undefined {
    const status = this.runtime(name).status;
    if (status === "disabled") return new ArqonError(ErrorCode.TENANT_DISABLED, `tenant "${name}" is disabled`);
    if (status === "unregistered" && this.mode === "registered") {
      return new ArqonError(ErrorCode.TENANT_UNKNOWN, `tenant "${name}" is not registered on this server`);
    }
    return undefined;
  }

  /** The live rule that refuses this token, if any. */
  revocationOf(auth: AuthContext): RevocationRule | undefined {
    const rules = this.runtime(auth.tenant).revocations;
    if (rules.length === 0) return undefined;
    const now = this.now();
    return rules.find((r) => revokes(r, auth, now));
  }

  private invalidate(name: string): void {
    this.runtimes.delete(name);
  }

  /** Creates a record; CONFLICT when the tenant exists. */
  async create(name: string, input: { limits?: unknown; description?: unknown; disabled?: boolean; proxy?: unknown } = {}): Promise<TenantRecord> {
    assertTenantName(name);
    const limits = parseTenantLimits(input.limits);
    const description = parseDescription(input.description);
    const proxy = input.proxy === undefined || input.proxy === null ? undefined : this.mergeProxy(undefined, input.proxy);
    const now = this.now();
    const record: TenantRecord = { name, status: input.disabled ? "disabled" : "active", limits, createdAt: now, updatedAt: now };
    if (description !== undefined) record.description = description;
    if (proxy !== undefined) record.proxy = proxy;
    if (input.disabled) record.disabledAt = now;
    try {
      await this.kv.put(TENANTS_NAMESPACE, name, jsonBytes(record), { ifRevision: 0 });
    } catch (err) {
      if (err instanceof ArqonError && err.code === ErrorCode.CONFLICT) throw new ArqonError(ErrorCode.CONFLICT, `tenant "${name}" exists`, { detail: { tenant: name } });
      throw err;
    }
    this.records.set(name, record);
    this.invalidate(name);
    return record;
  }

  /**
   * Changes a record with compare-and-set (retried on a concurrent change): `change` gets the stored record and
   * returns the new one. NOT_FOUND when there is none.
   */
  async update(name: string, change: (record: TenantRecord) => TenantRecord): Promise<TenantRecord> {
    assertTenantName(name);
    for (let attempt = 0; attempt < 10; attempt++) {
      const entry = await this.kv.get(TENANTS_NAMESPACE, name);
      const current = entry ? this.decode(entry.value) : undefined;
      if (!entry || !current) throw notFound(name);
      const next = { ...change(structuredClone(current)), name, updatedAt: this.now() };
      try {
        await this.kv.put(TENANTS_NAMESPACE, name, jsonBytes(next), { ifRevision: entry.revision });
      } catch (err) {
        if (err instanceof ArqonError && err.code === ErrorCode.CONFLICT) continue;
        throw err;
      }
      this.records.set(name, next);
      this.invalidate(name);
      return next;
    }
    throw new ArqonError(ErrorCode.CONFLICT, `tenant "${name}" kept changing; try again`);
  }

  /**
   * Sets limits (fields given as null go back to the default), the description and the proxy hooks (merged per hook;
   * a hook given as null, or `proxy: null`, removes it).
   */
  setLimits(name: string, input: { limits?: unknown; description?: unknown; proxy?: unknown }): Promise<TenantRecord> {
    const raw = input.limits ?? {};
    const patch = parseTenantLimits(raw);
    const cleared = typeof raw === "object" && raw !== null ? Object.entries(raw).filter(([, v]) => v === null).map(([k]) => k) : [];
    const description = parseDescription(input.description);
    return this.update(name, (record) => {
      const limits: Record<string, number> = { ...record.limits, ...patch };
      for (const field of cleared) delete limits[field];
      const next: TenantRecord = { ...record, limits: limits as TenantLimits };
      if (description !== undefined) next.description = description;
      if (input.proxy !== undefined) {
        const proxy = this.mergeProxy(record.proxy, input.proxy);
        if (proxy === undefined) delete next.proxy;
        else next.proxy = proxy;
      }
      return next;
    });
  }

  /**
   * Sets the status (stamping `disabledAt` when disabling, removing it when enabling). NOT_FOUND when the tenant has
   * no record. Closes no connection itself (`TenantAdmin` does).
   */
  setStatus(name: string, status: TenantStatus): Promise<TenantRecord> {
    return this.update(name, (record) => {
      const next: TenantRecord = { ...record, status };
      if (status === "disabled") next.disabledAt = this.now();
      else delete next.disabledAt;
      return next;
    });
  }

  /** Removes the record (its data is removed by the caller). Resolves false when there was none. */
  async remove(name: string): Promise<boolean> {
    assertTenantName(name);
    const removed = await this.kv.delete(TENANTS_NAMESPACE, name);
    this.records.delete(name);
    this.invalidate(name);
    return removed;
  }

  /** Re-reads one tenant's record (after another node changed it); resolves with it, or undefined when gone. */
  async refresh(name: string): Promise<TenantRecord | undefined> {
    const entry = await this.kv.get(TENANTS_NAMESPACE, name);
    const record = entry ? this.decode(entry.value) : undefined;
    if (record) this.records.set(name, record);
    else this.records.delete(name);
    this.invalidate(name);
    return record;
  }

  // ---- revocations ---------------------------------------------------------------------------------------------

  /** The tenant's rules that have not expired, as this node holds them. */
  revocations(name: string): RevocationRule[] {
    const now = this.now();
    return (this.revocationRules.get(name) ?? []).filter((r) => r.expiresAt > now);
  }

  /** Adds a rule: `user`, `jti`, `before` (ms or ISO time), `ttlMs`. Without `jti`, `before` defaults to now. */
  async revoke(name: string, input: Record<string, unknown>, by: string): Promise<RevocationRule> {
    assertTenantName(name);
    const now = this.now();
    const rule: RevocationRule = { id: randomBytes(9).toString("base64url"), tenant: name, createdAt: now, expiresAt: 0, by };
    for (const field of Object.keys(input)) {
      if (!["user", "jti", "before", "ttlMs"].includes(field)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `unknown revocation field "${field}"`);
    }
    if (input.user !== undefined) rule.user = text(input.user, "user", 256);
    if (input.jti !== undefined) rule.jti = text(input.jti, "jti", 256);
    if (input.before !== undefined) rule.before = timeOf(input.before, "before");
    else if (rule.jti === undefined) rule.before = now;
    const ttl = input.ttlMs === undefined ? DEFAULT_REVOCATION_TTL_MS : input.ttlMs;
    if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 1000 || ttl > MAX_REVOCATION_TTL_MS) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `ttlMs must be a whole number of ms from 1000 to ${MAX_REVOCATION_TTL_MS}`);
    }
    rule.expiresAt = now + ttl;
    if (this.revocations(name).length >= MAX_REVOCATIONS_PER_TENANT) {
      throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `at most ${MAX_REVOCATIONS_PER_TENANT} live revocations per tenant`, { detail: { quota: "revocations" } });
    }
    await this.kv.put(REVOCATIONS_NAMESPACE, `${name}/${rule.id}`, jsonBytes(rule));
    const list = [...this.revocations(name), rule];
    this.revocationRules.set(name, list);
    this.invalidate(name);
    return rule;
  }

  /** Removes a rule by id; resolves whether the store held it. Connections the rule closed stay closed. */
  async unrevoke(name: string, id: string): Promise<boolean> {
    assertTenantName(name);
    const removed = await this.kv.delete(REVOCATIONS_NAMESPACE, `${name}/${id}`);
    this.revocationRules.set(name, this.revocations(name).filter((r) => r.id !== id));
    this.invalidate(name);
    return removed;
  }

  /** Re-reads one tenant's rules (after another node changed them). */
  async refreshRevocations(name: string): Promise<RevocationRule[]> {
    const now = this.now();
    const entries = await this.kv.list(REVOCATIONS_NAMESPACE, { prefix: `${name}/`, limit: MAX_REVOCATIONS_PER_TENANT * 2 });
    const rules = entries.map((e) => parseJsonBytes(e.value) as RevocationRule).filter((r) => r.tenant === name && r.expiresAt > now);
    this.revocationRules.set(name, rules);
    this.invalidate(name);
    return rules;
  }

  /** Drops expired rules from memory and from the store. */
  async sweepRevocations(): Promise<void> {
    const now = this.now();
    for (const [name, rules] of this.revocationRules) {
      const expired = rules.filter((r) => r.expiresAt <= now);
      if (expired.length === 0) continue;
      this.revocationRules.set(name, rules.filter((r) => r.expiresAt > now));
      this.invalidate(name);
      await Promise.all(expired.map((r) => this.kv.delete(REVOCATIONS_NAMESPACE, `${name}/${r.id}`).catch(() => false)));
    }
  }

  /** Forgets every rule of a tenant, in memory and in the store (tenant deletion). */
  async dropRevocations(name: string): Promise<void> {
    const entries = await this.kv.list(REVOCATIONS_NAMESPACE, { prefix: `${name}/`, limit: MAX_REVOCATIONS_PER_TENANT * 2 });
    await Promise.all(entries.map((e) => this.kv.delete(REVOCATIONS_NAMESPACE, e.key)));
    this.revocationRules.delete(name);
    this.invalidate(name);
  }
}

function text(value: unknown, field: string, max: number): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${field} must be a string of 1-${max} characters`);
  }
  return value;
}

function parseDescription(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return text(value, "description", 512);
}

/** A time given as epoch ms or an ISO 8601 string. */
function timeOf(value: unknown, field: string): number {
  const ms = typeof value === "number" ? value : typeof value === "string" ? Date.parse(value) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${field} must be a time (epoch ms or ISO 8601)`);
  return ms;
}
