import type { IncomingMessage, ServerResponse } from "node:http";
import { ArqonError, ErrorCode, PROTOCOL_VERSION, fromBase64, jsonBytes, type PayloadFormat } from "@arqon/core";
import { AuthError } from "./auth.js";
import type { Gateway } from "./gateway.js";
import { readBody, sendError, sendJson } from "./http-util.js";
import { serverPublish } from "./rooms.js";

/** HTTP status for an error code of the publish API. */
export function httpStatusOf(code: string): number {
  if (code.startsWith("ARQ_AUTH_")) return 401;
  if (code.startsWith("CASIL_")) return 422;
  switch (code) {
    case ErrorCode.FORBIDDEN:
      return 403;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.RATE_LIMITED:
      return 429;
    case ErrorCode.BACKEND_UNAVAILABLE:
    case ErrorCode.SHUTTING_DOWN:
      return 503;
    case ErrorCode.INTERNAL:
      return 500;
    default:
      return 400;
  }
}

function backendName(backend: unknown): string {
  return (backend as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? "unknown";
}

/** The `/status` document: counts only, no tenant names or subjects. */
export function statusOf(gw: Gateway): Record<string, unknown> {
  const backend = gw.options.backendStatus?.();
  return {
    status: gw.shuttingDown ? "shutting_down" : backend && backend.state !== "connected" ? "degraded" : "ok",
    version: gw.version,
    protocol: PROTOCOL_VERSION,
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

/**
 * Serves the HTTP surface: GET /health, /ready, /version, /status, /metrics and POST /api/publish. Resolves false for
 * any other path so that an embedding application can handle it.
 */
export async function handleHttp(gw: Gateway, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0];
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
      sendJson(res, 200, { version: gw.version, protocol: PROTOCOL_VERSION });
      return true;
    case "/status":
      if (!isGet) break;
      sendJson(res, 200, statusOf(gw));
      return true;
    case "/metrics": {
      if (!isGet) break;
      const text = await gw.metrics.registry.metrics();
      res.writeHead(200, { "content-type": gw.metrics.registry.contentType });
      res.end(text);
      return true;
    }
    case "/api/publish":
      if (method !== "POST") {
        sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use POST", { allow: "POST" });
        return true;
      }
      await apiPublish(gw, req, res);
      return true;
    default:
      return false;
  }
  sendError(res, 405, ErrorCode.VALIDATION_ERROR, `method ${method} not allowed`);
  return true;
}

/**
 * POST /api/publish with `Authorization: Bearer <token>` of role "admin" or "server" and a JSON body
 * `{"room": "lobby", "payload": <any JSON>, "headers"?: {...}, "idempotencyKey"?: "...", "payloadFormat"?: "binary"}`.
 * Publishes into the token's tenant; answers `{"id", "room", "offset", "epoch"}`.
 */
async function apiPublish(gw: Gateway, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    const auth = await gw.authenticator.verify(match?.[1]);
    if (auth.role !== "admin" && auth.role !== "server") {
      throw new ArqonError(ErrorCode.FORBIDDEN, 'the publish API needs a token with role "admin" or "server"');
    }
    const body = await readBody(req, gw.limits.maxPayloadBytes * 2 + 64 * 1024);
    if (body === undefined) throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, "request body too large");
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
    if (input.tenant !== undefined && input.tenant !== auth.tenant) {
      throw new ArqonError(ErrorCode.FORBIDDEN, "a token may only publish into its own tenant");
    }
    if (typeof input.room !== "string") throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "room"');
    if (!("payload" in input)) throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "payload"');
    const format = input.payloadFormat as PayloadFormat | undefined;
    let payload: Uint8Array;
    if (format === "binary") {
      const bytes = typeof input.payload === "string" ? fromBase64(input.payload) : undefined;
      if (!bytes) throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, "binary payload must be base64");
      payload = bytes;
    } else if (format === undefined || format === "json") {
      payload = jsonBytes(input.payload);
    } else {
      throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, 'payloadFormat must be "json" or "binary"');
    }
    let headers: Record<string, string> | undefined;
    if (input.headers !== undefined) {
      if (typeof input.headers !== "object" || input.headers === null || Array.isArray(input.headers)) {
        throw new ArqonError(ErrorCode.HEADER_INVALID, "headers must be an object of strings");
      }
      headers = {};
      for (const [k, v] of Object.entries(input.headers)) {
        if (typeof v !== "string" || !/^[a-z0-9][a-z0-9._-]{0,127}$/.test(k) || v.length > 4096) {
          throw new ArqonError(ErrorCode.HEADER_INVALID, `header "${k.slice(0, 64)}" is invalid`);
        }
        headers[k] = v;
      }
    }
    if (input.idempotencyKey !== undefined && typeof input.idempotencyKey !== "string") {
      throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, "idempotencyKey must be a string");
    }
    const result = await serverPublish(gw, auth.tenant, input.room, payload, {
      payloadFormat: format === "binary" ? "binary" : undefined,
      headers,
      idempotencyKey: input.idempotencyKey as string | undefined,
      sender: auth.sub,
    });
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
