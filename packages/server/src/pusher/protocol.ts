import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { jsonBytes, roomNameProblem, type Frame } from "@arqon/core";

/** The message header that carries a Pusher event name on an ArqonBus message (absent: the event is "message"). */
export const PUSHER_EVENT_HEADER = "event";
/** The event name a native message without an `event` header has on the Pusher face. */
export const DEFAULT_EVENT = "message";
/** Longest event name (the Pusher limit). */
export const MAX_EVENT_NAME = 200;
/** Longest channel name (the Pusher limit). */
export const MAX_CHANNEL_NAME = 164;

/** Pusher's channel characters minus `,` and `;`, which room names do not allow. */
const CHANNEL_RE = /^[A-Za-z0-9_\-=@.]+$/;
/** Socket ids as Pusher defines them: two integers joined by a dot. */
const SOCKET_ID_RE = /^\d{1,20}\.\d{1,20}$/;

/** Why `channel` cannot be a Pusher channel here, or undefined when it can (it is then a valid room name too). */
export function channelProblem(channel: unknown): string | undefined {
  if (typeof channel !== "string" || channel.length === 0) return "channel must be a non-empty string";
  if (channel.length > MAX_CHANNEL_NAME) return `channel is longer than ${MAX_CHANNEL_NAME} characters`;
  if (!CHANNEL_RE.test(channel)) return "channel may contain only letters, digits and _ - = @ .";
  return roomNameProblem(channel);
}

/** The prefix of a signed-in user's channel (`pusher:signin`): `#server-to-user-{id}`. */
export const USER_CHANNEL_PREFIX = "#server-to-user-";
/** The room of a user's channel: `pusher-user/{id}` (a name no Pusher channel maps to, as channels have no "/"). */
export const USER_ROOM_PREFIX = "pusher-user/";

/**
 * The room a Pusher channel maps to, or the reason it maps to none: a channel is the room of the same name, except a
 * user's channel `#server-to-user-{id}`, which is the room `pusher-user/{id}`.
 */
export function roomOfChannel(channel: unknown): { room: string } | { problem: string } {
  if (typeof channel === "string" && channel.startsWith(USER_CHANNEL_PREFIX)) {
    const id = channel.slice(USER_CHANNEL_PREFIX.length);
    const problem = userIdProblem(id);
    return problem ? { problem } : { room: USER_ROOM_PREFIX + id };
  }
  const problem = channelProblem(channel);
  return problem ? { problem } : { room: channel as string };
}

/** Why `id` cannot be a signed-in user's id here (its room must be a valid room name), or undefined. */
export function userIdProblem(id: unknown): string | undefined {
  if (typeof id !== "string" || id.length === 0) return "the user id must be a non-empty string";
  if (id.length > 160) return "the user id is longer than 160 characters";
  if (roomNameProblem(USER_ROOM_PREFIX + id)) return "the user id may contain only letters, digits and _ - . : @ / = + !";
  return undefined;
}

/** The kind of a channel, from its prefix. */
export type ChannelKind = "public" | "private" | "presence" | "user";

/** `private-` (including `private-encrypted-`), `presence-`, `#server-to-user-`, else public. */
export function channelKind(channel: string): ChannelKind {
  if (channel.startsWith(USER_CHANNEL_PREFIX)) return "user";
  if (channel.startsWith("presence-")) return "presence";
  if (channel.startsWith("private-")) return "private";
  return "public";
}

/** Whether `id` looks like a Pusher socket id (`123.456`). */
export function isSocketId(id: unknown): id is string {
  return typeof id === "string" && SOCKET_ID_RE.test(id);
}

/** Checks a user authentication (`auth` of `pusher:signin`): `<key>:<hex HMAC-SHA256 of socket_id::user::user_data>`. */
export function userAuthValid(key: string, secret: string, socketId: string, auth: unknown, userData: string): boolean {
  if (typeof auth !== "string" || auth.length > 512) return false;
  const colon = auth.indexOf(":");
  if (colon < 0 || !safeEqual(auth.slice(0, colon), key)) return false;
  return safeEqual(auth.slice(colon + 1), hmacHex(secret, `${socketId}::user::${userData}`));
}

