import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import { ArqonError, ErrorCode, roomKey, type Envelope, type Frame, type Member, type PresenceEvent, type RoomKey } from "@arqon/core";
import type { AuthContext } from "../auth.js";
import { Connection, frameBytes, type OutboundScheduler, type OutFrame } from "../connection.js";
import type { ClusterControl } from "../control.js";
import type { Gateway } from "../gateway.js";
import { parseTarget, queryParam, rejectUpgrade } from "../http-util.js";
import { ConnectionCounter } from "../limits.js";
import { publishMessage } from "../rooms.js";
import type { PusherAppOptions, ResolvedPusherOptions } from "./config.js";
import {
  MAX_EVENT_NAME,
  PUSHER_EVENT_HEADER,
  USER_ROOM_PREFIX,
  PusherCode,
  channelAuthValid,
  channelKind,
  roomOfChannel,
  userAuthValid,
  userIdProblem,
  dataOfMessage,
  eventOfMessage,
  payloadOfData,
  pusherFrame,
  type ChannelKind,
} from "./protocol.js";

/** Protocol versions of the Pusher protocol this server speaks (pusher-js sends 7). */
const PROTOCOLS = new Set([5, 6, 7]);

/** What a Pusher socket is subscribed to in one channel. */
interface Membership {
  readonly group: ChannelGroup;
  /** Set once `pusher_internal:subscription_succeeded` went out: from then on the socket receives the channel. */
  active: boolean;
  /** The presence user id (presence channels). */
  userId?: string;
  inPresence: boolean;
}

/** One Pusher client socket. Its output goes through a {@link Connection} (batched writes, backlog cap). */
class PusherSocket {
  readonly channels = new Map<string, Membership>();
  lastSeen = Date.now();
  awaitingPong = false;
  pingSentAt = 0;
  /** Frames being handled and waiting, in order. */
  inFlight = 0;
  chain: Promise<void> = Promise.resolve();
  closed = false;
  /** The user this socket signed in as (`pusher:signin`), and its user_data as sent. */
  userId: string | undefined;

  constructor(
    readonly id: string,
    readonly conn: Connection,
    readonly app: Readonly<PusherAppOptions>,
    readonly ws: WebSocket,
  ) {}

  get tenant(): string {
    return this.app.tenant;
  }

  send(text: string): void {
    this.conn.enqueue(frameBytes(Buffer.from(text, "utf8"), false));
  }

  /** `pusher:error` with a code (null when the protocol defines none for the case) and a message. */
  error(code: number | null, message: string, arqonCode?: string): void {
    const data: Record<string, unknown> = { code, message };
    if (arqonCode) data.arqon_code = arqonCode;
    this.conn.enqueue(frameBytes(Buffer.from(JSON.stringify({ event: "pusher:error", data }), "utf8"), false));
  }
}

/** Presence bookkeeping of a presence channel on this node: user id → (member id → info), mirrored from the store. */
interface ChannelPresence {
  users: Map<string, Map<string, unknown>>;
  members: Map<string, string>;
  /** Events that arrived while the initial list was loading; null once loaded. */
  queued: PresenceEvent[] | null;
  loaded: Promise<void>;
}

/**
 * The Pusher sockets of one channel on this node: one in-process listener of the room, so a message is turned into
 * its Pusher frame once and the same buffer goes to every Pusher subscriber.
 */
class ChannelGroup {
  readonly sockets = new Set<PusherSocket>();
  presence: ChannelPresence | undefined;
  readonly listener = (frame: Frame, envelope: Envelope): void => this.deliver(frame, envelope);

  constructor(
    readonly key: RoomKey,
    readonly tenant: string,
    /** The Pusher channel name (what frames carry). */
    readonly channel: string,
    /** The room it maps to (the same name, but for users' channels). */
    readonly room: string,
    readonly kind: ChannelKind,
  ) {}

  private deliver(frame: Frame, envelope: Envelope): void {
    if (this.sockets.size === 0) return;
    const origin = envelope.echo ? undefined : envelope.originClientId;
    const event = eventOfMessage(frame);
    const userId = this.kind === "presence" && event.startsWith("client-") ? frame.sender : undefined;
    const out = frameBytes(Buffer.from(pusherFrame(event, dataOfMessage(frame), this.channel, userId), "utf8"), false);
    this.broadcast(out, origin);
  }

