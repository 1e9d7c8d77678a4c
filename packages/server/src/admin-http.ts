import { endWithError, withSpan, type Tracing } from "./tracing.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ArqonError, ErrorCode } from "@arqon/core";
import { SERVER_AUDIT_TENANT, type AuditActor, type AuditLog } from "./audit.js";
import type { Authenticator } from "./auth.js";
import { actorOf, authorizeHttp, resolveHttpPrincipal, type HttpAccess, type KeySet, type Principal } from "./authority.js";
import { ApiRateLimitedError, type ApiRateLimiter } from "./api-rate-limit.js";
import { readBody, sendJson } from "./http-util.js";
import type { TenantAdmin } from "./tenant-admin.js";
import type { TenantRegistry } from "./tenants.js";

/** Largest request body of the server API (a CASIL layer with Wasm modules fits). */
export const MAX_API_BODY_BYTES = 1024 * 1024;

/** HTTP status of an error code. */
export function httpStatusOf(code: string): number {
  if (code === ErrorCode.AUTH_MISSING || code === ErrorCode.AUTH_INVALID || code === ErrorCode.AUTH_EXPIRED || code === ErrorCode.AUTH_REVOKED) return 401;
  if (code.startsWith("CASIL_")) return 422;
  switch (code) {
    case ErrorCode.FORBIDDEN:
    case ErrorCode.AUTHORIZATION_ERROR:
    case ErrorCode.TENANT_DISABLED:
    case ErrorCode.TENANT_UNKNOWN:
      return 403;
    case ErrorCode.NOT_FOUND:
      return 404;
    case ErrorCode.CONFLICT:
    case ErrorCode.STATE_CONFLICT:
      return 409;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.RATE_LIMITED:
    case ErrorCode.QUOTA_EXCEEDED:
      return 429;
    case ErrorCode.FEATURE_DISABLED:
      return 501;
    case ErrorCode.BACKEND_UNAVAILABLE:
    case ErrorCode.SHUTTING_DOWN:
      return 503;
    case ErrorCode.INTERNAL:
    case ErrorCode.INTERNAL_ERROR:
      return 500;
    default:
      return 400;
  }
}

/** A resolved request of the server API. */
export interface ApiRequest {
  principal: Principal | { kind: "scrape"; keyId: string };
  /** Path parameters (`:tenant`, `:id`). */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body (an object), for methods that carry one. */
  body: Record<string, unknown>;
  actor: AuditActor;
}

/** One route of the server API (`/api/v1/...`), as `ArqonServer.addApiRoutes` takes it. */
export interface ApiRoute {
  /** The HTTP method it answers; another method on its path gets 405. */
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** e.g. "/api/v1/tenants/:tenant/kick" */
  path: string;
  /** Who may call it; checked (with the tenant of a `:tenant` parameter) before `handle` runs. */
  access: HttpAccess;
  /** What the matrix in docs/security.md calls it. */
  summary: string;
  /**
   * Answers an authenticated, authorized request; the body is sent as JSON. An ArqonError thrown becomes the error
   * body with its code's HTTP status (`httpStatusOf`).
   */
  handle(req: ApiRequest):
    | Promise<{
        /** The HTTP status. @default 200 */
        status?: number;
        /** The JSON answer. */
        body: unknown;
      }>
    | {
        /** The HTTP status. @default 200 */
        status?: number;
        /** The JSON answer. */
        body: unknown;
      };
}

interface CompiledRoute extends ApiRoute {
  segments: string[];
}

function compile(route: ApiRoute): CompiledRoute {
  return { ...route, segments: route.path.split("/").slice(1) };
}

function match(route: CompiledRoute, parts: string[]): Record<string, string> | undefined {
  if (route.segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const seg = route.segments[i]!;
    if (seg.startsWith(":")) {
      let value: string;
      try {
        value = decodeURIComponent(parts[i]!);
      } catch {
        return undefined;
      }
      params[seg.slice(1)] = value;
    } else if (seg !== parts[i]) return undefined;
  }
  return params;
}

export interface ServerApiOptions {
  admin: TenantAdmin;
  registry: TenantRegistry;
  audit: AuditLog;
  keys: { operator: KeySet; scrape: KeySet };
  authenticator: Authenticator;
  /** More routes (the CASIL endpoints). */
  extra?: ApiRoute[];
  /** The largest request body read (`http.maxBodyBytes`). @default MAX_API_BODY_BYTES */
  maxBodyBytes?: number;
  /** The per-credential request limit (`http.apiRateLimit`); none when absent. */
  rateLimit?: ApiRateLimiter;
  /** The gateway's spans while tracing is on: a server span per call, the handler in its context. */
  tracing?: Tracing;
}

function limitParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${name} must be a whole number`);
  return n;
}

/** The tenant routes of the server API (`/api/v1`); docs/gateway.md lists them, docs/security.md says who may call them. */
export function tenantRoutes(o: ServerApiOptions): ApiRoute[] {
  const { admin } = o;
  return [
    { method: "GET", path: "/api/v1/tenants", access: "operator", summary: "list tenants", handle: () => ({ body: { mode: o.registry.mode, tenants: admin.list() } }) },
    {
      method: "POST",
      path: "/api/v1/tenants",
      access: "operator",
      summary: "create a tenant",
      async handle({ body, actor }) {
        if (typeof body.name !== "string") throw new ArqonError(ErrorCode.VALIDATION_ERROR, 'body needs "name"');
        for (const field of Object.keys(body)) {
          if (!["name", "limits", "description", "disabled", "proxy"].includes(field)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `unknown field "${field}"`);
        }
        if (body.disabled !== undefined && typeof body.disabled !== "boolean") throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"disabled" must be true or false');
        return {
          status: 201,
          body: await admin.create(actor, body.name, { limits: body.limits, description: body.description, disabled: body.disabled as boolean | undefined, proxy: body.proxy }),
        };
      },
    },
    { method: "GET", path: "/api/v1/tenants/:tenant", access: "tenant-admin", summary: "show a tenant", handle: async ({ params }) => ({ body: await admin.show(params.tenant!) }) },
    {
      method: "PATCH",
      path: "/api/v1/tenants/:tenant",
      access: "operator",
      summary: "set a tenant's limits and proxy hooks",
      async handle({ params, body, actor }) {
        for (const field of Object.keys(body)) {
          if (!["limits", "description", "proxy"].includes(field)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `unknown field "${field}"`);
        }
        return { body: await admin.set(actor, params.tenant!, body) };
      },
    },
    {
      method: "DELETE",
      path: "/api/v1/tenants/:tenant",
      access: "operator",
      summary: "delete a tenant and its data",
      handle: async ({ params, query, body, actor }) => ({ body: await admin.delete(actor, params.tenant!, query.get("confirm") ?? body.confirm) }),
    },
    { method: "POST", path: "/api/v1/tenants/:tenant/disable", access: "operator", summary: "disable a tenant", handle: async ({ params, actor }) => ({ body: await admin.disable(actor, params.tenant!) }) },
    { method: "POST", path: "/api/v1/tenants/:tenant/enable", access: "operator", summary: "enable a tenant", handle: async ({ params, actor }) => ({ body: await admin.enable(actor, params.tenant!) }) },
    {
      method: "POST",
      path: "/api/v1/tenants/:tenant/kick",
      access: "tenant-admin",
      summary: "kick connections",
      handle: async ({ params, body, actor }) => ({ body: await admin.kick(actor, params.tenant!, body) }),
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/revocations",
      access: "tenant-admin",
      summary: "list revocations",
      handle: ({ params }) => ({ body: { revocations: o.registry.revocations(params.tenant!) } }),
    },
    {
      method: "POST",
      path: "/api/v1/tenants/:tenant/revocations",
      access: "tenant-admin",
      summary: "revoke tokens",
      handle: async ({ params, body, actor }) => ({ status: 201, body: await admin.revoke(actor, params.tenant!, body, "sub" in actor ? actor.sub : actor.key) }),
    },
    {
      method: "DELETE",
      path: "/api/v1/tenants/:tenant/revocations/:id",
      access: "tenant-admin",
      summary: "lift a revocation",
      handle: async ({ params, actor }) => ({ body: { removed: await admin.unrevoke(actor, params.tenant!, params.id!) } }),
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/audit",
      access: "tenant-admin",
      summary: "read a tenant's audit trail",
      handle: async ({ params, query }) => ({ body: await o.audit.list(params.tenant!, { limit: limitParam(query, "limit"), before: limitParam(query, "before") }) }),
    },
    {
      method: "GET",
      path: "/api/v1/audit",
      access: "operator",
      summary: "read the server's audit trail",
      handle: async ({ query }) => ({ body: await o.audit.list(SERVER_AUDIT_TENANT, { limit: limitParam(query, "limit"), before: limitParam(query, "before") }) }),
    },
  ];
}

/**
 * The server API router: authenticates (operator key, scrape token or token), authorizes per route (authority.ts),
 * checks that a tenant principal's tenant may act (not disabled, token not revoked), parses the JSON body (at most
 * 1 MiB, 413 beyond) and answers JSON; errors carry `{"error":{"code","message"}}` with the code's HTTP status.
 * `handle` resolves false for paths outside `/api/v1`.
 */
export class ServerApi {
  private readonly routes: CompiledRoute[];

  constructor(private readonly o: ServerApiOptions) {
    this.routes = [...tenantRoutes(o), ...(o.extra ?? [])].map(compile);
  }

  /** Every route (for docs and the authority matrix test). */
  list(): ApiRoute[] {
    return this.routes;
  }

  /** Adds routes (a route already there for the same method and path stays first). */
  add(routes: ApiRoute[]): void {
    this.routes.push(...routes.map(compile));
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith("/api/v1/") && url.pathname !== "/api/v1") return false;
    const parts = url.pathname.split("/").slice(1);
    let params: Record<string, string> | undefined;
    let route: CompiledRoute | undefined;
    const allowed: string[] = [];
    for (const r of this.routes) {
      const p = match(r, parts);
      if (!p) continue;
      allowed.push(r.method);
      if (r.method === req.method) {
        route = r;
        params = p;
        break;
      }
    }
    if (!route || !params) {
      if (allowed.length > 0) sendError(res, 405, ErrorCode.VALIDATION_ERROR, `use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
      else sendError(res, 404, ErrorCode.NOT_FOUND, `no route ${url.pathname}`);
      return true;
    }
    const span = this.o.tracing?.api(req.method ?? "GET", route.path, req.headers);
    try {
      const status = span === undefined ? await this.call(route, params, url, req, res) : await withSpan(span, () => this.call(route, params!, url, req, res));
      span?.setAttribute("http.response.status_code", status);
      span?.end();
    } catch (err) {
      if (span !== undefined) endWithError(span, err);
      throw err;
    }
    return true;
  }

  /** Authenticates, authorizes, reads the body and runs one route; answers and resolves with the status sent. */
  private async call(route: CompiledRoute, params: Record<string, string>, url: URL, req: IncomingMessage, res: ServerResponse): Promise<number> {
    try {
      const principal = await resolveHttpPrincipal(req, this.o.keys, this.o.authenticator);
      this.o.rateLimit?.take(principal.kind === "tenant" ? `t:${principal.auth.tenant}/${principal.auth.sub}` : `${principal.kind}:${principal.keyId}`);
      authorizeHttp(principal, route.access, params.tenant);
      if (principal.kind === "scrape") throw new ArqonError(ErrorCode.FORBIDDEN, "a scrape token may only read /status and /metrics");
      if (principal.kind === "tenant") {
        const refusal = this.o.registry.refusal(principal.auth.tenant);
        if (refusal) throw refusal;
        if (this.o.registry.revocationOf(principal.auth)) throw new ArqonError(ErrorCode.AUTH_REVOKED, "token revoked");
      }
      let body: Record<string, unknown> = {};
      if (req.method !== "GET" && req.method !== "HEAD") {
        const limit = this.o.maxBodyBytes ?? MAX_API_BODY_BYTES;
        const raw = await readBody(req, limit);
        if (raw === undefined) throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `request body larger than ${limit} bytes`);
        if (raw.length > 0) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(raw.toString("utf8"));
          } catch {
            throw new ArqonError(ErrorCode.FRAME_MALFORMED, "body is not valid JSON");
          }
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new ArqonError(ErrorCode.FRAME_MALFORMED, "body must be a JSON object");
          body = parsed as Record<string, unknown>;
        }
      }
      const out = await route.handle({ principal, params, query: url.searchParams, body, actor: actorOf(principal) });
      const status = out.status ?? 200;
      sendJson(res, status, out.body);
      return status;
    } catch (err) {
      if (err instanceof ArqonError) {
        const status = httpStatusOf(err.code);
        const headers: Record<string, string> = status === 401 ? { "www-authenticate": 'Bearer realm="arqon"' } : {};
        if (err instanceof ApiRateLimitedError) headers["retry-after"] = String(err.retryAfterSeconds);
        sendError(res, status, err.code, err.message, headers);
        return status;
      }
      throw err;
    }
  }
}

function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}
