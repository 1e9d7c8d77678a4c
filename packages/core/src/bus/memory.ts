import type { Bus, ControlPlane, Envelope, Unsubscribe } from "./types.js";
import { escapeToken, tenantTokenOfKey, type RoomKey } from "../room/names.js";
import { BackendUnavailableError } from "../errors.js";
import { rethrowHandlerError, type HandlerErrorReporter } from "../clock.js";

const DONE: Promise<void> = Promise.resolve();

type EnvelopeHandler = (key: RoomKey, envelope: Envelope) => void;
type BroadcastHandler = (topic: string, data: Uint8Array) => void;

/**
 * The shared medium of in-memory buses: every `MemoryBus` and `MemoryControlPlane` created with the same hub behaves
 * like one node of a cluster, so tests can check interest and multi-node delivery without a network.
 *
 * Delivery is synchronous inside `publish`. A handler that publishes again (re-entrantly) has its envelope queued
 * until the current one reached every node, so every node sees envelopes of a key in publish order.
 */
export class MemoryBusHub {
  /** key → interested nodes. Arrays are replaced on change, never mutated, so a dispatch walks a stable snapshot. */
  readonly #interest = new Map<RoomKey, readonly MemoryBus[]>();
  /** tenant token → nodes with a tenant-wide interest (wildcard subscriptions). */
  readonly #tenantInterest = new Map<string, readonly MemoryBus[]>();
  #planes: readonly MemoryControlPlane[] = [];

  #dispatching = false;
  readonly #pendingKeys: RoomKey[] = [];
  readonly #pendingEnvelopes: Envelope[] = [];

  #broadcasting = false;
  readonly #pendingTopics: string[] = [];
  readonly #pendingData: Uint8Array[] = [];

  /** @internal */
  addInterest(key: RoomKey, node: MemoryBus): void {
    const nodes = this.#interest.get(key);
    if (nodes === undefined) this.#interest.set(key, [node]);
    else if (!nodes.includes(node)) this.#interest.set(key, [...nodes, node]);
  }

  /** @internal */
  removeInterest(key: RoomKey, node: MemoryBus): void {
    const nodes = this.#interest.get(key);
    if (nodes === undefined || !nodes.includes(node)) return;
    if (nodes.length === 1) this.#interest.delete(key);
    else this.#interest.set(key, nodes.filter((n) => n !== node));
  }

  /** @internal */
  addTenantInterest(tenantToken: string, node: MemoryBus): void {
    const nodes = this.#tenantInterest.get(tenantToken);
    if (nodes === undefined) this.#tenantInterest.set(tenantToken, [node]);
    else if (!nodes.includes(node)) this.#tenantInterest.set(tenantToken, [...nodes, node]);
  }

  /** @internal */
  removeTenantInterest(tenantToken: string, node: MemoryBus): void {
    const nodes = this.#tenantInterest.get(tenantToken);
    if (nodes === undefined || !nodes.includes(node)) return;
    if (nodes.length === 1) this.#tenantInterest.delete(tenantToken);
    else this.#tenantInterest.set(tenantToken, nodes.filter((n) => n !== node));
  }

  /** Number of keys with at least one interested node (for tests and metrics). */
  get interestCount(): number {
    return this.#interest.size;
  }

  /** @internal */
  dispatch(key: RoomKey, envelope: Envelope): void {
    if (this.#dispatching) {
      this.#pendingKeys.push(key);
      this.#pendingEnvelopes.push(envelope);
      return;
    }
    this.#dispatching = true;
    try {
      this.#deliver(key, envelope);
      for (let i = 0; i < this.#pendingKeys.length; i++) this.#deliver(this.#pendingKeys[i]!, this.#pendingEnvelopes[i]!);
    } finally {
      this.#dispatching = false;
      this.#pendingKeys.length = 0;
      this.#pendingEnvelopes.length = 0;
    }
  }

  #deliver(key: RoomKey, envelope: Envelope): void {
    const nodes = this.#interest.get(key);
    if (this.#tenantInterest.size > 0) {
      const wide = this.#tenantInterest.get(tenantTokenOfKey(key));
      if (wide !== undefined) {
        // Once per node: the nodes with a tenant-wide interest, then those with only the room's.
        for (let i = 0; i < wide.length; i++) wide[i]!.receive(key, envelope, true);
        if (nodes !== undefined) for (let i = 0; i < nodes.length; i++) if (!wide.includes(nodes[i]!)) nodes[i]!.receive(key, envelope);
        return;
      }
    }
    if (nodes === undefined) return;
    for (let i = 0; i < nodes.length; i++) nodes[i]!.receive(key, envelope);
  }

