import { Buffer } from "node:buffer";
import { performance } from "node:perf_hooks";
import type { Envelope, Frame, RoomKey } from "@arqon/core";
import { encodeOut, frameBytes, type Connection, type OutboundScheduler, type OutFrame, type Subscription } from "./connection.js";
import { encodeJson, encodeProto } from "@arqon/core";
import type { ServerMetrics } from "./metrics.js";

/** The local subscribers of one room. */
export class LocalRoom {
  readonly subs: Subscription[] = [];
  /** In-process listeners (server-side subscriptions such as webhooks); they receive `message` frames only. */
  readonly listeners: Array<(frame: Frame) => void> = [];
  jsonSubs = 0;
  protoSubs = 0;
  /** Settles when the bus interest for this room is in place. */
  ready: Promise<void> = Promise.resolve();
  readonly messagesOut;
  readonly bytesOut;
  readonly fanoutSeconds;

  constructor(
    readonly key: RoomKey,
    readonly tenant: string,
    readonly room: string,
    metrics: ServerMetrics,
  ) {
    this.messagesOut = metrics.messagesOut.labels(tenant);
    this.bytesOut = metrics.bytesOut.labels(tenant);
    this.fanoutSeconds = metrics.fanoutSeconds.labels(tenant);
  }
}

/** Live frames held for one subscription while its subscribe (snapshot, recovery) is in progress. */
export const MAX_SUBSCRIBE_BUFFER = 10_000;

function isPresenceFrame(type: string): boolean {
  return type === "presence_join" || type === "presence_leave" || type === "presence_diff";
}

/**
 * Routes room frames to local subscribers and writes them out.
 *
 * Hot path (`deliver`): a frame is encoded at most once per wire format and framed once; each subscriber's queue gets
 * a reference to the same buffers. Sockets with queued frames are flushed together once per event-loop turn
 * (setImmediate), each with one corked write, so a burst of N messages to one socket costs one syscall, not N.
 */
export class Fanout implements OutboundScheduler {
  readonly rooms = new Map<RoomKey, LocalRoom>();
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private readonly flushAllBound = (): void => this.flushAll();

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly deflateThreshold: number,
    private readonly onSlowConsumer: (conn: Connection) => void,
  ) {}

  schedule(conn: Connection): void {
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAllBound);
    }
  }

  slowConsumer(conn: Connection): void {
    this.onSlowConsumer(conn);
  }

  flushAll(): void {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) {
      try {
        dirty[i]!.flush(this.deflateThreshold);
      } catch {
        // A socket that fails a write is closed by ws through its 'error' path; the others still get their frames.
      }
    }
  }

  /** Adds a subscription (buffering until `activate`); returns the room and whether it is new on this node. */
  add(sub: Subscription, tenant: string): { room: LocalRoom; created: boolean } {
    let room = this.rooms.get(sub.key);
    let created = false;
    if (!room) {
      room = new LocalRoom(sub.key, tenant, sub.room, this.metrics);
      this.rooms.set(sub.key, room);
      created = true;
    }
    room.subs.push(sub);
    if (sub.conn.codec === "json") room.jsonSubs++;
    else room.protoSubs++;
    return { room, created };
  }

  /** Removes a subscription; returns true when the room has no local subscriber left (and was dropped). */
  remove(sub: Subscription): boolean {
    const room = this.rooms.get(sub.key);
    if (!room) return false;
    const i = room.subs.indexOf(sub);
    if (i >= 0) {
      const last = room.subs.pop()!;
      if (last !== sub) room.subs[i] = last;
      if (sub.conn.codec === "json") room.jsonSubs--;
      else room.protoSubs--;
    }
    return this.dropIfEmpty(room);
  }

  /** Adds an in-process listener to a room; returns the room and whether it is new on this node. */
  addListener(key: RoomKey, tenant: string, roomName: string, listener: (frame: Frame) => void): { room: LocalRoom; created: boolean } {
    let room = this.rooms.get(key);
    const created = room === undefined;
    if (!room) {
      room = new LocalRoom(key, tenant, roomName, this.metrics);
      this.rooms.set(key, room);
    }
    room.listeners.push(listener);
    return { room, created };
  }

  /** Removes a listener; returns true when the room has nothing local left (and was dropped). */
  removeListener(key: RoomKey, listener: (frame: Frame) => void): boolean {
    const room = this.rooms.get(key);
    if (!room) return false;
    const i = room.listeners.indexOf(listener);
    if (i >= 0) room.listeners.splice(i, 1);
    return this.dropIfEmpty(room);
  }

  private dropIfEmpty(room: LocalRoom): boolean {
    if (room.subs.length === 0 && room.listeners.length === 0) {
      this.rooms.delete(room.key);
      return true;
    }
    return false;
  }

  /** Delivers one room frame to every local subscriber of `key`. */
  deliver(key: RoomKey, envelope: Envelope): void {
    const room = this.rooms.get(key);
    if (!room) return;
    const started = performance.now();
    const frame = envelope.frame;
    const presence = isPresenceFrame(frame.type);
    const origin = envelope.echo ? undefined : envelope.originClientId;
    let json: OutFrame | undefined;
    let proto: OutFrame | undefined;
    let delivered = 0;
    let bytes = 0;
    const subs = room.subs;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      const conn = sub.conn;
      if (origin !== undefined && conn.id === origin) continue;
      if (presence && !sub.seesPresence) continue;
      if (sub.buffer !== null) {
        // Held while the subscribe is in progress; a room too hot to catch up with is a slow consumer too.
        if (sub.buffer.length >= MAX_SUBSCRIBE_BUFFER) this.onSlowConsumer(conn);
        else sub.buffer.push(envelope);
        continue;
      }
      let out: OutFrame;
      if (conn.codec === "json") {
        out = json ??= frameBytes(Buffer.from(encodeJson(frame), "utf8"), false);
      } else {
        if (proto === undefined) {
          const bytesOf = envelope.encoded ?? encodeProto(frame);
          proto = frameBytes(Buffer.from(bytesOf.buffer, bytesOf.byteOffset, bytesOf.byteLength), true);
        }
        out = proto;
      }
      conn.enqueue(out);
      delivered++;
      bytes += out.size;
    }
    const listeners = room.listeners;
    if (listeners.length > 0 && frame.type === "message") {
      for (let i = 0; i < listeners.length; i++) {
        try {
          listeners[i]!(frame);
        } catch {
          // A listener's failure is its own; delivery to the others goes on.
        }
      }
    }
    if (delivered > 0) {
      room.messagesOut.inc(delivered);
      room.bytesOut.inc(bytes);
      room.fanoutSeconds.observe((performance.now() - started) / 1000);
    }
  }

  /** Delivers a buffered envelope to one subscription (after its subscribe finished). */
  deliverOne(sub: Subscription, envelope: Envelope): void {
    if (!envelope.echo && envelope.originClientId === sub.conn.id) return;
    if (isPresenceFrame(envelope.frame.type) && !sub.seesPresence) return;
    sub.conn.enqueue(encodeOut(envelope.frame, sub.conn.codec));
  }
}
