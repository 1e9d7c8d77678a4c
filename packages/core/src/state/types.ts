import type { StateEntry } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";
import type { Unsubscribe } from "../bus/types.js";

/** One write to a room's state map, as `RoomStateStore.set` takes it. */
export interface StateWrite {
  /** The state key (non-empty). */
  key: string;
  /** UTF-8 JSON; ignored when `deleted`. */
  value?: Uint8Array;
  /** Delete the key instead of writing a value. */
  deleted?: boolean;
  /** Compare-and-set: apply only when the key's current version equals this (0 = the key must not exist). */
  ifVersion?: number;
  /** Who wrote it (the gateway passes the writer's token `sub`), recorded on the entry. */
  updatedBy?: string;
}

/** A point in a room's state log: the `revision`-th write, or the last write at or before `timestamp`. */
export type StatePoint =
  | {
      /** How many writes of the room's log to apply (0: the empty map). */
      revision: number;
    }
  | {
      /** Epoch milliseconds: apply every write made at or before this time. */
      timestamp: number;
    };

/**
 * A per-room key/value map ("what is the mode?") with a version per key.
 *
 * Guarantees every backend keeps, checked by `describeRoomStateContract`:
 * - Versions: a key's first write gives version 1, each later write +1; a delete keeps counting (a re-created key
 *   continues from the deleted one's version + 1) so a stale compare-and-set can never succeed.
 * - Compare-and-set: with `ifVersion`, the write is applied only if the version matches, atomically, else it rejects
 *   with `StateConflictError` (code ARQ_STATE_CONFLICT) and nothing changes.
 * - `set` resolves with the entry as stored; `get` reflects every `set` that resolved before it was called.
 * - Watchers see each applied write once, in the order they were applied to that room; rejected writes are not seen.
 * - Writes are kept as a log: `at(key, point)` returns the map as it was after that write.
 * - Deleting a tenant removes its rooms' maps and logs and nothing of any other tenant; key versions keep counting
 *   above every version the tenant's rooms reached, so a stale compare-and-set still never succeeds.
 */
export interface RoomStateStore {
  /** The room's live entries (deleted keys left out). */
  get(key: RoomKey): Promise<StateEntry[]>;
  /**
   * Applies one write and resolves with the entry as stored (its new `version`; `deleted: true` for a delete). Rejects
   * with StateConflictError when `ifVersion` does not match, and with ARQ_STATE_KEY_INVALID for an empty key.
   */
  set(key: RoomKey, write: StateWrite): Promise<StateEntry>;
  /**
   * The room's live entries as they were at `point`. Rejects with ARQ_POSITION_INVALID for a negative or fractional
   * revision or a non-numeric timestamp, and with ARQ_HISTORY_UNAVAILABLE when the point is older than the kept log.
   */
  at(key: RoomKey, point: StatePoint): Promise<StateEntry[]>;
  /** Calls `handler` with every applied write of every room; returns a function that removes it. */
  watch(handler: (key: RoomKey, entry: StateEntry) => void): Unsubscribe;
  /**
   * Removes the state map and the write log of every room of `tenant` (the rooms whose key is
   * `roomKey(tenant, ...)`). Resolves with the number of rooms removed (rooms with at least one applied write).
   * Afterwards those rooms read as empty, `at` finds no earlier state, and a room's log revisions start again at 1.
   * Key versions do not start again: the first write of a key after the delete gets a version above every version
   * any key of the tenant had, so a compare-and-set holding a version from before the delete is rejected. Watchers
   * are not told. Rooms of every other tenant are untouched, including a tenant whose name starts with this one.
   * A non-string `tenant` rejects with VALIDATION_ERROR.
   */
  deleteTenant(tenant: string): Promise<number>;
  /** Closes this handle and drops the watchers; later reads and writes reject with BackendUnavailableError. */
  close(): Promise<void>;
}