  /** @internal */
  addPlane(plane: MemoryControlPlane): void {
    if (!this.#planes.includes(plane)) this.#planes = [...this.#planes, plane];
  }

  /** @internal */
  removePlane(plane: MemoryControlPlane): void {
    this.#planes = this.#planes.filter((p) => p !== plane);
  }

  /** @internal */
  broadcast(topic: string, data: Uint8Array): void {
    if (this.#broadcasting) {
      this.#pendingTopics.push(topic);
      this.#pendingData.push(data);
      return;
    }
    this.#broadcasting = true;
    try {
      this.#broadcastNow(topic, data);
      for (let i = 0; i < this.#pendingTopics.length; i++) this.#broadcastNow(this.#pendingTopics[i]!, this.#pendingData[i]!);
    } finally {
      this.#broadcasting = false;
      this.#pendingTopics.length = 0;
      this.#pendingData.length = 0;
    }
  }

  #broadcastNow(topic: string, data: Uint8Array): void {
    const planes = this.#planes;
    for (let i = 0; i < planes.length; i++) planes[i]!.receive(topic, data);
  }
}

/** Options of `new MemoryBus(options)`. */
export interface MemoryBusOptions {
  /** Nodes sharing a hub see each other's publishes. @default a new hub of its own */
  hub?: MemoryBusHub;
  /** Called with any error a handler throws; delivery to the other handlers and nodes goes on. @default rethrowHandlerError */
  onHandlerError?: HandlerErrorReporter;
}

function closedError(what: string): BackendUnavailableError {
  return new BackendUnavailableError(`${what} is closed`);
}

/**
 * The in-process bus: one node. Envelopes are handed to handlers by reference (never copied), so handlers must not
 * mutate them. `publish` resolves after every interested node of the hub ran its handlers.
 */
export class MemoryBus implements Bus {
  /** The hub this node delivers through (the one from the options, or its own). */
  readonly hub: MemoryBusHub;
  readonly #keys = new Set<RoomKey>();
  readonly #tenants = new Set<string>();
  #handlers: readonly EnvelopeHandler[] = [];
  readonly #onHandlerError: HandlerErrorReporter;
  #closed = false;

  constructor(options: MemoryBusOptions = {}) {
    this.hub = options.hub ?? new MemoryBusHub();
    this.#onHandlerError = options.onHandlerError ?? rethrowHandlerError;
  }

  subscribe(key: RoomKey): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("bus"));
    this.#keys.add(key);
    this.hub.addInterest(key, this);
    return DONE;
  }

  unsubscribe(key: RoomKey): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("bus"));
    if (this.#keys.delete(key)) this.hub.removeInterest(key, this);
    return DONE;
  }

  subscribeTenant(tenant: string): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("bus"));
    const token = escapeToken(tenant);
    this.#tenants.add(token);
    this.hub.addTenantInterest(token, this);
    return DONE;
  }

  unsubscribeTenant(tenant: string): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("bus"));
    const token = escapeToken(tenant);
    if (this.#tenants.delete(token)) this.hub.removeTenantInterest(token, this);
    return DONE;
  }

  publish(key: RoomKey, envelope: Envelope): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("bus"));
    this.hub.dispatch(key, envelope);
    return DONE;
  }

  publishNow(key: RoomKey, envelope: Envelope): void {
    if (this.#closed) throw closedError("bus");
    this.hub.dispatch(key, envelope);
  }

  onEnvelope(handler: EnvelopeHandler): Unsubscribe {
    this.#handlers = [...this.#handlers, handler];
    return () => {
      this.#handlers = this.#handlers.filter((h) => h !== handler);
    };
  }

  /** Escaped tenant tokens this node has a tenant-wide interest in (wildcard subscriptions). */
  get tenantSubscriptions(): ReadonlySet<string> {
    return this.#tenants;
  }

  /** Keys this node is subscribed to. */
  get subscriptions(): ReadonlySet<RoomKey> {
    return this.#keys;
  }

  /** @internal Called by the hub for each envelope of a key this node was interested in when dispatch began. */
  receive(key: RoomKey, envelope: Envelope, tenantWide = false): void {
    if (this.#closed || (!tenantWide && !this.#keys.has(key))) return;
    const handlers = this.#handlers;
    for (let i = 0; i < handlers.length; i++) {
      try {
        handlers[i]!(key, envelope);
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  close(): Promise<void> {
    if (this.#closed) return DONE;
    this.#closed = true;
    for (const key of this.#keys) this.hub.removeInterest(key, this);
    this.#keys.clear();
    for (const token of this.#tenants) this.hub.removeTenantInterest(token, this);
    this.#tenants.clear();
    this.#handlers = [];
    return DONE;
  }
}

/** Options of `new MemoryControlPlane(options)`. */
export interface MemoryControlPlaneOptions {
  /** Planes sharing a hub receive each other's broadcasts. @default a new hub of its own */
  hub?: MemoryBusHub;
  /**
   * Called with any error a handler throws; delivery to the other handlers and planes goes on.
   * @default rethrowHandlerError
   */
  onHandlerError?: HandlerErrorReporter;
}

/** The in-process control plane: every plane of the hub, the sender included, gets each broadcast once, in order. */
export class MemoryControlPlane implements ControlPlane {
  /** The hub this plane broadcasts through (the one from the options, or its own). */
  readonly hub: MemoryBusHub;
  #handlers: readonly BroadcastHandler[] = [];
  readonly #onHandlerError: HandlerErrorReporter;
  #closed = false;

  constructor(options: MemoryControlPlaneOptions = {}) {
    this.hub = options.hub ?? new MemoryBusHub();
    this.#onHandlerError = options.onHandlerError ?? rethrowHandlerError;
    this.hub.addPlane(this);
  }

  broadcast(topic: string, data: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("control plane"));
    this.hub.broadcast(topic, data);
    return DONE;
  }

  onBroadcast(handler: BroadcastHandler): Unsubscribe {
    this.#handlers = [...this.#handlers, handler];
    return () => {
      this.#handlers = this.#handlers.filter((h) => h !== handler);
    };
  }

  /** @internal */
  receive(topic: string, data: Uint8Array): void {
    if (this.#closed) return;
    const handlers = this.#handlers;
    for (let i = 0; i < handlers.length; i++) {
      try {
        handlers[i]!(topic, data);
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.hub.removePlane(this);
      this.#handlers = [];
    }
    return DONE;
  }
}
