import { assertRecoveryOffset, recoveryRefusal } from "./recovery.js";
import type { Frame, HistoryQuery, Position } from "../frame/types.js";
import { HEADER_TIMESTAMP, HEADER_TWIST_ID } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";
import { BackendUnavailableError } from "../errors.js";
import { assertRoomKeyArgument, tenantKeyPrefix } from "./tenant.js";
import type {
  AppendOptions,
  AppendResult,
  HistoryPage,
  HistoryStats,
  HistoryStore,
  RecoveryResult,
  RetentionPolicy,
} from "./types.js";

/** Messages a room keeps when its retention sets no `maxMessages`. */
export const DEFAULT_MAX_MESSAGES = 1000;
/** Age after which messages are trimmed when the retention sets no `maxAgeMs`: 24 hours, in milliseconds. */
export const DEFAULT_MAX_AGE_MS = 86_400_000;
/** How long an idempotency key is remembered when the append sets no `dedupeWindowMs`: 2 minutes, in milliseconds. */
export const DEFAULT_DEDUPE_WINDOW_MS = 120_000;
/** Page size of `read` when neither the query nor the options set one. */
export const DEFAULT_READ_LIMIT = 100;

/** Options of `new MemoryHistoryStore(options)`. */
export interface MemoryHistoryOptions {
  /** Retention for every room, or a function choosing it per room (called once, when the room is first used). */
  retention?: RetentionPolicy | ((key: RoomKey) => RetentionPolicy);
  /** Page size of `read` when the query has no limit. @default 100 */
  defaultReadLimit?: number;
  /** Milliseconds since the Unix epoch. @default Date.now */
  now?: () => number;
}

interface Stored {
  frame: Frame;
  /** Store clock at append: drives age retention. */
  at: number;
}

/** The message's own time (`x-timestamp` header, else `timestamp`, else the append time): drives `fromTs`/`toTs`. */
function storedTime(item: Stored): number {
  return messageTime(item.frame, item.at);
}

interface Deduped {
  message: Frame;
  offset: number;
  expiresAt: number;
}

interface Room {
  readonly epoch: string;
  readonly maxMessages: number;
  readonly maxAgeMs: number;
  /** 0 = no byte bound. */
  readonly maxBytes: number;
  /** Sum of the payload lengths of the kept messages. */
  bytes: number;
  /** Kept messages live in `items[head..]`, oldest first; the slots before `head` are dropped ones. */
  items: (Stored | undefined)[];
  head: number;
  /** Offset of the newest message ever appended (0 before the first). */
  last: number;
  readonly dedupe: Map<string, Deduped>;
}

function newEpoch(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(8));
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function messageTime(frame: Frame, fallback: number): number {
  const header = frame.headers?.[HEADER_TIMESTAMP];
  if (header !== undefined) {
    const n = Number(header);
    if (Number.isFinite(n) && header.trim() !== "") return n;
  }
  return frame.timestamp ?? fallback;
}

function payloadBytes(frame: Frame): number {
  return frame.payload?.length ?? 0;
}

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("history store is closed");
}

/**
 * History kept in this process only: a ring per room, trimmed by count, age and payload bytes. Each store instance
 * draws a new random epoch per room (and again for a room of a deleted tenant), so positions handed out before a
 * restart or a delete are recognised as belonging to lost history.
 *
 * `read` semantics (shared by every backend through the contract suite): offsets `fromOffset..toOffset` inclusive
 * (0 or absent = unbounded), ascending, or descending from `toOffset` when `reverse`; `fromTs`/`toTs` bound the
 * message time inclusively (the `x-timestamp` header, else the frame's `timestamp`, else the append time); `twistId`
 * keeps messages whose `x-twist-id` header equals it; `limit` caps the page after filtering.
 */
export class MemoryHistoryStore implements HistoryStore {
  readonly #rooms = new Map<RoomKey, Room>();
  readonly #retention: MemoryHistoryOptions["retention"];
  readonly #defaultReadLimit: number;
  readonly #now: () => number;
  #closed = false;

  constructor(options: MemoryHistoryOptions = {}) {
    this.#retention = options.retention;
    this.#defaultReadLimit = options.defaultReadLimit ?? DEFAULT_READ_LIMIT;
    this.#now = options.now ?? Date.now;
  }

