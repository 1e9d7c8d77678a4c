import type { Member } from "../frame/types.js";
import type { RoomKey } from "../room/names.js";
import type { Unsubscribe } from "../bus/types.js";

export type PresenceEvent = { type: "join"; member: Member } | { type: "leave"; member: Member; reason?: string };

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
  join(key: RoomKey, member: Member): Promise<void>;
  /** Resolves true when an entry was removed. */
  leave(key: RoomKey, clientId: string, reason?: string): Promise<boolean>;
  list(key: RoomKey): Promise<Member[]>;
  watch(handler: (key: RoomKey, event: PresenceEvent) => void): Unsubscribe;
  close(): Promise<void>;
}
