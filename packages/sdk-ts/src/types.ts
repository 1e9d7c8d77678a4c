import type { Inspection, Limits, Position } from "@arqon/core";

/** The minimal WebSocket surface the client uses: the browser's WebSocket and `ws` both provide it. */
export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed, as in the WebSocket standard; the client sends only while 1. */
  readonly readyState: number;
  /** The subprotocol the server selected. */
  readonly protocol: string;
  /** The client sets it to "arraybuffer", so that binary frames arrive as bytes rather than a Blob. */
  binaryType: string;
  /** Sends one frame: a string as a text frame, bytes as a binary frame. */
  send(data: string | Uint8Array): void;
  /** Starts the closing handshake with an optional close code and reason. */
  close(code?: number, reason?: string): void;
  /** Called when the socket opens; the client does not use it (it waits for the server's `welcome` frame). */
  onopen: ((event: unknown) => void) | null;
  /**
   * Called with every received message; `data` is a string, an ArrayBuffer, a Uint8Array or (from `ws`) an array of
   * Buffers.
   */
  onmessage: ((event: { data: unknown }) => void) | null;
  /** Called once when the socket has closed, with the close code and reason. */
  onclose: ((event: { code: number; reason: string }) => void) | null;
  /**
   * Called on a socket error (a close follows). The client reads the HTTP status of a refused upgrade from the
   * message of `ws`'s error event.
   */
  onerror: ((event: unknown) => void) | null;
}

/**
 * A WebSocket constructor such as the browser's `WebSocket` or the `ws` package's. The client passes the URL and its
 * subprotocol list: the wire format (`arqon.v1.json` or `arqon.v1.proto`) and, unless `tokenTransport` is "query",
 * `bearer.<token>`.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A message delivered to a room subscriber (or read from history). */
export interface RoomMessage<T = unknown> {
  /** The id the server gave the message when it was published (`PublishAck.id`). */
  id: string;
  /** The room the message was published to. */
  room: string;
  /** The JSON value published, or the bytes for a binary payload (`format: "binary"`). */
  payload: T;
  /** "json" when `payload` is the parsed JSON value, "binary" when it is a Uint8Array. */
  format: "json" | "binary";
  /**
   * The message headers, names in lower case. The server sets `x-timestamp` (receive time, epoch ms) and
   * `x-twist-id` (the timeline, "main" unless the publisher set one) on every message.
   */
  headers: Record<string, string>;
  /** Position in the room's history; 0 when the server keeps no history for it. */
  offset: number;
  /** The epoch of the room's history that `offset` counts in; offsets compare only within one epoch. */
  epoch: string;
  /** Server receive time, epoch milliseconds. */
  timestamp: number;
  /** `sub` of the publisher. */
  sender?: string;
  /** Present when CASIL content inspection changed the payload: `decision` "redact", with the policy's reason code. */
  inspection?: Inspection;
}

/** What `publish` resolves with: the server's acknowledgement. */
export interface PublishAck {
  /** The id the message was given; subscribers see it as `RoomMessage.id`. */
  id: string;
  /** The message's position in the room's history; 0 when the server keeps no history for it. */
  offset: number;
  /** The epoch of the room's history that `offset` counts in. */
  epoch: string;
  /**
   * True when the server had already stored a publish with the same `idempotencyKey` (within its dedupe window): this
   * one was not delivered again, and `id`/`offset` are those of the first.
   */
  duplicate: boolean;
}

/** A member of a room's presence: a subscribed connection, or a user with `connections` of them. */
export interface PresenceMember {
  /** The member connection's id (the `clientId` its own client got in `welcome`). */
  clientId: string;
  /** The member's user: the `sub` of its token. */
  userId: string;
  /** The member's presence metadata (`setMeta`), a JSON value. */
  info?: unknown;
  /** When the member joined the room, epoch milliseconds. */
  joinedAt?: number;
  /** With one entry per user: how many of their connections are in the room. */
  connections?: number;
}

/** One entry of a room's state map. */
export interface StateValue {
  /** The stored JSON value (the raw bytes in the unlikely case that they are not JSON). */
  value: unknown;
  /** The key's version: every write or delete of it adds one. Compare-and-set writes name it as `ifVersion`. */
  version: number;
  /** When the key was last written, epoch milliseconds (server time). */
  updatedAt?: number;
  /** The `sub` of the token that last wrote the key. */
  updatedBy?: string;
}

/** One change of a room's state (the `change` event of `room.state`): a key's new value, or its deletion. */
export interface StateChange extends Partial<StateValue> {
  /** The key that changed. */
  key: string;
  /** The key was deleted (then `value` is absent). */
  deleted: boolean;
}

