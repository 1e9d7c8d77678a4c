import type { Database } from "lmdb";
import {
  ArqonError,
  BackendUnavailableError,
  ErrorCode,
  escapeToken,
  StateConflictError,
  type RoomKey,
  type RoomStateStore,
  type StateEntry,
  type StatePoint,
  type StateWrite,
  type Unsubscribe,
} from "@arqon/core";
import { DB, keysOf, keysWithPrefix, plainBytes, wallClock, type StorageClock, type StorageEnv } from "./env.js";

export const DEFAULT_STATE_LOG_ENTRIES = 10_000;

export interface LmdbRoomStateOptions {
  /**
   * Writes kept per room for `at`. Past this, the oldest half is folded into a stored snapshot and `at` for a point
   * before it rejects with ARQ_HISTORY_UNAVAILABLE.
   * @default 10000
   */
  maxLogEntries?: number;
  /** @default wall time */
  clock?: StorageClock;
  /** Receives an error a watcher threw. @default rethrow on a fresh microtask */
  onHandlerError?: (error: unknown) => void;
}

interface RoomRow {
  /** Number of writes applied to the room. */
  revision: number;
  /** Writes folded into the snapshot (`state.base`); the log holds `baseRevision + 1 .. revision`. */
  baseRevision: number;
  /** `updatedAt` of write `baseRevision` (0 when none is folded). */
  baseAt: number;
  /** Version a key never written in this room continues from (set when the room's tenant was deleted before). */
  floor?: number;
}

type EntryKey = [string, string];
type LogKey = [string, number];
type Watcher = (key: RoomKey, entry: StateEntry) => void;

type Outcome =
  | { kind: "applied"; entry: StateEntry }
  | { kind: "unchanged"; entry: StateEntry }
  | { kind: "conflict"; expected: number; actual: number };

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("room state store is closed");
}

function restore(entry: StateEntry): StateEntry {
  if (entry.value !== undefined) entry.value = plainBytes(entry.value);
  return entry;
}

