import type { StateEntry } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";
import type { Unsubscribe } from "../bus/types.js";
import { ArqonError, BackendUnavailableError, ErrorCode, StateConflictError } from "../errors.js";
import { rethrowHandlerError, type HandlerErrorReporter } from "../clock.js";
import { tenantKeyPrefix } from "../history/tenant.js";
import type { RoomStateStore, StatePoint, StateWrite } from "./types.js";

/** Writes a room's log keeps for `at` when `maxLogEntries` is not set. */
export const DEFAULT_STATE_LOG_ENTRIES = 10_000;

/** Options of `new MemoryRoomStateStore(options)`. */
export interface MemoryRoomStateOptions {
  /**
   * Writes kept per room for `at`. Past this, the oldest half is folded into a snapshot and `at` for a point before
   * the snapshot rejects with ARQ_HISTORY_UNAVAILABLE.
   * @default 10000
   */
  maxLogEntries?: number;
  /** Clock for `updatedAt` (and so for `at({ timestamp })`), in epoch milliseconds. @default Date.now */
  now?: () => number;
  /** Receives what a watcher throws; the other watchers still run. @default rethrowHandlerError */
  onHandlerError?: HandlerErrorReporter;
}

interface RoomState {
  /** Current entry per key; deleted keys stay as tombstones so their version keeps counting. */
  readonly entries: Map<string, StateEntry>;
  /** Writes `baseRevision + 1 ..` in order. */
  log: StateEntry[];
  /** The map after write `baseRevision` (tombstones included). */
  base: Map<string, StateEntry>;
  baseRevision: number;
  /** `updatedAt` of write `baseRevision` (-Infinity when 0). */
  baseAt: number;
  /** Version a key never written in this room continues from (above every version of a deleted earlier room). */
  readonly floor: number;
}

type Watcher = (key: RoomKey, entry: StateEntry) => void;

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("room state store is closed");
}

