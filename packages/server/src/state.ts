import { ArqonError, ErrorCode, roomKey, type Frame, type StateEntry, type StateWrite } from "@arqon/core";
import type { Connection } from "./connection.js";
import type { HandlerContext } from "./context.js";

/** Most entries one state_set may carry. */
export const MAX_STATE_WRITES = 64;

/** Broadcasts every applied state write to the room's local subscribers as state_changed. */
export function watchState(ctx: HandlerContext): () => void {
  return ctx.backends.state.watch((key, entry) => {
    const room = ctx.fanout.rooms.get(key);
    if (!room) return;
    try {
      ctx.fanout.deliver(key, { frame: { type: "state_changed", room: room.room, state: [entry] } });
    } catch (err) {
      ctx.logger.error({ err }, "state broadcast failed");
    }
  });
}

/** state_get: the current map, or the map as of a state revision (`offset`) or a time (`timestamp`). */
export async function handleStateGet(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  const key = roomKey(conn.tenant, room);
  let state: StateEntry[];
  if (frame.offset) state = await ctx.backends.state.at(key, { revision: frame.offset });
  else if (frame.timestamp) state = await ctx.backends.state.at(key, { timestamp: frame.timestamp });
  else state = await ctx.backends.state.get(key);
  const reply: Frame = { type: "state", room };
  if (state.length) reply.state = state;
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

/**
 * Refuses (ARQ_QUOTA_EXCEEDED, nothing written) a state_set that would leave the room with more keys or value bytes
 * than the tenant allows. Counted against the map as it is now; writes racing on other connections can pass the
 * limit by at most one state_set's worth each.
 */
async function checkStateQuota(ctx: HandlerContext, tenant: string, key: ReturnType<typeof roomKey>, room: string, writes: StateWrite[]): Promise<void> {
  const { maxStateKeys, maxStateBytes } = ctx.tenants.runtime(tenant).limits;
  if (!writes.some((w) => !w.deleted)) return;
  const sizes = new Map<string, number>();
  for (const entry of await ctx.backends.state.get(key)) sizes.set(entry.key, entry.value?.length ?? 0);
  for (const w of writes) {
    if (w.deleted) sizes.delete(w.key);
    else sizes.set(w.key, w.value!.length);
  }
  let bytes = 0;
  for (const n of sizes.values()) bytes += n;
  if (sizes.size > maxStateKeys) {
    throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `room "${room}" would hold more than ${maxStateKeys} state keys`, { detail: { quota: "maxStateKeys", limit: maxStateKeys } });
  }
  if (bytes > maxStateBytes) {
    throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `room "${room}" would hold more than ${maxStateBytes} bytes of state`, { detail: { quota: "maxStateBytes", limit: maxStateBytes } });
  }
}

/**
 * Applies state writes for `subject` in a room of `tenant`, as a state_set does: each value is size-checked and
 * inspected, the writes are checked against the tenant's state limits, the room is registered, then each write is
 * applied in order with its own compare-and-set. The first failure (ARQ_STATE_CONFLICT, a CASIL block) stops the
 * rest; writes before it stay applied. Applied writes reach the room's subscribers as state_changed (watchState).
 * Resolves to the stored entries, with their new versions.
 */
export async function applyStateWrites(ctx: HandlerContext, tenant: string, room: string, subject: string, entries: readonly StateEntry[]): Promise<StateEntry[]> {
  if (entries.length > MAX_STATE_WRITES) {
    throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, `at most ${MAX_STATE_WRITES} entries per state_set`);
  }
  const key = roomKey(tenant, room);
  const writes: StateWrite[] = [];
  for (const entry of entries) {
    const write: StateWrite = { key: entry.key, updatedBy: subject };
    if (entry.deleted) write.deleted = true;
    else {
      if (entry.value!.length > ctx.limits.maxPayloadBytes) {
        throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `state value exceeds ${ctx.limits.maxPayloadBytes} bytes`);
      }
      const { payload } = await ctx.inspect({ tenant, room, path: "state", subject, payload: entry.value!, stateKey: entry.key });
      write.value = payload;
    }
    if (entry.ifVersion !== undefined) write.ifVersion = entry.ifVersion;
    writes.push(write);
  }
  await checkStateQuota(ctx, tenant, key, room, writes);
  const registering = ctx.rooms.ensure(tenant, room, ctx.tenants.runtime(tenant).limits.maxRooms);
  if (registering) await registering;
  const stored: StateEntry[] = [];
  for (const write of writes) stored.push(await ctx.backends.state.set(key, write));
  return stored;
}

/** state_set: `applyStateWrites` for the connection's user; on success the ack carries the stored entries. */
export async function handleStateSet(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  const stored = await applyStateWrites(ctx, conn.tenant, room, conn.auth.sub, frame.state!);
  const reply: Frame = { type: "ack", room, state: stored };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}
