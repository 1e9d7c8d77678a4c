import type { Inspection, Limits, Position } from "@arqon/core";

/** The minimal WebSocket surface the client uses: the browser's WebSocket and `ws` both provide it. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A message delivered to a room subscriber (or read from history). */
export interface RoomMessage<T = unknown> {
  id: string;
  room: string;
  /** The JSON value published, or the bytes for a binary payload (`format: "binary"`). */
  payload: T;
  format: "json" | "binary";
  headers: Record<string, string>;
  /** Position in the room's history; 0 when the server keeps no history for it. */
  offset: number;
  epoch: string;
  /** Server receive time, epoch milliseconds. */
  timestamp: number;
  /** `sub` of the publisher. */
  sender?: string;
  inspection?: Inspection;
}

/** What `publish` resolves with: the server's acknowledgement. */
export interface PublishAck {
  id: string;
  offset: number;
  epoch: string;
}

export interface PresenceMember {
  clientId: string;
  userId: string;
  /** The member's presence metadata (`setMeta`), a JSON value. */
  info?: unknown;
  joinedAt?: number;
  /** With one entry per user: how many of their connections are in the room. */
  connections?: number;
}

export interface StateValue {
  value: unknown;
  version: number;
  updatedAt?: number;
  updatedBy?: string;
}

export interface StateChange extends Partial<StateValue> {
  key: string;
  /** The key was deleted (then `value` is absent). */
  deleted: boolean;
}

/** Emitted by a room each time the server confirms its subscription, first and after every reconnect. */
export interface SubscribedEvent {
  room: string;
  /** The room's position when the subscription started (recovered messages follow it). */
  position: Position;
  /**
   * Present when the client asked to recover from a position (`since`, and always after a reconnect when a position
   * was known): true when every missed message is delivered next, false when some were lost (see `reason`).
   */
  recovered?: boolean;
  /** Why recovery was impossible: epoch_mismatch, position_ahead, retention_exceeded, too_many_missed, unavailable. */
  reason?: string;
  /** True for the automatic re-subscription after a reconnect. */
  resubscribed: boolean;
  members: PresenceMember[];
  state: Record<string, StateValue>;
}

export interface HistoryOptions {
  fromOffset?: number;
  toOffset?: number;
  limit?: number;
  reverse?: boolean;
  fromTs?: number;
  toTs?: number;
  twistId?: string;
}

export interface HistoryPage {
  messages: RoomMessage[];
  /** The room's position when the page was read. */
  position: Position;
}

export interface ConnectedEvent {
  clientId: string;
  serverVersion: string;
  protocol: string;
  limits: Limits;
  /** Token expiry (epoch ms) as the server sees it; undefined when the token does not expire. */
  expiresAt?: number;
  /** True when this connection replaced a lost one. */
  reconnected: boolean;
}

export interface DisconnectedEvent {
  code: number;
  reason: string;
  /** Whether the client will try again (see `reconnecting`). */
  willReconnect: boolean;
}

export interface ReconnectingEvent {
  /** 1 for the first retry after a loss, growing until a connection succeeds. */
  attempt: number;
  /** Milliseconds until this attempt starts. */
  delay: number;
}

export interface ClosedEvent {
  code: number;
  reason: string;
}

/** The client's state, as one discriminated union (`client.status`, the `status` event). */
export type ClientStatus =
  | { type: "idle" }
  | { type: "connecting" }
  | ({ type: "connected" } & ConnectedEvent)
  | ({ type: "disconnected" } & DisconnectedEvent)
  | ({ type: "reconnecting" } & ReconnectingEvent)
  | ({ type: "closed" } & ClosedEvent);
