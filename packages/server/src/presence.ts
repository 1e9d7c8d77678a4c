import { ArqonError, ErrorCode, roomKey, roomMatches, type Frame, type Member, type PresenceEvent, type RoomKey } from "@arqon/core";
import type { PresenceOptions } from "./config.js";
import type { Connection } from "./connection.js";
import type { HandlerContext } from "./context.js";

/** What presence needs from the gateway. */
export type PresenceDeps = Pick<HandlerContext, "backends" | "fanout" | "logger" | "limits" | "inspect">;

type Kind = "join" | "leave";

interface BatchEntry {
  kind: Kind;
  member: Member;
}

/** Presence bookkeeping of one room with local subscribers. */
interface RoomPresence {
  lastEmit: number;
  batch: Map<string, BatchEntry> | null;
  timer: NodeJS.Timeout | null;
  /** Per-user mode: userId → (clientId → member), and clientId → userId, mirrored from the store's events. */
  users?: Map<string, Map<string, Member>>;
  clients?: Map<string, string>;
  /** Per-user mode: events that arrived while the initial list was loading. */
  loading?: PresenceEvent[] | null;
}

function memberId(m: Member): string {
  return m.clientId ?? m.userId ?? "";
}

/** One entry per user: earliest join, first connection's info, and how many connections are in the room. */
function aggregate(userId: string, conns: Map<string, Member>): Member {
  let first: Member | undefined;
  for (const m of conns.values()) if (!first || (m.joinedAt ?? 0) < (first.joinedAt ?? 0)) first = m;
  const out: Member = { userId, connections: conns.size };
  if (first?.info) out.info = first.info;
  if (first?.joinedAt) out.joinedAt = first.joinedAt;
  return out;
}

export function aggregateByUser(members: Member[]): Member[] {
  const users = new Map<string, Map<string, Member>>();
  for (const m of members) {
    const uid = m.userId ?? m.clientId ?? "";
    let conns = users.get(uid);
    if (!conns) users.set(uid, (conns = new Map()));
    conns.set(memberId(m), m);
  }
  return [...users].map(([uid, conns]) => aggregate(uid, conns));
}

/**
 * Presence: turns the store's join/leave events into frames for local subscribers, with churn coalescing. The first
 * change in a quiet room goes out at once (presence_join / presence_leave); changes within `coalesceMs` after it are
 * gathered per member (the last change wins) and go out together as one presence_diff when the window ends.
 */
export class PresenceManager {
  private readonly rooms = new Map<RoomKey, RoomPresence>();
  private readonly coalesceMs: number;
  readonly perUser: boolean;
  private readonly disabledRooms: readonly string[];
  private readonly unwatch: () => void;
  private readonly flushBound = (key: RoomKey): void => this.flush(key);

  constructor(
    private readonly ctx: PresenceDeps,
    options: PresenceOptions = {},
  ) {
    this.coalesceMs = options.coalesceMs ?? 100;
    this.perUser = options.perUser ?? false;
    this.disabledRooms = options.disabledRooms ?? [];
    this.unwatch = ctx.backends.presence.watch((key, event) => {
      try {
        this.onEvent(key, event);
      } catch (err) {
        ctx.logger.error({ err }, "presence event failed");
      }
    });
  }

  stop(): void {
    this.unwatch();
    for (const rp of this.rooms.values()) if (rp.timer) clearTimeout(rp.timer);
    this.rooms.clear();
  }

  /** Whether the room keeps presence (not matched by `presenceOptions.disabledRooms`). */
  enabled(room: string): boolean {
    const patterns = this.disabledRooms;
    for (let i = 0; i < patterns.length; i++) if (roomMatches(patterns[i]!, room)) return false;
    return true;
  }

  private requireEnabled(room: string): void {
    if (!this.enabled(room)) throw new ArqonError(ErrorCode.PRESENCE_DISABLED, `room "${room}" keeps no presence (server configuration)`);
  }

  /** A room got its first local subscriber. */
  roomCreated(key: RoomKey, room: string): void {
    if (!this.enabled(room)) return;
    const rp: RoomPresence = { lastEmit: 0, batch: null, timer: null };
    this.rooms.set(key, rp);
    if (!this.perUser) return;
    rp.users = new Map();
    rp.clients = new Map();
    rp.loading = [];
    this.ctx.backends.presence.list(key).then(
      (members) => {
        if (this.rooms.get(key) !== rp) return;
        for (const m of members) this.apply(rp, { type: "join", member: m });
        const queued = rp.loading ?? [];
        rp.loading = null;
        for (const event of queued) this.translate(key, rp, event);
      },
      (err: unknown) => {
        this.ctx.logger.warn({ err }, "presence list failed");
        rp.loading = null;
      },
    );
  }

  /** A room lost its last local subscriber. */
  roomDropped(key: RoomKey): void {
    const rp = this.rooms.get(key);
    if (rp?.timer) clearTimeout(rp.timer);
    this.rooms.delete(key);
  }

  /** The member list as clients see it (one entry per user in per-user mode). */
  async list(key: RoomKey): Promise<Member[]> {
    const members = await this.ctx.backends.presence.list(key);
    return this.perUser ? aggregateByUser(members) : members;
  }

