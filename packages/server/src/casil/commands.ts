import { ArqonError, ErrorCode, type CasilPolicyDocument } from "@arqon/core";
import type { ApiRoute } from "../admin-http.js";
import type { AuditLog } from "../audit.js";
import { SERVER_AUDIT_TENANT } from "../audit.js";
import type { CommandContext, CommandHandler, CommandOptions } from "../commands.js";
import type { CasilLayerWriteResult, LayeredCasil } from "./layers.js";

/** One of the tenant admin's CASIL commands, ready to register (see `casilCommands`). */
export interface CasilCommand {
  /** The command name. */
  name: "op.casil.get" | "op.casil.reload";
  /** Its handler. */
  handler: CommandHandler;
  /** Its registration options (both are admin-only). */
  options: CommandOptions;
}

type ReloadArgs = { policy?: unknown; mode?: unknown; clear?: unknown; dryRun?: unknown };

function reloadArgs(args: unknown, what: string): ReloadArgs & { dryRun: boolean } {
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${what} needs { "policy": <document or JSON/YAML text> } or { "mode": "monitor" | "enforce" }`);
  }
  const a = args as ReloadArgs;
  for (const field of Object.keys(a)) {
    if (!["policy", "mode", "clear", "dryRun"].includes(field)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${what}: unknown field "${field}"`);
  }
  const given = ["policy", "mode", "clear"].filter((f) => a[f as keyof ReloadArgs] !== undefined);
  if (given.length !== 1) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${what} needs exactly one of { "policy": <document or JSON/YAML text> }, { "mode": "monitor" | "enforce" } or { "clear": true }`);
  }
  if (a.mode !== undefined && a.mode !== "monitor" && a.mode !== "enforce") throw new ArqonError(ErrorCode.VALIDATION_ERROR, 'mode must be "monitor" or "enforce"');
  if (a.clear !== undefined && a.clear !== true) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "clear must be true");
  if (a.policy !== undefined && typeof a.policy !== "string" && (typeof a.policy !== "object" || a.policy === null || Array.isArray(a.policy))) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, "policy must be a document object or JSON/YAML text");
  }
  if (a.dryRun !== undefined && typeof a.dryRun !== "boolean") throw new ArqonError(ErrorCode.VALIDATION_ERROR, "dryRun must be true or false");
  return { ...a, dryRun: a.dryRun === true };
}

/** Applies a reload request to one tenant's layer. */
export function reloadLayer(layered: LayeredCasil, tenant: string, args: unknown, by: string): Promise<CasilLayerWriteResult> {
  const a = reloadArgs(args, "op.casil.reload");
  const options = { by, dryRun: a.dryRun };
  if (a.mode !== undefined) return layered.patchLayer(tenant, { mode: a.mode as "monitor" | "enforce" }, options);
  if (a.clear) return layered.clearLayer(tenant, options);
  return layered.setLayer(tenant, a.policy, options);
}

/** What a tenant admin sees: the baseline's public part, its own layer, and its own decision counters. */
function tenantView(layered: LayeredCasil, tenant: string): Record<string, unknown> {
  const decisions = layered.stats().decisions.filter((d) => d.tenant === tenant);
  const layer = layered.layerStats().find((s) => s.tenant === tenant)?.stats.decisions ?? [];
  return { ...layered.describe(tenant), stats: { baseline: decisions, layer } };
}

/**
 * The tenant admin's CASIL commands, both admin-only and acting on the caller's tenant alone:
 * - `op.casil.get` answers the baseline's public part (version, mode, size bounds), the caller's layer and its
 *   decision counters; never the baseline's rules or other tenants' names.
 * - `op.casil.reload` changes the caller's layer: `{ "policy": <layer document or JSON/YAML text> }`,
 *   `{ "mode": "enforce" | "monitor" }` (the earlier system's patch form), or `{ "clear": true }`; `dryRun: true`
 *   validates and answers what would change. It answers `{ valid, dryRun, tenant, version, previousVersion,
 *   changes }`; an invalid layer gets VALIDATION_ERROR (AUTHORIZATION_ERROR when it tries to reach beyond the
 *   tenant: other tenants' sections, turning inspection off, host paths) and nothing changes.
 */
export function casilCommands(layered: LayeredCasil): CasilCommand[] {
  return [
    {
      name: "op.casil.get",
      options: { access: "admin", audit: false, description: "the CASIL baseline's public part and this tenant's layer" },
      handler: (ctx: CommandContext) => tenantView(layered, ctx.tenant),
    },
    {
      name: "op.casil.reload",
      options: { access: "admin", description: "change this tenant's CASIL layer: { policy } | { mode } | { clear: true }, dryRun?" },
      handler: (ctx: CommandContext) => reloadLayer(layered, ctx.tenant, ctx.args, ctx.sub),
    },
  ];
}

/** Registers both commands on a server (or registry); returns a function that removes them. */
export function registerCasilCommands(
  target: { registerCommand?: (name: string, h: CommandHandler, o?: CommandOptions) => () => void; register?: (name: string, h: CommandHandler, o?: CommandOptions) => () => void },
  layered: LayeredCasil,
): () => void {
  const register = (target.registerCommand ?? target.register)?.bind(target);
  if (!register) throw new TypeError("registerCasilCommands needs an ArqonServer or a CommandRegistry");
  const undo = casilCommands(layered).map((c) => register(c.name, c.handler, c.options));
  return () => undo.forEach((u) => u());
}

/**
 * The CASIL routes of the server API: the baseline (operator) and each tenant's layer (operator, or that tenant's
 * admin). Writes leave an audit record.
 */
export function casilRoutes(layered: LayeredCasil, audit: AuditLog): ApiRoute[] {
  const controller = layered.baseline;
  return [
    {
      method: "GET",
      path: "/api/v1/casil/baseline",
      access: "operator",
      summary: "read the CASIL baseline",
      handle: () => ({ body: { ...layered.describeBaseline(), stats: controller.stats() } }),
    },
    {
      method: "PUT",
      path: "/api/v1/casil/baseline",
      access: "operator",
      summary: "reload the CASIL baseline",
      async handle({ body, actor }) {
        const a = reloadArgs(body, "the baseline reload");
        if (a.clear) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "the baseline cannot be cleared; reload {} for the defaults");
        const policy = a.mode !== undefined ? { ...controller.document, mode: a.mode as "monitor" | "enforce" } : (a.policy as CasilPolicyDocument | string);
        const result = await audit.track(
          actor,
          a.dryRun ? "casil.baseline.check" : "casil.baseline.reload",
          SERVER_AUDIT_TENANT,
          () => (a.dryRun ? controller.check(policy) : controller.reload(policy, "command")),
          (r) => ({ version: r.version }),
        );
        return { body: { valid: true, dryRun: a.dryRun, ...result } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/casil",
      access: "tenant-admin",
      summary: "read a tenant's CASIL layer",
      handle: ({ params }) => ({ body: tenantView(layered, params.tenant!) }),
    },
    {
      method: "PUT",
      path: "/api/v1/tenants/:tenant/casil",
      access: "tenant-admin",
      summary: "change a tenant's CASIL layer",
      async handle({ params, body, actor }) {
        const tenant = params.tenant!;
        const by = "sub" in actor ? actor.sub : actor.key;
        return { body: await audit.track(actor, "casil.layer.reload", tenant, () => reloadLayer(layered, tenant, body, by), (r) => ({ version: r.version, dryRun: r.dryRun, changes: r.changes })) };
      },
    },
    {
      method: "DELETE",
      path: "/api/v1/tenants/:tenant/casil",
      access: "tenant-admin",
      summary: "clear a tenant's CASIL layer",
      async handle({ params, actor }) {
        const tenant = params.tenant!;
        const by = "sub" in actor ? actor.sub : actor.key;
        return { body: await audit.track(actor, "casil.layer.clear", tenant, () => layered.clearLayer(tenant, { by }), (r) => ({ version: r.version })) };
      },
    },
  ];
}
