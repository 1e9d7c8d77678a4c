import type { Database } from "lmdb";
import { randomBytes } from "node:crypto";
import {
  ArqonError,
  BackendUnavailableError,
  ErrorCode,
  escapeToken,
  HEADER_TIMESTAMP,
  HEADER_TWIST_ID,
  parseRoomKey,
  roomMatches,
  type AppendOptions,
  type AppendResult,
  type Frame,
  type HistoryPage,
  type HistoryStats,
  type HistoryQuery,
  type HistoryStore,
  type Position,
  type RecoveryResult,
  type RetentionPolicy,
  type RoomKey,
} from "@arqon/core";
import { DB, keyPart, keysOf, keysWithPrefix, plainBytes, wallClock, type StorageClock, type StorageEnv } from "./env.js";
import { assertRecoveryOffset, assertRoomKeyArgument, recoveryRefusal } from "@arqon/core/internal";

export const DEFAULT_HISTORY_MAX_MESSAGES = 1000;
export const DEFAULT_HISTORY_MAX_AGE_MS = 86_400_000;
export const DEFAULT_DEDUPE_WINDOW_MS = 120_000;
export const DEFAULT_HISTORY_READ_LIMIT = 100;
export const DEFAULT_RING_SIZE = 256;
export const DEFAULT_SWEEP_INTERVAL_MS = 10_000;
/** Rooms and idempotency keys one sweep looks at. */
const SWEEP_ROOMS = 1_000;
const SWEEP_KEYS = 10_000;

/**
 * Retention for the rooms whose name matches `pattern` (core's `roomMatches`: `*` one segment, `**` anything):
 * `maxMessages`, `maxAgeMs` and `maxBytes` as in core's `RetentionPolicy`.
 */
export interface RetentionRule extends RetentionPolicy {
  /** A room name pattern, matched against the room name without its tenant, e.g. "ticker/*" or "logs/**". */
  pattern: string;
}

/**
 * Retention per room: a list of rules (the first whose pattern matches the room name wins; no match = the defaults,
 * 1000 messages / 24 h), one policy for every room, or a function of the room key.
 */
export type RetentionConfig = readonly RetentionRule[] | RetentionPolicy | ((key: RoomKey) => RetentionPolicy);

export interface LmdbHistoryOptions {
  /** @default [] (1000 messages, 24 h for every room) */
  retention?: RetentionConfig;
  /** Recent messages per room kept decoded in memory in front of LMDB. @default 256 */
  ringSize?: number;
  /** Rooms whose ring is kept; the least recently appended-to lose theirs first. @default 10000 */
  maxCachedRooms?: number;
  /** Page size of `read` without a limit. @default 100 */
  defaultReadLimit?: number;
  /** How often expired messages and idempotency keys are deleted. @default 10000 */
  sweepIntervalMs?: number;
  /** @default wall time */
  clock?: StorageClock;
}

/** What one history row holds: the frame plus the two times retention and time windows use. */
interface StoredMessage {
  /** Store clock at append: drives age retention. */
  at: number;
  /** The message's own time (`x-timestamp`, else `timestamp`, else `at`): drives `fromTs`/`toTs`. */
  time: number;
  frame: Frame;
}

/** One row per room that ever had a message. */
interface RoomRecord {
  epoch: string;
  /** Offset of the newest message ever appended. */
  last: number;
  /** Oldest offset still stored (`last + 1` when none is). */
  first: number;
  /**
   * Sum of the payload lengths of the stored messages, kept only while the room's policy has a byte bound (absent
   * otherwise, and then counted afresh when a byte bound applies again).
   */
  bytes?: number;
}

interface DedupeRecord {
  offset: number;
  expiresAt: number;
  frame: Frame;
}

type MessageKey = [string, number];
type DedupeKey = [string, string];
type ExpiryKey = [number, string, string];

interface Policy {
  maxMessages: number;
  maxAgeMs: number;
  maxBytes: number;
}

interface Ring {
  /** Epoch of the messages: a ring of another epoch (the room was deleted since) is never used. */
  epoch: string;
  /** Offset of `items[0]`. */
  start: number;
  items: StoredMessage[];
}

