import type { Tracing } from "./tracing.js";
import { Buffer } from "node:buffer";
import { performance } from "node:perf_hooks";
import type { Envelope, Frame, RoomKey } from "@arqon/core";
import {
  ENCODE_11,
  ENCODE_11_NO_EPOCH,
  encodeOut,
  frameBytes,
  jsonOut,
  type Connection,
  type OutboundScheduler,
  type OutFrame,
  type PatternSubscription,
  type Subscription,
} from "./connection.js";
import { encodeProto, roomMatches, tenantTokenOfKey, type EncodeOptions } from "@arqon/core";
import { can } from "./auth.js";
import type { ServerMetrics } from "./metrics.js";

/** The local subscribers of one room. */
export class LocalRoom {
  readonly subs: Subscription[] = [];
  /**
   * In-process listeners (server-side subscriptions such as webhooks, the Pusher protocol's channels); they receive
   * `message` frames only, with the envelope they came in (its `originClientId`).
   */
  readonly listeners: Array<RoomListener> = [];
  jsonSubs = 0;
  protoSubs = 0;
  /** Local subscribers that may see presence frames: none means presence events need no frame here. */
  presenceViewers = 0;
  /** Settles when the bus interest for this room is in place. */
  ready: Promise<void> = Promise.resolve();
  /** The last message delivered in this room on this node: the base of the next message's delta. */
  prevOffset = 0;
  prevEpoch: string | undefined;
  prevPayload: Uint8Array | undefined;
  /** Whether that payload was binary: deltas are never made across a change of format (clients restore the base's). */
  prevBinary = false;
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
    this.fanoutSeconds = metrics.fanoutSeconds.labels(metrics.tenant(tenant));
  }
}

/** An in-process listener of a room's messages: the frame, and the envelope it came in. */
export type RoomListener = (frame: Frame, envelope: Envelope) => void;

/** A message whose payload is a delta against the previous message's payload (sent binary). */
function deltaFrame(frame: Frame, delta: Uint8Array): Frame {
  const out: Frame = Object.assign({}, frame);
  out.payload = delta;
  out.payloadFormat = "binary";
  out.delta = true;
  return out;
}

/** Rooms a wildcard subscription remembers its capability answer and last offset for (then it starts over). */
const PATTERN_CACHE_ROOMS = 4096;

/** Live frames held for one subscription while its subscribe (snapshot, recovery) is in progress. */
export const MAX_SUBSCRIBE_BUFFER = 10_000;

/** Makes a delta that turns `base` into `target` (fossil delta), or undefined when it would not be smaller. */
export type DeltaFunction = (base: Uint8Array, target: Uint8Array) => Uint8Array | undefined;

/**
 * The forms one message can take on the wire, as indexes into the per-message cache of framed buffers: codec (JSON 0,
 * protobuf 1) + 2 × version (1.0 = 0, 1.1 without epoch = 1, 1.1 with epoch = 2). Delta frames use the same indexes
 * in a cache of their own.
 */
const VARIANTS = 6;
const VARIANT_OPTIONS: ReadonlyArray<EncodeOptions | undefined> = [undefined, undefined, ENCODE_11_NO_EPOCH, ENCODE_11_NO_EPOCH, ENCODE_11, ENCODE_11];

/** Which form a subscriber gets (see VARIANTS); records the epoch a 1.1 subscriber is told. */
function variantOf(sub: Subscription, epoch: string | undefined): number {
  const conn = sub.conn;
  const codec = conn.codec === "json" ? 0 : 1;
  if (conn.protocol !== "1.1") {
    if (epoch) sub.toldEpoch = epoch;
    return codec;
  }
  if (!epoch || epoch === sub.toldEpoch) return codec + 2;
  sub.toldEpoch = epoch;
  return codec + 4;
}

function encodeVariant(frame: Frame, variant: number, preEncoded: Uint8Array | undefined): OutFrame {
  if ((variant & 1) === 0) return jsonOut(frame, VARIANT_OPTIONS[variant]);
  const bytesOf = variant === 1 && preEncoded !== undefined ? preEncoded : encodeProto(frame, VARIANT_OPTIONS[variant]);
  return frameBytes(Buffer.from(bytesOf.buffer, bytesOf.byteOffset, bytesOf.byteLength), true);
}

