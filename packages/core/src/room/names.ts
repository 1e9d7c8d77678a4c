import { RoomNameError, ArqonError, ErrorCode } from "../errors.js";

/**
 * A tenant-scoped routing key: `<tenant>.<room>` with both parts escaped so that the key is injective and every key
 * is a valid NATS subject suffix of exactly two tokens. Treat it as opaque outside this module.
 */
export type RoomKey = string & {
  /** Type-level brand only (no such property exists at run time): makes a plain string not assignable to RoomKey. */
  readonly __roomKey: unique symbol;
};

/** Longest valid room name, in characters. */
export const MAX_ROOM_LENGTH = 200;
/** Longest valid tenant id, in characters. */
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

const PATTERN_RE = /^[A-Za-z0-9_\-.:@/=+!*]+$/;

/**
 * Whether a subscribe's `room` is a pattern (a wildcard subscription, docs/protocol.md): it contains `*`, which no
 * room name may. The syntax is the capabilities' (see {@link roomMatches}).
 */
export function isRoomPattern(room: string): boolean {
  return room.includes("*");
}

/** Returns undefined when `pattern` is a valid room pattern (a room name's characters plus at least one `*`), else the reason. */
export function roomPatternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== "string") return "room must be a string";
  if (pattern.length > MAX_ROOM_LENGTH) return `room pattern is longer than ${MAX_ROOM_LENGTH} characters`;
  if (!PATTERN_RE.test(pattern) || !pattern.includes("*")) return "a room pattern may contain only letters, digits, _ - . : @ / = + ! and *";
  if (pattern.includes("***")) return "a room pattern may not contain ***";
  return undefined;
}

/** The escaped tenant token of a room key (its first token): what a tenant-wide bus subscription matches. */
export function tenantTokenOfKey(key: RoomKey): string {
  return key.slice(0, key.indexOf("."));
}

/** Whether `room` is a valid room name: a string of 1-200 letters, digits and `_ - . : @ / = + !`. */
export function isValidRoomName(room: unknown): room is string {
  return roomNameProblem(room) === undefined;
}

/** Throws {@link RoomNameError} (`ARQ_ROOM_INVALID`, saying what is wrong) unless `room` is a valid room name. */
export function assertRoomName(room: unknown): asserts room is string {
  const problem = roomNameProblem(room);
  if (problem) throw new RoomNameError(problem);
}

/** Whether `tenant` is a valid tenant id: a string of 1-64 letters, digits, `_` and `-`. */
export function isValidTenant(tenant: unknown): tenant is string {
  return typeof tenant === "string" && tenant.length > 0 && tenant.length <= MAX_TENANT_LENGTH && TENANT_RE.test(tenant);
}

/** Throws an {@link ArqonError} with `ARQ_TENANT_INVALID` unless `tenant` is a valid tenant id. */
export function assertTenant(tenant: unknown): asserts tenant is string {
  if (!isValidTenant(tenant)) {
    throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
  }
}

/** Letters, digits, `_` and `-`: the characters a routing token carries as they are. */
function isSafe(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f || code === 0x2d
  );
}

function esc(byte: number): string {
  return (byte < 0x10 ? "~0" : "~") + byte.toString(16);
}

/**
 * Escapes any string into the alphabet [A-Za-z0-9_-~]: safe characters stay, every other code point becomes its UTF-8
 * bytes, each written `~` and two lowercase hex digits (`~` itself included), so the mapping is injective and never
 * yields `.`, `*`, `>`, `$`, or whitespace. A lone surrogate (a JS string need not be valid UTF-16) is written as the
 * three bytes of its code point (WTF-8), which no valid character produces, so it cannot collide with U+FFFD.
 */
export function escapeToken(value: string): string {
  // The common token needs no escape: return it as it is rather than rebuilding it a character at a time.
  let safe = 0;
  while (safe < value.length && isSafe(value.charCodeAt(safe))) safe++;
  if (safe === value.length) return value.length === 0 ? "~" : value;
  let out = value.slice(0, safe);
  for (let i = safe; i < value.length; i++) {
    let cp = value.charCodeAt(i);
    if (isSafe(cp)) {
      out += value[i];
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < value.length) {
      const low = value.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (cp < 0x80) out += esc(cp);
    else if (cp < 0x800) out += esc(0xc0 | (cp >> 6)) + esc(0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out += esc(0xe0 | (cp >> 12)) + esc(0x80 | ((cp >> 6) & 0x3f)) + esc(0x80 | (cp & 0x3f));
    else {
      out += esc(0xf0 | (cp >> 18)) + esc(0x80 | ((cp >> 12) & 0x3f)) + esc(0x80 | ((cp >> 6) & 0x3f)) + esc(0x80 | (cp & 0x3f));
    }
  }
  return out.length === 0 ? "~" : out;
}

function badToken(token: string): Error {
  return new Error(`bad escape in routing token "${token}"`);
}

/** Inverse of `escapeToken`. Throws on any input `escapeToken` cannot produce. */
export function unescapeToken(token: string): string {
  if (token === "~") return "";
  let out = "";
  let i = 0;
  const byteAt = (at: number): number => {
    if (token[at] !== "~") throw badToken(token);
    const hex = token.slice(at + 1, at + 3);
    if (!/^[0-9a-f]{2}$/.test(hex)) throw badToken(token);
    return parseInt(hex, 16);
  };
  while (i < token.length) {
    const code = token.charCodeAt(i);
    if (isSafe(code)) {
      out += token[i];
      i++;
      continue;
    }
    const lead = byteAt(i);
    i += 3;
    const extra = lead < 0x80 ? 0 : lead >= 0xc0 && lead < 0xe0 ? 1 : lead >= 0xe0 && lead < 0xf0 ? 2 : lead >= 0xf0 && lead < 0xf8 ? 3 : -1;
    if (extra < 0) throw badToken(token);
    let cp = extra === 0 ? lead : lead & (0x3f >> extra);
    for (let k = 0; k < extra; k++) {
      const next = byteAt(i);
      if ((next & 0xc0) !== 0x80) throw badToken(token);
      cp = (cp << 6) | (next & 0x3f);
      i += 3;
    }
    if (cp > 0x10ffff) throw badToken(token);
    out += String.fromCodePoint(cp);
  }
  // Overlong forms, escaped safe characters and split surrogate pairs decode too; only the canonical form is valid.
  if (escapeToken(out) !== token) throw badToken(token);
  return out;
}

/** The routing key of `room` in `tenant`. Injective over all (tenant, room) string pairs. */
export function roomKey(tenant: string, room: string): RoomKey {
  return `${escapeToken(tenant)}.${escapeToken(room)}` as RoomKey;
}

/**
 * Splits a routing key made by {@link roomKey} back into its tenant and room. Throws a plain `Error` when `key` is not
 * exactly two tokens or an escape in it is not one `roomKey` produces.
 */
export function parseRoomKey(key: RoomKey | string): {
  /** The tenant id, unescaped. */
  tenant: string;
  /** The room name, unescaped. */
  room: string;
} {
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