/** HMAC-SHA256 of `text` under `secret`, hex. */
export function hmacHex(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text, "utf8").digest("hex");
}

/** MD5 of `body`, hex (`body_md5` of the HTTP API). */
export function md5Hex(body: Buffer | string): string {
  return createHash("md5").update(body).digest("hex");
}

/** Compares two strings in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks a channel authorization (`auth` of `pusher:subscribe`): `<key>:<hex HMAC-SHA256 of socket_id:channel[:channel_data]>`.
 */
export function channelAuthValid(key: string, secret: string, socketId: string, channel: string, auth: unknown, channelData?: string): boolean {
  if (typeof auth !== "string" || auth.length > 512) return false;
  const colon = auth.indexOf(":");
  if (colon < 0 || !safeEqual(auth.slice(0, colon), key)) return false;
  const signed = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return safeEqual(auth.slice(colon + 1), hmacHex(secret, signed));
}

/** One Pusher frame as JSON text: `{"event","channel"?,"data","user_id"?}` (data is a string, as the protocol sends it). */
export function pusherFrame(event: string, data: string, channel?: string, userId?: string): string {
  let out = `{"event":${JSON.stringify(event)}`;
  if (channel !== undefined) out += `,"channel":${JSON.stringify(channel)}`;
  out += `,"data":${JSON.stringify(data)}`;
  if (userId !== undefined) out += `,"user_id":${JSON.stringify(userId)}`;
  return out + "}";
}

/**
 * The ArqonBus payload of a Pusher event's data: a string that is JSON text is stored as that JSON (byte for byte), any
 * other string as a JSON string, and a non-string value (a client event's object) as its JSON.
 */
export function payloadOfData(data: unknown): Uint8Array {
  if (typeof data === "string") {
    try {
      JSON.parse(data);
      return Buffer.from(data, "utf8");
    } catch {
      return jsonBytes(data);
    }
  }
  return jsonBytes(data === undefined ? null : data);
}

const QUOTE = 0x22;

/**
 * The Pusher `data` string of an ArqonBus message: a JSON string payload as that string, other JSON as its text, a
 * binary payload as base64.
 */
export function dataOfMessage(frame: Frame): string {
  const payload = frame.payload;
  if (payload === undefined) return "";
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (frame.payloadFormat === "binary") return bytes.toString("base64");
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  const text = bytes.toString("utf8");
  if (bytes[i] === QUOTE) {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === "string") return value;
    } catch {
      // not JSON after all: sent as it is
    }
  }
  return text;
}

/** The Pusher event name of an ArqonBus message (its `event` header, else "message"). */
export function eventOfMessage(frame: Frame): string {
  return frame.headers?.[PUSHER_EVENT_HEADER] ?? DEFAULT_EVENT;
}

/** Close and error codes of the Pusher protocol that this server uses. */
export const PusherCode = {
  /** The app key is unknown. */
  APP_UNKNOWN: 4001,
  /** The app's tenant is disabled. */
  APP_DISABLED: 4003,
  /** The tenant's connection quota is used up. */
  OVER_QUOTA: 4004,
  /** No WebSocket endpoint at the path. */
  PATH_NOT_FOUND: 4005,
  /** `protocol` is not a whole number. */
  VERSION_INVALID: 4006,
  /** The protocol version is not supported. */
  VERSION_UNSUPPORTED: 4007,
  /** No `protocol` query parameter. */
  VERSION_MISSING: 4008,
  /** The connection is not authorized: `pusher:signin` refused, or the user's connections terminated. */
  UNAUTHORIZED: 4009,
  /** The server is over capacity (connection limits, too many frames in flight, slow consumer): retry after a backoff. */
  OVER_CAPACITY: 4100,
  /** Reconnect now (the server is shutting down). */
  RECONNECT: 4200,
  /** No `pusher:pong` came back to the server's `pusher:ping`. */
  PONG_TIMEOUT: 4201,
  /** A client event was refused by the rate limit (a `pusher:error`, the connection stays). */
  CLIENT_EVENT_RATE_LIMIT: 4301,
} as const;
