/**
 * The one frame type of the ArqonBus wire contract (proto/arqon/v1/arqon.proto), in the shape every package handles.
 *
 * Both codecs decode to this and encode from it. A frame is canonical when every field holding its default value
 * ("", 0, false, empty list or map) is absent; the codecs only ever produce canonical frames, which is what makes
 * JSON → frame → protobuf → frame → JSON an identity.
 */

/** Frame types in wire order; the index of each name is its protobuf enum number. */
export const FRAME_TYPES = [
  "unspecified",
  "hello",
  "welcome",
  "subscribe",
  "subscribed",
  "unsubscribe",
  "unsubscribed",
  "publish",
  "ack",
  "message",
  "presence_join",
  "presence_leave",
  "presence_diff",
  "presence_list",
  "presence",
  "presence_set",
  "state_get",
  "state",
  "state_set",
  "state_changed",
  "command",
  "response",
  "history",
  "history_page",
  "error",
  "ping",
  "pong",
  "auth",
  "auth_ok",
  "rpc",
  "rpc_result",
] as const;

/** The type of a frame: one of `FRAME_TYPES` except "unspecified" (which no decoded frame carries). */
export type FrameType = Exclude<(typeof FRAME_TYPES)[number], "unspecified">;

/** Frame types a client may send. Anything else arriving from a client is `ARQ_FRAME_UNEXPECTED`. */
export const CLIENT_FRAME_TYPES: ReadonlySet<FrameType> = new Set<FrameType>([
  "hello",
  "subscribe",
  "unsubscribe",
  "publish",
  "presence_list",
  "presence_set",
  "state_get",
  "state_set",
  "command",
  "history",
  "ping",
  "pong",
  "auth",
  "rpc",
]);

/** How a frame's `payload` is read: "json" is UTF-8 JSON text of any JSON value, "binary" is opaque bytes. */
export type PayloadFormat = "json" | "binary";

/**
 * A point in a room's history. Offsets grow by one per message with no gaps inside one epoch; the epoch changes when
 * the room's history was lost, which makes every older position meaningless.
 */
export interface Position {
  /** Offset of the last message seen; offsets start at 1, so 0 means "before the first message". */
  offset: number;
  /** The room's history epoch the offset belongs to; send it back exactly as the server gave it. */
  epoch: string;
}

/** Why a request failed: the `error` of an `error` frame or of a `response` with status "error". */
export interface ErrorInfo {
  /** Stable code from docs/errors.md, e.g. "ARQ_ROOM_INVALID"; match on this. */
  code: string;
  /** Human-readable explanation; may change between versions. */
  message: string;
  /** `true` when the same request may succeed if sent again later; absent otherwise. */
  retryable?: boolean;
}

/** One entry of a room's presence set. */
export interface Member {
  /** Id of the connection (the `clientId` its `welcome` announced). */
  clientId?: string;
  /** The connection's user: its token's `sub`. */
  userId?: string;
  /** UTF-8 JSON of the connection's presence metadata. */
  info?: Uint8Array;
  /** When the member joined the room, in epoch milliseconds. */
  joinedAt?: number;
  /** When the room presents one entry per user: how many of that user's connections are in it. */
  connections?: number;
}

/** One key of a room's state map, as written by `state_set` or read from `state`, `subscribed` and `state_changed`. */
export interface StateEntry {
  /** The state key: 1-128 characters of letters, digits and `_ - . : / @`. */
  key: string;
  /** UTF-8 JSON. */
  value?: Uint8Array;
  /** The key's version: 1 after its first write, one more per write. */
  version?: number;
  /** Compare-and-set on state_set: write only if the current version equals this; 0 means "key must not exist". */
  ifVersion?: number;
  /** In `state_set`: delete the key (no `value` needed); in `state_changed`: the key was deleted. */
  deleted?: boolean;
  /** Time of the last write, in epoch milliseconds. */
  updatedAt?: number;
  /** The token `sub` of the last writer. */
  updatedBy?: string;
}

