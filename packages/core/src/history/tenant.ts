import { ArqonError, ErrorCode } from "../errors.js";
import { escapeToken } from "../room/names.js";

/**
 * The start every room key of `tenant` has and no room key of another tenant has: `roomKey(tenant, room)` is
 * `<escapeToken(tenant)>.<escapeToken(room)>` and an escaped token never contains `.`. Rejects a non-string with
 * VALIDATION_ERROR.
 */
export function tenantKeyPrefix(tenant: unknown): string {
  if (typeof tenant !== "string") {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, "tenant must be a string", { detail: { field: "tenant" } });
  }
  return escapeToken(tenant) + ".";
}

/** Rejects (VALIDATION_ERROR) a room key that is not a non-empty string, as `HistoryStore.deleteRoom` promises. */
export function assertRoomKeyArgument(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, "room key must be a non-empty string", { detail: { field: "key" } });
  }
}