/** Base64 length of `n` bytes: what a binary payload costs on the JSON face. */
function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

function isPresenceFrame(type: string): boolean {
  return type === "presence_join" || type === "presence_leave" || type === "presence_diff";
}

/**
 * Routes room frames to local subscribers and writes them out.
 *
 * Hot path (`deliver`): a frame is encoded at most once per form (codec × protocol 1.0 / 1.1 / 1.1 with the epoch,
 * see VARIANTS; a room normally needs one or two) and framed once; each subscriber's queue gets a reference to the
 * same buffers. Sockets with queued frames are flushed together once per event-loop turn
 * (setImmediate), each with one corked write, so a burst of N messages to one socket costs one syscall, not N.
 */
export class Fanout implements OutboundScheduler {
  readonly rooms = new Map<RoomKey, LocalRoom>();
  /**
   * Connections with frames queued for the next flush: the first `dirtyCount` slots. Two lists take turns, and a
   * flushed one is emptied slot by slot, not with `length = 0` (which would drop its backing store and have the next
   * turn grow it again, by copies, to the number of sockets written).
   */
  private dirty: Array<Connection | undefined> = [];
  private dirtyCount = 0;
  private spare: Array<Connection | undefined> = [];
  private flushScheduled = false;
  private readonly flushAllBound = (): void => this.flushAll();
  /** Wildcard subscriptions by tenant token (docs/protocol.md, "Wildcard subscriptions"). */
  readonly patterns = new Map<string, PatternSubscription[]>();
  /** The gateway's spans while tracing is on: a `deliver <room>` span per message frame. */
  tracing: Tracing | undefined;
  /** This node's id, on the `deliver` spans. */
  nodeId: string | undefined;

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly deflateThreshold: number,
    private readonly onSlowConsumer: (conn: Connection) => void,
    private readonly createDelta?: DeltaFunction,
  ) {}

  schedule(conn: Connection): void {
    this.dirty[this.dirtyCount++] = conn;
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
    const count = this.dirtyCount;
    this.dirty = this.spare;
    this.dirtyCount = 0;
    for (let i = 0; i < count; i++) {
      const conn = dirty[i]!;
      dirty[i] = undefined;
      try {
        conn.flush(this.deflateThreshold);
      } catch {
        // A socket that fails a write is closed by ws through its 'error' path; the others still get their frames.
      }
    }
    this.spare = dirty;
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
    if (sub.seesPresence) room.presenceViewers++;
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
      if (sub.seesPresence) room.presenceViewers--;
    }
    return this.dropIfEmpty(room);
  }

  /** Adds a wildcard subscription; returns true when it is its tenant's first on this node (the bus needs interest). */
  addPattern(ps: PatternSubscription): boolean {
    const list = this.patterns.get(ps.tenantToken);
    if (list === undefined) {
      this.patterns.set(ps.tenantToken, [ps]);
      return true;
    }
    list.push(ps);
    return false;
  }

  /** Removes a wildcard subscription; returns true when its tenant has none left on this node. */
  removePattern(ps: PatternSubscription): boolean {
    const list = this.patterns.get(ps.tenantToken);
    if (list === undefined) return false;
    const i = list.indexOf(ps);
    if (i >= 0) list.splice(i, 1);
    if (list.length > 0) return false;
    this.patterns.delete(ps.tenantToken);
    return true;
  }

  /**
   * Delivers one message to the wildcard subscriptions of its tenant whose pattern matches the room and whose token
   * may subscribe to that room, as the message itself (its concrete `room`, the epoch always included: a pattern
   * subscriber got no `subscribed` per room). Each connection gets a message once: from the room's own subscription
   * when it holds one, else from the first of its patterns that matches.
   */
  private deliverPatterns(key: RoomKey, envelope: Envelope, subs: PatternSubscription[]): void {
    const frame = envelope.frame;
    const name = frame.room;
    if (name === undefined) return;
    const origin = envelope.echo ? undefined : envelope.originClientId;
    const offset = frame.offset;
    const epoch = frame.epoch;
    let matched: Map<string, boolean> | undefined;
    let outs: Array<OutFrame | undefined> | undefined;
    let delivered = 0;
    let bytes = 0;
    // Connections with several patterns get the message from the first one that matches, once.
    let served: Set<Connection> | undefined;
    for (let i = 0; i < subs.length; i++) {
      const ps = subs[i]!;
      const conn = ps.conn;
      if (ps.closed || (origin !== undefined && conn.id === origin) || conn.subscriptions.has(key)) continue;
      if (served?.has(conn)) continue;
      let hit = matched?.get(ps.pattern);
      if (hit === undefined) (matched ??= new Map()).set(ps.pattern, (hit = roomMatches(ps.pattern, name)));
      if (!hit) continue;
      if (ps.allowedFor !== conn.auth) {
        ps.allowed = new Map();
        ps.allowedFor = conn.auth;
      }
      let allowed = ps.allowed.get(key);
      if (allowed === undefined) {
        allowed = can(conn.auth, "sub", name);
        if (ps.allowed.size >= PATTERN_CACHE_ROOMS) ps.allowed.clear();
        ps.allowed.set(key, allowed);
      }
      if (!allowed) continue;
      if (offset !== undefined) {
        const last = ps.seen.get(key);
        if (last === undefined) {
          if (ps.seen.size >= PATTERN_CACHE_ROOMS) ps.seen.clear();
          ps.seen.set(key, { epoch, offset });
        } else {
          if (last.epoch === epoch && offset <= last.offset) continue;
          last.epoch = epoch;
          last.offset = offset;
        }
      }
      const variant = (conn.codec === "json" ? 0 : 1) + (conn.protocol === "1.1" ? 4 : 0);
      const out = ((outs ??= new Array<OutFrame | undefined>(VARIANTS))[variant] ??= encodeVariant(frame, variant, envelope.encoded));
      conn.enqueue(out);
      if (conn.patterns.size > 1) (served ??= new Set()).add(conn);
      delivered++;
      bytes += out.size;
    }
    if (delivered > 0) {
      const tenant = subs[0]!.conn.tenant;
      this.metrics.messagesOut.labels(tenant).inc(delivered);
      this.metrics.bytesOut.labels(tenant).inc(bytes);
    }
  }

  /** Adds an in-process listener to a room; returns the room and whether it is new on this node. */
  addListener(key: RoomKey, tenant: string, roomName: string, listener: RoomListener): { room: LocalRoom; created: boolean } {
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
  removeListener(key: RoomKey, listener: RoomListener): boolean {
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

  /**
   * Delivers one room frame to every local subscriber of `key`.
   *
   * Message frames are deduplicated per subscription by offset (see `Subscription.lastOffset`). For subscribers that
   * opted in to deltas, the delta against the room's previous message is computed once per message on this node
   * (not per subscriber) and framed once per form; a subscriber whose last live payload is not that previous
   * message (just subscribed or recovered, skipped its own publish) gets the full message.
   */
  deliver(key: RoomKey, envelope: Envelope): void {
    if (this.patterns.size > 0 && envelope.frame.type === "message") {
      const wide = this.patterns.get(tenantTokenOfKey(key));
      if (wide !== undefined) this.deliverPatterns(key, envelope, wide);
    }
    const room = this.rooms.get(key);
    if (!room) return;
    const started = performance.now();
    const frame = envelope.frame;
    const span = this.tracing !== undefined && frame.type === "message" ? this.tracing.deliver(room.tenant, room.room, frame.headers, this.nodeId) : undefined;
    const presence = isPresenceFrame(frame.type);
    const origin = envelope.echo ? undefined : envelope.originClientId;
    const message = frame.type === "message";
    const offset = message ? frame.offset : undefined;
    const epoch = frame.epoch;
    const base = room.prevOffset;
    const baseEpoch = room.prevEpoch;
    const basePayload = room.prevBinary ? undefined : room.prevPayload;
    if (offset !== undefined && (epoch !== baseEpoch || offset > base)) {
      room.prevOffset = offset;
      room.prevEpoch = epoch;
      room.prevPayload = frame.payload;
      room.prevBinary = frame.payloadFormat === "binary";
    }
    // undefined: not computed yet; null: no delta for this message (binary, no base, not smaller).
    let delta: Uint8Array | null | undefined;
    let deltaMessage: Frame | undefined;
    // Whether the JSON face of the delta is smaller than the full payload (base64 costs a third more).
    let deltaJsonSmaller: boolean | undefined;
    // The framed buffers of this message, one per form that a subscriber needed (VARIANTS); most rooms need one.
    let outs: Array<OutFrame | undefined> | undefined;
    let deltaOuts: Array<OutFrame | undefined> | undefined;
    let last: OutFrame | undefined;
    let lastVariant = -1;
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
      let out: OutFrame | undefined;
      let variant: number;
      if (offset !== undefined) {
        const sameEpoch = sub.epoch === epoch;
        if (sameEpoch && offset <= sub.lastOffset) continue;
        sub.lastOffset = offset;
        sub.epoch = epoch;
        variant = variantOf(sub, epoch);
        if (sub.delta) {
          const chained = sameEpoch && base > 0 && sub.deltaBase === base && baseEpoch === epoch;
          sub.deltaBase = offset;
          if (chained) {
            if (delta === undefined) delta = this.makeDelta(frame, basePayload);
            if (delta !== null && ((variant & 1) === 1 || (deltaJsonSmaller ??= base64Length(delta.length) < frame.payload!.length))) {
              deltaOuts ??= new Array<OutFrame | undefined>(VARIANTS);
              out = deltaOuts[variant] ??= encodeVariant((deltaMessage ??= deltaFrame(frame, delta)), variant, undefined);
            }
          }
        }
      } else {
        // Non-message frames (presence, state) are the same in every protocol version: variant 0 or 1.
        variant = message ? variantOf(sub, epoch) : conn.codec === "json" ? 0 : 1;
      }
      if (out === undefined) {
        if (variant === lastVariant) out = last!;
        else {
          outs ??= new Array<OutFrame | undefined>(VARIANTS);
          out = outs[variant] ??= encodeVariant(frame, variant, envelope.encoded);
          last = out;
          lastVariant = variant;
        }
      }
      conn.enqueue(out);
      delivered++;
      bytes += out.size;
    }
    const listeners = room.listeners;
    if (listeners.length > 0 && frame.type === "message") {
      for (let i = 0; i < listeners.length; i++) {
        try {
          listeners[i]!(frame, envelope);
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
    if (span !== undefined) {
      if (span.isRecording()) {
        span.setAttribute("arqon.deliveries", delivered);
        if (frame.offset !== undefined) span.setAttribute("arqon.offset", frame.offset);
        if (frame.id !== undefined) span.setAttribute("messaging.message.id", frame.id);
      }
      span.end();
    }
  }

  /** The delta turning the previous message's payload into this one's, when it is worth sending; else null. */
  private makeDelta(frame: Frame, basePayload: Uint8Array | undefined): Uint8Array | null {
    const target = frame.payload;
    if (!this.createDelta || frame.payloadFormat === "binary" || basePayload === undefined || target === undefined) return null;
    try {
      const delta = this.createDelta(basePayload, target);
      return delta !== undefined && delta.length < target.length ? delta : null;
    } catch {
      // A payload the delta codec cannot handle goes out whole.
      return null;
    }
  }

  /** Delivers a buffered envelope to one subscription (after its subscribe finished), always as a full message. */
  deliverOne(sub: Subscription, envelope: Envelope): void {
    if (!envelope.echo && envelope.originClientId === sub.conn.id) return;
    const frame = envelope.frame;
    if (isPresenceFrame(frame.type) && !sub.seesPresence) return;
    if (frame.type !== "message") {
      sub.conn.enqueue(encodeOut(frame, sub.conn.codec));
      return;
    }
    if (frame.offset !== undefined) {
      if (sub.epoch === frame.epoch && frame.offset <= sub.lastOffset) return;
      sub.lastOffset = frame.offset;
      sub.epoch = frame.epoch;
    }
    sub.conn.sendMessage(sub, frame);
  }
}