function messageTime(frame: Frame, fallback: number): number {
  const header = frame.headers?.[HEADER_TIMESTAMP];
  if (header !== undefined && header.trim() !== "") {
    const n = Number(header);
    if (Number.isFinite(n)) return n;
  }
  return frame.timestamp ?? fallback;
}

/** A copy without `undefined` fields (msgpack would store them) and with plain Uint8Arrays. */
function cleanFrame(frame: Frame): Frame {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(frame)) if (v !== undefined) out[k] = v;
  return out as unknown as Frame;
}

/** Frames read back from LMDB carry Buffers; hand out plain Uint8Arrays like every other backend. */
function restoreFrame(frame: Frame): Frame {
  if (frame.payload !== undefined) frame.payload = plainBytes(frame.payload);
  if (frame.args !== undefined) frame.args = plainBytes(frame.args);
  return frame;
}

/** FNV-1a of the room key: keeps epochs of different rooms distinct without storing anything on reads. */
function roomHash(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

function payloadBytes(item: StoredMessage | undefined): number {
  return item?.frame.payload?.length ?? 0;
}

/** A database's entry count from `getStats()` (typed `{}` by lmdb-js; it carries `entryCount`). */
function entryCount(db: { getStats(): object }): number {
  const n = (db.getStats() as { entryCount?: unknown }).entryCount;
  return typeof n === "number" ? n : 0;
}

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("history store is closed");
}

/**
 * Room history in LMDB with an in-memory ring of recent messages in front.
 *
 * - Offsets are assigned inside the LMDB write transaction from the stored room row, so concurrent appends (even from
 *   several store instances on one directory) get gapless distinct offsets in call order, and a failed commit leaves
 *   no gap behind.
 * - A room's epoch is `<store id>-<room hash>`, where the store id is drawn when the database is created and stored
 *   in it: it survives restarts and kill -9, and a lost or deleted data directory yields new epochs. Once a tenant
 *   was deleted (`deleteTenant`), its rooms' epochs also carry a generation drawn at each delete, so they differ from
 *   every epoch the rooms had before.
 * - Retention by count and bytes is applied in the append transaction, by age at append, on every read and by the
 *   sweep.
 * - `append` resolves after the commit is durable (see `Durability`), so an acknowledged message survives a kill.
 * - Idempotency keys are stored with the message in the same transaction and expire after the dedupe window; they
 *   hold across restarts.
 * - `read` semantics match `MemoryHistoryStore` (inclusive offsets, `reverse`, `fromTs`/`toTs` on the message
 *   time, `twistId` on the `x-twist-id` header, `limit` after filtering).
 */
export class LmdbHistoryStore implements HistoryStore {
  readonly #env: StorageEnv;
  readonly #rooms: Database<RoomRecord, string>;
  readonly #messages: Database<StoredMessage, MessageKey>;
  readonly #dedupe: Database<DedupeRecord, DedupeKey>;
  readonly #expiry: Database<true, ExpiryKey>;
  /** Per escaped tenant: the generation its rooms' epochs carry since the tenant's last delete. */
  readonly #tenants: Database<string, string>;
  readonly #retention: RetentionConfig;
  readonly #policies = new Map<string, Policy>();
  readonly #rings = new Map<string, Ring>();
  readonly #ringSize: number;
  readonly #maxCachedRooms: number;
  readonly #defaultReadLimit: number;
  readonly #clock: StorageClock;
  readonly #sweepTimer: unknown;
  #sweeping: Promise<void> | undefined;
  /** Room key the next sweep starts at (undefined: from the first room). */
  #sweepFrom: string | undefined;
  #closed = false;

