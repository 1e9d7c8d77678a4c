import { ArqonError, ErrorCode, parseJsonBytes, roomKey, toBase64, type Frame, type HistoryQuery } from "@arqon/core";
import type { ApiRequest, ApiRoute } from "./admin-http.js";
import type { HandlerContext } from "./context.js";
import { checkRoom, onlyFields, onlyParams, wholeParam } from "./api-input.js";
import { publishFields } from "./publish-body.js";
import { assertTenantName } from "./tenants.js";
import { serverPublish } from "./rooms.js";

/** Most rooms one broadcast names. */
export const MAX_BROADCAST_ROOMS = 100;
/** Largest page of the history and room-list routes. */
export const MAX_API_PAGE = 1000;
/** Page size of the history and room-list routes when the query sets none. */
export const DEFAULT_API_PAGE = 100;

const PUBLISH_FIELDS = ["room", "payload", "payloadFormat", "headers", "idempotencyKey"];
const BROADCAST_FIELDS = ["rooms", "payload", "payloadFormat", "headers", "idempotencyKey"];
const HISTORY_PARAMS = ["fromOffset", "toOffset", "fromTs", "toTs", "reverse", "limit"];

/** Who the message says sent it: the token's `sub`, or "operator" for the operator key (as POST /api/publish does). */
function senderOf(req: ApiRequest): string {
  return req.principal.kind === "tenant" ? req.principal.auth.sub : "operator";
}

/** A stored message as the history route answers it: the payload as JSON, or base64 with `payloadFormat: "binary"`. */
function messageJson(frame: Frame): Record<string, unknown> {
  const out: Record<string, unknown> = { id: frame.id, offset: frame.offset, epoch: frame.epoch, timestamp: frame.timestamp };
  if (frame.sender !== undefined) out.sender = frame.sender;
  if (frame.headers !== undefined && Object.keys(frame.headers).length > 0) out.headers = frame.headers;
  const payload = frame.payload ?? new Uint8Array();
  if (frame.payloadFormat !== "binary") {
    try {
      out.payload = parseJsonBytes(payload);
      return out;
    } catch {
      // Not JSON after all (written by a path that did not check): handed out as bytes rather than refused.
    }
  }
  out.payload = toBase64(payload);
  out.payloadFormat = "binary";
  return out;
}

/**
 * The room routes of the server API for a tenant's application backend (access "tenant-backend": the operator key, or
 * a token with role "admin" or "server" of the tenant the path names): publish, broadcast and history. Publishes go through `serverPublish`, so CASIL, the tenant's limits, history and the bus apply
 * exactly as for POST /api/publish. The room list is cluster-wide and lives in api-cluster.ts. docs/gateway.md ("Server API") lists them.
 */
export function roomRoutes(ctx: HandlerContext): ApiRoute[] {
  return [
    {
      method: "POST",
      path: "/api/v1/tenants/:tenant/publish",
      access: "tenant-backend",
      summary: "publish into a room",
      async handle(req) {
        const { body, params } = req;
        onlyFields(body, PUBLISH_FIELDS);
        if (typeof body.room !== "string") throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "room"');
        const { payload, ...options } = publishFields(body);
        const result = await serverPublish(ctx, params.tenant!, body.room, payload, { ...options, sender: senderOf(req) });
        return { body: { id: result.id, room: body.room, offset: result.offset, epoch: result.epoch, duplicate: result.duplicate } };
      },
    },
    {
      method: "POST",
      path: "/api/v1/tenants/:tenant/broadcast",
      access: "tenant-backend",
      summary: "publish one message into several rooms",
      async handle(req) {
        const { body, params } = req;
        const tenant = params.tenant!;
        onlyFields(body, BROADCAST_FIELDS);
        if (!("rooms" in body)) throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "rooms"');
        const rooms = body.rooms;
        if (!Array.isArray(rooms) || rooms.length === 0 || rooms.length > MAX_BROADCAST_ROOMS) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"rooms" must be a list of 1 to ${MAX_BROADCAST_ROOMS} room names`);
        }
        const seen = new Set<string>();
        for (const [i, room] of rooms.entries()) {
          if (typeof room !== "string") throw new ArqonError(ErrorCode.VALIDATION_ERROR, `rooms[${i}] must be a string`);
          checkRoom(room, `rooms[${i}]`);
          if (seen.has(room)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `rooms[${i}]: "${room}" is named twice`);
          seen.add(room);
        }
        assertTenantName(tenant);
        const { payload, ...options } = publishFields(body);
        const sender = senderOf(req);
        const results: Array<Record<string, unknown>> = [];
        // One after the other, in the order given: each takes its share of the tenant's publish rate, and a refusal
        // (CASIL, a limit) stays with its room.
        for (const room of rooms as string[]) {
          try {
            const r = await serverPublish(ctx, tenant, room, payload, { ...options, sender });
            results.push({ room, id: r.id, offset: r.offset, epoch: r.epoch, duplicate: r.duplicate });
          } catch (err) {
            if (!(err instanceof ArqonError)) throw err;
            results.push({ room, error: { code: err.code, message: err.message } });
          }
        }
        return { body: { results } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/rooms/:room/history",
      access: "tenant-backend",
      summary: "read a room's history",
      async handle({ params, query }) {
        const tenant = params.tenant!;
        const room = params.room!;
        assertTenantName(tenant);
        checkRoom(room);
        onlyParams(query, HISTORY_PARAMS);
        const q: HistoryQuery = { limit: wholeParam(query, "limit", 1, MAX_API_PAGE) ?? DEFAULT_API_PAGE };
        const fromOffset = wholeParam(query, "fromOffset");
        const toOffset = wholeParam(query, "toOffset");
        const fromTs = wholeParam(query, "fromTs");
        const toTs = wholeParam(query, "toTs");
        if (fromOffset !== undefined) q.fromOffset = fromOffset;
        if (toOffset !== undefined) q.toOffset = toOffset;
        if (fromTs !== undefined) q.fromTs = fromTs;
        if (toTs !== undefined) q.toTs = toTs;
        const reverse = query.get("reverse");
        if (reverse !== null) {
          if (reverse !== "true" && reverse !== "false") throw new ArqonError(ErrorCode.VALIDATION_ERROR, 'reverse must be "true" or "false"');
          if (reverse === "true") q.reverse = true;
        }
        const page = await ctx.backends.history.read(roomKey(tenant, room), q);
        return { body: { messages: page.messages.map(messageJson), position: { offset: page.position.offset, epoch: page.position.epoch } } };
      },
    },
  ];
}
