import {
  ArqonError,
  DeltaDecoder,
  expandMessage,
  jsonBytes,
  parseJsonBytes,
  roomNameProblem,
  type Frame,
  type Member,
  type Position,
  type StateEntry,
} from "@arqon/core";
import { Emitter } from "./emitter.js";
import { ArqonRequestError, ClientErrorCode } from "./errors.js";
import type {
  HistoryOptions,
  HistoryPage,
  PresenceMember,
  PublishAck,
  RoomMessage,
  StateChange,
  StateValue,
  SubscribedEvent,
} from "./types.js";

/** What a room needs from its client (kept narrow so the two stay decoupled). */
export interface RoomHost {
  connected(): boolean;
  closed(): boolean;
  request(frame: Frame, options?: { timeoutMs?: number; onReply?: (reply: Frame) => void }): Promise<Frame>;
  /** The wire protocol version of the current connection ("1.0" or "1.1", from its `welcome`). */
  protocol(): string;
}

/** Options of `room.subscribe()`; they also apply to the automatic re-subscriptions after a reconnect. */
export interface SubscribeOptions {
  /** Recover from this position: messages after it are delivered first (see `SubscribedEvent.recovered`). */
  since?: Position;
  /** Ask the server for delta-compressed payloads where it supports them. @default false */
  delta?: boolean;
  /** Initial presence metadata of this connection in the room. */
  meta?: unknown;
}

/** Options of `room.publish()`. */
export interface PublishOptions {
  /**
   * Message headers; the server lowers their names and allows at most 64 (names up to 128 bytes, values up to 4 KiB).
   * `x-twist-id` puts the message on a named timeline (1-64 letters, digits and `_ - . :`).
   */
  headers?: Record<string, string>;
  /** Delivered once within the server's dedupe window, however often it is published. */
  idempotencyKey?: string;
  /** Deliver to this connection too (the publisher is excluded by default). @default false */
  echo?: boolean;
}

/** The events a {@link Room} emits, by name, with the value each listener receives. */
export interface RoomEvents {
  /**
   * A message of the subscribed room, live or recovered, in offset order; duplicates are dropped and delta payloads
   * rebuilt first. The handler given to `subscribe` is a listener of this event.
   */
  message: RoomMessage;
  /** The server confirmed the subscription: the first time, and again after every reconnect. */
  subscribed: SubscribedEvent;
  /** The subscription ended: by `unsubscribe()` (reason "client") or by the server (its reason, e.g. "forbidden"). */
  unsubscribed: {
    /** The room's name. */
    room: string;
    /** "client" after `unsubscribe()`, else the reason the server gave (possibly empty). */
    reason: string;
  };
  /**
   * A failure that belongs to no request: a delta that cannot be applied (ARQ_DELTA_INVALID), a payload that is not
   * JSON, or an automatic re-subscription the server refused after a reconnect (which ends the subscription).
   */
  error: ArqonError;
}

/** The events `room.presence` emits, by name, with the value each listener receives. */
export interface PresenceEvents {
  /** A member joined the room (one event per member, also for batched `presence_diff` frames). */
  join: PresenceMember;
  /** A member left the room: the member as last known (with its `info`), one event per member. */
  leave: PresenceMember & {
    /** Why it left, when the server says: e.g. "expired" when the member's node stopped renewing its presence. */
    reason?: string;
  };
  /** Any change of the member list, with the list after it (joins, leaves, a fresh list on (re)subscribe). */
  change: PresenceMember[];
}

/** The events `room.state` emits, by name, with the value each listener receives. */
export interface StateEvents {
  /** Entries changed by someone (including this client). */
  change: StateChange[];
  /** The whole map was replaced (on (re)subscribe or `get()`). */
  sync: Record<string, StateValue>;
}

function decodeJsonValue(bytes: Uint8Array | undefined): unknown {
  if (bytes === undefined || bytes.length === 0) return undefined;
  try {
    return parseJsonBytes(bytes);
  } catch {
    return bytes;
  }
}

function toMember(m: Member): PresenceMember {
  const out: PresenceMember = { clientId: m.clientId ?? "", userId: m.userId ?? "" };
  if (m.info !== undefined) out.info = decodeJsonValue(m.info);
  if (m.joinedAt !== undefined) out.joinedAt = m.joinedAt;
  if (m.connections !== undefined) out.connections = m.connections;
  return out;
}