  constructor(env: StorageEnv, options: LmdbHistoryOptions = {}) {
    this.#env = env;
    this.#rooms = env.openDB(DB.historyRooms);
    this.#messages = env.openDB(DB.historyMessages);
    this.#dedupe = env.openDB(DB.historyDedupe);
    this.#expiry = env.openDB(DB.historyExpiry);
    this.#tenants = env.openDB(DB.historyTenants);
    this.#retention = options.retention ?? [];
    this.#ringSize = Math.max(0, options.ringSize ?? DEFAULT_RING_SIZE);
    this.#maxCachedRooms = Math.max(1, options.maxCachedRooms ?? 10_000);
    this.#defaultReadLimit = options.defaultReadLimit ?? DEFAULT_HISTORY_READ_LIMIT;
    this.#clock = options.clock ?? wallClock;
    this.#sweepTimer = this.#clock.setInterval(() => {
      this.#sweeping ??= this.sweep().finally(() => (this.#sweeping = undefined));
    }, options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
  }

  /**
   * The retention applied to `key` (first matching rule, else the defaults). Rules are resolved once per room; a
   * function is asked every time (it may change its answer, e.g. when a tenant's limits change) and should be cheap.
   */
  policy(key: RoomKey): Required<RetentionPolicy> {
    let policy = typeof this.#retention === "function" ? undefined : this.#policies.get(key);
    if (policy === undefined) {
      const chosen = this.#choose(key);
      policy = {
        maxMessages: Math.max(0, chosen?.maxMessages ?? DEFAULT_HISTORY_MAX_MESSAGES),
        maxAgeMs: Math.max(0, chosen?.maxAgeMs ?? DEFAULT_HISTORY_MAX_AGE_MS),
        maxBytes: Math.max(0, chosen?.maxBytes ?? 0),
      };
      if (typeof this.#retention !== "function") {
        if (this.#policies.size >= 100_000) this.#policies.clear();
        this.#policies.set(key, policy);
      }
    }
    return policy;
  }

  #choose(key: RoomKey): RetentionPolicy | undefined {
    const config = this.#retention;
    if (typeof config === "function") return config(key);
    if (!Array.isArray(config)) return config as RetentionPolicy;
    let room: string = key;
    try {
      room = parseRoomKey(key).room;
    } catch {
      // Not a routing key made by roomKey(): match the raw key.
    }
    return (config as readonly RetentionRule[]).find((rule) => roomMatches(rule.pattern, room));
  }

  #record(key: RoomKey): RoomRecord {
    return this.#rooms.get(key) ?? { epoch: this.#firstEpoch(key), last: 0, first: 1, bytes: 0 };
  }

  /** The epoch of a room without a stored row (never appended to, or deleted with its tenant). */
  #firstEpoch(key: RoomKey): string {
    const base = `${this.#env.storeId}-${roomHash(key)}`;
    const dot = key.indexOf(".");
    const generation = dot < 0 ? undefined : this.#tenants.get(key.slice(0, dot));
    const tenantPart = generation === undefined ? base : `${base}-${generation}`;
    // A room deleted on its own (`deleteRoom`) carries its own generation, stored under the room key (which, unlike an
    // escaped tenant, contains a dot).
    const roomGeneration = dot < 0 ? undefined : this.#tenants.get(key);
    return roomGeneration === undefined ? tenantPart : `${tenantPart}-r${roomGeneration}`;
  }

  async append(key: RoomKey, message: Frame, options?: AppendOptions): Promise<AppendResult> {
    if (this.#closed) throw closed();
    const policy = this.policy(key);
    const idem = options?.idempotencyKey ? keyPart(options.idempotencyKey) : undefined;
    const windowMs = options?.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
    const base = cleanFrame(message);
    const now = this.#clock.now();
    const result = await this.#env.write(() => {
      if (idem !== undefined) {
        const seen = this.#dedupe.get([key, idem]);
        if (seen !== undefined && seen.expiresAt > now) {
          return { duplicate: true as const, offset: seen.offset, frame: seen.frame };
        }
      }
      const record = this.#record(key);
      const offset = record.last + 1;
      const frame: Frame = { ...base, offset, epoch: record.epoch };
      const stored: StoredMessage = { at: now, time: messageTime(frame, now), frame };
      let bytes: number | undefined;
      if (policy.maxBytes > 0 && policy.maxMessages > 0) {
        bytes = (record.bytes ?? this.#storedBytes(key, record.first, record.last)) + payloadBytes(stored);
      }
      if (policy.maxMessages > 0) this.#messages.put([key, offset], stored);
      const trimmed = this.#trim(key, { ...record, last: offset, bytes }, policy, now);
      this.#rooms.put(key, this.#row(record.epoch, offset, trimmed));
      if (idem !== undefined) {
        const expiresAt = now + windowMs;
        this.#dedupe.put([key, idem], { offset, expiresAt, frame });
        this.#expiry.put([expiresAt, key, idem], true);
      }
      return { duplicate: false as const, offset, frame, stored, first: trimmed };
    });
    if (result.duplicate) {
      const frame = restoreFrame(result.frame);
      return { message: frame, offset: result.offset, epoch: frame.epoch!, duplicate: true };
    }
    this.#remember(key, result.offset, result.stored, result.first.first, policy);
    return { message: result.frame, offset: result.offset, epoch: result.frame.epoch!, duplicate: false };
  }

  #row(epoch: string, last: number, trimmed: { first: number; bytes: number | undefined }): RoomRecord {
    const row: RoomRecord = { epoch, last, first: trimmed.first };
    if (trimmed.bytes !== undefined) row.bytes = trimmed.bytes;
    return row;
  }

  /** Inside a transaction: the payload bytes of the stored messages `from..to`. */
  #storedBytes(key: RoomKey, from: number, to: number): number {
    let bytes = 0;
    if (from > to) return bytes;
    for (const { value } of this.#messages.getRange({ start: [key, from], end: [key, to + 1] })) bytes += payloadBytes(value);
    return bytes;
  }

  /**
   * Inside a write transaction: deletes what retention drops; returns the new oldest stored offset and the payload
   * bytes left (tracked only when `record.bytes` is set, which the caller does when the policy has a byte bound).
   * The newest message is never dropped by the count or byte bound.
   */
  #trim(key: RoomKey, record: RoomRecord, policy: Policy, now: number): { first: number; bytes: number | undefined } {
    let first = record.first;
    let bytes = policy.maxBytes > 0 ? record.bytes : undefined;
    const drop = (offset: number, item?: StoredMessage): void => {
      if (bytes !== undefined) bytes -= payloadBytes(item ?? this.#messages.get([key, offset]));
      this.#messages.remove([key, offset]);
    };
    const keepFrom = Math.max(first, record.last + 1 - policy.maxMessages);
    for (; first < keepFrom; first++) drop(first);
    if (policy.maxAgeMs > 0) {
      const cutoff = now - policy.maxAgeMs;
      for (; first <= record.last; first++) {
        const item = this.#messages.get([key, first]);
        if (item !== undefined && item.at > cutoff) break;
        drop(first, item);
      }
    }
    if (bytes !== undefined) {
      for (; first < record.last && bytes > policy.maxBytes; first++) drop(first);
      if (first > record.last) bytes = 0;
    }
    return { first, bytes };
  }

  #remember(key: RoomKey, offset: number, stored: StoredMessage, first: number, policy: Policy): void {
    if (this.#ringSize === 0 || policy.maxMessages === 0) return;
    const epoch = stored.frame.epoch!;
    let ring = this.#rings.get(key);
    if (ring === undefined || ring.epoch !== epoch || ring.start + ring.items.length !== offset) {
      ring = { epoch, start: offset, items: [] };
    } else {
      this.#rings.delete(key);
    }
    this.#rings.set(key, ring);
    ring.items.push(stored);
    const drop = Math.max(ring.items.length - this.#ringSize, first - ring.start, 0);
    if (drop > 0) {
      ring.items.splice(0, Math.min(drop, ring.items.length));
      ring.start += drop;
    }
    if (this.#rings.size > this.#maxCachedRooms) this.#rings.delete(this.#rings.keys().next().value!);
  }

  /** The ring of `key` when it holds messages of `epoch` (the room's current one). */
  #ring(key: RoomKey, epoch: string): Ring | undefined {
    const ring = this.#rings.get(key);
    return ring !== undefined && ring.epoch === epoch ? ring : undefined;
  }

  /** The stored message at `offset`, from the ring when it has it. */
  #item(key: RoomKey, epoch: string, offset: number): StoredMessage | undefined {
    const ring = this.#ring(key, epoch);
    if (ring !== undefined && offset >= ring.start && offset < ring.start + ring.items.length) {
      return ring.items[offset - ring.start];
    }
    const item = this.#messages.get([key, offset]);
    if (item !== undefined) restoreFrame(item.frame);
    return item;
  }

  /** Oldest offset still readable: the stored one, moved past messages that aged out since the last sweep. */
  #oldest(key: RoomKey, record: RoomRecord, policy: Policy, now: number): number {
    let first = record.first;
    if (policy.maxAgeMs > 0) {
      const cutoff = now - policy.maxAgeMs;
      for (; first <= record.last; first++) {
        const item = this.#item(key, record.epoch, first);
        if (item !== undefined && item.at > cutoff) break;
      }
    }
    return first;
  }

  /** Messages `from..to` (inclusive, all kept), ascending or descending, passed through `accept` until `limit`. */
  #range(
    key: RoomKey,
    epoch: string,
    span: { from: number; to: number; reverse: boolean; limit: number },
    accept: (m: StoredMessage) => boolean,
  ): Frame[] {
    const { from, to, reverse, limit } = span;
    const out: Frame[] = [];
    if (from > to || limit <= 0) return out;
    const ring = this.#ring(key, epoch);
    if (ring !== undefined && from >= ring.start && to < ring.start + ring.items.length) {
      const step = reverse ? -1 : 1;
      for (let o = reverse ? to : from; o >= from && o <= to && out.length < limit; o += step) {
        const item = ring.items[o - ring.start]!;
        if (accept(item)) out.push(item.frame);
      }
      return out;
    }
    const range = reverse
      ? this.#messages.getRange({ start: [key, to], end: [key, from - 1], reverse: true })
      : this.#messages.getRange({ start: [key, from], end: [key, to + 1] });
    for (const { value } of range) {
      if (accept(value)) out.push(restoreFrame(value.frame));
      if (out.length >= limit) break;
    }
    return out;
  }

  async position(key: RoomKey): Promise<Position> {
    if (this.#closed) throw closed();
    const record = this.#record(key);
    return { offset: record.last, epoch: record.epoch };
  }

  async read(key: RoomKey, query: HistoryQuery): Promise<HistoryPage> {
    if (this.#closed) throw closed();
    const record = this.#record(key);
    const oldest = this.#oldest(key, record, this.policy(key), this.#clock.now());
    const from = Math.max(query.fromOffset || 1, oldest);
    const to = Math.min(query.toOffset || record.last, record.last);
    const limit = query.limit !== undefined && query.limit > 0 ? query.limit : this.#defaultReadLimit;
    const fromTs = query.fromTs || undefined;
    const toTs = query.toTs || undefined;
    const twist = query.twistId || undefined;
    const messages = this.#range(key, record.epoch, { from, to, reverse: query.reverse === true, limit }, (m) => {
      if (fromTs !== undefined && m.time < fromTs) return false;
      if (toTs !== undefined && m.time > toTs) return false;
      if (twist !== undefined && m.frame.headers?.[HEADER_TWIST_ID] !== twist) return false;
      return true;
    });
    return { messages, position: { offset: record.last, epoch: record.epoch } };
  }

  async recover(key: RoomKey, since: Position, maxMessages: number): Promise<RecoveryResult> {
    if (this.#closed) throw closed();
    assertRecoveryOffset(since);
    const record = this.#record(key);
    const position = { offset: record.last, epoch: record.epoch };
    const oldest = since.epoch === record.epoch ? this.#oldest(key, record, this.policy(key), this.#clock.now()) : 0;
    const refusal = recoveryRefusal(since, position, oldest, maxMessages);
    if (refusal) return { recovered: false, reason: refusal, position };
    const missed = record.last - since.offset;
    const span = { from: since.offset + 1, to: record.last, reverse: false, limit: missed };
    const messages = this.#range(key, record.epoch, span, () => true);
    if (messages.length !== missed) {
      // Retention removed messages between reading the room row and the range: report it, never a gap.
      return { recovered: false, reason: "retention_exceeded", position };
    }
    return { recovered: true, messages, position };
  }

  /**
   * Deletes expired idempotency keys and messages past their room's age bound. Each call handles at most
   * `SWEEP_ROOMS` rooms, continuing where the previous call stopped, so a sweep never stalls the event loop however
   * many rooms there are. Runs every `sweepIntervalMs`; exposed for tests and for an admin "compact now".
   */
  async sweep(): Promise<void> {
    if (this.#closed) return;
    const now = this.#clock.now();
    const expired: ExpiryKey[] = [];
    for (const { key } of this.#expiry.getRange({ end: [now + 1], limit: SWEEP_KEYS })) expired.push(key);
    const aged: RoomKey[] = [];
    let scanned = 0;
    let last: string | undefined;
    for (const { key: room, value: record } of this.#rooms.getRange({ start: this.#sweepFrom, limit: SWEEP_ROOMS })) {
      scanned++;
      last = room;
      const policy = this.policy(room as RoomKey);
      if (policy.maxAgeMs === 0 || record.first > record.last) continue;
      const oldest = this.#messages.get([room, record.first]);
      if (oldest === undefined || oldest.at <= now - policy.maxAgeMs) aged.push(room as RoomKey);
    }
    // The next sweep starts at the last room looked at (looking at one room twice is harmless).
    this.#sweepFrom = scanned < SWEEP_ROOMS ? undefined : last;
    if (expired.length === 0 && aged.length === 0) return;
    await this.#env.write(() => {
      for (const key of expired) {
        const [expiresAt, room, idem] = key;
        const current = this.#dedupe.get([room, idem]);
        if (current !== undefined && current.expiresAt === expiresAt) this.#dedupe.remove([room, idem]);
        this.#expiry.remove(key);
      }
      for (const room of aged) {
        const record = this.#rooms.get(room);
        if (record === undefined) continue;
        const trimmed = this.#trim(room, record, this.policy(room), now);
        if (trimmed.first !== record.first) this.#rooms.put(room, this.#row(record.epoch, record.last, trimmed));
      }
    });
  }

  /**
   * Removes every room of `tenant` in one write transaction (messages, room rows, idempotency keys) and draws the
   * tenant a new epoch generation. Rings of other store instances on the same directory are never used for the new
   * epoch (a ring is tied to the epoch of its messages).
   */
  async deleteTenant(tenant: string): Promise<number> {
    if (this.#closed) throw closed();
    if (typeof tenant !== "string") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "tenant must be a string", { detail: { field: "tenant" } });
    }
    const token = escapeToken(tenant);
    const generation = randomBytes(6).toString("hex");
    const removed = await this.#env.write(() => {
      const rooms = keysWithPrefix(this.#rooms, token + ".");
      for (const room of rooms) {
        for (const key of keysOf(this.#messages, room)) this.#messages.remove(key);
        for (const key of keysOf(this.#dedupe, room)) this.#dedupe.remove(key);
        this.#rooms.remove(room);
      }
      // Room generations give way to the new tenant generation, which no room epoch carried before.
      for (const room of keysWithPrefix(this.#tenants, token + ".")) this.#tenants.remove(room);
      // Expiry rows of the removed idempotency keys stay until the sweep reaches them; it removes only what they name.
      this.#tenants.put(token, generation);
      return rooms;
    });
    for (const room of removed) this.#rings.delete(room);
    for (const room of this.#rings.keys()) if (room.startsWith(token + ".")) this.#rings.delete(room);
    return removed.length;
  }

  /** Room rows and stored messages, from LMDB's own entry counts (no scan). A room emptied by retention keeps its row. */
  async stats(): Promise<HistoryStats> {
    if (this.#closed) throw closed();
    return { rooms: entryCount(this.#rooms), messages: entryCount(this.#messages) };
  }

  /**
   * Removes one room in one write transaction (messages, room row, idempotency keys) and draws the room a new epoch
   * generation, so the room's next epoch differs from every one it had.
   */
  async deleteRoom(key: RoomKey): Promise<boolean> {
    if (this.#closed) throw closed();
    assertRoomKeyArgument(key);
    const generation = randomBytes(6).toString("hex");
    const had = await this.#env.write(() => {
      const record = this.#rooms.get(key);
      for (const k of keysOf(this.#messages, key)) this.#messages.remove(k);
      for (const k of keysOf(this.#dedupe, key)) this.#dedupe.remove(k);
      this.#rooms.remove(key);
      if (key.includes(".")) this.#tenants.put(key, generation);
      return record !== undefined && record.last > 0;
    });
    this.#rings.delete(key);
    return had;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearInterval(this.#sweepTimer);
    await this.#sweeping;
    this.#rings.clear();
  }
}
