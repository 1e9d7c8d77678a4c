import { ArqonError, ErrorCode, roomKey } from "@arqon/core";
import type { ApiRoute } from "./admin-http.js";
import { checkRoom, onlyParams, wholeParam } from "./api-input.js";
import type { AuditLog } from "./audit.js";
import type { ClusterInfo } from "./cluster-info.js";
import type { Gateway } from "./gateway.js";
import { statusOf } from "./http.js";
import { assertTenantName } from "./tenants.js";

/** Largest page of the cluster-wide room list. */
export const MAX_ROOMS_PAGE = 1000;
/** Page size of the room list when the query sets none. */
export const DEFAULT_ROOMS_PAGE = 100;

const ROOMS_PARAMS = ["prefix", "limit", "cursor"];
const CURSOR_VERSION = "1:";

/** What the cluster routes act through. */
export interface ClusterRoutesOptions {
  gateway: Gateway;
  audit: AuditLog;
  cluster: ClusterInfo;
}

/** One node's rooms of a tenant, as it answers a "tenant.rooms" request. */
interface RoomsAnswer {
  rooms: Array<{ room: string; subscribers: number }>;
  /** The node has more matching rooms after the last one listed. */
  more: boolean;
}

/** The facts of one node that GET /api/v1/info shows. */
type NodeFacts = Record<string, unknown>;