function toStateValue(e: StateEntry): StateValue {
  const out: StateValue = { value: decodeJsonValue(e.value), version: e.version ?? 0 };
  if (e.updatedAt !== undefined) out.updatedAt = e.updatedAt;
  if (e.updatedBy !== undefined) out.updatedBy = e.updatedBy;
  return out;
}

function toStateMap(entries: StateEntry[] | undefined): Record<string, StateValue> {
  const out: Record<string, StateValue> = {};
  for (const e of entries ?? []) if (!e.deleted) out[e.key] = toStateValue(e);
  return out;
}

/** Turns a `message` frame (live or from history) into what subscribers see; `payload` is the reconstructed bytes. */
export function toRoomMessage(frame: Frame, room: string, payload: Uint8Array | undefined, binary: boolean): RoomMessage {
  const msg: RoomMessage = {
    id: frame.id ?? "",
    room: frame.room ?? room,
    payload: binary ? (payload ?? new Uint8Array(0)) : payload === undefined ? null : parseJsonBytes(payload),
    format: binary ? "binary" : "json",
    headers: frame.headers ?? {},
    offset: frame.offset ?? 0,
    epoch: frame.epoch ?? "",
    timestamp: frame.timestamp ?? 0,
  };
  if (frame.sender !== undefined) msg.sender = frame.sender;
  if (frame.inspection !== undefined) msg.inspection = frame.inspection;
  return msg;
}

/** Who is in a room. The local list follows join/leave/diff events while the room is subscribed. */
export class RoomPresence extends Emitter<PresenceEvents> {
  #members = new Map<string, PresenceMember>();

  constructor(private readonly room: Room) {
    super();
  }

  /** The member list as last seen (from subscribe and presence events), without asking the server. */
  get current(): PresenceMember[] {
    return [...this.#members.values()];
  }

  /** Asks the server for the member list (and refreshes `current`). */
  async members(): Promise<PresenceMember[]> {
    const reply = await this.room._request({ type: "presence_list", room: this.room.name });
    this._reset(reply.members);
    return this.current;
  }

  /** Replaces this connection's presence metadata in the room; it is kept and restored after a reconnect. */
  async setMeta(info: unknown): Promise<void> {
    this.room._meta = info;
    await this.room._request({ type: "presence_set", room: this.room.name, info: { info: jsonBytes(info) } });
  }

  /** @internal */
  _reset(members: Member[] | undefined): void {
    this.#members.clear();
    for (const m of members ?? []) {
      const member = toMember(m);
      this.#members.set(member.clientId, member);
    }
    this.emit("change", this.current);
  }

  /** @internal */
  _apply(joined: Member[] | undefined, left: Member[] | undefined, reason?: string): void {
    const joins: PresenceMember[] = [];
    const leaves: PresenceMember[] = [];
    for (const m of left ?? []) {
      const member = toMember(m);
      const known = this.#members.get(member.clientId);
      this.#members.delete(member.clientId);
      leaves.push(known ? { ...known, ...member, info: member.info ?? known.info } : member);
    }
    for (const m of joined ?? []) {
      const member = toMember(m);
      this.#members.set(member.clientId, member);
      joins.push(member);
    }
    for (const m of leaves) this.emit("leave", reason === undefined ? m : { ...m, reason });
    for (const m of joins) this.emit("join", m);
    if (joins.length + leaves.length > 0) this.emit("change", this.current);
  }
}

/** A room's shared key/value map: every key has a version, writes can be compare-and-set. */
export class RoomState extends Emitter<StateEvents> {
  #entries: Record<string, StateValue> = {};

  constructor(private readonly room: Room) {
    super();
  }

