/** The in-memory backends: one process, nothing persisted. The default for tests and single-node development. */
export { MemoryBus, MemoryBusHub, MemoryControlPlane } from "./bus/memory.js";
export type { MemoryBusOptions, MemoryControlPlaneOptions } from "./bus/memory.js";
export {
  MemoryHistoryStore,
  DEFAULT_DEDUPE_WINDOW_MS,
  DEFAULT_MAX_AGE_MS,
  DEFAULT_MAX_MESSAGES,
  DEFAULT_READ_LIMIT,
} from "./history/memory.js";
export type { MemoryHistoryOptions } from "./history/memory.js";
export { MemoryPresenceStore } from "./presence/memory.js";
export type { MemoryPresenceOptions } from "./presence/memory.js";
export { MemoryRoomStateStore, DEFAULT_STATE_LOG_ENTRIES } from "./state/memory.js";
export type { MemoryRoomStateOptions } from "./state/memory.js";
export { MemoryKeyValueStore } from "./kv/memory.js";
export type { MemoryKeyValueOptions } from "./kv/memory.js";
export { systemClock, rethrowHandlerError } from "./clock.js";
export type { Clock, HandlerErrorReporter } from "./clock.js";