  broadcast(out: OutFrame, except?: string): void {
    for (const s of this.sockets) {
      if (s.id === except || s.closed) continue;
      if (s.channels.get(this.channel)?.active) s.conn.enqueue(out);
    }
  }
}

function userInfoOf(info: Uint8Array | undefined): unknown {
  if (info === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(info.buffer, info.byteOffset, info.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
}

function userKey(tenant: string, userId: string): string {
  return `${tenant}\u0000${userId}`;
}

function roomOfUser(userId: string): string {
  return `${USER_ROOM_PREFIX}${userId}`;
}

function nextSocketId(): string {
  const b = randomBytes(8);
  return `${b.readUInt32BE(0)}.${b.readUInt32BE(4)}`;
}

/** The control-plane topic that asks every node to close a signed-in user's Pusher sockets. */
export const PUSHER_TERMINATE_TOPIC = "pusher.terminate_user";

/**
 * The Pusher Channels protocol on `/app/{key}`: each app key belongs to one tenant, each channel is that tenant's
 * room of the same name. Messages go through the gateway's publish path (CASIL, history, the bus) and reach Pusher
 * sockets as an in-process listener of the room (fanout.ts), so Pusher and native clients share rooms.
 */
export class PusherGateway {
  readonly sockets = new Set<PusherSocket>();
  private readonly byConn = new WeakMap<Connection, PusherSocket>();
  /** Signed-in sockets by tenant and user id. */
  private readonly users = new Map<string, Set<PusherSocket>>();
  private readonly groups = new Map<RoomKey, ChannelGroup>();
  private readonly wss: WebSocketServer;
  private readonly ipCounter = new ConnectionCounter();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly unwatch: () => void;
  private pending = 0;
  private closing = false;
  private readonly scheduler: OutboundScheduler;

  private readonly offControl: (() => void) | undefined;

  constructor(
    readonly gw: Gateway,
    readonly options: ResolvedPusherOptions,
    private readonly control?: ClusterControl,
  ) {
    this.wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: gw.limits.maxFrameBytes, perMessageDeflate: false });
    this.wss.on("error", (err) => gw.logger.error({ err }, "pusher websocket server error"));
    this.scheduler = {
      schedule: (conn) => gw.fanout.schedule(conn),
      slowConsumer: (conn) => this.closeSocketOf(conn, PusherCode.OVER_CAPACITY, "slow consumer"),
    };
    this.unwatch = gw.backends.presence.watch((key, event) => {
      const group = this.groups.get(key);
      if (!group?.presence) return;
      try {
        this.onPresence(group, event);
      } catch (err) {
        gw.logger.error({ err }, "pusher presence event failed");
      }
    });
    this.offControl = control?.on(PUSHER_TERMINATE_TOPIC, (body) => {
      const b = body as { tenant?: unknown; userId?: unknown } | null;
      if (typeof b?.tenant === "string" && typeof b.userId === "string") this.terminateHere(b.tenant, b.userId);
    });
    const sweepMs = Math.max(20, Math.min(1000, Math.floor(options.pongTimeoutMs / 4)));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  /** Whether an upgrade request is for this protocol (`/app/...`). */
  matches(url: string): boolean {
    return url.startsWith("/app/");
  }

  // ---- upgrade ---------------------------------------------------------------------------------------------------

  /** Accepts a WebSocket on `/app/{key}`; protocol refusals (unknown app, version) are a `pusher:error` and a close. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    this.upgrade(req, socket, head).catch((err: unknown) => {
      this.gw.logger.error({ err }, "pusher upgrade failed");
      rejectUpgrade(socket, 500, ErrorCode.INTERNAL, "internal error");
    });
  }

  private refuseAfterOpen(req: IncomingMessage, socket: Duplex, head: Buffer, code: number, message: string): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ event: "pusher:error", data: { code, message } }));
      ws.close(code, message.slice(0, 120));
      const timer = setTimeout(() => ws.terminate(), 2000);
      timer.unref();
      ws.once("close", () => clearTimeout(timer));
      ws.on("error", () => ws.terminate());
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const gw = this.gw;
    const limits = gw.limits;
    if (this.closing || gw.shuttingDown) return rejectUpgrade(socket, 503, ErrorCode.SHUTTING_DOWN, "server is shutting down");
    const target = parseTarget(req.url ?? "/");
    if (!target) return rejectUpgrade(socket, 400, ErrorCode.HEADER_INVALID, "request target is not a valid URL");
    if (req.rawHeaders.length / 2 > limits.maxHeaderCount) return rejectUpgrade(socket, 431, ErrorCode.HEADER_INVALID, `more than ${limits.maxHeaderCount} request headers`);
    const origin = req.headers.origin;
    const allowed = gw.options.allowedOrigins;
    if (origin !== undefined && allowed && !allowed.includes("*") && !allowed.includes(origin)) {
      return rejectUpgrade(socket, 403, ErrorCode.ORIGIN_FORBIDDEN, "origin not allowed");
    }
    const match = /^\/app\/([^/]{1,128})$/.exec(target.pathname);
    if (!match) return this.refuseAfterOpen(req, socket, head, PusherCode.PATH_NOT_FOUND, "path not found");
    const app = this.options.byKey.get(match[1]!);
    if (!app) return this.refuseAfterOpen(req, socket, head, PusherCode.APP_UNKNOWN, `app key ${match[1]!.slice(0, 64)} does not exist`);
    const version = queryParam(target.query, "protocol");
    if (version === null) return this.refuseAfterOpen(req, socket, head, PusherCode.VERSION_MISSING, "no protocol version supplied");
    if (!/^\d{1,3}$/.test(version)) return this.refuseAfterOpen(req, socket, head, PusherCode.VERSION_INVALID, "invalid version string format");
    if (!PROTOCOLS.has(Number(version))) return this.refuseAfterOpen(req, socket, head, PusherCode.VERSION_UNSUPPORTED, `unsupported protocol version ${version}`);
    const ip = (socket as Socket).remoteAddress ?? "unknown";
    if (gw.connections.size + this.sockets.size + this.pending >= limits.maxConnections || this.ipCounter.get(ip) >= limits.maxConnectionsPerIp) {
      return this.refuseAfterOpen(req, socket, head, PusherCode.OVER_CAPACITY, "over capacity");
    }
    this.ipCounter.increment(ip);
    this.pending++;
    let handedOver = false;
    let quotaHeld = false;
    try {
      await gw.tenancy.ready;
      if (socket.destroyed) return;
      const tenants = gw.tenancy.tenants;
      if (tenants.refusal(app.tenant)) return this.refuseAfterOpen(req, socket, head, PusherCode.APP_DISABLED, "app is disabled");
      let admitted = gw.tenancy.quota.acquire(app.tenant, tenants.runtime(app.tenant).limits.maxConnections);
      if (admitted !== true && admitted !== false) {
        try {
          admitted = await admitted;
        } catch (err) {
          gw.logger.warn({ err, tenant: app.tenant }, "connection quota unavailable");
          return this.refuseAfterOpen(req, socket, head, PusherCode.OVER_CAPACITY, "connection quota unavailable");
        }
      }
      if (!admitted) return this.refuseAfterOpen(req, socket, head, PusherCode.OVER_QUOTA, "over connection quota");
      quotaHeld = true;
      if (socket.destroyed) return;
      handedOver = true;
      const onEarlyClose = (): void => this.release(ip, app.tenant);
      socket.once("close", onEarlyClose);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        socket.removeListener("close", onEarlyClose);
        this.pending--;
        try {
          this.onConnection(ws, app, ip);
        } catch (err) {
          gw.logger.error({ err }, "pusher connection setup failed");
          ws.close(1011, "internal error");
        }
      });
    } finally {
      if (!handedOver) {
        this.pending--;
        this.ipCounter.decrement(ip);
        if (quotaHeld) gw.tenancy.quota.release(app.tenant);
      }
    }
  }

  private release(ip: string, tenant: string): void {
    this.pending--;
    this.ipCounter.decrement(ip);
    this.gw.tenancy.quota.release(tenant);
  }

  private onConnection(ws: WebSocket, app: Readonly<PusherAppOptions>, ip: string): void {
    const gw = this.gw;
    const id = nextSocketId();
    const auth: AuthContext = { sub: `pusher:${id}`, tenant: app.tenant, admin: false, claims: {} };
    const conn = new Connection(id, ws, auth, "json", ip, gw.limits.maxPendingBytes, this.scheduler, gw.limits);
    const s = new PusherSocket(id, conn, app, ws);
    this.sockets.add(s);
    this.byConn.set(conn, s);
    gw.metrics.connections.labels(gw.metrics.tenant(app.tenant)).inc();
    gw.metrics.connectionsTotal.labels(gw.metrics.tenant(app.tenant)).inc();
    ws.on("message", (data: Buffer, isBinary: boolean) => this.onMessage(s, data, isBinary));
    ws.on("error", (err) => gw.logger.debug({ err, socketId: id }, "pusher socket error"));
    ws.on("close", () => this.onClose(s, ip));
    s.send(pusherFrame("pusher:connection_established", JSON.stringify({ socket_id: id, activity_timeout: this.options.activityTimeoutSec })));
  }

  private onClose(s: PusherSocket, ip: string): void {
    if (s.closed) return;
    s.closed = true;
    s.conn.closing = true;
    this.sockets.delete(s);
    this.gw.metrics.connections.labels(this.gw.metrics.tenant(s.tenant)).dec();
    if (s.userId !== undefined) {
      const key = userKey(s.tenant, s.userId);
      const set = this.users.get(key);
      if (set?.delete(s) && set.size === 0) this.users.delete(key);
    }
    this.ipCounter.decrement(ip);
    this.gw.tenancy.quota.release(s.tenant);
    for (const channel of [...s.channels.keys()]) void this.leave(s, channel, "disconnect");
  }

  private closeSocketOf(conn: Connection, code: number, reason: string): void {
    const s = this.byConn.get(conn);
    if (s) this.closeSocket(s, code, reason);
  }

  /** Closes a Pusher socket with a protocol code (what was queued before it is written first). */
  closeSocket(s: PusherSocket, code: number, reason: string): void {
    if (s.conn.closing) return;
    // What was queued (the pusher:error that says why) goes out first; a slow consumer's backlog does not.
    if (code !== PusherCode.OVER_CAPACITY) {
      try {
        s.conn.flush(Number.POSITIVE_INFINITY);
      } catch {
        // the close below still runs
      }
    }
    s.conn.close(code, reason, code === PusherCode.OVER_CAPACITY ? this.gw.limits.slowConsumerCloseMs : 5000);
  }

  private sweep(): void {
    const now = Date.now();
    const idleMs = this.options.activityTimeoutSec * 1000;
    for (const s of this.sockets) {
      if (s.conn.closing) continue;
      try {
        if (this.gw.tenancy.tenants.refusal(s.tenant)) {
          s.error(PusherCode.APP_DISABLED, "app is disabled");
          this.closeSocket(s, PusherCode.APP_DISABLED, "app is disabled");
        } else if (s.awaitingPong) {
          if (now - s.pingSentAt >= this.options.pongTimeoutMs) this.closeSocket(s, PusherCode.PONG_TIMEOUT, "pong reply not received");
        } else if (now - s.lastSeen >= idleMs) {
          s.awaitingPong = true;
          s.pingSentAt = now;
          s.send(pusherFrame("pusher:ping", "{}"));
        }
      } catch (err) {
        this.gw.logger.debug({ err }, "pusher keepalive failed");
        s.ws.terminate();
      }
    }
  }

  // ---- inbound -----------------------------------------------------------------------------------------------------

  private onMessage(s: PusherSocket, data: Buffer, isBinary: boolean): void {
    if (s.conn.closing) return;
    s.lastSeen = Date.now();
    s.awaitingPong = false;
    this.gw.metrics.messagesIn.labels(s.tenant).inc();
    this.gw.metrics.bytesIn.labels(s.tenant).inc(data.length);
    if (isBinary) return s.error(null, "binary frames are not part of the Pusher protocol", ErrorCode.FRAME_MALFORMED);
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString("utf8"));
    } catch {
      return s.error(null, "frame is not valid JSON", ErrorCode.FRAME_MALFORMED);
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg) || typeof (msg as { event?: unknown }).event !== "string") {
      return s.error(null, 'frame must be a JSON object with a string "event"', ErrorCode.FRAME_MALFORMED);
    }
    const frame = msg as { event: string; channel?: unknown; data?: unknown };
    if (frame.event === "pusher:ping") return s.send(pusherFrame("pusher:pong", "{}"));
    if (frame.event === "pusher:pong") return;
    if (s.inFlight >= this.gw.limits.maxInboundQueue) {
      s.error(PusherCode.OVER_CAPACITY, "too many frames in flight");
      return this.closeSocket(s, PusherCode.OVER_CAPACITY, "too many frames in flight");
    }
    s.inFlight++;
    s.chain = s.chain
      .then(() => this.handle(s, frame))
      .catch((err: unknown) => {
        if (err instanceof ArqonError) s.error(null, err.message, err.code);
        else {
          this.gw.logger.error({ err, socketId: s.id }, "pusher frame failed");
          s.error(null, "internal error", ErrorCode.INTERNAL);
        }
      })
      .finally(() => {
        s.inFlight--;
      });
  }

  private async handle(s: PusherSocket, frame: { event: string; channel?: unknown; data?: unknown }): Promise<void> {
    if (s.closed) return;
    let data = frame.data;
    if (frame.event.startsWith("pusher:") && typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch {
        // left as it is; checked below
      }
    }
    const fields = typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
    switch (frame.event) {
      case "pusher:subscribe":
        return this.subscribe(s, fields.channel, fields.auth, fields.channel_data);
      case "pusher:unsubscribe":
        if (typeof fields.channel === "string") await this.leave(s, fields.channel, "unsubscribe");
        return;
      case "pusher:signin":
        return this.signin(s, fields.auth, fields.user_data);
      default:
        if (frame.event.startsWith("client-")) return this.clientEvent(s, frame.event, frame.channel, frame.data);
        return s.error(null, `unsupported event "${frame.event.slice(0, 64)}"`, ErrorCode.FRAME_UNKNOWN_TYPE);
    }
  }

  private subscriptionError(s: PusherSocket, channel: string, status: number, message: string, arqonCode: string): void {
    s.send(pusherFrame("pusher:subscription_error", JSON.stringify({ type: "AuthError", error: message, status, arqon_code: arqonCode }), channel));
  }

  private async subscribe(s: PusherSocket, channelValue: unknown, auth: unknown, channelData: unknown): Promise<void> {
    const mapped = roomOfChannel(channelValue);
    if ("problem" in mapped) return s.error(null, mapped.problem, ErrorCode.ROOM_INVALID);
    const channel = channelValue as string;
    const room = mapped.room;
    const existing = s.channels.get(channel);
    if (existing) {
      if (existing.active) s.send(pusherFrame("pusher_internal:subscription_succeeded", await this.succeededData(existing), channel));
      return;
    }
    const gw = this.gw;
    if (s.channels.size >= gw.limits.maxSubscriptions) {
      return this.subscriptionError(s, channel, 429, `at most ${gw.limits.maxSubscriptions} subscriptions per connection`, ErrorCode.TOO_MANY_SUBSCRIPTIONS);
    }
    const kind = channelKind(channel);
    let userId: string | undefined;
    let userInfo: Uint8Array | undefined;
    if (kind === "user") {
      // A user's channel is open to the sockets signed in as that user only.
      if (s.userId === undefined || room !== roomOfUser(s.userId)) {
        return this.subscriptionError(s, channel, 403, "a user's channel is open to sockets signed in as that user only", ErrorCode.FORBIDDEN);
      }
    } else if (kind !== "public") {
      const presenceData = kind === "presence" ? (typeof channelData === "string" ? channelData : undefined) : undefined;
      if (kind === "presence" && !gw.presenceManager.enabled(room)) {
        return this.subscriptionError(s, channel, 400, `channel "${channel}" keeps no presence (server configuration)`, ErrorCode.PRESENCE_DISABLED);
      }
      if (kind === "presence" && presenceData === undefined) {
        return this.subscriptionError(s, channel, 400, "presence channels need channel_data", ErrorCode.FRAME_MISSING_FIELD);
      }
      if (!channelAuthValid(s.app.key, s.app.secret, s.id, channel, auth, presenceData)) {
        return this.subscriptionError(s, channel, 401, `invalid signature for channel ${channel}`, ErrorCode.AUTH_INVALID);
      }
      if (presenceData !== undefined) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(presenceData);
        } catch {
          return this.subscriptionError(s, channel, 400, "channel_data is not valid JSON", ErrorCode.FRAME_MALFORMED);
        }
        const p = typeof parsed === "object" && parsed !== null ? (parsed as { user_id?: unknown; user_info?: unknown }) : {};
        if ((typeof p.user_id !== "string" && typeof p.user_id !== "number") || String(p.user_id).length === 0 || String(p.user_id).length > 256) {
          return this.subscriptionError(s, channel, 400, "channel_data needs a user_id (1-256 characters)", ErrorCode.FRAME_MISSING_FIELD);
        }
        userId = String(p.user_id);
        if (p.user_info !== undefined) {
          try {
            userInfo = await gw.presenceManager.checkInfo(s.conn, channel, Buffer.from(JSON.stringify(p.user_info), "utf8"));
          } catch (err) {
            const e = err instanceof ArqonError ? err : new ArqonError(ErrorCode.INTERNAL, "presence check failed");
            return this.subscriptionError(s, channel, 400, e.message, e.code);
          }
        }
      }
    }
    if (s.closed) return;
    const key = roomKey(s.tenant, room);
    const group = await this.join(key, s.tenant, channel, room, kind);
    const membership: Membership = { group, active: false, inPresence: false, ...(userId !== undefined ? { userId } : {}) };
    s.channels.set(channel, membership);
    group.sockets.add(s);
    // The socket closed while the room's interest was being set up: its close already ran, so it is undone here.
    if (s.closed) return this.leave(s, channel, "disconnect");
    try {
      if (group.presence) await group.presence.loaded;
      if (userId !== undefined) {
        const max = gw.tenancy.tenants.runtime(s.tenant).limits.maxPresencePerRoom;
        if (max > 0 && (await gw.backends.presence.list(key)).length >= max) {
          throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `channel "${channel}" has as many presence members as the tenant allows (limit ${max})`);
        }
        const member: Member = { clientId: s.id, userId, joinedAt: Date.now() };
        if (userInfo !== undefined) member.info = userInfo;
        await gw.backends.presence.join(key, member);
        if (s.closed || s.channels.get(channel) !== membership) {
          // Left (or closed) while joining: the entry goes back out.
          await gw.backends.presence.leave(key, s.id, "disconnect");
          return;
        }
        membership.inPresence = true;
        // Applied here too (idempotent by member id): the list below has the joiner even before its event comes back.
        if (group.presence) this.applyPresence(group, { type: "join", member });
      }
      if (s.closed || s.channels.get(channel) !== membership) return;
      membership.active = true;
      s.send(pusherFrame("pusher_internal:subscription_succeeded", await this.succeededData(membership), channel));
    } catch (err) {
      await this.leave(s, channel, "disconnect");
      const e = err instanceof ArqonError ? err : new ArqonError(ErrorCode.INTERNAL, "subscribe failed");
      if (!(err instanceof ArqonError)) gw.logger.error({ err }, "pusher subscribe failed");
      this.subscriptionError(s, channel, e.code === ErrorCode.QUOTA_EXCEEDED ? 429 : 500, e.message, e.code);
    }
  }

  private async succeededData(m: Membership): Promise<string> {
    const presence = m.group.presence;
    if (!presence) return "{}";
    await presence.loaded;
    const ids: string[] = [];
    const hash: Record<string, unknown> = {};
    for (const [uid, conns] of presence.users) {
      ids.push(uid);
      let info: unknown;
      for (const i of conns.values()) if (i !== undefined) info = i;
      hash[uid] = info ?? null;
    }
    return JSON.stringify({ presence: { ids, hash, count: ids.length } });
  }

  /** The channel group of a room, created with the room's listener and bus interest when it is new. */
  private async join(key: RoomKey, tenant: string, channel: string, room: string, kind: ChannelKind): Promise<ChannelGroup> {
    const gw = this.gw;
    let group = this.groups.get(key);
    if (!group) {
      group = new ChannelGroup(key, tenant, channel, room, kind);
      this.groups.set(key, group);
      if (kind === "presence") {
        const presence: ChannelPresence = { users: new Map(), members: new Map(), queued: [], loaded: Promise.resolve() };
        group.presence = presence;
        const g = group;
        presence.loaded = gw.backends.presence.list(key).then(
          (members) => {
            for (const member of members) this.applyPresence(g, { type: "join", member }, false);
            const queued = presence.queued ?? [];
            presence.queued = null;
            for (const event of queued) this.onPresence(g, event);
          },
          (err: unknown) => {
            gw.logger.warn({ err }, "pusher presence list failed");
            presence.queued = null;
          },
        );
      }
      const { room: local, created } = gw.fanout.addListener(key, tenant, room, group.listener);
      if (created) {
        local.ready = gw.backends.bus.subscribe(key);
        gw.presenceManager.roomCreated(key, room);
      }
      try {
        await local.ready;
      } catch (err) {
        this.groups.delete(key);
        if (gw.fanout.removeListener(key, group.listener)) gw.presenceManager.roomDropped(key);
        throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "could not subscribe on the bus", { cause: err });
      }
      return group;
    }
    await gw.fanout.rooms.get(key)?.ready;
    return group;
  }

  /** Ends a socket's subscription to a channel: presence leave, and the room's listener when it was the last. */
  private async leave(s: PusherSocket, channel: string, reason: string): Promise<void> {
    const m = s.channels.get(channel);
    if (!m) return;
    s.channels.delete(channel);
    const group = m.group;
    group.sockets.delete(s);
    const gw = this.gw;
    const tasks: Array<Promise<unknown>> = [];
    if (m.inPresence) {
      m.inPresence = false;
      tasks.push(gw.backends.presence.leave(group.key, s.id, reason));
    }
    if (group.sockets.size === 0 && this.groups.get(group.key) === group) {
      this.groups.delete(group.key);
      if (gw.fanout.removeListener(group.key, group.listener)) {
        gw.presenceManager.roomDropped(group.key);
        tasks.push(gw.backends.bus.unsubscribe(group.key));
      }
    }
    for (const r of await Promise.allSettled(tasks)) if (r.status === "rejected") gw.logger.warn({ err: r.reason, channel }, "pusher leave failed");
  }

  // ---- presence ----------------------------------------------------------------------------------------------------

  private onPresence(group: ChannelGroup, event: PresenceEvent): void {
    const presence = group.presence!;
    if (presence.queued) {
      presence.queued.push(event);
      return;
    }
    this.applyPresence(group, event, true);
  }

  /** Mirrors one presence event; a user's first connection is `member_added`, its last one leaving `member_removed`. */
  private applyPresence(group: ChannelGroup, event: PresenceEvent, announce = true): void {
    const presence = group.presence!;
    const m = event.member;
    const mid = m.clientId ?? m.userId ?? "";
    if (event.type === "join") {
      const uid = m.userId ?? mid;
      if (presence.members.has(mid)) return;
      let conns = presence.users.get(uid);
      const isNew = conns === undefined;
      if (!conns) presence.users.set(uid, (conns = new Map()));
      conns.set(mid, userInfoOf(m.info));
      presence.members.set(mid, uid);
      if (isNew && announce) {
        const info = userInfoOf(m.info);
        const data = JSON.stringify(info === undefined ? { user_id: uid } : { user_id: uid, user_info: info });
        group.broadcast(frameBytes(Buffer.from(pusherFrame("pusher_internal:member_added", data, group.channel), "utf8"), false), mid);
      }
      return;
    }
    const uid = presence.members.get(mid);
    if (uid === undefined) return;
    presence.members.delete(mid);
    const conns = presence.users.get(uid);
    if (!conns) return;
    conns.delete(mid);
    if (conns.size > 0) return;
    presence.users.delete(uid);
    if (announce) {
      group.broadcast(frameBytes(Buffer.from(pusherFrame("pusher_internal:member_removed", JSON.stringify({ user_id: uid }), group.channel), "utf8"), false), mid);
    }
  }

  // ---- client events -----------------------------------------------------------------------------------------------

  private async clientEvent(s: PusherSocket, event: string, channelValue: unknown, data: unknown): Promise<void> {
    if (!s.app.clientEvents) return s.error(null, "client events are not enabled for this app", ErrorCode.FRAME_FEATURE_DISABLED);
    if (event.length > MAX_EVENT_NAME) return s.error(null, `event name is longer than ${MAX_EVENT_NAME} characters`, ErrorCode.VALIDATION_ERROR);
    const channel = typeof channelValue === "string" ? channelValue : "";
    const m = s.channels.get(channel);
    if (!m?.active) return s.error(null, `cannot broadcast client event (connection not subscribed to channel ${channel.slice(0, 164)})`, ErrorCode.NOT_SUBSCRIBED);
    if (m.group.kind === "public" || m.group.kind === "user") return s.error(null, "client events are allowed on private and presence channels only", ErrorCode.FORBIDDEN);
    const gw = this.gw;
    const tenantBucket = gw.tenancy.tenants.runtime(s.tenant).publishBucket;
    if (!s.conn.bucket.take() || (tenantBucket && !tenantBucket.take())) {
      return s.error(PusherCode.CLIENT_EVENT_RATE_LIMIT, "client event rejected due to rate limit", ErrorCode.RATE_LIMITED);
    }
    await publishMessage(gw.ctx, {
      tenant: s.tenant,
      room: m.group.room,
      payload: payloadOfData(data),
      headers: { [PUSHER_EVENT_HEADER]: event },
      sender: m.userId ?? s.conn.auth.sub,
      originClientId: s.id,
      path: "publish",
    });
  }

  // ---- user authentication -----------------------------------------------------------------------------------------

  /**
   * `pusher:signin`: `auth` signs `socket_id::user::user_data` with the app secret; `user_data` is a JSON text with a
   * string `id`. Success is `pusher:signin_success`; a bad signature or user_data is `pusher:error` 4009 and a close.
   */
  private signin(s: PusherSocket, auth: unknown, userData: unknown): void {
    const refuse = (message: string, arqonCode: string): void => {
      s.error(PusherCode.UNAUTHORIZED, message, arqonCode);
      this.closeSocket(s, PusherCode.UNAUTHORIZED, "connection is unauthorized");
    };
    if (typeof userData !== "string" || userData.length > this.gw.limits.maxPresenceInfoBytes) {
      return refuse(`user_data must be a JSON text of at most ${this.gw.limits.maxPresenceInfoBytes} bytes`, ErrorCode.FRAME_WRONG_TYPE);
    }
    if (!userAuthValid(s.app.key, s.app.secret, s.id, auth, userData)) return refuse("invalid signature for pusher:signin", ErrorCode.AUTH_INVALID);
    let id: unknown;
    try {
      id = (JSON.parse(userData) as { id?: unknown } | null)?.id;
    } catch {
      return refuse("user_data is not valid JSON", ErrorCode.FRAME_MALFORMED);
    }
    const problem = userIdProblem(id);
    if (problem) return refuse(problem, ErrorCode.VALIDATION_ERROR);
    if (s.userId !== undefined && s.userId !== id) return refuse("a socket signs in as one user only", ErrorCode.AUTH_MISMATCH);
    s.userId = id as string;
    const key = userKey(s.tenant, s.userId);
    let set = this.users.get(key);
    if (!set) this.users.set(key, (set = new Set()));
    set.add(s);
    s.send(pusherFrame("pusher:signin_success", JSON.stringify({ user_data: userData })));
  }

  /** Closes a signed-in user's Pusher sockets on every node (4009); resolves with how many were on this one. */
  async terminateUser(tenant: string, userId: string): Promise<number> {
    const here = this.terminateHere(tenant, userId);
    await this.control?.send(PUSHER_TERMINATE_TOPIC, { tenant, userId });
    return here;
  }

  private terminateHere(tenant: string, userId: string): number {
    const set = this.users.get(userKey(tenant, userId));
    if (!set) return 0;
    let n = 0;
    for (const s of [...set]) {
      s.error(PusherCode.UNAUTHORIZED, "connection terminated by the application");
      this.closeSocket(s, PusherCode.UNAUTHORIZED, "connection terminated");
      n++;
    }
    this.users.delete(userKey(tenant, userId));
    return n;
  }

  // ---- queries (the HTTP API) ------------------------------------------------------------------------------------

  /** How many subscribers a room has on this node (native subscriptions and Pusher sockets). */
  localSubscriptions(tenant: string, channel: string): number {
    const key = roomKey(tenant, channel);
    const room = this.gw.fanout.rooms.get(key);
    return (room?.subs.length ?? 0) + (this.groups.get(key)?.sockets.size ?? 0);
  }

  /** The occupied channels of a tenant on this node (rooms with a local subscriber, native or Pusher). */
  localChannels(tenant: string): string[] {
    const out: string[] = [];
    for (const room of this.gw.fanout.rooms.values()) if (room.tenant === tenant && (room.subs.length > 0 || room.listeners.length > 0)) out.push(room.room);
    return out;
  }

  // ---- shutdown ----------------------------------------------------------------------------------------------------

  /** Closes every Pusher socket with 4200 (reconnect) and waits for them, up to `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.sweepTimer);
    const closed: Array<Promise<void>> = [];
    for (const s of this.sockets) {
      closed.push(
        new Promise<void>((resolve) => {
          if (s.ws.readyState === WebSocket.CLOSED) return resolve();
          s.ws.once("close", () => resolve());
        }),
      );
      try {
        s.conn.flush(Number.POSITIVE_INFINITY);
      } catch {
        // the close below still runs
      }
      s.conn.close(PusherCode.RECONNECT, "server shutting down", timeoutMs);
    }
    await Promise.all(closed);
    this.unwatch();
    this.offControl?.();
    this.wss.close();
  }
}