/** One node's numbers of one tenant. */
interface TenantFacts {
  connections: number;
  rooms: number;
  subscribers: number;
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function encodeCursor(room: string): string {
  return Buffer.from(CURSOR_VERSION + room, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  const text = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, "base64url").toString("utf8") : "";
  const room = text.startsWith(CURSOR_VERSION) ? text.slice(CURSOR_VERSION.length) : "";
  if (room === "" || checkRoomQuiet(room)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "cursor is not one this route handed out");
  return room;
}

function checkRoomQuiet(room: string): boolean {
  try {
    checkRoom(room);
    return false;
  } catch {
    return true;
  }
}

function text(value: unknown, max: number): string | undefined {
  return typeof value === "string" && value.length <= max ? value : undefined;
}

/** This node's rooms of `tenant` whose name starts with `prefix` and sorts after `after`: at most `limit`, sorted. */
function localRooms(gw: Gateway, args: unknown): RoomsAnswer {
  const a = (typeof args === "object" && args !== null ? args : {}) as Record<string, unknown>;
  const tenant = text(a.tenant, 64);
  const prefix = text(a.prefix, 200) ?? "";
  const after = text(a.after, 200) ?? "";
  const limit = typeof a.limit === "number" && Number.isSafeInteger(a.limit) && a.limit >= 1 ? Math.min(a.limit, MAX_ROOMS_PAGE) : DEFAULT_ROOMS_PAGE;
  if (tenant === undefined) throw new Error("tenant missing");
  const rooms: RoomsAnswer["rooms"] = [];
  for (const local of gw.fanout.rooms.values()) {
    if (local.tenant !== tenant || local.subs.length === 0) continue;
    if (!local.room.startsWith(prefix) || (after !== "" && local.room <= after)) continue;
    rooms.push({ room: local.room, subscribers: local.subs.length });
  }
  rooms.sort((x, y) => byName(x.room, y.room));
  return { rooms: rooms.slice(0, limit), more: rooms.length > limit };
}

function localTenant(gw: Gateway, args: unknown): TenantFacts {
  const tenant = text((args as { tenant?: unknown } | null)?.tenant, 64);
  if (tenant === undefined) throw new Error("tenant missing");
  let rooms = 0;
  let subscribers = 0;
  for (const local of gw.fanout.rooms.values()) {
    if (local.tenant !== tenant || local.subs.length === 0) continue;
    rooms++;
    subscribers += local.subs.length;
  }
  return { connections: gw.byTenant.get(tenant)?.size ?? 0, rooms, subscribers };
}

function localFacts(gw: Gateway): NodeFacts {
  const s = statusOf(gw);
  return {
    version: s.version,
    startedAt: gw.startedAt,
    uptimeMs: s.uptimeMs,
    status: s.status,
    connections: s.connections,
    rooms: s.rooms,
    tenants: s.tenants,
    backends: s.backends,
    storage: s.storage,
    ...(s.cluster ? { cluster: s.cluster } : {}),
  };
}

/**
 * Registers this node's answers to the cluster requests the routes below make (every node registers them, so each
 * answers the others), and returns the routes: the cluster-wide room list with paging, node and tenant info, and the
 * removal of a room's history. docs/gateway.md ("Server API") lists them.
 */
export function clusterRoutes(o: ClusterRoutesOptions): ApiRoute[] {
  const { gateway: gw, cluster, audit } = o;
  cluster.answer("tenant.rooms", (args) => localRooms(gw, args));
  cluster.answer("tenant.info", (args) => localTenant(gw, args));
  cluster.answer("node.info", () => localFacts(gw));
  return [
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/rooms",
      access: "tenant-backend",
      summary: "list the tenant's rooms live on any node",
      async handle({ params, query }) {
        const tenant = params.tenant!;
        assertTenantName(tenant);
        onlyParams(query, ROOMS_PARAMS);
        const prefix = query.get("prefix") ?? "";
        if (prefix !== "") checkRoom(prefix, "prefix");
        const limit = wholeParam(query, "limit", 1, MAX_ROOMS_PAGE) ?? DEFAULT_ROOMS_PAGE;
        const cursor = query.get("cursor");
        const after = cursor === null ? "" : decodeCursor(cursor);
        const { answers, missing } = await cluster.gather<RoomsAnswer>("tenant.rooms", { tenant, prefix, after, limit });
        const merged = new Map<string, { room: string; subscribers: number; nodes: number }>();
        let more = false;
        for (const { body } of answers) {
          if (!Array.isArray(body?.rooms)) continue;
          if (body.more === true) more = true;
          for (const r of body.rooms) {
            if (typeof r?.room !== "string" || typeof r.subscribers !== "number") continue;
            if (!r.room.startsWith(prefix) || (after !== "" && r.room <= after)) continue;
            const seen = merged.get(r.room);
            if (seen) {
              seen.subscribers += r.subscribers;
              seen.nodes++;
            } else merged.set(r.room, { room: r.room, subscribers: r.subscribers, nodes: 1 });
          }
        }
        const sorted = [...merged.values()].sort((x, y) => byName(x.room, y.room));
        const rooms = sorted.slice(0, limit);
        const out: Record<string, unknown> = { rooms };
        // Each node lists its first `limit` rooms after the cursor, so the first `limit` of their union are the page.
        if ((sorted.length > limit || more) && rooms.length > 0) out.next = encodeCursor(rooms.at(-1)!.room);
        if (missing.length > 0) out.partial = true;
        return { body: out };
      },
    },
    {
      method: "DELETE",
      path: "/api/v1/tenants/:tenant/rooms/:room/history",
      access: "tenant-backend",
      summary: "remove a room's history",
      async handle({ params, query, actor }) {
        const tenant = params.tenant!;
        const room = params.room!;
        assertTenantName(tenant);
        checkRoom(room);
        onlyParams(query, []);
        const key = roomKey(tenant, room);
        const history = gw.backends.history;
        return audit.track(
          actor,
          "room.history.delete",
          tenant,
          async () => {
            const removed = await history.deleteRoom(key);
            const position = await history.position(key);
            return { body: { removed, position: { offset: position.offset, epoch: position.epoch } } };
          },
          (r) => ({ removed: r.body.removed }),
          room,
        );
      },
    },
    {
      method: "GET",
      path: "/api/v1/info",
      access: "operator",
      summary: "show this node and every other node",
      async handle({ query }) {
        onlyParams(query, []);
        const known = new Map(cluster.known().map((n) => [n.id, n]));
        const { answers, missing } = await cluster.gather<NodeFacts>("node.info", {});
        const nodes: Array<Record<string, unknown>> = answers.map(({ node, body }) => {
          const beat = known.get(node);
          return { id: node, self: node === cluster.nodeId, ...body, ...(beat ? { lastHeartbeat: beat.lastHeartbeat } : {}) };
        });
        for (const id of missing) {
          const beat = known.get(id);
          nodes.push({ id, self: false, answered: false, ...(beat ? { version: beat.version, startedAt: beat.startedAt, lastHeartbeat: beat.lastHeartbeat } : {}) });
        }
        const [self, ...others] = nodes;
        others.sort((x, y) => byName(String(x.id), String(y.id)));
        return { body: { node: cluster.nodeId, clustered: gw.backends.controlPlane !== undefined, nodes: [self, ...others] } };
      },
    },
    {
      method: "GET",
      path: "/api/v1/tenants/:tenant/info",
      access: "tenant-admin",
      summary: "show a tenant's connections and rooms per node",
      async handle({ params, query }) {
        const tenant = params.tenant!;
        assertTenantName(tenant);
        onlyParams(query, []);
        const { answers, missing } = await cluster.gather<TenantFacts>("tenant.info", { tenant });
        const nodes = answers
          .filter(({ body }) => typeof body?.connections === "number" && typeof body.rooms === "number")
          .map(({ node, body }) => ({ id: node, connections: body.connections, rooms: body.rooms, subscribers: body.subscribers }));
        const total = { connections: 0, subscribers: 0 };
        for (const n of nodes) {
          total.connections += n.connections;
          total.subscribers += n.subscribers;
        }
        return { body: { tenant, nodes, connections: total.connections, subscribers: total.subscribers, ...(missing.length > 0 ? { partial: true } : {}) } };
      },
    },
  ];
}
