import { ArqonError, ErrorCode, roomKey, type Frame, type StateEntry, type StateWrite } from "@arqon/core";
import { can } from "./auth.js";
import type { Connection } from "./connection.js";
import type { Gateway } from "./gateway.js";
import { inspectOrThrow } from "./inspect.js";

/** Most entries one state_set may carry. */
export const MAX_STATE_WRITES = 64;

/** Broadcasts every applied state write to the room's local subscribers as state_changed. */
export function watchState(gw: Gateway): () => void {
  return gw.backends.state.watch((key, entry) => {
    const room = gw.fanout.rooms.get(key);
    if (!room) return;
    try {
      gw.fanout.deliver(key, { frame: { type: "state_changed", room: room.room, state: [entry] } });
    } catch (err) {
      gw.logger.error({ err }, "state broadcast failed");
    }
  });
}

/** state_get: the current map, or the map as of a state revision (`offset`) or a time (`timestamp`). */
export async function handleStateGet(gw: Gateway, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  if (!can(conn.auth, "sub", room)) throw new ArqonError(ErrorCode.FORBIDDEN, `not allowed to read state of room "${room}"`);
  const key = roomKey(conn.tenant, room);
  let state: StateEntry[];
  if (frame.offset) state = await gw.backends.state.at(key, { revision: frame.offset });
  else if (frame.timestamp) state = await gw.backends.state.at(key, { timestamp: frame.timestamp });
  else state = await gw.backends.state.get(key);
  const reply: Frame = { type: "state", room };
  if (state.length) reply.state = state;
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

/**
 * state_set: entries are inspected, then applied in order, each with its own compare-and-set. The first failure
 * (ARQ_STATE_CONFLICT, a CASIL block) stops the rest and answers an error; entries before it stay applied.
 * On success the ack carries the stored entries (with their new versions).
 */
export async function handleStateSet(gw: Gateway, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  if (!can(conn.auth, "pub", room)) throw new ArqonError(ErrorCode.FORBIDDEN, `not allowed to write state of room "${room}"`);
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
      if (entry.value!.length > gw.limits.maxPayloadBytes) {
        throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `state value exceeds ${gw.limits.maxPayloadBytes} bytes`);
      }
      const { payload } = await inspectOrThrow(
        gw.inspector,
        { tenant: conn.tenant, room, path: "state", subject: conn.auth.sub, payload: entry.value! },
        gw.logger,
      );
      write.value = payload;
    }
    if (entry.ifVersion !== undefined) write.ifVersion = entry.ifVersion;
    writes.push(write);
  }
  const stored: StateEntry[] = [];
  for (const write of writes) stored.push(await gw.backends.state.set(key, write));
  const reply: Frame = { type: "ack", room, state: stored };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}
