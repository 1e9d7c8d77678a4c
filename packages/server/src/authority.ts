import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { ArqonError, ErrorCode, type Frame } from "@arqon/core";
import { AuthError, can, type AuthContext, type Authenticator, type Capability } from "./auth.js";

/**
 * Who is asking, and with what authority (docs/security.md, "Who may do what"):
 * - the operator owns the server; its credential is a key from server configuration, never a token;
 * - a tenant principal is a verified token: `role: "admin"` acts inside its own tenant, `role: "server"` is the
 *   tenant's application backend, anyone else is a user limited by its `caps`.
 */
export type Principal =
  | {
      /** The operator, authenticated by an operator key. */
      kind: "operator";
      /** The public id of the key used (`key:` and 8 hex digits of its SHA-256), never the key. */
      keyId: string;
    }
  | {
      /** A verified token of a tenant (admin, server or user). */
      kind: "tenant";
      /** What the token says. */
      auth: AuthContext;
    };

/** The shortest operator key or scrape token accepted: keys are bearer credentials for the whole server. */
export const MIN_KEY_LENGTH = 24;

/**
 * A set of secret keys (operator keys, scrape tokens) compared in constant time. The keys themselves are kept only as
 * SHA-256 digests, so equal-length digests are compared whatever the presented length, and every configured key is
 * compared on every check (no early exit that would tell how many keys exist or which one came close).
 */
export class KeySet {
  private readonly digests: Buffer[];
  /** Public ids of the keys, for logs and audit records: `key:` and 8 hex digits of the key's SHA-256. */
  readonly ids: readonly string[];

  constructor(keys: readonly string[] = [], what = "operator key") {
    for (const key of keys) {
      if (typeof key !== "string" || key.length < MIN_KEY_LENGTH) {
        throw new ArqonError(ErrorCode.VALIDATION_ERROR, `an ${what} must be at least ${MIN_KEY_LENGTH} characters`);
      }
    }
    this.digests = keys.map((k) => createHash("sha256").update(k, "utf8").digest());
    this.ids = this.digests.map((d) => `key:${d.subarray(0, 4).toString("hex")}`);
  }

  /** How many keys are configured. */
  get size(): number {
    return this.digests.length;
  }

  /** The id of the configured key equal to `presented`, or undefined when none is. */
  match(presented: string | undefined): string | undefined {
    if (presented === undefined || presented.length === 0 || this.digests.length === 0) return undefined;
    const given = createHash("sha256").update(presented, "utf8").digest();
    let found = -1;
    for (let i = 0; i < this.digests.length; i++) {
      if (timingSafeEqual(given, this.digests[i]!) && found < 0) found = i;
    }
    return found < 0 ? undefined : this.ids[found];
  }
}

/** Verbs of the room capability checks, as the refusals name them. */
const FRAME_ACCESS: Partial<Record<Frame["type"], { capability: Capability; verb: string }>> = {
  subscribe: { capability: "sub", verb: "subscribe to" },
  history: { capability: "sub", verb: "read history of" },
  state_get: { capability: "sub", verb: "read state of" },
  publish: { capability: "pub", verb: "publish to" },
  state_set: { capability: "pub", verb: "write state of" },
  presence_list: { capability: "presence", verb: "see presence of" },
};

/**
 * The room check of a client frame, made by the gateway before the frame's handler runs: refuses with ARQ_FORBIDDEN
 * (the connection stays open) when the token's capabilities do not cover the frame's room. Frames that name no
 * room, or act only on the connection's own subscriptions (unsubscribe, presence_set), need nothing here.
 */
export function authorizeFrame(auth: AuthContext, frame: Frame): void {
  const access = FRAME_ACCESS[frame.type];
  if (access === undefined || frame.room === undefined) return;
  if (!can(auth, access.capability, frame.room)) {
    throw new ArqonError(ErrorCode.FORBIDDEN, `not allowed to ${access.verb} room "${frame.room}"`);
  }
}

/**
 * Who may run a command (the registry records it with the command):
 * - `"member"`: every connection of the tenant;
 * - `"admin"`: the tenant's admins (`role: "admin"`), acting inside their own tenant;
 * - `{ capability, resource }`: tokens whose capability covers the resource the command touches: `"room"` is
 *   `args.room`, else the command frame's `room`; a function reads it from the arguments (e.g. a store namespace).
 *   Admins always pass; a token without a `caps` claim covers every resource of its tenant.
 */
export type CommandAccess =
  | "member"
  | "admin"
  | {
      /** The capability the token needs for the resource. */
      capability: Capability;
      /**
       * The resource checked: "room" (`args.room`, else the frame's `room`), or a function that picks it from the
       * arguments; when it yields no string the check passes (and the handler refuses the arguments).
       */
      resource: "room" | ((args: Record<string, unknown>) => unknown);
    };

