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
] as const;

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
]);

export type PayloadFormat = "json" | "binary";

export interface Position {
  /** Offset of the last message seen; offsets start at 1, so 0 means "before the first message". */
  offset: number;
  epoch: string;
}

export interface ErrorInfo {
  code: string;
  message: string;
  retryable?: boolean;
}

export interface Member {
  clientId?: string;
  userId?: string;
  /** UTF-8 JSON of the connection's presence metadata. */
  info?: Uint8Array;
  joinedAt?: number;
  connections?: number;
}

export interface StateEntry {
  key: string;
  /** UTF-8 JSON. */
  value?: Uint8Array;
  version?: number;
  /** Compare-and-set on state_set: write only if the current version equals this; 0 means "key must not exist". */
  ifVersion?: number;
  deleted?: boolean;
  updatedAt?: number;
  updatedBy?: string;
}

export interface Limits {
  maxPayloadBytes?: number;
  maxFrameBytes?: number;
  maxSubscriptions?: number;
  publishRatePerSecond?: number;
  publishBurst?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  maxPresenceInfoBytes?: number;
  maxPendingBytes?: number;
}

export interface HistoryQuery {
  fromOffset?: number;
  toOffset?: number;
  limit?: number;
  reverse?: boolean;
  fromTs?: number;
  toTs?: number;
  twistId?: string;
}

export interface Inspection {
  decision?: string;
  reasonCode?: string;
  flags?: string[];
  policyVersion?: number;
}

export interface Frame {
  type: FrameType;
  id?: string;
  requestId?: string;
  tenant?: string;
  room?: string;
  payload?: Uint8Array;
  /** Absent means "json". */
  payloadFormat?: PayloadFormat;
  headers?: Record<string, string>;
  offset?: number;
  epoch?: string;
  since?: Position;
  recovered?: boolean;
  idempotencyKey?: string;
  delta?: boolean;
  error?: ErrorInfo;
  members?: Member[];
  joined?: Member[];
  left?: Member[];
  state?: StateEntry[];
  command?: string;
  /** UTF-8 JSON. */
  args?: Uint8Array;
  status?: string;
  token?: string;
  clientId?: string;
  version?: string;
  limits?: Limits;
  echo?: boolean;
  timestamp?: number;
  reason?: string;
  history?: HistoryQuery;
  messages?: Frame[];
  sender?: string;
  inspection?: Inspection;
  expiresAt?: number;
  info?: Member;
  protocol?: string;
}

/** Well-known header names (always lowercase on the wire). */
export const HEADER_TWIST_ID = "x-twist-id";
export const HEADER_TIMESTAMP = "x-timestamp";

/** The wire contract version this build speaks. */
export const PROTOCOL_VERSION = "1.0";
