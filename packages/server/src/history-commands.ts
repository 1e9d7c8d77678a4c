import {
  ArqonError,
  ErrorCode,
  HEADER_TIMESTAMP,
  parseJsonBytes,
  roomKey,
  roomNameProblem,
  toBase64,
  type Frame,
  type HistoryQuery,
} from "@arqon/core";
import type { CommandContext, CommandRegistry } from "./commands.js";
import type { HandlerContext } from "./context.js";

/** Commands the gateway serves itself for reading room history (names kept from the earlier system). */
export const HISTORY_COMMANDS = ["op.history.get", "op.history.replay"] as const;

/** One message in a history command response (snake_case, like the arguments). */
export interface HistoryCommandMessage {
  /** The message id, when it has one. */
  id?: string;
  /** Its offset in the room's history. */
  offset: number;
  /** The epoch of that offset. */
  epoch: string;
  /** When the server received it, epoch ms. */
  timestamp?: number;
  /** The publisher's `sub` (or the server's sender name), when known. */
  sender?: string;
  /** The message headers (`x-timestamp`, `x-twist-id`, ...); absent when there are none. */
  headers?: Record<string, string>;
  /** The JSON value, or base64 text when `payload_format` is "binary". */
  payload?: unknown;
  /** "binary" when `payload` is base64 (a binary payload, or one that is not valid JSON); absent for JSON. */
  payload_format?: "binary";
}

type Args = Record<string, unknown>;

function invalid(message: string): ArqonError {
  return new ArqonError(ErrorCode.VALIDATION_ERROR, message);
}

function argsOf(ctx: CommandContext): Args {
  if (ctx.args === undefined || ctx.args === null) return {};
  if (typeof ctx.args !== "object" || Array.isArray(ctx.args)) throw invalid("args must be a JSON object");
  return ctx.args as Args;
}

/** A non-negative safe integer argument (snake_case name, camelCase accepted), or undefined when absent. */
function uint(args: Args, name: string): number | undefined {
  const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const value = args[name] ?? args[camel];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw invalid(`${name} must be a non-negative integer`);
  return value;
}

function bool(args: Args, name: string): boolean {
  const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const value = args[name] ?? args[camel];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw invalid(`${name} must be true or false`);
  return value;
}

/**
 * The room to read: `args.room`, else the command frame's `room`. The registry checked the caller's `sub`
 * capability for it before the handler ran (access `{ capability: "sub", resource: "room" }`).
 */
function readableRoom(ctx: CommandContext, args: Args): string {
  const room = args.room ?? ctx.room;
  if (typeof room !== "string") throw invalid("room is required");
  const problem = roomNameProblem(room);
  if (problem) throw invalid(problem);
  return room;
}

function twistOf(args: Args): string | undefined {
  const value = args.twist_id ?? args.twistId;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || !/^[A-Za-z0-9_\-.:]{1,64}$/.test(value)) {
    throw invalid("twist_id must be 1-64 characters of letters, digits and _ - . :");
  }
  return value;
}

export function toCommandMessage(frame: Frame): HistoryCommandMessage {
  const out: HistoryCommandMessage = { offset: frame.offset ?? 0, epoch: frame.epoch ?? "" };
  if (frame.id) out.id = frame.id;
  if (frame.timestamp) out.timestamp = frame.timestamp;
  if (frame.sender) out.sender = frame.sender;
  if (frame.headers && Object.keys(frame.headers).length) out.headers = frame.headers;
  if (frame.payload !== undefined) {
    if (frame.payloadFormat === "binary") {
      out.payload = toBase64(frame.payload);
      out.payload_format = "binary";
    } else {
      try {
        out.payload = parseJsonBytes(frame.payload);
      } catch {
        out.payload = toBase64(frame.payload);
        out.payload_format = "binary";
      }
    }
  }
  return out;
}

/**
 * `op.history.get {room, from_offset, to_offset, limit, reverse, from_ts, to_ts, twist_id}`: one page of a room's
 * history, like the `history` frame. Answers `{room, epoch, offset, messages, next_offset?}`, where `offset` is the
 * room's newest offset and `next_offset` (present when the page is full) is where the next page in the same
 * direction starts (`from_offset` forwards, `to_offset` backwards).
 */
