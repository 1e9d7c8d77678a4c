import { ErrorCode, FrameError } from "../errors.js";
import { CLIENT_FRAME_TYPES, HEADER_TWIST_ID, type Frame, type FrameType } from "../frame/types.js";
import { roomNameProblem } from "../room/names.js";

/** Frame types whose client requests must name a room. */
const NEEDS_ROOM: ReadonlySet<FrameType> = new Set<FrameType>([
  "subscribe",
  "unsubscribe",
  "publish",
  "presence_list",
  "presence_set",
  "state_get",
  "state_set",
  "history",
]);

/** Longest state key a client may write, in characters; longer keys get `ARQ_STATE_KEY_INVALID`. */
export const MAX_STATE_KEY_LENGTH = 128;
const STATE_KEY_RE = /^[A-Za-z0-9_\-.:/@]+$/;

/** Why `key` is not a state key a client may write (ARQ_STATE_KEY_INVALID's message), or undefined when it is. */
export function stateKeyProblem(key: string): string | undefined {
  if (key.length > 0 && key.length <= MAX_STATE_KEY_LENGTH && STATE_KEY_RE.test(key)) return undefined;
  return `state key must be 1-${MAX_STATE_KEY_LENGTH} characters of letters, digits and _ - . : / @`;
}
const TWIST_ID_RE = /^[A-Za-z0-9_\-.:]{1,64}$/;
const COMMAND_RE = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+){1,3}$/;
const RPC_METHOD_RE = /^[A-Za-z0-9_\-.:/]{1,128}$/;

function missing(field: string, type: string): FrameError {
  return new FrameError(ErrorCode.FRAME_MISSING_FIELD, `${type} needs "${field}"`, { detail: { field } });
}

/**
 * Checks what the structure alone cannot: which frame types a client may send, the fields each request needs, room
 * names, state keys, command names and the x-twist-id header. Returns the first fault, or undefined.
 */
export function validateClientFrame(frame: Frame): FrameError | undefined {
  const type = frame.type;
  if (!CLIENT_FRAME_TYPES.has(type)) {
    return new FrameError(ErrorCode.FRAME_UNEXPECTED, `clients may not send "${type}" frames`, { detail: { type } });
  }
  if (NEEDS_ROOM.has(type)) {
    if (frame.room === undefined) return missing("room", type);
    // subscribe and unsubscribe also take a room pattern (a wildcard subscription), which the server checks
    // (roomPatternProblem); every other frame a room name. (Kept this small: the browser SDK bundles this file.)
    // ("subscribe" and "unsubscribe" are the only client frame types ending so; `room` is a string by now.)
    const problem = type.endsWith("subscribe") && frame.room.includes("*") ? undefined : roomNameProblem(frame.room);
    if (problem) return new FrameError(ErrorCode.ROOM_INVALID, problem, { detail: { field: "room" } });
  }
  switch (type) {
    case "publish":
      if (frame.payload === undefined) return missing("payload", type);
      break;
    case "presence_set":
      if (frame.info?.info === undefined) return missing("info", type);
      break;
    case "state_set": {
      if (!frame.state || frame.state.length === 0) return missing("state", type);
      for (const entry of frame.state) {
        if (!entry.key) return missing("state[].key", type);
        const problem = stateKeyProblem(entry.key);
        if (problem) return new FrameError(ErrorCode.STATE_KEY_INVALID, problem, { detail: { key: entry.key } });
        if (!entry.deleted && entry.value === undefined) return missing("state[].value", type);
      }
      break;
    }
    case "command":
      if (frame.command === undefined) return missing("command", type);
      if (!COMMAND_RE.test(frame.command)) {
        return new FrameError(ErrorCode.FRAME_WRONG_TYPE, 'command must look like "op.<name>.<verb>"', {
          detail: { field: "command" },
        });
      }
      break;
    case "auth":
      if (frame.token === undefined) return missing("token", type);
      break;
    case "rpc":
      if (frame.method === undefined) return missing("method", type);
      if (!RPC_METHOD_RE.test(frame.method)) {
        return new FrameError(ErrorCode.FRAME_WRONG_TYPE, "method must be 1-128 characters of letters, digits and _ - . : /", {
          detail: { field: "method" },
        });
      }
      break;
  }
  const twist = frame.headers?.[HEADER_TWIST_ID];
  if (twist !== undefined && !TWIST_ID_RE.test(twist)) {
    return new FrameError(ErrorCode.HEADER_INVALID, "x-twist-id must be 1-64 characters of letters, digits and _ - . :", {
      detail: { header: HEADER_TWIST_ID },
    });
  }
  return undefined;
}
