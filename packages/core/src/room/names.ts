import { RoomNameError, ArqonError, ErrorCode } from "../errors.js";

/**
 * A tenant-scoped routing key: `<tenant>.<room>` with both parts escaped so that the key is injective and every key
 * is a valid NATS subject suffix of exactly two tokens. Treat it as opaque outside this module.
 */
export type RoomKey = string & { readonly __roomKey: unique symbol };

export const MAX_ROOM_LENGTH = 200;
export const MAX_TENANT_LENGTH = 64;

/** Room names: 1-200 characters of letters, digits and `_ - . : @ / = + !`. */
const ROOM_RE = /^[A-Za-z0-9_\-.:@/=+!]+$/;
/** Tenant ids: 1-64 characters of letters, digits, `_` and `-`. */
const TENANT_RE = /^[A-Za-z0-9_-]+$/;

/** Returns undefined when `room` is valid, else the reason. */
export function roomNameProblem(room: unknown): string | undefined {
  if (typeof room !== "string") return "room must be a string";
  if (room.length === 0) return "room must not be empty";
  if (room.length > MAX_ROOM_LENGTH) return `room is longer than ${MAX_ROOM_LENGTH} characters`;
  if (!ROOM_RE.test(room)) return "room may contain only letters, digits and _ - . : @ / = + !";
  return undefined;
}

export function isValidRoomName(room: unknown): room is string {
  return roomNameProblem(room) === undefined;
}

export function assertRoomName(room: unknown): asserts room is string {
  const problem = roomNameProblem(room);
  if (problem) throw new RoomNameError(problem);
}

export function isValidTenant(tenant: unknown): tenant is string {
  return typeof tenant === "string" && tenant.length > 0 && tenant.length <= MAX_TENANT_LENGTH && TENANT_RE.test(tenant);
}

export function assertTenant(tenant: unknown): asserts tenant is string {
  if (!isValidTenant(tenant)) {
    throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
  }
}

const SAFE = /^[A-Za-z0-9_-]$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Escapes any string into the alphabet [A-Za-z0-9_-~]: safe characters stay, every other UTF-8 byte becomes `~`
 * and two lowercase hex digits (`~` itself included), so the mapping is injective and never yields `.`, `*`, `>`,
 * `$`, or whitespace.
 */
export function escapeToken(value: string): string {
  let out = "";
  for (const ch of value) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch)) out += "~" + byte.toString(16).padStart(2, "0");
  }
  return out.length === 0 ? "~" : out;
}

/** Inverse of `escapeToken`. Throws on input `escapeToken` cannot produce. */
export function unescapeToken(token: string): string {
  if (token === "~") return "";
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const ch = token[i]!;
    if (ch === "~") {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) throw new Error(`bad escape in routing token "${token}"`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(ch.charCodeAt(0));
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** The routing key of `room` in `tenant`. Injective over all (tenant, room) string pairs. */
export function roomKey(tenant: string, room: string): RoomKey {
  return `${escapeToken(tenant)}.${escapeToken(room)}` as RoomKey;
}

export function parseRoomKey(key: RoomKey | string): { tenant: string; room: string } {
  const dot = key.indexOf(".");
  if (dot < 0 || key.indexOf(".", dot + 1) >= 0) throw new Error(`not a room key: "${key}"`);
  return { tenant: unescapeToken(key.slice(0, dot)), room: unescapeToken(key.slice(dot + 1)) };
}

const patternCache = new Map<string, RegExp>();

/**
 * Matches `room` against a capability pattern. Segments are separated by `:`, `/` or `.`; `*` matches any run of
 * characters within one segment, `**` matches anything, and the lone pattern `*` matches every room.
 */
export function roomMatches(pattern: string, room: string): boolean {
  if (pattern === "*" || pattern === "**") return true;
  let re = patternCache.get(pattern);
  if (!re) {
    let src = "^";
    for (let i = 0; i < pattern.length; i++) {
      const ch = pattern[i]!;
      if (ch === "*" && pattern[i + 1] === "*") {
        src += ".*";
        i++;
      } else if (ch === "*") {
        src += "[^:/.]*";
      } else {
        src += ch.replace(/[\\^$.|?+()[\]{}]/g, "\\$&");
      }
    }
    re = new RegExp(src + "$");
    if (patternCache.size > 1000) patternCache.clear();
    patternCache.set(pattern, re);
  }
  return re.test(room);
}
