import { ArqonError, ErrorCode, jsonBytes, parseJsonBytes, type Frame, type KeyValueStore } from "@arqon/core";
import type { Logger } from "pino";
import type { AuthContext } from "./auth.js";
import type { Connection } from "./connection.js";
import type { Gateway } from "./gateway.js";
import { inspectOrThrow } from "./inspect.js";
import type { PublishResult } from "./rooms.js";

/** What a command handler gets: the caller, its parsed arguments, and the server facilities it may use. */
export interface CommandContext {
  /** The full command name, e.g. "op.store.get". */
  command: string;
  /** The parsed JSON arguments (undefined when none were sent). */
  args: unknown;
  requestId?: string;
  room?: string;
  tenant: string;
  sub: string;
  role?: string;
  admin: boolean;
  /** The caller's full auth context, for capability checks (`can(ctx.auth, "sub", room)`). */
  auth: AuthContext;
  clientId: string;
  /** Publishes into the caller's tenant (inspected like any server publish). */
  publish(room: string, payload: unknown): Promise<PublishResult>;
  kv: KeyValueStore;
  logger: Logger;
}

/**
 * A command handler. It returns the response payload (any JSON value, or undefined for none) or throws an ArqonError
 * whose code becomes the response's error code (VALIDATION_ERROR, NOT_FOUND, CONFLICT, ...). Anything else thrown is
 * reported as INTERNAL_ERROR.
 */
export type CommandHandler = (ctx: CommandContext) => unknown;

export interface CommandOptions {
  /** Only tokens with role "admin" may run it; others get AUTHORIZATION_ERROR. @default false */
  adminOnly?: boolean;
  description?: string;
}

interface Registered {
  handler: CommandHandler;
  adminOnly: boolean;
  description?: string;
  disabled?: string;
}

const COMMAND_RE = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,3}$/;

/** The command registry: `op.<name>.<verb>` → handler. Operators fill it; the gateway routes `command` frames to it. */
export class CommandRegistry {
  private readonly commands = new Map<string, Registered>();

  /** Registers a handler; returns a function that removes it. Registering a name twice is a VALIDATION_ERROR. */
  register(name: string, handler: CommandHandler, options: CommandOptions = {}): () => void {
    if (!COMMAND_RE.test(name)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `command name "${name}" must look like "op.<name>.<verb>"`);
    if (this.commands.has(name)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `command "${name}" is already registered`);
    const entry: Registered = { handler, adminOnly: options.adminOnly ?? false, description: options.description };
    this.commands.set(name, entry);
    return () => {
      if (this.commands.get(name) === entry) this.commands.delete(name);
    };
  }

  /** Keeps a command known but answers FEATURE_DISABLED (e.g. a feature switched off by configuration). */
  disable(name: string, reason = "feature disabled"): void {
    const entry = this.commands.get(name);
    if (entry) entry.disabled = reason;
    else this.commands.set(name, { handler: () => undefined, adminOnly: false, disabled: reason });
  }

  enable(name: string): void {
    const entry = this.commands.get(name);
    if (entry) delete entry.disabled;
  }

  has(name: string): boolean {
    return this.commands.has(name);
  }

  list(): Array<{ name: string; adminOnly: boolean; description?: string; disabled: boolean }> {
    return [...this.commands].map(([name, e]) => ({ name, adminOnly: e.adminOnly, description: e.description, disabled: !!e.disabled }));
  }

  get(name: string): Registered | undefined {
    return this.commands.get(name);
  }
}

function respondError(conn: Connection, frame: Frame, code: string, message: string): void {
  const reply: Frame = { type: "response", command: frame.command!, status: "error", error: { code, message } };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

/** Routes one `command` frame: lookup, admin check, CASIL on the args, handler, `response`. */
export async function handleCommand(gw: Gateway, conn: Connection, frame: Frame): Promise<void> {
  const name = frame.command!;
  const entry = gw.commands.get(name);
  if (!entry) return respondError(conn, frame, ErrorCode.NOT_FOUND, `unknown command "${name}"`);
  if (entry.disabled) return respondError(conn, frame, ErrorCode.FEATURE_DISABLED, entry.disabled);
  if (entry.adminOnly && !conn.auth.admin) return respondError(conn, frame, ErrorCode.AUTHORIZATION_ERROR, `"${name}" is admin-only`);
  let args: unknown;
  if (frame.args !== undefined) {
    // A block throws: the caller gets an error frame with the reason code, the handler never runs.
    const { payload } = await inspectOrThrow(
      gw.inspector,
      { tenant: conn.tenant, room: frame.room, path: "command", subject: conn.auth.sub, payload: frame.args, command: name },
      gw.logger,
    );
    try {
      args = parseJsonBytes(payload);
    } catch {
      return respondError(conn, frame, ErrorCode.VALIDATION_ERROR, "args must be JSON");
    }
  }
  const tenant = conn.tenant;
  const ctx: CommandContext = {
    command: name,
    args,
    requestId: frame.requestId,
    room: frame.room,
    tenant,
    sub: conn.auth.sub,
    role: conn.auth.role,
    admin: conn.auth.admin,
    auth: conn.auth,
    clientId: conn.id,
    publish: (room, payload) => gw.publishJson(tenant, room, payload, conn.auth.sub),
    kv: gw.backends.kv,
    logger: gw.logger,
  };
  let result: unknown;
  try {
    result = await entry.handler(ctx);
  } catch (err) {
    if (err instanceof ArqonError) return respondError(conn, frame, err.code, err.message);
    gw.logger.error({ err, command: name }, "command failed");
    return respondError(conn, frame, ErrorCode.INTERNAL_ERROR, "command failed");
  }
  const reply: Frame = { type: "response", command: name, status: "ok" };
  if (result !== undefined) reply.payload = jsonBytes(result);
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}
