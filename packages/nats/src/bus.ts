import { headers as natsHeaders, type Msg, type Subscription } from "@nats-io/transport-node";
import {
  BackendUnavailableError,
  decodeProto,
  encodeProto,
  escapeToken,
  tenantTokenOfKey,
  type Bus,
  type ControlPlane,
  type Envelope,
  type RoomKey,
  type Unsubscribe,
} from "@arqon/core";
import type { NatsLink } from "./link.js";
import {
  fromSubjectToken,
  roomKeyOfSubject,
  roomSubject,
  subjectToken,
  SUBJECT_CONTROL_PREFIX,
  SUBJECT_ROOM_PREFIX,
} from "./subjects.js";

/** NATS header carrying `Envelope.originClientId`. */
export const HEADER_ORIGIN = "Arqon-Origin";
/** NATS header present (value "1") when `Envelope.echo` is set. */
export const HEADER_ECHO = "Arqon-Echo";

/** Receives an error thrown by a handler (default: rethrown on a fresh microtask, so it is never swallowed). */
export type HandlerErrorReporter = (error: unknown) => void;

const rethrow: HandlerErrorReporter = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};

/** Options of `new NatsBus(options)`. */
export interface NatsBusOptions {
  /** The node's NATS connection. */
  link: NatsLink;
  /** Subject prefix; rooms travel on `<prefix>.<tenant>.<room>`. @default "arqon.room" */
  prefix?: string;
  /** Largest frame accepted from the bus. @default 67108864 */
  maxFrameBytes?: number;
  /**
   * Called with frames that arrive but cannot be decoded (another version on the bus, corruption); they are dropped.
   * @default a console warning naming the room key and the error code
   */
  onBadFrame?: (key: RoomKey, error: Error) => void;
  /** Receives what an `onEnvelope` handler throws (the other handlers still run). @default rethrow on a microtask */
  onHandlerError?: HandlerErrorReporter;
  /**
   * Room messages published by different nodes can cross on the way (offset 6 from node B before offset 5 from node
   * A). A message that arrives ahead of a missing offset of the same room and epoch is held up to this long for the
   * missing one, so handlers see offset order; after that the held messages go out (the gap is left to recovery).
   * 0 delivers in arrival order.
   * @default 100
   */
  reorderWindowMs?: number;
}

interface RoomOrder {
  epoch: string;
  /** The offset expected next. */
  next: number;
  held: Map<number, Envelope>;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * The bus on NATS core subjects `arqon.room.<tenant>.<room>`. Interest-based: a node holds one NATS subscription
 * per room key it subscribed to, so the NATS server forwards a room's traffic only to nodes with local subscribers.
 * Envelopes travel as the frame's protobuf bytes (`Envelope.encoded` when the producer has them; the receiver gets
 * them back in `encoded`), with the origin client id and echo flag in NATS headers.
 *
 * Order: NATS keeps per-publisher order on a subject, and one node publishes through one connection, so per room
 * the envelopes a node publishes arrive in publish order everywhere. Room messages of different nodes are put back in
 * offset order within `reorderWindowMs`. Delivery is at-most-once (NATS core).
 */
export class NatsBus implements Bus {
  readonly #link: NatsLink;
  readonly #prefix: string;
  readonly #maxFrameBytes: number;
  readonly #subs = new Map<RoomKey, Subscription>();
  /**
   * Tenant-wide subscriptions (`<prefix>.<tenant>.*`, for wildcard room subscriptions), by escaped tenant token.
   * `ready` once NATS has the interest: from then on a room of that tenant is taken from this subscription only, so
   * a node holding both gets each envelope once.
   */
  readonly #tenantSubs = new Map<string, { sub: Subscription; ready: boolean }>();
  #handlers: readonly ((key: RoomKey, envelope: Envelope) => void)[] = [];
  readonly #onBadFrame: (key: RoomKey, error: Error) => void;
  readonly #onHandlerError: HandlerErrorReporter;
  readonly #reorderWindowMs: number;
  readonly #order = new Map<RoomKey, RoomOrder>();
  #closed = false;

