import { ArqonError, ErrorCode, jsonBytes, parseJsonBytes, type Frame, type KeyValueStore } from "@arqon/core";
import type { Logger } from "pino";
import type { AuthContext } from "./auth.js";
import { actorOf, authorizeCommand, type CommandAccess } from "./authority.js";
import type { AuditLog } from "./audit.js";
import type { Connection } from "./connection.js";
import type { HandlerContext } from "./context.js";
import type { TenantUsage } from "./quota.js";
import type { PublishResult } from "./rooms.js";
import type { ResolvedTenantLimits } from "./tenants.js";

/** What a command handler gets: the caller, its parsed arguments, and the server facilities it may use. */
export interface CommandContext {
  /** The full command name, e.g. "op.store.get". */
  command: string;
  /** The parsed JSON arguments (undefined when none were sent). */
  args: unknown;
  /** The `requestId` of the command frame, when it has one (the response carries it back). */
  requestId?: string;
  /** The `room` of the command frame, when it names one. */
  room?: string;
  /** The caller's tenant. */
  tenant: string;
  /** The caller's `sub` claim. */
  sub: string;
  /** The caller's role claim, when it has one. */
  role?: string;
  /** Whether the caller is a tenant admin (`role: "admin"`). */
  admin: boolean;
  /** The caller's full auth context, for capability checks (`can(ctx.auth, "sub", room)`). */
  auth: AuthContext;
  /** The id of the caller's connection. */
  clientId: string;
  /** Publishes into the caller's tenant (inspected like any server publish, within the tenant's limits). */
  publish(room: string, payload: unknown): Promise<PublishResult>;
  /**
   * The server's key-value store, shared by every tenant: the handler scopes its keys itself (op.store uses the
   * namespaces `op.store/<tenant>/<namespace>`, which a tenant's deletion removes).
   */
  kv: KeyValueStore;
  /** The server's logger. */
  logger: Logger;
  /** The limits of the caller's tenant. */
  limits: ResolvedTenantLimits;
  /** Charges the caller's tenant usage counters (op.store keys and bytes) within its limits: ARQ_QUOTA_EXCEEDED beyond. */
  chargeUsage(delta: Partial<TenantUsage>): Promise<TenantUsage>;
}

/**
 * A command handler. It returns the response payload (any JSON value, or undefined for none) or throws an ArqonError
 * whose code becomes the response's error code (VALIDATION_ERROR, NOT_FOUND, CONFLICT, ...). Anything else thrown is
 * reported as INTERNAL_ERROR.
 */
export type CommandHandler = (ctx: CommandContext) => unknown;

/** How a command is registered: who may run it, whether it is audited, what it says about itself. */
export interface CommandOptions {
  /**
   * Who may run it (checked before the arguments are inspected and the handler runs; others get
   * AUTHORIZATION_ERROR). See `CommandAccess`. @default "member", or "admin" with `adminOnly`
   */
  access?: CommandAccess;
  /** Shorthand for `access: "admin"`. @default false */
  adminOnly?: boolean;
  /** Write an audit record for every call (who, tenant, command, target, result). @default true for admin commands */
  audit?: boolean;
  /** A one-line summary of the command and its arguments, shown where commands are listed. */
  description?: string;
  /**
   * Top-level argument fields that are not content and are not inspected by CASIL (a designated secret such as
   * `secret` of `op.webhook.register`); the other arguments are. Set only by the code that registers the command.
   */
  trustedFields?: readonly string[];
}

interface Registered {
  handler: CommandHandler;
  access: CommandAccess;
  audit: boolean;
  description?: string;
  trustedFields?: readonly string[];
  disabled?: string;
}

const COMMAND_RE = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,3}$/;

function accessName(access: CommandAccess): string {
  return typeof access === "string" ? access : `capability:${access.capability}`;
}

/** The command registry: `op.<name>.<verb>` → handler. Operators fill it; the gateway routes `command` frames to it. */
export class CommandRegistry {
  private readonly commands = new Map<string, Registered>();

  /** Registers a handler; returns a function that removes it. Registering a name twice is a VALIDATION_ERROR. */
  register(name: string, handler: CommandHandler, options: CommandOptions = {}): () => void {
    if (!COMMAND_RE.test(name)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `command name "${name}" must look like "op.<name>.<verb>"`);
    if (this.commands.has(name)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `command "${name}" is already registered`);
    const access = options.access ?? (options.adminOnly ? "admin" : "member");
    const entry: Registered = { handler, access, audit: options.audit ?? access === "admin", description: options.description };
    if (options.trustedFields?.length) entry.trustedFields = [...options.trustedFields];
    this.commands.set(name, entry);
    return () => {
      if (this.commands.get(name) === entry) this.commands.delete(name);
    };
  }

  /** Keeps a command known but answers FEATURE_DISABLED (e.g. a feature switched off by configuration). */
  disable(name: string, reason = "feature disabled"): void {
    const entry = this.commands.get(name);
    if (entry) entry.disabled = reason;
    else this.commands.set(name, { handler: () => undefined, access: "member", audit: false, disabled: reason });
  }

