import type { Member } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";
import type { Unsubscribe } from "../bus/types.js";

/** A change to a room's members, as `PresenceStore.watch` handlers see it. */
export type PresenceEvent =
  | {
      /** A member joined, or an existing member's info changed. */
      type: "join";
      /** The member as now stored. */
      member: Member;
    }
  | {
      /** A member was removed. */
      type: "leave";
      /** The member as it was stored. */
      member: Member;
      /** Why, when known: the `reason` given to `leave`, or "expired" for a lease that ran out. */
      reason?: string;
    };

/**
 * Who is in a room, per connection.
 *
 * Guarantees every backend keeps, checked by `describePresenceContract`:
 * - `join` is an upsert keyed by `clientId`: joining twice keeps one entry and updates its info.
 * - `list` reflects every `join`/`leave` that resolved before it was called (read-your-writes on one node).
 * - Watchers see a `join` for each new entry and each info change, and one `leave` per removed entry, in the order the
 *   changes were applied to that room.
 * - A member whose node stops renewing (`leaseMs`) disappears, and watchers see its `leave` (reason "expired").
 * - Rooms and tenants are independent: keys are opaque.
 */
export interface PresenceStore {
  /**
   * Adds `member` to the room, or updates its entry (keyed by `clientId`) and renews its lease. A member without a
   * `clientId` rejects with ARQ_FRAME_MISSING_FIELD.
   */
  join(key: RoomKey, member: Member): Promise<void>;
  /** Resolves true when an entry was removed. */
  leave(key: RoomKey, clientId: string, reason?: string): Promise<boolean>;
  /** The room's current members, one per `clientId`. */
  list(key: RoomKey): Promise<Member[]>;
  /** Calls `handler` for every join and leave in every room; returns a function that removes it. */
  watch(handler: (key: RoomKey, event: PresenceEvent) => void): Unsubscribe;
  /** Closes this handle and drops the watchers; `join`, `leave` and `list` then reject with BackendUnavailableError. */
  close(): Promise<void>;
}