  /** The map as last seen (from subscribe, `get()` and change events), without asking the server. */
  get current(): Record<string, StateValue> {
    return { ...this.#entries };
  }

  /** Reads the whole map from the server. */
  async get(): Promise<Record<string, StateValue>> {
    const reply = await this.room._request({ type: "state_get", room: this.room.name });
    this._reset(reply.state);
    return this.current;
  }

  /**
   * Writes `key`. With `ifVersion`, the write happens only if the key is at that version (0: only if it does not
   * exist); otherwise it is refused with ARQ_STATE_CONFLICT. Resolves with the new version.
   */
  async set(key: string, value: unknown, options: { ifVersion?: number } = {}): Promise<StateValue> {
    const entry: StateEntry = { key, value: jsonBytes(value) };
    if (options.ifVersion !== undefined) entry.ifVersion = options.ifVersion;
    const reply = await this.room._request({ type: "state_set", room: this.room.name, state: [entry] });
    const written = reply.state?.find((e) => e.key === key);
    return written ? toStateValue({ ...written, value: written.value ?? entry.value }) : { value, version: 0 };
  }

  /** Deletes `key` (compare-and-set with `ifVersion` as in `set`). */
  async delete(key: string, options: { ifVersion?: number } = {}): Promise<void> {
    const entry: StateEntry = { key, deleted: true };
    if (options.ifVersion !== undefined) entry.ifVersion = options.ifVersion;
    await this.room._request({ type: "state_set", room: this.room.name, state: [entry] });
  }

  /** @internal */
  _reset(entries: StateEntry[] | undefined): void {
    this.#entries = toStateMap(entries);
    this.emit("sync", this.current);
  }

  /** @internal */
  _changed(entries: StateEntry[] | undefined): void {
    const changes: StateChange[] = [];
    for (const e of entries ?? []) {
      if (e.deleted) {
        delete this.#entries[e.key];
        const change: StateChange = { key: e.key, deleted: true };
        if (e.version !== undefined) change.version = e.version;
        if (e.updatedAt !== undefined) change.updatedAt = e.updatedAt;
        if (e.updatedBy !== undefined) change.updatedBy = e.updatedBy;
        changes.push(change);
      } else {
        const value = toStateValue(e);
        this.#entries[e.key] = value;
        changes.push({ key: e.key, deleted: false, ...value });
      }
    }
    if (changes.length) this.emit("change", changes);
  }
}

type Waiter = { resolve: (e: SubscribedEvent) => void; reject: (err: unknown) => void };

/**
 * One room, as seen by one client. `client.room(name)` returns the same instance every time. A subscription survives
 * reconnects: the client re-subscribes with the last position it saw and reports whether everything was recovered.
 */
export class Room extends Emitter<RoomEvents> {
  /** Who is in the room, and this connection's presence metadata. */
  readonly presence: RoomPresence;
  /** The room's shared key/value map. */
  readonly state: RoomState;
  /** @internal presence metadata restored on re-subscribe */
  _meta: unknown = undefined;
  /**
   * @internal A wildcard subscription's pattern (the name has a `*`), as a regular expression: the room gets the
   * messages of every room it matches, and keeps no position (docs/protocol.md, "Wildcard subscriptions").
   */
  _glob: RegExp | undefined;
  /** A wildcard subscription's last position per concrete room (its recovery after a reconnect starts there). */
  #seen = new Map<string, Position>();
  /** Rooms a wildcard subscription is catching up with after a reconnect: their live messages wait here. */
  #held = new Map<string, Frame[]>();
  #position: Position | undefined;
  /**
   * The room's epoch as the server last told this subscription (its `subscribed` reply, or a message that carried
   * one): protocol 1.1 messages carry their epoch only when it changes, and get this one otherwise.
   */
  #epoch = "";
  #wanted = false;
  #subscribed = false;
  #delta = false;
  #handler: ((message: RoomMessage) => void) | undefined;
  #waiters: Waiter[] = [];
  #inflight = false;
  /** Bumped by every subscribe sent, unsubscribe and disconnect: replies to an older subscribe are ignored. */
  #generation = 0;
  #decoder: DeltaDecoder | undefined;
  /** A delta could not be applied: messages are ignored until the re-subscription (which restarts deltas) lands. */
  #deltaBroken = false;
  #everSubscribed = false;

  constructor(
    /** The room's name, as given to `client.room()`. */
    readonly name: string,
    private readonly host: RoomHost,
  ) {
    super();
    // `*` within a segment (separated by `:`, `/` or `.`), `**` anything: the capability syntax.
    if (name.includes("*")) this._glob = new RegExp("^" + name.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*\*?/g, (m) => (m[1] ? ".*" : "[^:/.]*")) + "$");
    this.presence = new RoomPresence(this);
    this.state = new RoomState(this);
  }

