import { ArqonError, ErrorCode, roomKey } from "@arqon/core";
import type { Logger } from "pino";
import type { ApiRoute } from "./admin-http.js";
import { checkRoom, onlyFields } from "./api-input.js";
import type { Connection } from "./connection.js";
import type { ClusterControl } from "./control.js";
import type { Gateway } from "./gateway.js";
import { SERVER_SUBSCRIPTION_REASON, handleSubscribe, leaveRoom } from "./rooms.js";
import { assertTenantName } from "./tenants.js";

/** Control-plane topics of server-side subscriptions. */
export const SUBSCRIPTION_TOPICS = {
  subscribe: "subscriptions.subscribe",
  unsubscribe: "subscriptions.unsubscribe",
} as const;

/** Which live connections a server-side subscribe or unsubscribe acts on, and the room. */
export interface SubscriptionTarget {
  tenant: string;
  /** The connections' user (their token's `sub`). */
  user: string;
  /** Only the connection with this id (its `welcome` clientId). */
  client?: string;
  room: string;
}

/** A connection of this node that refused a server-side subscribe. */
export interface SubscribeRefusal {
  /** The connection's id. */
  client: string;
  error: { code: string; message: string };
}

export interface ServerSubscriptionsOptions {
  gateway: Gateway;
  control: ClusterControl;
  logger: Logger;
}

