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
 * state_set: entries are inspected and checked against the tenant's state limits, then applied in order, each with
 * its own compare-and-set. The first failure (ARQ_STATE_CONFLICT, a CASIL block) stops the rest and answers an
 * error; entries before it stay applied. On success the ack carries the stored entries (with their new versions).
 */
export async function handleStateSet(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  const entries = frame.state!;
  if (entries.length > MAX_STATE_WRITES) {
    throw new ArqonError(ErrorCode.FRAME_WRONG_TYPE, `at most ${MAX_STATE_WRITES} entries per state_set`);
  }
  const key = roomKey(conn.tenant, room);
  const writes: StateWrite[] = [];
  for (const entry of entries) {
    const write: StateWrite = { key: entry.key, updatedBy: conn.auth.sub };
    if (entry.deleted) write.deleted = true;
    else {
      if (entry.value!.length > ctx.limits.maxPayloadBytes) {
        throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `state value exceeds ${ctx.limits.maxPayloadBytes} bytes`);
      }
      const { payload } = await ctx.inspect({ tenant: conn.tenant, room, path: "state", subject: conn.auth.sub, payload: entry.value!, stateKey: entry.key });
      write.value = payload;
    }
    if (entry.ifVersion !== undefined) write.ifVersion = entry.ifVersion;
    writes.push(write);
  }
  await checkStateQuota(ctx, conn.tenant, key, room, writes);
  const registering = ctx.rooms.ensure(conn.tenant, room, ctx.tenants.runtime(conn.tenant).limits.maxRooms);
  if (registering) await registering;
  const stored: StateEntry[] = [];
  for (const write of writes) stored.push(await ctx.backends.state.set(key, write));
  const reply: Frame = { type: "ack", room, state: stored };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}