function live(map: Map<string, StateEntry>): StateEntry[] {
  const out: StateEntry[] = [];
  for (const entry of map.values()) if (!entry.deleted) out.push(entry);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Room state kept in this process, with the write log `at` reads. `get` and `at` list live keys in ascending key
 * order. `ifVersion: n` (n > 0) matches only a live key at version n; `ifVersion: 0` matches a key never written or
 * deleted. Deleting a key that does not exist changes nothing and reports the key's tombstone (or version 0).
 * `at({ revision })` beyond the newest write returns the current state.
 */
export class MemoryRoomStateStore implements RoomStateStore {
  readonly #rooms = new Map<RoomKey, RoomState>();
  /** Per tenant key prefix: the highest version any key of a deleted room of that tenant had. */
  readonly #floors = new Map<string, number>();
  #watchers: readonly Watcher[] = [];
  readonly #maxLog: number;
  readonly #now: () => number;
  readonly #onHandlerError: HandlerErrorReporter;
  #closed = false;

  constructor(options: MemoryRoomStateOptions = {}) {
    this.#maxLog = Math.max(2, options.maxLogEntries ?? DEFAULT_STATE_LOG_ENTRIES);
    this.#now = options.now ?? Date.now;
    this.#onHandlerError = options.onHandlerError ?? rethrowHandlerError;
  }

  /** The room's live entries in ascending key order (shared with the store: do not mutate them). */
  async get(key: RoomKey): Promise<StateEntry[]> {
    if (this.#closed) throw closed();
    const room = this.#rooms.get(key);
    return room === undefined ? [] : live(room.entries);
  }

  /**
   * Applies the write (storing a copy of `value`; a missing value is stored as empty bytes), appends it to the log and
   * calls the watchers synchronously. Deleting a key that does not exist writes nothing and notifies no one.
   */
  async set(key: RoomKey, write: StateWrite): Promise<StateEntry> {
    if (this.#closed) throw closed();
    const name = write.key;
    if (typeof name !== "string" || name === "") {
      throw new ArqonError(ErrorCode.STATE_KEY_INVALID, "state key must be a non-empty string");
    }
    let room = this.#rooms.get(key);
    if (room === undefined) {
      const dot = key.indexOf(".");
      const floor = dot < 0 ? 0 : (this.#floors.get(key.slice(0, dot + 1)) ?? 0);
      room = { entries: new Map(), log: [], base: new Map(), baseRevision: 0, baseAt: Number.NEGATIVE_INFINITY, floor };
      this.#rooms.set(key, room);
    }
    const current = room.entries.get(name);
    const version = current?.version ?? room.floor;
    const exists = current !== undefined && !current.deleted;
    if (write.ifVersion !== undefined) {
      const ok = write.ifVersion === 0 ? !exists : exists && write.ifVersion === version;
      if (!ok) throw new StateConflictError(name, write.ifVersion, exists ? version : 0);
    }
    if (write.deleted && !exists) return current ?? { key: name, version: 0, deleted: true };

    const entry: StateEntry = { key: name, version: version + 1, updatedAt: this.#now() };
    if (write.deleted) entry.deleted = true;
    else entry.value = write.value === undefined ? new Uint8Array(0) : write.value.slice();
    if (write.updatedBy !== undefined && write.updatedBy !== "") entry.updatedBy = write.updatedBy;

    room.entries.set(name, entry);
    room.log.push(entry);
    if (room.log.length > this.#maxLog) this.#compact(room);

    const watchers = this.#watchers;
    for (let i = 0; i < watchers.length; i++) {
      try {
        watchers[i]!(key, entry);
      } catch (error) {
        this.#onHandlerError(error);
      }
    }
    return entry;
  }

  #compact(room: RoomState): void {
    const folded = room.log.length >> 1;
    for (let i = 0; i < folded; i++) room.base.set(room.log[i]!.key, room.log[i]!);
    room.baseRevision += folded;
    room.baseAt = room.log[folded - 1]!.updatedAt!;
    room.log = room.log.slice(folded);
  }

  /** Replays the kept log up to `point` over the last snapshot; see `RoomStateStore.at` for what rejects. */
  async at(key: RoomKey, point: StatePoint): Promise<StateEntry[]> {
    if (this.#closed) throw closed();
    const room = this.#rooms.get(key);
    let writes: number;
    if ("revision" in point) {
      if (!Number.isSafeInteger(point.revision) || point.revision < 0) {
        throw new ArqonError(ErrorCode.POSITION_INVALID, "state revision must be a non-negative integer", {
          detail: { revision: point.revision },
        });
      }
      if (room === undefined) return [];
      if (point.revision < room.baseRevision) throw this.#compacted(room);
      writes = Math.min(point.revision - room.baseRevision, room.log.length);
    } else {
      if (typeof point.timestamp !== "number" || Number.isNaN(point.timestamp)) {
        throw new ArqonError(ErrorCode.POSITION_INVALID, "state timestamp must be a number", {
          detail: { timestamp: point.timestamp },
        });
      }
      if (room === undefined) return [];
      if (room.baseRevision > 0 && point.timestamp < room.baseAt) throw this.#compacted(room);
      writes = 0;
      while (writes < room.log.length && room.log[writes]!.updatedAt! <= point.timestamp) writes++;
    }
    const map = new Map(room.base);
    for (let i = 0; i < writes; i++) map.set(room.log[i]!.key, room.log[i]!);
    return live(map);
  }

  #compacted(room: RoomState): ArqonError {
    return new ArqonError(ErrorCode.HISTORY_UNAVAILABLE, `state before revision ${room.baseRevision} is no longer kept`, {
      detail: { oldestRevision: room.baseRevision },
    });
  }

  /** Calls `handler` synchronously, inside `set`, for every applied write; returns a function that removes it. */
  watch(handler: Watcher): Unsubscribe {
    this.#watchers = [...this.#watchers, handler];
    return () => {
      this.#watchers = this.#watchers.filter((w) => w !== handler);
    };
  }

  async deleteTenant(tenant: string): Promise<number> {
    if (this.#closed) throw closed();
    const prefix = tenantKeyPrefix(tenant);
    let floor = this.#floors.get(prefix) ?? 0;
    let removed = 0;
    for (const [key, room] of this.#rooms) {
      if (!key.startsWith(prefix)) continue;
      if (room.baseRevision + room.log.length > 0) removed++;
      for (const entry of room.entries.values()) floor = Math.max(floor, entry.version ?? 0);
      this.#rooms.delete(key);
    }
    if (floor > 0) this.#floors.set(prefix, floor);
    return removed;
  }

  /** Drops every room's state, log and watcher; later reads and writes reject with BackendUnavailableError. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#rooms.clear();
    this.#watchers = [];
  }
}
