import { ArqonError, ErrorCode, type CasilPolicyDocument } from "@arqon/core";
import type { CommandContext, CommandHandler, CommandOptions } from "../commands.js";
import type { CasilController } from "./controller.js";

export interface CasilCommand {
  name: "op.casil.get" | "op.casil.reload";
  handler: CommandHandler;
  options: CommandOptions;
}

function requireAdmin(ctx: CommandContext): void {
  // The registry refuses non-admins already (adminOnly); this keeps the handlers safe if registered without it.
  if (!ctx.admin) throw new ArqonError(ErrorCode.AUTHORIZATION_ERROR, `"${ctx.command}" is admin-only`);
}

/**
 * `op.casil.get` answers the active version, mode, document and counters; `op.casil.reload` takes
 * `{ "policy": <document object or JSON/YAML text> }`, validates it completely, swaps it in and answers
 * `{ version, previousVersion }` — or VALIDATION_ERROR, leaving the old policy active. Both are admin-only.
 */
export function casilCommands(controller: CasilController): CasilCommand[] {
  return [
    {
      name: "op.casil.get",
      options: { adminOnly: true, description: "the active CASIL policy, its version and counters" },
      handler: (ctx) => {
        requireAdmin(ctx);
        return { ...controller.describe(), stats: controller.stats() };
      },
    },
    {
      name: "op.casil.reload",
      options: { adminOnly: true, description: "validate and swap in a CASIL policy: { policy: object | text }" },
      handler: async (ctx) => {
        requireAdmin(ctx);
        const args = ctx.args as { policy?: unknown } | undefined;
        if (typeof args !== "object" || args === null || Array.isArray(args) || !("policy" in args)) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, 'op.casil.reload needs { "policy": <document object or JSON/YAML text> }');
        }
        const policy = args.policy;
        if (typeof policy !== "string" && (typeof policy !== "object" || policy === null || Array.isArray(policy))) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, "policy must be a document object or JSON/YAML text");
        }
        const result = await controller.reload(policy as CasilPolicyDocument | string, "command");
        ctx.logger.info({ version: result.version, by: ctx.sub, tenant: ctx.tenant }, "casil policy reloaded by command");
        return result;
      },
    },
  ];
}

/** Registers both commands on a server (or registry); returns a function that removes them. */
export function registerCasilCommands(target: { registerCommand?: (name: string, h: CommandHandler, o?: CommandOptions) => () => void; register?: (name: string, h: CommandHandler, o?: CommandOptions) => () => void }, controller: CasilController): () => void {
  const register = (target.registerCommand ?? target.register)?.bind(target);
  if (!register) throw new TypeError("registerCasilCommands needs an ArqonServer or a CommandRegistry");
  const undo = casilCommands(controller).map((c) => register(c.name, c.handler, c.options));
  return () => undo.forEach((u) => u());
}