  private onEvent(key: RoomKey, event: PresenceEvent): void {
    const rp = this.rooms.get(key);
    if (!rp) return;
    const local = this.ctx.fanout.rooms.get(key);
    if (!local) return;
    if (rp.loading) {
      rp.loading.push(event);
      return;
    }
    if (!this.perUser) {
      // Nobody here may see this room's presence: no frame to build (per-user mode still keeps its index).
      if (local.presenceViewers === 0) return;
      this.change(key, rp, event.type, event.member, event.type === "leave" ? event.reason : undefined);
      return;
    }
    this.translate(key, rp, event);
  }

  /** Per-user mode: a connection's join/leave becomes a user's join (or connection count update) or leave. */
  private translate(key: RoomKey, rp: RoomPresence, event: PresenceEvent): void {
    const uid = this.apply(rp, event);
    if (uid === undefined) return;
    const conns = rp.users!.get(uid);
    if (conns && conns.size > 0) this.change(key, rp, "join", aggregate(uid, conns));
    else this.change(key, rp, "leave", { userId: uid }, event.type === "leave" ? event.reason : undefined);
  }

  /** Mirrors one event into the per-user index; returns the affected user, or undefined when nothing changed. */
  private apply(rp: RoomPresence, event: PresenceEvent): string | undefined {
    const users = rp.users!;
    const clients = rp.clients!;
    const m = event.member;
    const cid = memberId(m);
    if (event.type === "join") {
      const uid = m.userId ?? cid;
      let conns = users.get(uid);
      if (!conns) users.set(uid, (conns = new Map()));
      conns.set(cid, m);
      clients.set(cid, uid);
      return uid;
    }
    const uid = clients.get(cid) ?? m.userId;
    if (uid === undefined) return undefined;
    clients.delete(cid);
    const conns = users.get(uid);
    if (!conns || !conns.delete(cid)) return undefined;
    if (conns.size === 0) users.delete(uid);
    return uid;
  }

  private change(key: RoomKey, rp: RoomPresence, kind: Kind, member: Member, reason?: string): void {
    const now = Date.now();
    if (this.coalesceMs <= 0 || (rp.batch === null && now - rp.lastEmit >= this.coalesceMs)) {
      rp.lastEmit = now;
      this.emitOne(key, kind, member, reason);
      return;
    }
    rp.batch ??= new Map();
    rp.batch.set(memberId(member), { kind, member });
    if (rp.timer === null) {
      rp.timer = setTimeout(this.flushBound, Math.max(1, rp.lastEmit + this.coalesceMs - now), key);
      rp.timer.unref();
    }
  }

  private emitOne(key: RoomKey, kind: Kind, member: Member, reason?: string): void {
    const room = this.ctx.fanout.rooms.get(key);
    if (!room || room.presenceViewers === 0) return;
    const frame: Frame = { type: kind === "join" ? "presence_join" : "presence_leave", room: room.room, members: [member] };
    if (reason && kind === "leave") frame.reason = reason;
    this.ctx.fanout.deliver(key, { frame });
  }

  private flush(key: RoomKey): void {
    const rp = this.rooms.get(key);
    if (!rp) return;
    rp.timer = null;
    const batch = rp.batch;
    rp.batch = null;
    rp.lastEmit = Date.now();
    const room = this.ctx.fanout.rooms.get(key);
    if (!batch || batch.size === 0 || !room || room.presenceViewers === 0) return;
    const joined: Member[] = [];
    const left: Member[] = [];
    for (const entry of batch.values()) (entry.kind === "join" ? joined : left).push(entry.member);
    const frame: Frame = { type: "presence_diff", room: room.room };
    if (joined.length) frame.joined = joined;
    if (left.length) frame.left = left;
    try {
      this.ctx.fanout.deliver(key, { frame });
    } catch (err) {
      this.ctx.logger.error({ err }, "presence diff failed");
    }
  }

  /** Bounds and inspects a connection's presence metadata; returns it (possibly redacted). */
  async checkInfo(conn: Connection, room: string, info: Uint8Array): Promise<Uint8Array> {
    this.requireEnabled(room);
    const max = this.ctx.limits.maxPresenceInfoBytes;
    if (info.length > max) throw new ArqonError(ErrorCode.PRESENCE_INFO_TOO_LARGE, `presence info exceeds ${max} bytes`);
    const { payload } = await this.ctx.inspect({ tenant: conn.tenant, room, path: "presence", subject: conn.auth.sub, payload: info });
    return payload;
  }

  async handleList(conn: Connection, frame: Frame): Promise<void> {
    const room = frame.room!;
    this.requireEnabled(room);
    const members = await this.list(roomKey(conn.tenant, room));
    const reply: Frame = { type: "presence", room };
    if (members.length) reply.members = members;
    if (frame.requestId) reply.requestId = frame.requestId;
    conn.send(reply);
  }

  async handleSet(conn: Connection, frame: Frame): Promise<void> {
    const room = frame.room!;
    this.requireEnabled(room);
    const key = roomKey(conn.tenant, room);
    const sub = conn.subscriptions.get(key);
    if (!sub || sub.closed) throw new ArqonError(ErrorCode.NOT_SUBSCRIBED, `not subscribed to "${room}"`);
    const info = await this.checkInfo(conn, room, frame.info!.info!);
    await this.ctx.backends.presence.join(key, { clientId: conn.id, userId: conn.auth.sub, info, joinedAt: sub.joinedAt });
    sub.inPresence = true;
    const reply: Frame = { type: "ack", room };
    if (frame.requestId) reply.requestId = frame.requestId;
    conn.send(reply);
  }
}