  #room(key: RoomKey): Room {
    let room = this.#rooms.get(key);
    if (room === undefined) {
      const policy = typeof this.#retention === "function" ? this.#retention(key) : this.#retention;
      room = {
        epoch: newEpoch(),
        maxMessages: Math.max(0, policy?.maxMessages ?? DEFAULT_MAX_MESSAGES),
        maxAgeMs: Math.max(0, policy?.maxAgeMs ?? DEFAULT_MAX_AGE_MS),
        maxBytes: Math.max(0, policy?.maxBytes ?? 0),
        bytes: 0,
        items: [],
        head: 0,
        last: 0,
        dedupe: new Map(),
      };
      this.#rooms.set(key, room);
    }
    return room;
  }

  #drop(room: Room): void {
    room.bytes -= payloadBytes(room.items[room.head]!.frame);
    room.items[room.head++] = undefined;
  }

  #trim(room: Room, now: number): void {
    if (room.maxAgeMs > 0) {
      const cutoff = now - room.maxAgeMs;
      while (room.head < room.items.length && room.items[room.head]!.at <= cutoff) this.#drop(room);
    }
    while (room.items.length - room.head > room.maxMessages) this.#drop(room);
    if (room.maxBytes > 0) {
      while (room.bytes > room.maxBytes && room.items.length - room.head > 1) this.#drop(room);
    }
    if (room.head === room.items.length) {
      room.bytes = 0;
      room.items = [];
      room.head = 0;
    } else if (room.head >= 1024 && room.head * 2 >= room.items.length) {
      room.items = room.items.slice(room.head);
      room.head = 0;
    }
  }

  /** Assigns the room's next offset; with `maxMessages: 0` the message gets an offset but is not kept. */
  async append(key: RoomKey, message: Frame, options?: AppendOptions): Promise<AppendResult> {
    return this.appendNow(key, message, options);
  }

  appendNow(key: RoomKey, message: Frame, options?: AppendOptions): AppendResult {
    if (this.#closed) throw closed();
    const room = this.#room(key);
    const now = this.#now();
    const idempotencyKey = options?.idempotencyKey;
    if (idempotencyKey !== undefined && idempotencyKey !== "") {
      for (const [k, d] of room.dedupe) {
        if (d.expiresAt > now) break;
        room.dedupe.delete(k);
      }
      const seen = room.dedupe.get(idempotencyKey);
      if (seen !== undefined && seen.expiresAt > now) {
        return { message: seen.message, offset: seen.offset, epoch: room.epoch, duplicate: true };
      }
    }
    const offset = room.last + 1;
    // Object.assign, not a spread: a spread of a frame with properties added after its literal takes V8's slow
    // clone path (~1.4 µs and ~600 bytes per copy on Node 20, against ~0.2 µs and ~190 bytes).
    const stored: Frame = Object.assign({}, message);
    stored.offset = offset;
    stored.epoch = room.epoch;
    room.last = offset;
    if (room.maxMessages > 0) {
      room.items.push({ frame: stored, at: now });
      room.bytes += payloadBytes(stored);
    }
    this.#trim(room, now);
    if (idempotencyKey !== undefined && idempotencyKey !== "") {
      const windowMs = options?.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
      room.dedupe.delete(idempotencyKey);
      room.dedupe.set(idempotencyKey, { message: stored, offset, expiresAt: now + windowMs });
    }
    return { message: stored, offset, epoch: room.epoch, duplicate: false };
  }

  async position(key: RoomKey): Promise<Position> {
    if (this.#closed) throw closed();
    const room = this.#room(key);
    return { offset: room.last, epoch: room.epoch };
  }

  /** Trims the room by its retention, then pages through what is kept (see the class for the query semantics). */
  async read(key: RoomKey, query: HistoryQuery): Promise<HistoryPage> {
    if (this.#closed) throw closed();
    const room = this.#room(key);
    this.#trim(room, this.#now());
    const kept = room.items.length - room.head;
    const oldest = room.last - kept + 1;
    const from = Math.max(query.fromOffset || 1, oldest);
    const to = Math.min(query.toOffset || room.last, room.last);
    const limit = query.limit !== undefined && query.limit > 0 ? query.limit : this.#defaultReadLimit;
    const messages: Frame[] = [];
    const step = query.reverse ? -1 : 1;
    for (let o = query.reverse ? to : from; o >= from && o <= to && messages.length < limit; o += step) {
      const item = room.items[room.head + (o - oldest)]!;
      if (query.fromTs !== undefined && query.fromTs !== 0 && storedTime(item) < query.fromTs) continue;
      if (query.toTs !== undefined && query.toTs !== 0 && storedTime(item) > query.toTs) continue;
      if (query.twistId !== undefined && query.twistId !== "" && item.frame.headers?.[HEADER_TWIST_ID] !== query.twistId) {
        continue;
      }
      messages.push(item.frame);
    }
    return { messages, position: { offset: room.last, epoch: room.epoch } };
  }

  /** Trims the room by its retention, then replays the messages after `since` or says why it cannot. */
  async recover(key: RoomKey, since: Position, maxMessages: number): Promise<RecoveryResult> {
    if (this.#closed) throw closed();
    assertRecoveryOffset(since);
    const room = this.#room(key);
    this.#trim(room, this.#now());
    const position = { offset: room.last, epoch: room.epoch };
    const oldest = room.last - (room.items.length - room.head) + 1;
    const refusal = recoveryRefusal(since, position, oldest, maxMessages);
    if (refusal) return { recovered: false, reason: refusal, position };
    const missed = room.last - since.offset;
    const messages: Frame[] = new Array(missed);
    const start = room.head + (since.offset + 1 - oldest);
    for (let i = 0; i < missed; i++) messages[i] = room.items[start + i]!.frame;
    return { recovered: true, messages, position };
  }

  async deleteTenant(tenant: string): Promise<number> {
    if (this.#closed) throw closed();
    const prefix = tenantKeyPrefix(tenant);
    let removed = 0;
    for (const [key, room] of this.#rooms) {
      if (!key.startsWith(prefix)) continue;
      if (room.last > 0) removed++;
      this.#rooms.delete(key);
    }
    return removed;
  }

  /** Rooms and messages kept; one pass over the rooms (not their messages). */
  async stats(): Promise<HistoryStats> {
    if (this.#closed) throw closed();
    let rooms = 0;
    let messages = 0;
    for (const room of this.#rooms.values()) {
      const kept = room.items.length - room.head;
      if (kept > 0) {
        rooms++;
        messages += kept;
      }
    }
    return { rooms, messages };
  }

  /** Forgets the room: the next use draws a new epoch (`#room`), so old positions get `epoch_mismatch`. */
  async deleteRoom(key: RoomKey): Promise<boolean> {
    if (this.#closed) throw closed();
    assertRoomKeyArgument(key);
    const room = this.#rooms.get(key);
    this.#rooms.delete(key);
    return room !== undefined && room.last > 0;
  }

  /** Drops every room's history; later calls reject with BackendUnavailableError. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#rooms.clear();
  }
}