function argsRecord(args: unknown): Record<string, unknown> {
  return typeof args === "object" && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
}

/** Refuses with AUTHORIZATION_ERROR when `auth` may not run command `name` with `args`. */
export function authorizeCommand(auth: AuthContext, name: string, access: CommandAccess, args: unknown, frameRoom: string | undefined): void {
  if (access === "member" || auth.admin) return;
  if (access === "admin") throw new ArqonError(ErrorCode.AUTHORIZATION_ERROR, `"${name}" is admin-only`);
  const fields = argsRecord(args);
  const resource = access.resource === "room" ? (fields.room ?? frameRoom) : access.resource(fields);
  // No resource named: nothing is reached, and the handler refuses the arguments with VALIDATION_ERROR.
  if (typeof resource !== "string") return;
  if (!can(auth, access.capability, resource)) {
    const what = access.resource === "room" ? "room" : access.capability;
    throw new ArqonError(ErrorCode.AUTHORIZATION_ERROR, `"${name}" needs the "${access.capability}" capability for ${what} "${resource}"`);
  }
}

/** What an HTTP route needs. */
export type HttpAccess =
  /** anyone */
  | "open"
  /** the operator, or a scrape token (monitoring: /status, /metrics) */
  | "monitor"
  /** the operator only */
  | "operator"
  /** the operator, or an admin of the tenant the route names */
  | "tenant-admin"
  /** the operator, or an admin or `role: "server"` token of the tenant the request names */
  | "tenant-backend";

/** The credential of an HTTP request: `X-API-Key`, else `Authorization: Bearer`. Undefined when there is none. */
export function httpCredential(req: IncomingMessage): string | undefined {
  const apiKey = req.headers["x-api-key"];
  if (typeof apiKey === "string") return apiKey.trim();
  const header = req.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match ? match[1] : "";
}

/**
 * Resolves an HTTP request's principal. An operator key (either header) is the operator; any other bearer value must
 * verify as a token (a tenant token is never an operator, whatever its claims); a scrape token counts only where a
 * route allows "monitor". Throws AuthError (401) for a missing or bad credential.
 */
export async function resolveHttpPrincipal(
  req: IncomingMessage,
  keys: { operator: KeySet; scrape: KeySet },
  authenticator: Authenticator,
): Promise<Principal | { kind: "scrape"; keyId: string }> {
  const presented = httpCredential(req);
  if (presented === undefined || presented === "") throw new AuthError(ErrorCode.AUTH_MISSING, "an operator key or a bearer token is required");
  const operator = keys.operator.match(presented);
  if (operator) return { kind: "operator", keyId: operator };
  const scrape = keys.scrape.match(presented);
  if (scrape) return { kind: "scrape", keyId: scrape };
  if (typeof req.headers["x-api-key"] === "string") throw new AuthError(ErrorCode.AUTH_INVALID, "unknown API key");
  return { kind: "tenant", auth: await authenticator.verify(presented) };
}

/**
 * Refuses (ARQ_FORBIDDEN, HTTP 403) a principal the route's access does not admit. `tenant` is the tenant the route
 * names (path or body); a tenant principal must belong to it.
 */
export function authorizeHttp(principal: Principal | { kind: "scrape"; keyId: string }, access: HttpAccess, tenant?: string): void {
  if (access === "open" || principal.kind === "operator") return;
  if (principal.kind === "scrape") {
    if (access === "monitor") return;
    throw new ArqonError(ErrorCode.FORBIDDEN, "a scrape token may only read /status and /metrics");
  }
  const auth = principal.auth;
  if (access === "monitor" || access === "operator") throw new ArqonError(ErrorCode.FORBIDDEN, "this route needs an operator key");
  if (tenant !== undefined && auth.tenant !== tenant) throw new ArqonError(ErrorCode.FORBIDDEN, `a token of tenant "${auth.tenant}" cannot act on tenant "${tenant}"`);
  if (auth.admin) return;
  if (access === "tenant-backend" && auth.role === "server") return;
  throw new ArqonError(ErrorCode.FORBIDDEN, access === "tenant-admin" ? 'this route needs an operator key or a token with role "admin"' : 'this route needs a token with role "admin" or "server"');
}

/** A principal as audit records and logs show it (never a key or a token). */
export function actorOf(principal: Principal): { kind: "operator"; key: string } | { kind: "tenant_admin" | "tenant_server" | "user"; tenant: string; sub: string } {
  if (principal.kind === "operator") return { kind: "operator", key: principal.keyId };
  const { auth } = principal;
  return { kind: auth.admin ? "tenant_admin" : auth.role === "server" ? "tenant_server" : "user", tenant: auth.tenant, sub: auth.sub };
}