  /** The last position this client saw in the room (sent as `since` when re-subscribing). */
  get position(): Position | undefined {
    return this.#position ? { ...this.#position } : undefined;
  }

  /** Whether the server currently confirms the subscription. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /**
   * Subscribes (or changes the handler of an existing subscription). Resolves once the server confirmed it; if the
   * client is not connected yet, once it is. The subscription is renewed after every reconnect.
   */
  subscribe(handler?: (message: RoomMessage) => void, options: SubscribeOptions = {}): Promise<SubscribedEvent> {
    // A pattern (a wildcard subscription) is the server's to check (ARQ_ROOM_INVALID).
    const problem = this._glob ? undefined : roomNameProblem(this.name);
    if (problem) return Promise.reject(new ArqonRequestError("ARQ_ROOM_INVALID", problem));
    if (this.host.closed()) return Promise.reject(new ArqonRequestError(ClientErrorCode.CLIENT_CLOSED, "the client is closed"));
    if (this.#handler) this.off("message", this.#handler);
    this.#handler = handler;
    if (handler) this.on("message", handler);
    if (options.since) this.#position = { ...options.since };
    if (options.delta !== undefined) this.#delta = options.delta;
    if (options.meta !== undefined) this._meta = options.meta;
    this.#wanted = true;
    const done = new Promise<SubscribedEvent>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.host.connected()) this._resubscribe(false);
    return done;
  }