/** The limits a connection runs under, announced by the server in `welcome`. */
export interface Limits {
  /** Largest payload of one publish (or state value), in bytes; larger ones get `ARQ_PAYLOAD_TOO_LARGE`. */
  maxPayloadBytes?: number;
  /** Largest inbound WebSocket message, in bytes; a larger one closes the connection with 1009. */
  maxFrameBytes?: number;
  /** Rooms one connection may be subscribed to at once; beyond it `ARQ_TOO_MANY_SUBSCRIPTIONS`. */
  maxSubscriptions?: number;
  /** Sustained publishes per second allowed to the connection (token-bucket refill rate). */
  publishRatePerSecond?: number;
  /** Publishes the connection may send in a burst above the sustained rate (token-bucket size). */
  publishBurst?: number;
  /** Interval of the server's WebSocket-level pings, in milliseconds. */
  pingIntervalMs?: number;
  /** Time within which a ping must be answered before the connection is dropped, in milliseconds. */
  pongTimeoutMs?: number;
  /** Largest presence metadata (`info`, UTF-8 JSON) of one connection, in bytes. */
  maxPresenceInfoBytes?: number;
  /** Bytes that may queue for the connection's socket before it is closed as a slow consumer (4000). */
  maxPendingBytes?: number;
}

/** A history read: which messages of a room to return. Every bound is inclusive; an absent bound is unbounded. */
export interface HistoryQuery {
  /** First offset to return (inclusive). */
  fromOffset?: number;
  /** Last offset to return (inclusive); absent means up to the newest message. */
  toOffset?: number;
  /** Most messages in the page; the server caps it. */
  limit?: number;
  /** Page backwards, newest first, from `toOffset` (or the newest message). */
  reverse?: boolean;
  /** Only messages received at or after this time, in epoch milliseconds. */
  fromTs?: number;
  /** Only messages received at or before this time, in epoch milliseconds. */
  toTs?: number;
  /** Only messages of this timeline (their `x-twist-id` header). */
  twistId?: string;
}

/** What CASIL content inspection decided about a delivered message (the server attaches it to redacted messages). */
export interface Inspection {
  /** The decision: "allow", "redact" or "block". */
  decision?: string;
  /** The policy's reason code, e.g. "CASIL_POLICY_REDACTED". */
  reasonCode?: string;
  /** What the inspector noticed, e.g. "contains_probable_secret". */
  flags?: string[];
  /** Version of the CASIL policy that decided. */
  policyVersion?: number;
}

/**
 * One frame of the wire contract, in either direction. Which fields are set depends on `type` (see
 * docs/protocol.md); a canonical frame leaves out every field holding its default value.
 */