function text(value: unknown, field: string, required: boolean): string | undefined {
  if (value === undefined || (!required && value === null)) {
    if (required) throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, `body needs "${field}"`);
    return undefined;
  }
  if (typeof value !== "string" || value.length === 0 || value.length > 256) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${field} must be a string of 1-256 characters`);
  }
  return value;
}

/** The checked target of a request: unknown fields, a missing user or room, a bad room or tenant name are refused. */
function targetOf(tenant: string, body: Record<string, unknown>): SubscriptionTarget {
  onlyFields(body, ["user", "room", "client"]);
  assertTenantName(tenant);
  const user = text(body.user, "user", true)!;
  if (body.room === undefined) throw new ArqonError(ErrorCode.FRAME_MISSING_FIELD, 'body needs "room"');
  if (typeof body.room !== "string") throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"room" must be a string');
  checkRoom(body.room);
  const target: SubscriptionTarget = { tenant, user, room: body.room };
  const client = text(body.client, "client", false);
  if (client !== undefined) target.client = client;
  return target;
}

/** Whether a control message's body is a target (it comes from a node holding the cluster key: a shape check only). */
function isTarget(body: unknown): body is SubscriptionTarget {
  const t = body as Partial<SubscriptionTarget> | null;
  return (
    typeof t === "object" && t !== null && typeof t.tenant === "string" && typeof t.user === "string" && typeof t.room === "string" && (t.client === undefined || typeof t.client === "string")
  );
}

/**
 * Server-side subscriptions: the application backend subscribes (or unsubscribes) a user's live connections to a
 * room, on every node. The user's capabilities are not consulted (the backend decides), but everything else of a
 * client's own subscribe holds: the tenant's connections only, the per-connection subscription limit, the presence
 * join where the room keeps presence, the room's position and state in the `subscribed` frame. The connection is told
 * with `subscribed` (or `unsubscribed`) carrying `reason: "server"` and no requestId, and the action runs in turn with
 * the connection's own frames. A connection already subscribed to the room is left as it is. Subscriptions made this
 * way end with the connection: a client that reconnects is subscribed again by its backend, not by its SDK.
 */
export class ServerSubscriptions {
  private readonly off: Array<() => void>;

  constructor(private readonly o: ServerSubscriptionsOptions) {
    const { control, logger } = o;
    this.off = [
      control.on(SUBSCRIPTION_TOPICS.subscribe, async (body) => {
        if (!isTarget(body)) return logger.warn({ topic: SUBSCRIPTION_TOPICS.subscribe }, "malformed server-side subscribe");
        const { refused } = await this.subscribeHere(body);
        for (const r of refused) logger.warn({ tenant: body.tenant, room: body.room, clientId: r.client, code: r.error.code }, "server-side subscribe refused");
      }),
      control.on(SUBSCRIPTION_TOPICS.unsubscribe, async (body) => {
        if (!isTarget(body)) return logger.warn({ topic: SUBSCRIPTION_TOPICS.unsubscribe }, "malformed server-side unsubscribe");
        await this.unsubscribeHere(body);
      }),
    ];
  }

  /** This node's live connections of the target. */
  private connections(t: SubscriptionTarget): Connection[] {
    const out: Connection[] = [];
    for (const conn of this.o.gateway.byTenant.get(t.tenant) ?? []) {
      if (!conn.closing && conn.auth.sub === t.user && (t.client === undefined || conn.id === t.client)) out.push(conn);
    }
    return out;
  }

  /** Subscribes this node's connections of the target; resolves with how many were subscribed and which refused. */
  async subscribeHere(t: SubscriptionTarget): Promise<{ subscribed: number; refused: SubscribeRefusal[] }> {
    const { gateway } = this.o;
    const key = roomKey(t.tenant, t.room);
    const outcomes = await Promise.all(
      this.connections(t).map((conn) =>
        gateway
          .inTurn(conn, async () => {
            if (conn.subscriptions.has(key)) return false;
            await handleSubscribe(gateway.ctx, conn, { type: "subscribe", room: t.room }, "server");
            return conn.subscriptions.has(key);
          })
          .catch((err: unknown): SubscribeRefusal => {
            if (err instanceof ArqonError) return { client: conn.id, error: { code: err.code, message: err.message } };
            this.o.logger.error({ err, clientId: conn.id }, "server-side subscribe failed");
            return { client: conn.id, error: { code: ErrorCode.INTERNAL, message: "internal error" } };
          }),
      ),
    );
    let subscribed = 0;
    const refused: SubscribeRefusal[] = [];
    for (const outcome of outcomes) {
      if (outcome === true) subscribed++;
      else if (typeof outcome === "object") refused.push(outcome);
    }
    return { subscribed, refused };
  }

  /** Unsubscribes this node's connections of the target; resolves with how many were subscribed to the room. */
  async unsubscribeHere(t: SubscriptionTarget): Promise<number> {
    const { gateway } = this.o;
    const key = roomKey(t.tenant, t.room);
    const outcomes = await Promise.all(
      this.connections(t).map((conn) =>
        gateway.inTurn(conn, async () => {
          const sub = conn.subscriptions.get(key);
          if (!sub) return false;
          conn.subscriptions.delete(key);
          await leaveRoom(gateway.ctx, sub, "unsubscribe");
          conn.send({ type: "unsubscribed", room: t.room, reason: SERVER_SUBSCRIPTION_REASON });
          return true;
        }),
      ),
    );
    return outcomes.filter((done) => done === true).length;
  }

  private async tell(topic: string, t: SubscriptionTarget): Promise<void> {
    try {
      await this.o.control.send(topic, t);
    } catch (err) {
      this.o.logger.error({ err, topic }, "could not tell the cluster");
      throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "applied on this node but could not be sent to the other nodes", { cause: err });
    }
  }

  /** The server-API routes (access "tenant-backend"); docs/gateway.md lists them. */
  routes(): ApiRoute[] {
    return [
      {
        method: "POST",
        path: "/api/v1/tenants/:tenant/subscribe",
        access: "tenant-backend",
        summary: "subscribe a user's connections to a room",
        handle: async ({ params, body }) => {
          const target = targetOf(params.tenant!, body);
          // The other nodes start at once; this node's count is what the answer reports.
          const [here] = await Promise.all([this.subscribeHere(target), this.tell(SUBSCRIPTION_TOPICS.subscribe, target)]);
          const answer: Record<string, unknown> = { subscribedHere: here.subscribed };
          if (here.refused.length > 0) answer.refusedHere = here.refused;
          return { body: answer };
        },
      },
      {
        method: "POST",
        path: "/api/v1/tenants/:tenant/unsubscribe",
        access: "tenant-backend",
        summary: "unsubscribe a user's connections from a room",
        handle: async ({ params, body }) => {
          const target = targetOf(params.tenant!, body);
          const [unsubscribedHere] = await Promise.all([this.unsubscribeHere(target), this.tell(SUBSCRIPTION_TOPICS.unsubscribe, target)]);
          return { body: { unsubscribedHere } };
        },
      },
    ];
  }

  /** Stops handling the other nodes' subscription messages. */
  close(): void {
    for (const off of this.off) off();
  }
}