/** Emitted by a room each time the server confirms its subscription, first and after every reconnect. */
export interface SubscribedEvent {
  /** The room's name. */
  room: string;
  /** The room's position when the subscription started (recovered messages follow it). */
  position: Position;
  /**
   * Present when the client asked to recover from a position (`since`, and always after a reconnect when a position
   * was known): true when every missed message is delivered next, false when some were lost (see `reason`).
   */
  recovered?: boolean;
  /**
   * Why recovery was impossible: epoch_mismatch, position_ahead, retention_exceeded, too_many_missed, unavailable. Or
   * "server": the application's backend subscribed this connection (server API); the client did not ask, and does
   * not renew it after a reconnect (the backend subscribes again). See `ClientEvents.serverSubscribed`.
   */
  reason?: string;
  /** True for the automatic re-subscription after a reconnect. */
  resubscribed: boolean;
  /** The room's members when the subscription started (then kept up to date in `room.presence.current`). */
  members: PresenceMember[];
  /** The room's state map when the subscription started (then kept up to date in `room.state.current`). */
  state: Record<string, StateValue>;
}

/** What `room.history()` reads. Every bound is inclusive; 0 or absent means unbounded. */
export interface HistoryOptions {
  /** The first offset to read. */
  fromOffset?: number;
  /** The last offset to read (with `reverse`, the page starts there). */
  toOffset?: number;
  /**
   * At most this many messages, counted after the time and timeline filters. Absent, or above the server's
   * `maxHistoryPage` (1000 by default), that cap applies.
   */
  limit?: number;
  /** Read newest first, from `toOffset` (or the newest message) backwards. */
  reverse?: boolean;
  /** Only messages at or after this time, epoch milliseconds (their `x-timestamp`). */
  fromTs?: number;
  /** Only messages at or before this time, epoch milliseconds. */
  toTs?: number;
  /** Only messages of this timeline (their `x-twist-id` header; "main" unless the publisher set another). */
  twistId?: string;
}

/** One page of a room's history, as `room.history()` resolves it. */
export interface HistoryPage {
  /** The messages read, in offset order (newest first with `reverse`). */
  messages: RoomMessage[];
  /** The room's position when the page was read. */
  position: Position;
}

/**
 * How a connection reaches the server: a WebSocket, or one of the fallbacks over plain HTTP (docs/sdk-ts.md,
 * "Fallback transports"): "sse" reads the server's frames with `EventSource`, "http-stream" with a fetch stream.
 */
export type Transport = "websocket" | "sse" | "http-stream";

/** The connection is up: emitted at every `welcome` from the server, the first one and after each reconnect. */
export interface ConnectedEvent {
  /** This connection's id as the server assigned it (empty if the server sent none). */
  clientId: string;
  /** The server's version string (`welcome.version`). */
  serverVersion: string;
  /**
   * The wire protocol version in force on this connection (`welcome.protocol`): "1.1" when the client asked for it and
   * the server speaks it, "1.0" from a server that does not (the client then reads 1.0 frames).
   */
  protocol: string;
  /** The transport this connection uses (see `ArqonClientOptions.transports`). */
  transport: Transport;
  /** The server's limits for this connection (payload and frame sizes, rates, heartbeat timing); any may be absent. */
  limits: Limits;
  /** Token expiry (epoch ms) as the server sees it; undefined when the token does not expire. */
  expiresAt?: number;
  /** True when this connection replaced a lost one. */
  reconnected: boolean;
}

/** A connection that had been welcomed was lost. */
export interface DisconnectedEvent {
  /** The WebSocket close code (docs/protocol.md, Close codes), e.g. 4001 when the heartbeat found the link dead. */
  code: number;
  /** The close reason, possibly empty. */
  reason: string;
  /** Whether the client will try again (see `reconnecting`). */
  willReconnect: boolean;
}

/** The client waits `delay` ms and then makes reconnect attempt number `attempt`. */
export interface ReconnectingEvent {
  /** 1 for the first retry after a loss, growing until a connection succeeds. */
  attempt: number;
  /** Milliseconds until this attempt starts. */
  delay: number;
}

/** The client stopped for good (see the `closed` event): the close code and reason that ended it. */
export interface ClosedEvent {
  /**
   * The close code that ended it: 1000 after `close()`, else the last loss's code (4500 or 4501 for a WebSocket
   * upgrade refused with HTTP 401 or 403).
   */
  code: number;
  /** Why the client closed, e.g. "client closed" or the last close reason (with the attempts given up after). */
  reason: string;
}

/** The client's state, as one discriminated union (`client.status`, the `status` event). */
export type ClientStatus =
  | {
      /** Created, `connect()` not called yet. */
      type: "idle";
    }
  | {
      /** Fetching a token or opening the socket (first or next attempt) until `welcome`; requests are queued. */
      type: "connecting";
    }
  | ({
      /** Welcomed by the server: requests are sent at once. */
      type: "connected";
    } & ConnectedEvent)
  | ({
      /** The connection was just lost; `reconnecting` or `closed` follows. */
      type: "disconnected";
    } & DisconnectedEvent)
  | ({
      /** Waiting to retry; requests are queued until the next `welcome`. */
      type: "reconnecting";
    } & ReconnectingEvent)
  | ({
      /** Terminal until `connect()` is called again; requests are rejected. */
      type: "closed";
    } & ClosedEvent);