  /** Undoes `disable`: the command's handler answers again. Does nothing for a name never registered or disabled. */
  enable(name: string): void {
    const entry = this.commands.get(name);
    if (entry) delete entry.disabled;
  }

  /** Whether `name` is registered (a disabled command counts). */
  has(name: string): boolean {
    return this.commands.has(name);
  }

  /** Every command known, in registration order. */
  list(): Array<{
    /** The command name, e.g. "op.store.get". */
    name: string;
    /** Who may run it: "member", "admin" or "capability:<capability>". */
    access: string;
    /** Whether only tenant admins may run it. */
    adminOnly: boolean;
    /** The description it was registered with. */
    description?: string;
    /** Whether it is disabled (answers FEATURE_DISABLED). */
    disabled: boolean;
  }> {
    return [...this.commands].map(([name, e]) => ({
      name,
      access: accessName(e.access),
      adminOnly: e.access === "admin",
      description: e.description,
      disabled: !!e.disabled,
    }));
  }

  /** The registration of `name` (handler, access, audit flag, disabled reason), or undefined when unknown. */
  get(name: string): Registered | undefined {
    return this.commands.get(name);
  }
}

function respondError(conn: Connection, frame: Frame, code: string, message: string): void {
  const reply: Frame = { type: "response", command: frame.command!, status: "error", error: { code, message } };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

/** What routing a command needs besides the handler context. */
export interface CommandDeps {
  registry: CommandRegistry;
  audit: AuditLog;
  /** Publishes into `tenant` on behalf of `sender` (the server publish path). */
  publish(tenant: string, room: string, payload: unknown, sender: string): Promise<PublishResult>;
  chargeUsage(tenant: string, delta: Partial<TenantUsage>): Promise<TenantUsage>;
}

function targetOf(args: unknown, frameRoom: string | undefined): string | undefined {
  const fields = typeof args === "object" && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
  for (const name of ["name", "key", "room"]) if (typeof fields[name] === "string") return fields[name] as string;
  return frameRoom;
}

/**
 * Routes one `command` frame: lookup, the access check (authority.ts: one place for every command), CASIL on the
 * args, handler, `response`; admin commands leave an audit record whatever their outcome.
 */
export async function handleCommand(ctx: HandlerContext, deps: CommandDeps, conn: Connection, frame: Frame): Promise<void> {
  const name = frame.command!;
  const entry = deps.registry.get(name);
  if (!entry) return respondError(conn, frame, ErrorCode.NOT_FOUND, `unknown command "${name}"`);
  if (entry.disabled) return respondError(conn, frame, ErrorCode.FEATURE_DISABLED, entry.disabled);
  let args: unknown;
  if (frame.args !== undefined) {
    try {
      args = parseJsonBytes(frame.args);
    } catch {
      return respondError(conn, frame, ErrorCode.VALIDATION_ERROR, "args must be JSON");
    }
  }
  const auth = conn.auth;
  const tenant = conn.tenant;
  let result: unknown;
  try {
    authorizeCommand(auth, name, entry.access, args, frame.room);
  } catch (err) {
    if (entry.audit) void record(deps, conn, name, args, frame.room, (err as ArqonError).code);
    return respondError(conn, frame, (err as ArqonError).code, (err as ArqonError).message);
  }
  if (frame.args !== undefined) {
    // A block throws: the caller gets an error frame with the reason code, the handler never runs.
    const { payload } = await ctx.inspect({ tenant, room: frame.room, path: "command", subject: auth.sub, payload: frame.args, command: name, trustedFields: entry.trustedFields });
    if (payload !== frame.args) args = parseJsonBytes(payload);
  }
  const command: CommandContext = {
    command: name,
    args,
    requestId: frame.requestId,
    room: frame.room,
    tenant,
    sub: auth.sub,
    role: auth.role,
    admin: auth.admin,
    auth,
    clientId: conn.id,
    publish: (room, payload) => deps.publish(tenant, room, payload, auth.sub),
    kv: ctx.backends.kv,
    logger: ctx.logger,
    limits: ctx.tenants.runtime(tenant).limits,
    chargeUsage: (delta) => deps.chargeUsage(tenant, delta),
  };
  try {
    result = await entry.handler(command);
  } catch (err) {
    const code = err instanceof ArqonError ? err.code : ErrorCode.INTERNAL_ERROR;
    if (entry.audit) void record(deps, conn, name, args, frame.room, code);
    if (err instanceof ArqonError) return respondError(conn, frame, err.code, err.message);
    ctx.logger.error({ err, command: name }, "command failed");
    return respondError(conn, frame, ErrorCode.INTERNAL_ERROR, "command failed");
  }
  if (entry.audit) void record(deps, conn, name, args, frame.room, "ok");
  const reply: Frame = { type: "response", command: name, status: "ok" };
  if (result !== undefined) reply.payload = jsonBytes(result);
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

function record(deps: CommandDeps, conn: Connection, name: string, args: unknown, room: string | undefined, result: string): Promise<void> {
  const target = targetOf(args, room);
  return deps.audit.record({
    actor: actorOf({ kind: "tenant", auth: conn.auth }),
    tenant: conn.tenant,
    action: name,
    ...(target !== undefined ? { target } : {}),
    result,
  });
}