  constructor(options: NatsBusOptions) {
    this.#reorderWindowMs = options.reorderWindowMs ?? 100;
    this.#link = options.link;
    this.#prefix = options.prefix ?? SUBJECT_ROOM_PREFIX;
    this.#maxFrameBytes = options.maxFrameBytes ?? 64 * 1024 * 1024;
    this.#onBadFrame =
      options.onBadFrame ??
      ((key, error) => console.warn(`[@arqon/nats] dropped an undecodable frame on ${key}: ${(error as { code?: string }).code ?? ""} ${error.message}`));
    this.#onHandlerError = options.onHandlerError ?? rethrow;
  }

  /** Room keys this node currently has interest in. */
  get subscribedKeys(): RoomKey[] {
    return [...this.#subs.keys()];
  }

  /**
   * Registers this node's interest in room `key` (one NATS subscription per key; subscribing again adds none) and
   * resolves once the NATS server has it, so envelopes published after that reach this node. Rejects with
   * `BackendUnavailableError` when the bus is closed or NATS is unreachable.
   */
  async subscribe(key: RoomKey): Promise<void> {
    this.#open();
    const subject = roomSubject(key, this.#prefix);
    if (!this.#subs.has(key)) {
      this.#link.guard("bus subscribe");
      const sub = this.#link.nc.subscribe(subject, { callback: (err, msg) => {
        if (err === null) this.#receive(msg);
      } });
      this.#subs.set(key, sub);
    }
    // One round trip: once it returns, the server has registered the interest, so later publishes reach us.
    try {
      await this.#link.nc.flush();
    } catch (error) {
      throw this.#link.fail("bus subscribe", error);
    }
  }

  /**
   * Registers interest in every room of `tenant` (one NATS subscription on `<prefix>.<tenant token>.*`: the token is
   * escaped, so no tenant can reach another's subjects) and resolves once the NATS server has it.
   */
  async subscribeTenant(tenant: string): Promise<void> {
    this.#open();
    const token = escapeToken(tenant);
    let entry = this.#tenantSubs.get(token);
    if (entry === undefined) {
      this.#link.guard("bus subscribe");
      const sub = this.#link.nc.subscribe(`${this.#prefix}.${token}.*`, { callback: (err, msg) => {
        if (err === null) this.#receive(msg, true);
      } });
      entry = { sub, ready: false };
      this.#tenantSubs.set(token, entry);
    }
    try {
      await this.#link.nc.flush();
    } catch (error) {
      throw this.#link.fail("bus subscribe", error);
    }
    // Until now the rooms' own subscriptions delivered (the tenant's may not have been registered yet).
    if (this.#tenantSubs.get(token) === entry) entry.ready = true;
  }

  /** Drops the tenant-wide interest; the rooms' own subscriptions deliver again from now on. */
  async unsubscribeTenant(tenant: string): Promise<void> {
    const token = escapeToken(tenant);
    const entry = this.#tenantSubs.get(token);
    if (entry === undefined) return;
    this.#tenantSubs.delete(token);
    entry.sub.unsubscribe();
    for (const key of [...this.#order.keys()]) if (tenantTokenOfKey(key) === token && !this.#subs.has(key)) this.#dropOrder(key);
  }

  /** Drops the interest in `key`, with any of its messages held for reordering; nothing happens if there was none. */
  async unsubscribe(key: RoomKey): Promise<void> {
    const sub = this.#subs.get(key);
    if (sub === undefined) return;
    this.#subs.delete(key);
    sub.unsubscribe();
    this.#dropOrder(key);
  }

  #dropOrder(key: RoomKey): void {
    const order = this.#order.get(key);
    if (order?.timer !== undefined) clearTimeout(order.timer);
    this.#order.delete(key);
  }

  /**
   * Sends `envelope` to every node subscribed to `key` (this one too, by NATS's echo). Resolves once NATS took it:
   * delivery is at most once, without acknowledgement. Rejects with `BackendUnavailableError` when the bus is closed
   * or NATS is unreachable, and with `PayloadTooLargeError` when the encoded frame exceeds NATS's `max_payload`.
   */
  async publish(key: RoomKey, envelope: Envelope): Promise<void> {
    this.#open();
    const subject = roomSubject(key, this.#prefix);
    this.#link.guard("bus publish");
    const data = envelope.encoded ?? encodeProto(envelope.frame);
    this.#link.checkSize(data.length);
    const h = natsHeaders();
    if (envelope.originClientId !== undefined) h.set(HEADER_ORIGIN, envelope.originClientId);
    if (envelope.echo) h.set(HEADER_ECHO, "1");
    try {
      this.#link.nc.publish(subject, data, envelope.originClientId !== undefined || envelope.echo ? { headers: h } : {});
    } catch (error) {
      throw this.#link.fail("bus publish", error);
    }
  }

  onEnvelope(handler: (key: RoomKey, envelope: Envelope) => void): Unsubscribe {
    this.#handlers = [...this.#handlers, handler];
    return () => {
      this.#handlers = this.#handlers.filter((h) => h !== handler);
    };
  }

  #receive(msg: Msg, tenantWide = false): void {
    const key = roomKeyOfSubject(msg.subject, this.#prefix);
    if (key === undefined) return;
    if (this.#tenantSubs.size > 0) {
      const wide = this.#tenantSubs.get(tenantTokenOfKey(key));
      // One delivery per envelope: the tenant-wide subscription's once it is registered, else the room's.
      if (tenantWide ? wide === undefined : wide?.ready === true || !this.#subs.has(key)) return;
    } else if (tenantWide || !this.#subs.has(key)) return;
    const decoded = decodeProto(msg.data, { from: "any", maxBytes: this.#maxFrameBytes });
    if (!decoded.ok) {
      this.#onBadFrame(key, decoded.error);
      return;
    }
    const envelope: Envelope = { frame: decoded.frame, encoded: msg.data };
    const origin = msg.headers?.get(HEADER_ORIGIN);
    if (origin) envelope.originClientId = origin;
    if (msg.headers?.get(HEADER_ECHO) === "1") envelope.echo = true;
    const { offset, epoch } = decoded.frame;
    if (this.#reorderWindowMs <= 0 || decoded.frame.type !== "message" || !offset || !epoch) {
      this.#deliver(key, envelope);
      return;
    }
    let order = this.#order.get(key);
    if (order === undefined || order.epoch !== epoch) {
      if (order?.timer !== undefined) clearTimeout(order.timer);
      order = { epoch, next: offset, held: new Map() };
      this.#order.set(key, order);
    }
    if (offset > order.next) {
      order.held.set(offset, envelope);
      order.timer ??= setTimeout(() => this.#giveUp(key), this.#reorderWindowMs);
      return;
    }
    // offset === next, or a late one we already gave up waiting for: deliver it, then whatever it unblocks.
    if (offset === order.next) order.next = offset + 1;
    this.#deliver(key, envelope);
    this.#drain(key, order);
  }

  #drain(key: RoomKey, order: RoomOrder): void {
    for (let e = order.held.get(order.next); e !== undefined; e = order.held.get(order.next)) {
      order.held.delete(order.next);
      order.next++;
      this.#deliver(key, e);
    }
    if (order.held.size === 0 && order.timer !== undefined) {
      clearTimeout(order.timer);
      order.timer = undefined;
    }
  }

  /** The reorder window ran out: skip the missing offsets and deliver what is held, in offset order. */
  #giveUp(key: RoomKey): void {
    const order = this.#order.get(key);
    if (order === undefined) return;
    order.timer = undefined;
    if (order.held.size === 0) return;
    order.next = Math.min(...order.held.keys());
    this.#drain(key, order);
  }

  #deliver(key: RoomKey, envelope: Envelope): void {
    const handlers = this.#handlers;
    for (let i = 0; i < handlers.length; i++) {
      try {
        handlers[i]!(key, envelope);
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  #open(): void {
    if (this.#closed) throw new BackendUnavailableError("bus is closed");
  }

  /**
   * Drops every subscription, held message and handler; `subscribe` and `publish` then reject with
   * `BackendUnavailableError`. Idempotent; the NatsLink stays open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#subs.values()) sub.unsubscribe();
    this.#subs.clear();
    for (const { sub } of this.#tenantSubs.values()) sub.unsubscribe();
    this.#tenantSubs.clear();
    for (const key of [...this.#order.keys()]) this.#dropOrder(key);
    this.#handlers = [];
  }
}

/** Options of `NatsControlPlane.create(options)`. */
export interface NatsControlPlaneOptions {
  /** The node's NATS connection. */
  link: NatsLink;
  /** Broadcasts travel on `<prefix>.<escaped topic>`. @default "arqon.control" */
  prefix?: string;
  /** Receives what an `onBroadcast` handler throws (the other handlers still run). @default rethrow on a microtask */
  onHandlerError?: HandlerErrorReporter;
}

/**
 * Node-wide broadcasts on `arqon.control.<topic>` (the topic escaped into one subject token). Every node subscribes
 * to `arqon.control.*`; NATS echoes a connection's own messages back to it, so the sender receives its broadcast too.
 */
export class NatsControlPlane implements ControlPlane {
  readonly #link: NatsLink;
  readonly #prefix: string;
  readonly #sub: Subscription;
  #handlers: readonly ((topic: string, data: Uint8Array) => void)[] = [];
  readonly #onHandlerError: HandlerErrorReporter;
  #closed = false;

  private constructor(options: NatsControlPlaneOptions) {
    this.#link = options.link;
    this.#prefix = options.prefix ?? SUBJECT_CONTROL_PREFIX;
    this.#onHandlerError = options.onHandlerError ?? rethrow;
    this.#sub = this.#link.nc.subscribe(`${this.#prefix}.*`, { callback: (err, msg) => {
        if (err === null) this.#receive(msg);
      } });
  }

  /** Subscribes and waits until the NATS server has registered the interest. */
  static async create(options: NatsControlPlaneOptions): Promise<NatsControlPlane> {
    const plane = new NatsControlPlane(options);
    try {
      await options.link.nc.flush();
    } catch (error) {
      await plane.close();
      throw options.link.fail("control plane", error);
    }
    return plane;
  }

  /**
   * Sends `data` under `topic` to every node, this one included (at most once, NATS core). Rejects with
   * `BackendUnavailableError` when the control plane is closed or NATS is unreachable.
   */
  async broadcast(topic: string, data: Uint8Array): Promise<void> {
    if (this.#closed) throw new BackendUnavailableError("control plane is closed");
    this.#link.guard("control broadcast");
    try {
      this.#link.nc.publish(`${this.#prefix}.${subjectToken(topic)}`, data);
    } catch (error) {
      throw this.#link.fail("control broadcast", error);
    }
  }

  /** Resolves once the NATS server acknowledged every broadcast published before the call (a PING/PONG round trip). */
  async flush(): Promise<void> {
    if (this.#closed) throw new BackendUnavailableError("control plane is closed");
    this.#link.guard("control flush");
    try {
      await this.#link.nc.flush();
    } catch (error) {
      throw this.#link.fail("control flush", error);
    }
  }

  /**
   * Calls `handler` with the topic and data of every broadcast received; returns a function that removes it. What it
   * throws goes to `onHandlerError`.
   */
  onBroadcast(handler: (topic: string, data: Uint8Array) => void): Unsubscribe {
    this.#handlers = [...this.#handlers, handler];
    return () => {
      this.#handlers = this.#handlers.filter((h) => h !== handler);
    };
  }

  #receive(msg: Msg): void {
    let topic: string;
    try {
      topic = fromSubjectToken(msg.subject.slice(this.#prefix.length + 1));
    } catch {
      return;
    }
    const handlers = this.#handlers;
    for (let i = 0; i < handlers.length; i++) {
      try {
        handlers[i]!(topic, msg.data);
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  /** Unsubscribes and drops the handlers; `broadcast` then rejects. Idempotent; the NatsLink stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sub.unsubscribe();
    this.#handlers = [];
  }
}
