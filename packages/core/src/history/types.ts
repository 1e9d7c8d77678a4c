import type { Frame, HistoryQuery, Position } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";

/** Per-append options of `HistoryStore.append`. */
export interface AppendOptions {
  /** Deliver-once key: a repeat within `dedupeWindowMs` returns the original offset with `duplicate: true`. */
  idempotencyKey?: string;
  /** How long an idempotency key is remembered, in milliseconds. @default 120000 */
  dedupeWindowMs?: number;
}

/** What `HistoryStore.append` stored. */
export interface AppendResult {
  /** The stored message with `offset` and `epoch` set (for a duplicate: the original message). */
  message: Frame;
  /** The message's offset in the room (for a duplicate: the original's). */
  offset: number;
  /** The room's epoch the offset belongs to. */
  epoch: string;
  /** True when the idempotency key was seen within the window: nothing new was stored. */
  duplicate: boolean;
}

/** One page of `HistoryStore.read`. */
export interface HistoryPage {
  /** The matching messages, ascending by offset (descending with `reverse`), at most the query's limit. */
  messages: Frame[];
  /** The room's newest position at the time of the read. */
  position: Position;
}

/** What `HistoryStore.recover` found: every missed message, or why they cannot be replayed. */
export type RecoveryResult =
  | {
      /** Every message after `since` is in `messages`. */
      recovered: true;
      /** The missed messages, in offset order, with no gap. */
      messages: Frame[];
      /** The room's newest position. */
      position: Position;
    }
  | {
      /** The missed messages cannot be replayed as a gap-free list; nothing is returned. */
      recovered: false;
      /** Why recovery was refused. */
      reason: RecoveryFailure;
      /** The room's newest position. */
      position: Position;
    };

/** Why recovery was refused; each is listed in docs/protocol.md. */
export type RecoveryFailure = "epoch_mismatch" | "position_ahead" | "retention_exceeded" | "too_many_missed" | "unavailable";

/**
 * Per-room retention: whichever bound is hit first trims the oldest messages. The byte bound never trims a room's
 * newest message: it stays readable (and recoverable) even when it alone is larger than `maxBytes`.
 */
export interface RetentionPolicy {
  /** @default 1000 */
  maxMessages?: number;
  /** @default 86400000 (24 h); 0 = no age bound */
  maxAgeMs?: number;
  /**
   * The most payload bytes a room keeps: the sum of `payload.length` over its kept messages stays at or below this,
   * except that the newest message is always kept.
   * @default 0 (no byte bound)
   */
  maxBytes?: number;
}

/** What a history store holds, as `HistoryStore.stats` reports it. */
export interface HistoryStats {
  /** Rooms with at least one kept message (a backend that cannot tell rooms apart cheaply reports those it knows). */
  rooms: number;
  /** Messages kept, over every room. */
  messages: number;
}

/**
 * A room's ordered message log.
 *
 * Guarantees every backend keeps, checked by `describeHistoryContract`:
 * - Offsets: within an epoch, `append` assigns offsets 1, 2, 3, ... per room with no gap and no repeat, in call order.
 * - Epochs: a room's epoch is stable for as long as its history is kept; when the history is lost (an in-memory store
 *   restarted, data deleted) the epoch changes, so an old position can never be mistaken for a new one.
 * - Durability: once `append` resolves, the message is readable by `read`/`recover` (a durable backend also keeps it
 *   across a process kill).
 * - Idempotency: two appends with the same idempotency key within the window store one message; the second returns it
 *   with `duplicate: true`.
 * - Recovery: `recover(key, since, max)` returns exactly the messages after `since.offset`, in order, or
 *   `recovered: false` with a reason; never a list with a gap.
 * - Rooms and tenants are independent: keys are opaque and never share offsets or messages.
 * - Deleting a tenant removes its rooms' history and nothing of any other tenant; the rooms start over in new epochs.
 * - Deleting a room removes its history and nothing of any other room; the room starts over in a new epoch.
 */
export interface HistoryStore {
  /**
   * Stores `message` as the room's next offset (the frame is copied with `offset` and `epoch` set). With an
   * idempotency key seen within the window, stores nothing and resolves with the original (`duplicate: true`).
   */
  append(key: RoomKey, message: Frame, options?: AppendOptions): Promise<AppendResult>;
  /**
   * Optional, for stores that keep everything in this process (the in-memory one): `append` answered in the call,
   * with the same effect, offsets and guarantees; it throws what `append` would reject with. The gateway uses it when
   * present, so a publish to an in-process room costs no promise.
   */
  appendNow?(key: RoomKey, message: Frame, options?: AppendOptions): AppendResult;
  /** The newest position; `offset` 0 when the room has no messages yet. */
  position(key: RoomKey): Promise<Position>;
  /**
   * The kept messages `query` selects (offset range, time range, twist id, direction): at most `query.limit`, or the
   * backend's default page size without one.
   */
  read(key: RoomKey, query: HistoryQuery): Promise<HistoryPage>;
  /**
   * The messages after `since`, provided `since` is in the room's current epoch, not ahead of the room, still kept,
   * and at most `maxMessages` behind; otherwise `recovered: false` with the reason. Rejects with
   * ARQ_POSITION_INVALID when `since.offset` is not a non-negative integer.
   */
  recover(key: RoomKey, since: Position, maxMessages: number): Promise<RecoveryResult>;
  /**
   * Removes the whole history of every room of `tenant` (the rooms whose key is `roomKey(tenant, ...)`): messages,
   * positions, epochs and idempotency keys. Resolves with the number of rooms removed (rooms that had at least one
   * message). Afterwards an append to one of those rooms gets offset 1 in an epoch the room never had before, so a
   * position handed out before the delete is refused by `recover` (`epoch_mismatch`) on every node, never mistaken
   * for new messages. Rooms of every other tenant are untouched, including a tenant whose name starts with this one.
   * An append that runs concurrently with the delete may be removed by it. A non-string `tenant` rejects with
   * VALIDATION_ERROR.
   */
  deleteTenant(tenant: string): Promise<number>;
  /**
   * Optional: how much the store holds now, for the `arqon_history_*` gauges (read at each scrape, so it must be
   * cheap: a counter or the backend's own statistics, never a scan of the messages).
   */
  stats?(): Promise<HistoryStats>;
  /**
   * Removes the whole history of one room: its messages and idempotency keys. Resolves true when the room had at
   * least one message. Afterwards an append to the room gets offset 1 in an epoch the room never had before, so a
   * position handed out before the delete is refused by `recover` (`epoch_mismatch`) on every node. Every other room
   * is untouched, including rooms whose key starts with this one. An append that runs concurrently with the delete
   * may be removed by it. A key that is not a non-empty string rejects with VALIDATION_ERROR.
   */
  deleteRoom(key: RoomKey): Promise<boolean>;
  /** Closes this handle: later calls reject with BackendUnavailableError. A durable backend keeps its data. */
  close(): Promise<void>;
}
