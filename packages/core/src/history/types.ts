import type { Frame, HistoryQuery, Position } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";

export interface AppendOptions {
  /** Deliver-once key: a repeat within `dedupeWindowMs` returns the original offset with `duplicate: true`. */
  idempotencyKey?: string;
  /** @default 120000 */
  dedupeWindowMs?: number;
}

export interface AppendResult {
  /** The stored message with `offset` and `epoch` set (for a duplicate: the original message). */
  message: Frame;
  offset: number;
  epoch: string;
  duplicate: boolean;
}

export interface HistoryPage {
  messages: Frame[];
  /** The room's newest position at the time of the read. */
  position: Position;
}

export type RecoveryResult =
  | { recovered: true; messages: Frame[]; position: Position }
  | { recovered: false; reason: RecoveryFailure; position: Position };

/** Why recovery was refused; each is listed in docs/protocol.md. */
export type RecoveryFailure = "epoch_mismatch" | "position_ahead" | "retention_exceeded" | "too_many_missed" | "unavailable";

/** Per-room retention: whichever bound is hit first trims the oldest messages. */
export interface RetentionPolicy {
  /** @default 1000 */
  maxMessages?: number;
  /** @default 86400000 (24 h); 0 = no age bound */
  maxAgeMs?: number;
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
 */
export interface HistoryStore {
  append(key: RoomKey, message: Frame, options?: AppendOptions): Promise<AppendResult>;
  /** The newest position; `offset` 0 when the room has no messages yet. */
  position(key: RoomKey): Promise<Position>;
  read(key: RoomKey, query: HistoryQuery): Promise<HistoryPage>;
  recover(key: RoomKey, since: Position, maxMessages: number): Promise<RecoveryResult>;
  close(): Promise<void>;
}