async function historyGet(server: HandlerContext, ctx: CommandContext): Promise<unknown> {
  const args = argsOf(ctx);
  const room = readableRoom(ctx, args);
  const limit = Math.min(uint(args, "limit") || server.limits.maxHistoryPage, server.limits.maxHistoryPage);
  const query: HistoryQuery = { limit };
  const fromOffset = uint(args, "from_offset");
  const toOffset = uint(args, "to_offset");
  const fromTs = uint(args, "from_ts");
  const toTs = uint(args, "to_ts");
  const twistId = twistOf(args);
  if (fromOffset) query.fromOffset = fromOffset;
  if (toOffset) query.toOffset = toOffset;
  if (fromTs) query.fromTs = fromTs;
  if (toTs) query.toTs = toTs;
  if (twistId) query.twistId = twistId;
  if (bool(args, "reverse")) query.reverse = true;
  const page = await server.backends.history.read(roomKey(ctx.tenant, room), query);
  const result: Record<string, unknown> = {
    room,
    epoch: page.position.epoch,
    offset: page.position.offset,
    messages: page.messages.map(toCommandMessage),
  };
  const last = page.messages.at(-1);
  if (last?.offset !== undefined && page.messages.length >= limit) {
    const next = query.reverse ? last.offset - 1 : last.offset + 1;
    if (next >= 1 && next <= page.position.offset) result.next_offset = next;
  }
  return result;
}

/**
 * `op.history.replay {room, from_ts, to_ts, strict_sequence, limit}`: the messages whose time (`x-timestamp`) lies in
 * `[from_ts, to_ts]`, oldest first, at most `limit` (capped by `maxHistoryPage`). Answers `{room, epoch, offset,
 * messages, complete}`; `complete` is false when more messages in the window did not fit.
 *
 * With `strict_sequence: true` the replay fails with ARQ_HISTORY_GAP when it cannot vouch that the window is whole:
 * messages that may fall into it were trimmed by retention (the oldest kept message is not older than `from_ts` and
 * earlier ones are gone), or the offsets it found are not consecutive.
 */
async function historyReplay(server: HandlerContext, ctx: CommandContext): Promise<unknown> {
  const args = argsOf(ctx);
  const room = readableRoom(ctx, args);
  const fromTs = uint(args, "from_ts") ?? 0;
  const toTs = uint(args, "to_ts");
  if (toTs !== undefined && toTs < fromTs) throw invalid("to_ts must not be before from_ts");
  const strict = bool(args, "strict_sequence");
  const limit = Math.min(uint(args, "limit") || server.limits.maxHistoryPage, server.limits.maxHistoryPage);
  const key = roomKey(ctx.tenant, room);
  const query: HistoryQuery = { limit: limit + 1 };
  if (fromTs) query.fromTs = fromTs;
  if (toTs) query.toTs = toTs;
  const page = await server.backends.history.read(key, query);
  const complete = page.messages.length <= limit;
  const messages = complete ? page.messages : page.messages.slice(0, limit);
  if (strict) {
    for (let i = 1; i < messages.length; i++) {
      const prev = messages[i - 1]!.offset!;
      if (messages[i]!.offset !== prev + 1) {
        throw new ArqonError(ErrorCode.HISTORY_GAP, `offsets ${prev + 1}..${messages[i]!.offset! - 1} are missing from the replay`, {
          detail: { from: prev + 1, to: messages[i]!.offset! - 1 },
        });
      }
    }
    const oldest = (await server.backends.history.read(key, { limit: 1 })).messages[0];
    const trimmedUpTo = oldest?.offset !== undefined ? oldest.offset - 1 : page.position.offset;
    if (trimmedUpTo > 0) {
      const oldestTime = oldest ? messageTime(oldest) : undefined;
      if (oldestTime === undefined || oldestTime >= fromTs) {
        throw new ArqonError(
          ErrorCode.HISTORY_GAP,
          `offsets 1..${trimmedUpTo} were trimmed by retention and may fall into the requested window`,
          { detail: { from: 1, to: trimmedUpTo } },
        );
      }
    }
  }
  return {
    room,
    epoch: page.position.epoch,
    offset: page.position.offset,
    messages: messages.map(toCommandMessage),
    complete,
  };
}

function messageTime(frame: Frame): number | undefined {
  const header = frame.headers?.[HEADER_TIMESTAMP];
  const n = header !== undefined ? Number(header) : NaN;
  return Number.isFinite(n) ? n : frame.timestamp;
}

/** Registers op.history.get and op.history.replay on the gateway's command registry. */
export function registerHistoryCommands(commands: CommandRegistry, server: HandlerContext): void {
  const access = { capability: "sub", resource: "room" } as const;
  commands.register("op.history.get", (ctx) => historyGet(server, ctx), {
    access,
    description: "one page of a room's history (from_offset, to_offset, limit, reverse, from_ts, to_ts, twist_id)",
  });
  commands.register("op.history.replay", (ctx) => historyReplay(server, ctx), {
    access,
    description: "a room's messages in a time window (from_ts, to_ts, strict_sequence, limit)",
  });
}
