import { ArqonError, ErrorCode } from "@arqon/core";
import { argsObject, int, str, NAME_RE } from "./args.js";
import type { Operator, OperatorHost } from "./host.js";

/** Options of {@link omegaOperator} (op.omega.*); {@link omegaOptionsFromEnv} reads some from `ARQON_OMEGA_*`. */
export interface OmegaOptions {
  /** The Tier-Omega lane is experimental and off unless enabled (ARQON_OMEGA_ENABLED=1). @default false */
  enabled?: boolean;
  /** Events kept per tenant; older ones are dropped. @default 1000 */
  maxEvents?: number;
  /** Events older than this are dropped. @default 3600000 */
  eventTtlMs?: number;
  /** Substrates per tenant. @default 64 */
  maxSubstrates?: number;
  /** The clock for registration and event times and for their retention, in epoch ms. @default Date.now */
  now?: () => number;
}

/** The op.omega.* commands; each answers FEATURE_DISABLED while the lane is disabled. */
export const OMEGA_COMMANDS = [
  "op.omega.status",
  "op.omega.register_substrate",
  "op.omega.list_substrates",
  "op.omega.emit_event",
  "op.omega.list_events",
] as const;

interface Substrate {
  name: string;
  kind: string;
  meta: unknown;
  registeredBy: string;
  registeredAt: number;
}

interface OmegaEvent {
  seq: number;
  substrate: string;
  event: string;
  data: unknown;
  at: number;
}

/** Reads the lane's switches from `ARQON_OMEGA_*` environment variables. */
export function omegaOptionsFromEnv(env: Record<string, string | undefined>): OmegaOptions {
  const on = (v: string | undefined) => v === "1" || v === "true" || v === "yes";
  const num = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));
  const options: OmegaOptions = { enabled: on(env.ARQON_OMEGA_ENABLED) };
  const maxEvents = num(env.ARQON_OMEGA_MAX_EVENTS);
  const ttl = num(env.ARQON_OMEGA_EVENT_TTL_MS);
  if (maxEvents !== undefined && Number.isInteger(maxEvents) && maxEvents > 0) options.maxEvents = maxEvents;
  if (ttl !== undefined && Number.isInteger(ttl) && ttl > 0) options.eventTtlMs = ttl;
  return options;
}

/**
 * op.omega.*: the feature-flagged, isolated Tier-Omega lane kept from the earlier system. It holds experimental
 * substrates and their events per tenant, in memory, with a retention window; it never touches room traffic. While
 * the lane is disabled every op.omega.* command answers FEATURE_DISABLED. Mutations are admin-only.
 */
export function omegaOperator(host: OperatorHost, options: OmegaOptions = {}): Operator {
  if (!options.enabled) {
    for (const name of OMEGA_COMMANDS) host.commands.disable(name, "the Tier-Omega lane is disabled (set ARQON_OMEGA_ENABLED=1)");
    return { close: async () => undefined };
  }
  const now = options.now ?? Date.now;
  const maxEvents = options.maxEvents ?? 1000;
  const ttl = options.eventTtlMs ?? 3_600_000;
  const maxSubstrates = options.maxSubstrates ?? 64;
  const substrates = new Map<string, Map<string, Substrate>>();
  const events = new Map<string, OmegaEvent[]>();
  /** Event numbers count per tenant: one tenant never learns how busy another is. */
  const seqs = new Map<string, number>();

  const substratesOf = (tenant: string) => {
    let m = substrates.get(tenant);
    if (!m) substrates.set(tenant, (m = new Map()));
    return m;
  };
  const eventsOf = (tenant: string) => {
    let list = events.get(tenant);
    if (!list) events.set(tenant, (list = []));
    const cutoff = now() - ttl;
    let drop = 0;
    while (drop < list.length && list[drop]!.at < cutoff) drop++;
    if (drop > 0) list.splice(0, drop);
    return list;
  };

  const off = [
    host.registerCommand("op.omega.status", (ctx) => ({
      enabled: true,
      substrates: substratesOf(ctx.tenant).size,
      events: eventsOf(ctx.tenant).length,
      maxEvents,
      eventTtlMs: ttl,
    })),
    host.registerCommand(
      "op.omega.register_substrate",
      (ctx) => {
        const args = argsObject(ctx.args);
        const name = str(args, "name", { pattern: NAME_RE });
        const kind = str(args, "kind", { pattern: NAME_RE });
        const mine = substratesOf(ctx.tenant);
        if (!mine.has(name) && mine.size >= maxSubstrates) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `at most ${maxSubstrates} substrates`);
        const substrate: Substrate = { name, kind, meta: args.meta ?? null, registeredBy: ctx.sub, registeredAt: now() };
        mine.set(name, substrate);
        return substrate;
      },
      { adminOnly: true },
    ),
    host.registerCommand("op.omega.list_substrates", (ctx) => ({ substrates: [...substratesOf(ctx.tenant).values()] })),
    host.registerCommand(
      "op.omega.emit_event",
      (ctx) => {
        const args = argsObject(ctx.args);
        const substrate = str(args, "substrate", { pattern: NAME_RE });
        if (!substratesOf(ctx.tenant).has(substrate)) throw new ArqonError(ErrorCode.NOT_FOUND, `no substrate "${substrate}"`);
        const seq = (seqs.get(ctx.tenant) ?? 0) + 1;
        seqs.set(ctx.tenant, seq);
        const event: OmegaEvent = { seq, substrate, event: str(args, "event", { pattern: NAME_RE }), data: args.data ?? null, at: now() };
        const list = eventsOf(ctx.tenant);
        list.push(event);
        if (list.length > maxEvents) list.splice(0, list.length - maxEvents);
        return event;
      },
      { adminOnly: true },
    ),
    host.registerCommand("op.omega.list_events", (ctx) => {
      const args = argsObject(ctx.args);
      const limit = int(args, "limit", { min: 1, max: maxEvents, fallback: 100 });
      const substrate = args.substrate === undefined ? undefined : str(args, "substrate", { pattern: NAME_RE });
      const list = eventsOf(ctx.tenant).filter((e) => substrate === undefined || e.substrate === substrate);
      return { events: list.slice(-limit) };
    }),
  ];
  const offRemoved = host.onTenantRemoved?.((tenant) => {
    substrates.delete(tenant);
    events.delete(tenant);
    seqs.delete(tenant);
  });
  return {
    async close() {
      for (const f of off) f();
      offRemoved?.();
    },
  };
}
