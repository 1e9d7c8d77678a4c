import type { Frame } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";

/** What travels on the bus: a room frame (message, presence_*, state_changed) and routing facts about it. */
export interface Envelope {
  /** The frame as every subscriber should see it (offset, epoch, id, headers already assigned). */
  frame: Frame;
  /**
   * The frame's protobuf encoding, when the producer already has it. Backends that cross process boundaries carry
   * these bytes, so the receiving node encodes nothing for protobuf clients.
   */
  encoded?: Uint8Array;
  /** Connection that published it; excluded from delivery on its own node unless `echo` is set. */
  originClientId?: string;
  /** The publisher asked for its own message (`echo: true`): deliver it to `originClientId` too. */
  echo?: boolean;
}

/** Removes the handler it was returned for; calling it again does nothing. */
export type Unsubscribe = () => void;

/**
 * Delivers envelopes between gateway nodes (in-process: between connections of one process).
 *
 * Guarantees every backend keeps, checked by `describeBusContract`:
 * - Interest: a node receives envelopes only for keys it subscribed to (at least once and not yet unsubscribed).
 * - Order: per key, envelopes arrive in the order `publish` was called on one node.
 * - At-most-once: an envelope is delivered to a node at most once; nothing is buffered for absent interest.
 * - Isolation: keys are opaque; an envelope published to one key never reaches a handler for another.
 * - `publish` resolves once the backend accepted the envelope (for the in-memory bus: after local delivery).
 * - `subscribe`/`unsubscribe` are reference-free and idempotent: one subscribe per key per node is enough, repeating
 *   it is harmless, and one unsubscribe removes the interest.
 */
export interface Bus {
  /** Starts receiving envelopes published to `key` (from every node, this one included); idempotent. */
  subscribe(key: RoomKey): Promise<void>;
  /** Stops receiving envelopes of `key`; idempotent. */
  unsubscribe(key: RoomKey): Promise<void>;
  /** Sends `envelope` to every node subscribed to `key`; resolves once the backend accepted it. */
  publish(key: RoomKey, envelope: Envelope): Promise<void>;
  /**
   * Optional, for buses that deliver inside the call (the in-memory one): `publish` without a promise. It has the
   * same effect and order as `publish`, returns once every handler ran, and throws what `publish` would reject with.
   * The gateway uses it when present, so a publish to an in-process room costs no promise.
   */
  publishNow?(key: RoomKey, envelope: Envelope): void;
  /**
   * Optional: also receive the envelopes of every room of `tenant` (the node has wildcard subscriptions there);
   * idempotent. A node gets each envelope once, however many of its subscriptions cover the key. Without it the
   * gateway refuses pattern subscriptions with ARQ_FEATURE_DISABLED.
   */
  subscribeTenant?(tenant: string): Promise<void>;
  /** Drops the tenant-wide interest of {@link Bus.subscribeTenant} (the per-room ones stay); idempotent. */
  unsubscribeTenant?(tenant: string): Promise<void>;
  /** Registers the node's handler; returns a function that removes it. */
  onEnvelope(handler: (key: RoomKey, envelope: Envelope) => void): Unsubscribe;
  /**
   * Drops every subscription and handler; `subscribe` and `publish` then reject with BackendUnavailableError.
   * Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Node-wide broadcasts that are not room traffic: CASIL policy reloads, admin commands, kicks.
 * Every node, the sender included, receives every broadcast once, in send order per topic.
 */
export interface ControlPlane {
  /** Sends `data` on `topic` to every node, the sender included. */
  broadcast(topic: string, data: Uint8Array): Promise<void>;
  /**
   * Resolves once every broadcast sent before it has reached the backend (NATS: the server acknowledged them), so
   * that a broadcast sent by another node after that is received after them. Optional: without it, `broadcast`
   * resolving is taken as enough.
   */
  flush?(): Promise<void>;
  /** Registers a handler for every broadcast of every topic; returns a function that removes it. */
  onBroadcast(handler: (topic: string, data: Uint8Array) => void): Unsubscribe;
  /** Stops receiving and drops the handlers; `broadcast` then rejects with BackendUnavailableError. Idempotent. */
  close(): Promise<void>;
}