export interface Frame {
  /** What the frame is; it decides which of the other fields carry meaning. */
  type: FrameType;
  /** Message id: assigned by the server on publish; on `message` and on the publish's `ack`. */
  id?: string;
  /** Set by the client on a request and echoed on its reply or `error`; lets the client match them up. */
  requestId?: string;
  /** Informational on the wire: the server always uses the tenant of the connection's token. */
  tenant?: string;
  /** The room a request or event is about. */
  room?: string;
  /** The message body (publish, message, a `response` result): UTF-8 JSON, raw bytes when binary, or a delta. */
  payload?: Uint8Array;
  /** Absent means "json". */
  payloadFormat?: PayloadFormat;
  /** Message headers, names lowercase: `x-timestamp` (server receive time, ms) and `x-twist-id` (timeline). */
  headers?: Record<string, string>;
  /** Position in the room: of a message, of the room after a publish (`ack`, `subscribed`), or a state revision. */
  offset?: number;
  /** The room's history epoch that `offset` belongs to (see {@link Position}). */
  epoch?: string;
  /** subscribe: recover by replaying the messages after this position. */
  since?: Position;
  /** subscribed: whether every missed message after `since` was replayed; absent when no recovery was asked. */
  recovered?: boolean;
  /** publish: a key under which the message is delivered at most once within the server's dedupe window. */
  idempotencyKey?: string;
  /** subscribe: opt in to delta messages; message: `payload` is a fossil delta against the previous payload. */
  delta?: boolean;
  /** error, and `response` with status "error": why the request failed. */
  error?: ErrorInfo;
  /** Members: the room's list (`subscribed`, `presence`), or who joined or left (`presence_join`, `presence_leave`). */
  members?: Member[];
  /** presence_diff: the members that joined during the coalescing window. */
  joined?: Member[];
  /** presence_diff: the members that left during the coalescing window. */
  left?: Member[];
  /** State entries: written by `state_set`, the map in `state`/`subscribed`, or what changed in `state_changed`. */
  state?: StateEntry[];
  /** command and response: the command name, `op.<name>.<verb>`. */
  command?: string;
  /** UTF-8 JSON. */
  args?: Uint8Array;
  /** response: "ok" (result in `payload`) or "error" (reason in `error`). */
  status?: string;
  /** auth: the new token (JWT) that replaces the connection's, for the same subject and tenant. */
  token?: string;
  /** welcome: the id the server gave this connection. */
  clientId?: string;
  /** welcome: the server's version; hello: the client's name and version. */
  version?: string;
  /** welcome: the limits this connection runs under. */
  limits?: Limits;
  /** publish: deliver the message to the publishing connection too (by default it does not receive its own). */
  echo?: boolean;
  /** message: server receive time; state_get: read the state as of this time. Epoch milliseconds. */
  timestamp?: number;
  /** Why: `subscribed` with `recovered: false`, `unsubscribed` ended by the server, or `presence_leave`. */
  reason?: string;
  /** history: which messages to read. */
  history?: HistoryQuery;
  /** history_page: the messages of the page, as `message` frames. */
  messages?: Frame[];
  /** message: the token `sub` of the publisher. */
  sender?: string;
  /** message: what CASIL content inspection decided about it, when it changed the payload. */
  inspection?: Inspection;
  /** welcome and auth_ok: when the connection's token expires, in epoch milliseconds; absent when it never does. */
  expiresAt?: number;
  /** presence_set: the new presence metadata (in `info.info`); subscribe: the initial metadata. */
  info?: Member;
  /** welcome: the wire protocol version in force on this connection ("1.0" unless the client asked for "1.1"); hello: the one the client asks for. */
  protocol?: string;
  /**
   * ack of a publish: an earlier publish with the same `idempotencyKey` was stored within the dedupe window; this one
   * was not stored or delivered again, and `id`/`offset` are those of the first.
   */
  duplicate?: boolean;
  /** rpc: the method the application backend is asked to run (1-128 characters of letters, digits and `_ - . : /`). */
  method?: string;
  /** rpc: the call's argument; rpc_result: the backend's answer. UTF-8 JSON. */
  data?: Uint8Array;
}

/**
 * Well-known header names (always lowercase on the wire). `x-twist-id` names a message's timeline: set by the
 * publisher (1-64 characters of letters, digits and `_ - . :`), else the server sets the default timeline "main".
 */
export const HEADER_TWIST_ID = "x-twist-id";
/** Header the server sets on every delivered message: its receive time in epoch milliseconds, as a decimal string. */
export const HEADER_TIMESTAMP = "x-timestamp";

/**
 * The timeline a message is on when its publisher named none. Protocol 1.0 carries it as the `x-twist-id` header of
 * every message; protocol 1.1 leaves it out of the wire and the SDKs put it back (see {@link expandMessage}).
 */
export const DEFAULT_TWIST_ID = "main";

/** Every wire protocol version this build speaks, oldest first (docs/protocol.md, Versioning). */
export const PROTOCOL_VERSIONS = ["1.0", "1.1"] as const;

/** A wire protocol version this build speaks. */
export type ProtocolVersion = (typeof PROTOCOL_VERSIONS)[number];

/**
 * The protocol version of a connection that asks for none: "1.0", for as long as the major version is 1, so that
 * wscat users and older clients keep working unchanged. A client asks for another with `?protocol=` or `hello`.
 */
export const PROTOCOL_VERSION: ProtocolVersion = "1.0";

/** The newest protocol version this build speaks: the one the SDKs ask for. */
export const LATEST_PROTOCOL_VERSION: ProtocolVersion = "1.1";

/** Whether `value` names a protocol version this build speaks. */
export function isProtocolVersion(value: unknown): value is ProtocolVersion {
  return value === "1.0" || value === "1.1";
}
