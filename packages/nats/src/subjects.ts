import { escapeToken, RoomNameError, unescapeToken, type RoomKey } from "@arqon/core";

/**
 * Names on NATS. Room keys (`<tenant>.<room>`, both escaped to [A-Za-z0-9_~-]) are valid subject tokens as they are;
 * KV keys do not allow `~`, so there every `~` becomes `=` (which escaping never produces), keeping the map injective.
 */
export const SUBJECT_ROOM_PREFIX = "arqon.room";
export const SUBJECT_CONTROL_PREFIX = "arqon.control";
export const SUBJECT_HISTORY_PREFIX = "arqon.hist";

const ROOM_KEY_RE = /^[A-Za-z0-9_~-]+\.[A-Za-z0-9_~-]+$/;

/** Throws unless `key` has the shape `roomKey()` produces, so nothing else can ever reach a subject. */
export function checkRoomKey(key: string): asserts key is RoomKey {
  if (!ROOM_KEY_RE.test(key)) throw new RoomNameError(`not a room key: ${JSON.stringify(key)}`);
}

export function roomSubject(key: RoomKey, prefix = SUBJECT_ROOM_PREFIX): string {
  checkRoomKey(key);
  return `${prefix}.${key}`;
}

/** The room key of a subject `<prefix>.<tenant>.<room>`, or undefined when the subject has another shape. */
export function roomKeyOfSubject(subject: string, prefix: string): RoomKey | undefined {
  if (!subject.startsWith(prefix + ".")) return undefined;
  const key = subject.slice(prefix.length + 1);
  return ROOM_KEY_RE.test(key) ? (key as RoomKey) : undefined;
}

/** A room key as KV key tokens (`~` → `=`). */
export function roomKvKey(key: RoomKey): string {
  checkRoomKey(key);
  return key.replaceAll("~", "=");
}

export function roomKeyOfKv(kvKey: string): RoomKey {
  return kvKey.replaceAll("=", "~") as RoomKey;
}

/** Any string as one KV key token. */
export function kvToken(value: string): string {
  return escapeToken(value).replaceAll("~", "=");
}

export function fromKvToken(token: string): string {
  return unescapeToken(token.replaceAll("=", "~"));
}

/** Any string as one subject token. */
export function subjectToken(value: string): string {
  return escapeToken(value);
}

export function fromSubjectToken(token: string): string {
  return unescapeToken(token);
}
