import { DEFAULT_TWIST_ID, HEADER_TIMESTAMP, HEADER_TWIST_ID, type Frame } from "../frame/types.js";

/**
 * The keys of the protocol 1.1 compact JSON message object, short key → `Frame` field. `m` (the room) comes first
 * and marks the object as a message; there is no `type` key. docs/protocol.md has the same table.
 */
export const COMPACT_MESSAGE_KEYS = {
  /** `room`: always first; it marks the object as a message. */
  m: "room",
  /** `id`: the message id. */
  i: "id",
  /** `offset`: the message's offset in the room. */
  o: "offset",
  /** `epoch`: only when it differs from the one the subscription was last told. */
  e: "epoch",
  /** `timestamp`: server receive time, epoch milliseconds. */
  t: "timestamp",
  /** `sender`: the publisher's `sub`. */
  s: "sender",
  /** `headers`: those that are not defaults (`x-timestamp`, `x-twist-id` "main"). */
  h: "headers",
  /** `inspection`: CASIL's decision. */
  c: "inspection",
  /** `delta`: `p` is a delta against the previous payload. */
  d: "delta",
  /** `payloadFormat`: "binary" when `p` is base64 bytes. */
  f: "payloadFormat",
  /** `payload`: a JSON value, or base64 text when binary; always last. */
  p: "payload",
} as const satisfies Record<string, keyof Frame>;

/** `Frame` fields a compact message object can carry (besides `type`, which is always "message"). */
export const COMPACT_FIELDS: ReadonlySet<string> = new Set<string>(["type", ...Object.values(COMPACT_MESSAGE_KEYS)]);

/** Whether a header of a message is one protocol 1.1 leaves out: `x-timestamp` equal to `timestamp`, `x-twist-id` "main". */
export function isDefaultHeader(name: string, value: string, timestamp: number | undefined): boolean {
  if (name === HEADER_TIMESTAMP) return timestamp !== undefined && value === String(timestamp);
  return name === HEADER_TWIST_ID && value === DEFAULT_TWIST_ID;
}

/** A message's headers without those protocol 1.1 leaves out; undefined when none is left. */
export function headers11(frame: Frame): Record<string, string> | undefined {
  const headers = frame.headers;
  if (headers === undefined) return undefined;
  let out: Record<string, string> | undefined;
  for (const name in headers) {
    const value = headers[name]!;
    if (isDefaultHeader(name, value, frame.timestamp)) continue;
    (out ??= {})[name] = value;
  }
  return out;
}

/**
 * A message frame received on a protocol 1.1 connection, as protocol 1.0 carries it: `epoch` (when the frame has
 * none) is the epoch the subscription was last told (its `subscribed` reply, the list frame of a `messages` list, or
 * the last message that carried one), `x-timestamp` is restored from `timestamp`, and `x-twist-id` is "main" when the
 * message names no timeline. A frame of another type, or one that lacks nothing, comes back as it is.
 */
export function expandMessage(frame: Frame, epoch: string | undefined): Frame {
  if (frame.type !== "message") return frame;
  const headers = frame.headers;
  const needsTimestamp = frame.timestamp !== undefined && headers?.[HEADER_TIMESTAMP] === undefined;
  const needsTwist = headers?.[HEADER_TWIST_ID] === undefined;
  const needsEpoch = frame.epoch === undefined && epoch !== undefined && epoch !== "";
  if (!needsTimestamp && !needsTwist && !needsEpoch) return frame;
  const out: Frame = Object.assign({}, frame);
  if (needsEpoch) out.epoch = epoch;
  if (needsTimestamp || needsTwist) {
    const restored: Record<string, string> = Object.assign({}, headers);
    if (needsTimestamp) restored[HEADER_TIMESTAMP] = String(frame.timestamp);
    if (needsTwist) restored[HEADER_TWIST_ID] = DEFAULT_TWIST_ID;
    out.headers = restored;
  }
  return out;
}
