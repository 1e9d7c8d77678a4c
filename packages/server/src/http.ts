import type { FallbackTransport } from "./fallback.js";
import { withSpan } from "./tracing.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ArqonError, ErrorCode, PROTOCOL_VERSION, PROTOCOL_VERSIONS } from "@arqon/core";
import { httpStatusOf, type ServerApi } from "./admin-http.js";
import type { ConsoleAssets } from "./console-http.js";
import { AuthError, type Authenticator } from "./auth.js";
import { authorizeHttp, resolveHttpPrincipal, type KeySet } from "./authority.js";
import type { Gateway } from "./gateway.js";
import { readBody, sendError, sendJson } from "./http-util.js";
import { OPENAPI_PATH, openApiDocument } from "./openapi.js";
import type { PusherHttpApi } from "./pusher/http.js";
import { publishFields } from "./publish-body.js";
import { serverPublish } from "./rooms.js";
import type { TenantRegistry } from "./tenants.js";

export { httpStatusOf } from "./admin-http.js";

/** What the HTTP surface needs. */
export interface HttpSurface {
  gw: Gateway;
  keys: { operator: KeySet; scrape: KeySet };
  authenticator: Authenticator;
  tenants: TenantRegistry;
  api: ServerApi;
  /** `http.maxBodyBytes`: bounds every request body read here when set. */
  maxBodyBytes?: number;
  /** The web console's files, when the `console` option turned it on. */
  console?: ConsoleAssets;
  /** The Pusher HTTP API (`/apps/{appId}/...`), when the Pusher protocol mode is on. */
  pusher?: PusherHttpApi;
  /** The fallback transports' endpoints (`<path>/sse`, `/send`, `/ticket`), unless `fallback: false`. */
  fallback?: FallbackTransport;
}