function live(map: Map<string, StateEntry>): StateEntry[] {
  const out: StateEntry[] = [];
  for (const entry of map.values()) if (!entry.deleted) out.push(restore(entry));
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const rethrow = (error: unknown): void => {
  queueMicrotask(() => {
    throw error;
  });
};

/**
 * Room state in LMDB, with every write kept in a log so `at` can rebuild the room as of a revision or a time.
 * Semantics match `MemoryRoomStateStore`: live keys in ascending key order; `ifVersion: 0` matches a key never written
 * or deleted; deleting an absent key changes nothing. Compare-and-set is checked inside the write transaction, so it
 * is atomic. Watchers of this instance see each applied write once, in commit order, after it is durable.
 * `deleteTenant` keeps one number per deleted tenant (the highest key version its rooms reached), which new keys of
 * that tenant's rooms continue from.
 */
export class LmdbRoomStateStore implements RoomStateStore {
  readonly #env: StorageEnv;
  readonly #rooms: Database<RoomRow, string>;
  readonly #entries: Database<StateEntry, EntryKey>;
  readonly #log: Database<StateEntry, LogKey>;
  readonly #base: Database<StateEntry, EntryKey>;
  /** Per escaped tenant: the highest key version any deleted room of the tenant reached. */
  readonly #floors: Database<number, string>;
  readonly #maxLog: number;
  readonly #clock: StorageClock;
  readonly #onHandlerError: (error: unknown) => void;
  #watchers: readonly Watcher[] = [];
  /** Watcher dispatch in call order: writes are numbered when called and announced in that order once settled. */
  #nextSeq = 0;
  #nextAnnounce = 0;
  readonly #settled = new Map<number, { key: RoomKey; entry: StateEntry } | undefined>();
  #closed = false;

  constructor(env: StorageEnv, options: LmdbRoomStateOptions = {}) {
    this.#env = env;
    this.#rooms = env.openDB(DB.stateRooms);
    this.#entries = env.openDB(DB.stateEntries);
    this.#log = env.openDB(DB.stateLog);
    this.#base = env.openDB(DB.stateBase);
    this.#floors = env.openDB(DB.stateTenants);
    this.#maxLog = Math.max(2, options.maxLogEntries ?? DEFAULT_STATE_LOG_ENTRIES);
    this.#clock = options.clock ?? wallClock;
    this.#onHandlerError = options.onHandlerError ?? rethrow;
  }

  async get(key: RoomKey): Promise<StateEntry[]> {
    if (this.#closed) throw closed();
    const map = new Map<string, StateEntry>();
    for (const { key: k, value } of this.#entries.getRange({ start: [key] })) {
      if (k[0] !== key) break;
      map.set(k[1], value);
    }
    return live(map);
  }

  async set(key: RoomKey, write: StateWrite): Promise<StateEntry> {
    if (this.#closed) throw closed();
    const name = write.key;
    if (typeof name !== "string" || name === "") {
      throw new ArqonError(ErrorCode.STATE_KEY_INVALID, "state key must be a non-empty string");
    }
    const value = write.deleted ? undefined : (write.value ?? new Uint8Array(0));
    const seq = this.#nextSeq++;
    let outcome: Outcome;
    try {
      outcome = await this.#env.write((): Outcome => {
        const current = this.#entries.get([key, name]);
        const stored = this.#rooms.get(key);
        const floor = stored !== undefined ? (stored.floor ?? 0) : this.#tenantFloor(key);
        const version = current?.version ?? floor;
        const exists = current !== undefined && !current.deleted;
        if (write.ifVersion !== undefined) {
          const ok = write.ifVersion === 0 ? !exists : exists && write.ifVersion === version;
          if (!ok) return { kind: "conflict", expected: write.ifVersion, actual: exists ? version : 0 };
        }
        if (write.deleted && !exists) return { kind: "unchanged", entry: current ?? { key: name, version: 0, deleted: true } };
        const entry: StateEntry = { key: name, version: version + 1, updatedAt: this.#clock.now() };
        if (write.deleted) entry.deleted = true;
        else entry.value = value;
        if (write.updatedBy !== undefined && write.updatedBy !== "") entry.updatedBy = write.updatedBy;
        const row: RoomRow = stored ?? { revision: 0, baseRevision: 0, baseAt: 0, ...(floor > 0 ? { floor } : {}) };
        const revision = row.revision + 1;
        this.#entries.put([key, name], entry);
        this.#log.put([key, revision], entry);
        this.#rooms.put(key, this.#compact(key, { ...row, revision }));
        return { kind: "applied", entry };
      });
    } catch (error) {
      this.#announce(seq, undefined);
      throw error;
    }
    if (outcome.kind === "conflict") {
      this.#announce(seq, undefined);
      throw new StateConflictError(name, outcome.expected, outcome.actual);
    }
    const entry = restore({ ...outcome.entry });
    this.#announce(seq, outcome.kind === "applied" ? { key, entry } : undefined);
    return entry;
  }

  #tenantFloor(key: RoomKey): number {
    const dot = key.indexOf(".");
    return dot < 0 ? 0 : (this.#floors.get(key.slice(0, dot)) ?? 0);
  }

  /** Inside a write transaction: folds the oldest half of an overlong log into the snapshot. */
  #compact(key: RoomKey, row: RoomRow): RoomRow {
    if (row.revision - row.baseRevision <= this.#maxLog) return row;
    const folded = (row.revision - row.baseRevision) >> 1;
    let baseAt = row.baseAt;
    for (let r = row.baseRevision + 1; r <= row.baseRevision + folded; r++) {
      const entry = this.#log.get([key, r]);
      if (entry === undefined) continue;
      this.#base.put([key, entry.key], entry);
      this.#log.remove([key, r]);
      baseAt = entry.updatedAt ?? baseAt;
    }
    return { ...row, baseRevision: row.baseRevision + folded, baseAt };
  }

  #announce(seq: number, event: { key: RoomKey; entry: StateEntry } | undefined): void {
    this.#settled.set(seq, event);
    while (this.#settled.has(this.#nextAnnounce)) {
      const next = this.#settled.get(this.#nextAnnounce);
      this.#settled.delete(this.#nextAnnounce++);
      if (next === undefined) continue;
      const watchers = this.#watchers;
      for (let i = 0; i < watchers.length; i++) {
        try {
          watchers[i]!(next.key, next.entry);
        } catch (error) {
          this.#onHandlerError(error);
        }
      }
    }
  }

  async at(key: RoomKey, point: StatePoint): Promise<StateEntry[]> {
    if (this.#closed) throw closed();
    let bound: (entry: StateEntry, revision: number) => boolean;
    const row = this.#rooms.get(key);
    if ("revision" in point) {
      if (!Number.isSafeInteger(point.revision) || point.revision < 0) {
        throw new ArqonError(ErrorCode.POSITION_INVALID, "state revision must be a non-negative integer", {
          detail: { revision: point.revision },
        });
      }
      if (row === undefined) return [];
      if (point.revision < row.baseRevision) throw this.#compacted(row);
      bound = (_entry, revision) => revision <= point.revision;
    } else {
      if (typeof point.timestamp !== "number" || Number.isNaN(point.timestamp)) {
        throw new ArqonError(ErrorCode.POSITION_INVALID, "state timestamp must be a number", {
          detail: { timestamp: point.timestamp },
        });
      }
      if (row === undefined) return [];
      if (row.baseRevision > 0 && point.timestamp < row.baseAt) throw this.#compacted(row);
      bound = (entry) => (entry.updatedAt ?? 0) <= point.timestamp;
    }
    const map = new Map<string, StateEntry>();
    for (const { key: k, value } of this.#base.getRange({ start: [key] })) {
      if (k[0] !== key) break;
      map.set(k[1], value);
    }
    for (const { key: k, value } of this.#log.getRange({ start: [key, row.baseRevision + 1], end: [key, row.revision + 1] })) {
      if (!bound(value, k[1])) break;
      map.set(value.key, value);
    }
    return live(map);
  }

  #compacted(row: RoomRow): ArqonError {
    return new ArqonError(ErrorCode.HISTORY_UNAVAILABLE, `state before revision ${row.baseRevision} is no longer kept`, {
      detail: { oldestRevision: row.baseRevision },
    });
  }

  watch(handler: Watcher): Unsubscribe {
    this.#watchers = [...this.#watchers, handler];
    return () => {
      this.#watchers = this.#watchers.filter((w) => w !== handler);
    };
  }

  async deleteTenant(tenant: string): Promise<number> {
    if (this.#closed) throw closed();
    if (typeof tenant !== "string") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "tenant must be a string", { detail: { field: "tenant" } });
    }
    const token = escapeToken(tenant);
    return this.#env.write(() => {
      const rooms = keysWithPrefix(this.#rooms, token + ".");
      let floor = this.#floors.get(token) ?? 0;
      for (const room of rooms) {
        for (const { key, value } of this.#entries.getRange({ start: [room] })) {
          if (key[0] !== room) break;
          floor = Math.max(floor, value.version ?? 0);
        }
        for (const key of keysOf(this.#entries, room)) this.#entries.remove(key);
        for (const key of keysOf(this.#log, room)) this.#log.remove(key);
        for (const key of keysOf(this.#base, room)) this.#base.remove(key);
        this.#rooms.remove(room);
      }
      if (floor > 0) this.#floors.put(token, floor);
      return rooms.length;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watchers = [];
  }
}