  /** Ends the subscription; the handler given to `subscribe` is removed. Presence and state stop updating. */
  async unsubscribe(): Promise<void> {
    // Not wanted but subscribed: a subscription the server API made.
    const wasWanted = this.#wanted || this.#subscribed;
    this.#wanted = false;
    this.#subscribed = false;
    this.#inflight = false;
    this.#generation++;
    if (this.#handler) this.off("message", this.#handler);
    this.#handler = undefined;
    this.#rejectWaiters(new ArqonRequestError(ClientErrorCode.CLIENT_CLOSED, `unsubscribed from "${this.name}"`));
    if (wasWanted && this.host.connected()) {
      await this.host.request({ type: "unsubscribe", room: this.name });
    }
    if (wasWanted) this.emit("unsubscribed", { room: this.name, reason: "client" });
  }

  /** Publishes a JSON value (or bytes, sent as a binary payload). Resolves with the server's ack. */
  async publish(payload: unknown, options: PublishOptions = {}): Promise<PublishAck> {
    const binary = payload instanceof Uint8Array;
    const frame: Frame = { type: "publish", room: this.name, payload: binary ? payload : jsonBytes(payload) };
    if (binary) frame.payloadFormat = "binary";
    if (options.headers && Object.keys(options.headers).length) frame.headers = options.headers;
    if (options.idempotencyKey) frame.idempotencyKey = options.idempotencyKey;
    if (options.echo) frame.echo = true;
    const ack = await this._request(frame);
    return { id: ack.id ?? "", offset: ack.offset ?? 0, epoch: ack.epoch ?? "", duplicate: ack.duplicate === true };
  }

  /** Reads the room's history (inclusive offsets; `reverse` pages backwards). */
  async history(options: HistoryOptions = {}): Promise<HistoryPage> {
    const query: Frame["history"] = {};
    for (const key of ["fromOffset", "toOffset", "limit", "fromTs", "toTs"] as const) {
      if (options[key]) query[key] = options[key];
    }
    if (options.reverse) query.reverse = true;
    if (options.twistId) query.twistId = options.twistId;
    const reply = await this._request({ type: "history", room: this.name, history: query });
    const p11 = this.host.protocol() === "1.1";
    const messages = (reply.messages ?? []).map((m) => {
      const full = p11 ? expandMessage(m, reply.epoch) : m;
      return toRoomMessage(full, this.name, full.payload, full.payloadFormat === "binary");
    });
    return { messages, position: { offset: reply.offset ?? 0, epoch: reply.epoch ?? "" } };
  }

  /** @internal */
  _request(frame: Frame): Promise<Frame> {
    const problem = roomNameProblem(this.name);
    if (problem) return Promise.reject(new ArqonRequestError("ARQ_ROOM_INVALID", problem));
    return this.host.request(frame);
  }

  /** @internal Sends `subscribe` (first time or after a reconnect) with the last known position. */
  _resubscribe(afterReconnect: boolean): void {
    if (!this.#wanted || this.#inflight) return;
    this.#subscribed = false;
    const frame: Frame = { type: "subscribe", room: this.name };
    if (this.#position && !this._glob) frame.since = { ...this.#position };
    if (this.#delta) frame.delta = true;
    if (this._meta !== undefined) frame.info = { info: jsonBytes(this._meta) };
    const resubscribed = afterReconnect || this.#everSubscribed;
    this.#inflight = true;
    const generation = ++this.#generation;
    // The reply is handled synchronously: messages that follow it in the same network read must see its position.
    const onReply = (reply: Frame): void => {
      // The server tells every subscribed reply's epoch to the subscription, even one this room no longer waits for.
      if (reply.type === "subscribed") this.#epoch = reply.epoch ?? "";
      if (generation !== this.#generation) return;
      this.#inflight = false;
      if (!this.#wanted) return;
      this.#onSubscribed(reply, resubscribed);
      // A wildcard subscription recovers per concrete room: history since the last offset it delivered of each.
      if (this._glob && resubscribed) for (const [room, position] of this.#seen) void this.#catchUp(room, position);
      // Protocol 1.1 sends recovered messages in the reply (the rest, if any, follow as message frames): they are
      // delivered as if each had come in its own frame, with the reply's epoch where they leave theirs out.
      if (reply.type === "subscribed" && reply.messages) {
        const p11 = this.host.protocol() === "1.1";
        for (const m of reply.messages) {
          if (!this.#wanted) return;
          this.#onMessage(p11 ? expandMessage(m.room === undefined ? { ...m, room: this.name } : m, reply.epoch) : m);
        }
      }
    };
    this.host.request(frame, { onReply }).then(
      () => undefined,
      (err: unknown) => {
        if (generation !== this.#generation) return;
        this.#inflight = false;
        // A subscribe lost to a disconnect is sent again on the next connection; anything else ends the subscription.
        if (err instanceof ArqonRequestError && err.code === ClientErrorCode.CONNECTION_CLOSED) return;
        this.#wanted = false;
        if (this.#handler) this.off("message", this.#handler);
        this.#handler = undefined;
        this.#rejectWaiters(err);
        if (afterReconnect && err instanceof ArqonError) this.emit("error", err);
      },
    );
  }

  /** @internal The client is gone for good. */
  _closed(error: ArqonError): void {
    this.#subscribed = false;
    this.#rejectWaiters(error);
  }

  /** @internal The connection dropped; the subscription will be renewed. */
  _disconnected(): void {
    this.#subscribed = false;
    this.#inflight = false;
    this.#generation++;
  }

  /** @internal A frame about this room that is not a reply to a request. */
  _handle(frame: Frame): void {
    switch (frame.type) {
      case "message": {
        // The server counts the epoch as told once it wrote it, whether or not this room still wants messages.
        if (frame.epoch !== undefined) this.#epoch = frame.epoch;
        if (!(this.#wanted || this.#subscribed)) return;
        const full = this.host.protocol() === "1.1" ? expandMessage(frame, this.#epoch) : frame;
        const held = this._glob && this.#held.get(frame.room!);
        if (held) held.push(full);
        else this.#onMessage(full);
        return;
      }
      case "presence_join":
        this.presence._apply(frame.members, undefined);
        return;
      case "presence_leave":
        this.presence._apply(undefined, frame.members, frame.reason);
        return;
      case "presence_diff":
        this.presence._apply(frame.joined, frame.left);
        return;
      case "state_changed":
        this.state._changed(frame.state);
        return;
      case "unsubscribed":
        if (!(this.#wanted || this.#subscribed)) return;
        this.#wanted = false;
        this.#subscribed = false;
        this.#rejectWaiters(new ArqonRequestError(ClientErrorCode.CLIENT_CLOSED, `the server ended the subscription: ${frame.reason ?? ""}`));
        this.emit("unsubscribed", { room: this.name, reason: frame.reason ?? "" });
        return;
      case "subscribed":
        // Not a reply: the server API subscribed this connection (not wanted, so not renewed after a reconnect).
        this.#onSubscribed(frame, false);
    }
  }

  #onSubscribed(reply: Frame, resubscribed: boolean): void {
    const position: Position = { offset: reply.offset ?? 0, epoch: (this.#epoch = reply.epoch ?? "") };
    // When recovery succeeded, the missed messages follow this frame: the position must advance through them, not
    // jump to the room's head. Otherwise (fresh subscribe, or recovery impossible) start from the room's head.
    const mine = this.#position;
    const keep = mine !== undefined && mine.epoch === position.epoch && (reply.recovered === true || (reply.recovered === undefined && mine.offset > position.offset));
    if (!keep) {
      this.#position = position;
    }
    // The server restarts every delta subscription with a full payload.
    this.#decoder?.reset();
    this.#deltaBroken = false;
    this.#subscribed = true;
    this.#everSubscribed = true;
    this.presence._reset(reply.members);
    this.state._reset(reply.state);
    const event: SubscribedEvent = {
      room: this.name,
      position,
      resubscribed,
      members: this.presence.current,
      state: this.state.current,
    };
    if (reply.recovered !== undefined) event.recovered = reply.recovered;
    if (reply.reason) event.reason = reply.reason;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve(event);
    this.emit("subscribed", event);
  }

  /** Reads `room`'s history after `position` (page by page), then lets the live messages held meanwhile through. */
  async #catchUp(room: string, position: Position): Promise<void> {
    const held: Frame[] = [];
    this.#held.set(room, held);
    try {
      for (let from = position.offset + 1; ; ) {
        const page = await this.host.request({ type: "history", room, history: { fromOffset: from } });
        // Another epoch: the room's history was lost, there is nothing to recover from.
        if ((page.epoch ?? "") !== position.epoch) break;
        const messages = page.messages ?? [];
        for (const m of messages) this.#onMessage(expandMessage({ ...m, room }, page.epoch));
        const last = messages.at(-1)?.offset ?? 0;
        if (last === 0 || last >= (page.offset ?? 0)) break;
        from = last + 1;
      }
    } catch {
      // Not recoverable now (disconnected again, refused): the live messages go on.
    }
    this.#held.delete(room);
    for (const f of held) this.#onMessage(f);
  }

  #onMessage(frame: Frame): void {
    if (this.#deltaBroken) return;
    const offset = frame.offset ?? 0;
    const epoch = frame.epoch ?? "";
    const glob = this._glob;
    const mine = glob ? this.#seen.get(frame.room!) : this.#position;
    // A message at or before the last seen position of the same epoch was already delivered: drop it.
    if (offset > 0 && mine && mine.epoch === epoch && offset <= mine.offset) return;
    let full = frame;
    if (this.#delta || frame.delta) {
      this.#decoder ??= new DeltaDecoder();
      try {
        full = this.#decoder.apply(this.name, frame);
      } catch (err) {
        // Every later delta would build on the missing payload: re-subscribe from the last good position instead, so
        // the server replays from there and restarts with a full payload.
        this.#deltaBroken = true;
        const why = err instanceof Error ? err.message : String(err);
        this.emit("error", new ArqonRequestError(ClientErrorCode.DELTA_INVALID, `message ${frame.id ?? ""} in "${this.name}": ${why}`, { cause: err }));
        if (this.host.connected()) this._resubscribe(false);
        return;
      }
    }
    let message: RoomMessage;
    try {
      message = toRoomMessage(full, glob ? frame.room! : this.name, full.payload, full.payloadFormat === "binary");
    } catch (err) {
      this.emit("error", new ArqonError("ARQ_FRAME_MALFORMED", `message ${frame.id ?? ""} has a payload that is not JSON`, { cause: err }));
      return;
    }
    if (offset > 0) {
      if (glob) this.#seen.set(frame.room!, { offset, epoch });
      else this.#position = { offset, epoch };
    }
    this.emit("message", message);
  }

  #rejectWaiters(err: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
  }
}