function backendName(backend: unknown): string {
  return (backend as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? "unknown";
}

/** The `/status` document: counts, and (`withTenants`) open connections per tenant on this node. */
export function statusOf(gw: Gateway, withTenants = false): Record<string, unknown> {
  const backend = gw.options.backendStatus?.();
  return {
    status: gw.shuttingDown ? "shutting_down" : backend && backend.state !== "connected" ? "degraded" : "ok",
    version: gw.version,
    protocol: PROTOCOL_VERSION,
    protocols: PROTOCOL_VERSIONS,
    node: gw.nodeId,
    uptimeMs: Date.now() - gw.startedAt,
    connections: gw.connections.size,
    rooms: gw.fanout.rooms.size,
    tenants: gw.byTenant.size,
    backends: {
      bus: backendName(gw.backends.bus),
      history: backendName(gw.backends.history),
      presence: backendName(gw.backends.presence),
      state: backendName(gw.backends.state),
      kv: backendName(gw.backends.kv),
    },
    storage: gw.options.storageStatus ?? storageGuess(gw),
    ...(backend ? { cluster: backend } : {}),
    ...(withTenants ? { connectionsByTenant: Object.fromEntries([...gw.byTenant].map(([t, set]) => [t, set.size])) } : {}),
  };
}

function storageGuess(gw: Gateway): { backend: string; durable?: boolean } {
  const history = backendName(gw.backends.history);
  if (history === "MemoryHistoryStore") return { backend: "memory", durable: false };
  if (history === "LmdbHistoryStore") return { backend: "lmdb", durable: true };
  return { backend: history };
}

/** The external backend when it is not connected (the node is degraded), else undefined. */
function degraded(gw: Gateway): { name: string; state: string } | undefined {
  const backend = gw.options.backendStatus?.();
  return backend && backend.state !== "connected" ? backend : undefined;
}

/** Answers an authentication or authorization failure of a monitoring route; true when the caller may go on. */
async function monitorAllowed(http: HttpSurface, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  try {
    authorizeHttp(await resolveHttpPrincipal(req, http.keys, http.authenticator), "monitor");
    return true;
  } catch (err) {
    const e = err instanceof ArqonError ? err : new ArqonError(ErrorCode.INTERNAL, "internal error");
    const status = httpStatusOf(e.code);
    sendError(res, status, e.code, e.message, status === 401 ? { "www-authenticate": 'Bearer realm="arqon"' } : {});
    return false;
  }
}

/**
 * Serves the HTTP surface: GET /health, /ready, /version, /api/v1/openapi.json (open), /status and /metrics (operator
 * key or scrape token), POST /api/publish, the server API under /api/v1 and, when turned on, the web console under
 * /console. Resolves false for any other path so that an embedding
 * application can handle it.
 */
export async function handleHttp(http: HttpSurface, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const gw = http.gw;
  const target = req.url ?? "/";
  const path = target.split("?")[0]!;
  if (path === OPENAPI_PATH) {
    // Open: it holds no data, so no credential is looked at.
    if (req.method === "GET" || req.method === "HEAD") sendJson(res, 200, openApiDocument(http.api.list(), { version: gw.version }));
    else sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use GET", { allow: "GET" });
    return true;
  }
  if (path.startsWith("/api/v1")) {
    let url: URL;
    try {
      url = new URL(target, "http://localhost");
    } catch {
      sendError(res, 400, ErrorCode.HEADER_INVALID, "request target is not a valid URL");
      return true;
    }
    return http.api.handle(req, res, url);
  }
  if (http.fallback?.matches(path)) {
    await http.fallback.handle(req, res);
    return true;
  }
  if (http.console?.handle(req, res, path)) return true;
  if (http.pusher?.matches(path)) {
    await http.pusher.handle(req, res);
    return true;
  }
  const method = req.method ?? "GET";
  const isGet = method === "GET" || method === "HEAD";
  switch (path) {
    case "/health":
      if (!isGet) break;
      // Liveness stays 200 while a backend reconnects (restarting the process would not help); /ready says 503.
      if (degraded(gw)) sendJson(res, 200, { status: "degraded", [degraded(gw)!.name]: degraded(gw)!.state });
      else sendJson(res, 200, { status: "ok" });
      return true;
    case "/ready":
      if (!isGet) break;
      if (gw.shuttingDown) sendJson(res, 503, { ready: false, reason: "shutting_down" });
      else if (degraded(gw)) sendJson(res, 503, { ready: false, reason: `${degraded(gw)!.name}_${degraded(gw)!.state}` });
      else sendJson(res, 200, { ready: true });
      return true;
    case "/version":
      if (!isGet) break;
      sendJson(res, 200, { version: gw.version, protocol: PROTOCOL_VERSION, protocols: PROTOCOL_VERSIONS });
      return true;
    case "/status":
      if (!isGet) break;
      if (await monitorAllowed(http, req, res)) sendJson(res, 200, statusOf(gw, true));
      return true;
    case "/metrics": {
      if (!isGet) break;
      if (!(await monitorAllowed(http, req, res))) return true;
      const text = await gw.metrics.registry.metrics();
      res.writeHead(200, { "content-type": gw.metrics.registry.contentType });
      res.end(text);
      return true;
    }
    case "/api/publish": {
      if (method !== "POST") {
        sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use POST", { allow: "POST" });
        return true;
      }
      const span = http.gw.tracing?.api("POST", "/api/publish", req.headers);
      if (span === undefined) await apiPublish(http, req, res);
      else {
        await withSpan(span, () => apiPublish(http, req, res));
        span.setAttribute("http.response.status_code", res.statusCode);
        span.end();
      }
      return true;
    }
    default:
      return false;
  }
  sendError(res, 405, ErrorCode.VALIDATION_ERROR, `method ${method} not allowed`);
  return true;
}

/**
 * POST /api/publish with `Authorization: Bearer <token>` of role "admin" or "server" (into the token's tenant), or an
 * operator key (naming the tenant in the body), and a JSON body `{"tenant"?, "room": "lobby", "payload": <any JSON>,
 * "headers"?: {...}, "idempotencyKey"?: "...", "payloadFormat"?: "binary"}`. Answers `{"id", "room", "offset", "epoch"}`.
 */
async function apiPublish(http: HttpSurface, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const gw = http.gw;
  try {
    const principal = await resolveHttpPrincipal(req, http.keys, http.authenticator);
    if (principal.kind === "scrape") throw new ArqonError(ErrorCode.FORBIDDEN, "a scrape token may only read /status and /metrics");
    if (principal.kind === "tenant" && principal.auth.role !== "admin" && principal.auth.role !== "server") {
      throw new ArqonError(ErrorCode.FORBIDDEN, 'the publish API needs a token with role "admin" or "server"');
    }
    const limit = http.maxBodyBytes ?? gw.limits.maxPayloadBytes * 2 + 64 * 1024;
    const body = await readBody(req, limit);
    if (body === undefined) throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `request body larger than ${limit} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw new ArqonError(ErrorCode.FRAME_MALFORMED, "body is not valid JSON");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ArqonError(ErrorCode.FRAME_MALFORMED, "body must be a JSON object");
    }
    const input = parsed as Record<string, unknown>;
    let tenant: string;
    let sender: string;
    if (principal.kind === "operator") {
      if (typeof input.tenant !== "string") throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'an operator publish names the "tenant"');
      tenant = input.tenant;
      sender = "operator";
    } else {
      const auth = principal.auth;
      if (input.tenant !== undefined && input.tenant !== auth.tenant) {
        throw new ArqonError(ErrorCode.FORBIDDEN, "a token may only publish into its own tenant");
      }
      if (http.tenants.revocationOf(auth)) throw new ArqonError(ErrorCode.AUTH_REVOKED, "token revoked");
      tenant = auth.tenant;
      sender = auth.sub;
    }
    if (typeof input.room !== "string") throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "room"');
    const { payload, ...options } = publishFields(input);
    const result = await serverPublish(gw.ctx, tenant, input.room, payload, { ...options, sender });
    sendJson(res, 200, { id: result.id, room: input.room, offset: result.offset, epoch: result.epoch, duplicate: result.duplicate });
  } catch (err) {
    if (err instanceof ArqonError) {
      const extra: Record<string, string> = err instanceof AuthError ? { "www-authenticate": 'Bearer realm="arqon"' } : {};
      sendError(res, httpStatusOf(err.code), err.code, err.message, extra);
      return;
    }
    gw.logger.error({ err }, "publish API failed");
    sendError(res, 500, ErrorCode.INTERNAL, "internal error");
  }
}
