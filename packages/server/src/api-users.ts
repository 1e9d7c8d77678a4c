import { ArqonError, CloseCode, ErrorCode, jsonBytes, roomKey, stateKeyProblem, type StateEntry } from "@arqon/core";
import type { ApiRoute } from "./admin-http.js";
import type { Gateway } from "./gateway.js";
import { applyStateWrites } from "./state.js";
import type { TenantAdmin } from "./tenant-admin.js";
import { checkRoom, onlyFields } from "./api-input.js";
import { assertTenantName } from "./tenants.js";

/** What the application-backend routes act through. */
export interface UserRoutesOptions {
  gateway: Gateway;
  admin: TenantAdmin;
}

const decoder = new TextDecoder();

function jsonOf(bytes: Uint8Array | undefined): unknown {
  if (bytes === undefined) return undefined;
  return JSON.parse(decoder.decode(bytes)) as unknown;
}

/** The tenant and room of a route's path, checked (ARQ_TENANT_INVALID, ARQ_ROOM_INVALID). */
function place(params: Record<string, string>): { tenant: string; room: string } {
  const tenant = params.tenant!;
  assertTenantName(tenant);
  const room = params.room!;
  checkRoom(room);
  return { tenant, room };
}

function entryView(e: StateEntry): Record<string, unknown> {
  const out: Record<string, unknown> = { key: e.key, value: jsonOf(e.value), version: e.version };
  if (e.updatedAt !== undefined) out.updatedAt = e.updatedAt;
  return out;
}

/**
 * The server-API routes an application backend (`role: "server"`, an admin, or the operator) uses on its tenant's
 * users and rooms: presence, room state (with compare-and-set, delivered like a state_set) and disconnect.
 */
export function userRoutes(o: UserRoutesOptions): ApiRoute[] {
  const { gateway, admin } = o;
  const presence = async (params: Record<string, string>) => {
    const { tenant, room } = place(params);
    if (!gateway.presenceManager.enabled(room)) throw new ArqonError(ErrorCode.PRESENCE_DISABLED, `room "${room}" keeps no presence (server configuration)`);
    return gateway.presenceManager.list(roomKey(tenant, room));
  };
  return [
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/rooms/:room/presence",
      access: "tenant-backend",
      summary: "list a room's presence",
      async handle({ params }) {
        const members = (await presence(params)).map((m) => {
          const out: Record<string, unknown> = { clientId: m.clientId, user: m.userId };
          if (m.info !== undefined) out.info = jsonOf(m.info);
          if (m.joinedAt !== undefined) out.joinedAt = m.joinedAt;
          return out;
        });
        return { body: { members } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/rooms/:room/presence/stats",
      access: "tenant-backend",
      summary: "count a room's presence",
      async handle({ params }) {
        const members = await presence(params);
        return { body: { clients: members.length, users: new Set(members.map((m) => m.userId)).size } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/rooms/:room/state",
      access: "tenant-backend",
      summary: "read a room's state",
      async handle({ params }) {
        const { tenant, room } = place(params);
        const entries = await gateway.ctx.backends.state.get(roomKey(tenant, room));
        return { body: { entries: entries.map(entryView) } };
      },
    },
    {
      method: "PUT",
      path: "/api/v1/tenants/:tenant/rooms/:room/state/:key",
      access: "tenant-backend",
      summary: "write a room state key",
      async handle({ params, body, actor }) {
        const { tenant, room } = place(params);
        const key = params.key!;
        const keyProblem = stateKeyProblem(key);
        if (keyProblem) {
          throw new ArqonError(ErrorCode.STATE_KEY_INVALID, keyProblem);
        }
        onlyFields(body, ["value", "expectedVersion"]);
        if (!("value" in body)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, 'body needs "value"');
        const expected = body.expectedVersion;
        if (expected !== undefined && (typeof expected !== "number" || !Number.isSafeInteger(expected) || expected < 0)) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"expectedVersion" must be a whole number of 0 or more');
        }
        const entry: StateEntry = { key, value: jsonBytes(body.value) };
        if (expected !== undefined) entry.ifVersion = expected;
        const subject = "sub" in actor ? actor.sub : actor.key;
        const [stored] = await applyStateWrites(gateway.ctx, tenant, room, subject, [entry]);
        return { body: { key, version: stored!.version } };
      },
    },
    {
      method: "POST",
      path: "/api/v1/tenants/:tenant/disconnect",
      access: "tenant-backend",
      summary: "disconnect connections",
      async handle({ params, body, actor }) {
        onlyFields(body, ["user", "client", "code", "reason"]);
        const code = body.code ?? CloseCode.KICKED;
        if (typeof code !== "number" || !Number.isInteger(code) || code < 4000 || code > 4999) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"code" must be a whole number from 4000 to 4999');
        }
        const reason = body.reason ?? "disconnected";
        if (typeof reason !== "string" || new TextEncoder().encode(reason).length > 123) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"reason" must be a string of at most 123 bytes');
        }
        return { body: await admin.kick(actor, params.tenant!, body, { code, reason }) };
      },
    },
  ];
}
