import { StorageEnv, type Durability, type StorageClock } from "./env.js";
import { LmdbHistoryStore, type LmdbHistoryOptions, type RetentionConfig } from "./history.js";
import { LmdbKeyValueStore } from "./kv.js";
import { LmdbRoomStateStore, type LmdbRoomStateOptions } from "./state.js";

export { StorageEnv, wallClock, type Durability, type StorageClock } from "./env.js";
export {
  LmdbHistoryStore,
  DEFAULT_DEDUPE_WINDOW_MS,
  DEFAULT_HISTORY_MAX_AGE_MS,
  DEFAULT_HISTORY_MAX_MESSAGES,
  DEFAULT_HISTORY_READ_LIMIT,
  DEFAULT_RING_SIZE,
  DEFAULT_SWEEP_INTERVAL_MS,
  type LmdbHistoryOptions,
  type RetentionConfig,
  type RetentionRule,
} from "./history.js";
export { LmdbRoomStateStore, DEFAULT_STATE_LOG_ENTRIES, type LmdbRoomStateOptions } from "./state.js";
export { LmdbKeyValueStore, MAX_KV_KEY_BYTES, type LmdbKeyValueOptions } from "./kv.js";

/** The default data directory under the working directory (`arqon serve --data-dir` / `ARQON_DATA_DIR` override). */
export const DEFAULT_DATA_DIR = "./.arqon/data";

/** Options of `openEmbeddedStorage`. */
export interface EmbeddedStorageOptions {
  /** Directory of the LMDB environment; created when missing. */
  path: string;
  /** Per-room retention, e.g. `[{ pattern: "ticker:*", maxMessages: 100, maxAgeMs: 60000 }]`. */
  retention?: RetentionConfig;
  /** @default "commit" (acknowledged writes survive a kill -9; "flush" also survives a power loss) */
  durability?: Durability;
  /** Further options of the history store (its retention is `retention`, its clock `clock`). */
  history?: Omit<LmdbHistoryOptions, "retention" | "clock">;
  /** Further options of the room state store (its clock is `clock`). */
  state?: Omit<LmdbRoomStateOptions, "clock">;
  /** @default wall time */
  clock?: StorageClock;
}

/** The durable stores of a single-process deployment, on one LMDB environment. */
export interface EmbeddedStorage {
  /** Room history. */
  history: LmdbHistoryStore;
  /** Room state. */
  state: LmdbRoomStateStore;
  /** The key-value store. */
  kv: LmdbKeyValueStore;
  /** The LMDB environment the three stores share (`close()` closes it). */
  env: StorageEnv;
  /** The three stores as `createArqonServer` options: `createArqonServer({ auth, ...storage.backends })`. */
  backends: {
    /** The `history` option. */
    history: LmdbHistoryStore;
    /** The `state` option. */
    state: LmdbRoomStateStore;
    /** The `kv` option. */
    kv: LmdbKeyValueStore;
  };
  /** Closes the three stores, waits for pending writes to reach the disk and closes the environment. */
  close(): Promise<void>;
}

/**
 * Opens history, room state and key-value storage in one LMDB directory. Only one process should open a directory
 * at a time (the stores cache recent history in memory).
 *
 * ```ts
 * const storage = await openEmbeddedStorage({ path: "./.arqon/data" });
 * const server = createArqonServer({ auth, ...storage.backends });
 * // on shutdown, after server.close():
 * await storage.close();
 * ```
 */
export async function openEmbeddedStorage(options: EmbeddedStorageOptions): Promise<EmbeddedStorage> {
  const env = await StorageEnv.open(options.path, { durability: options.durability });
  const clock = options.clock;
  const history = new LmdbHistoryStore(env, { ...options.history, retention: options.retention, clock });
  const state = new LmdbRoomStateStore(env, { ...options.state, clock });
  const kv = new LmdbKeyValueStore(env, { clock });
  let closing: Promise<void> | undefined;
  return {
    history,
    state,
    kv,
    env,
    backends: { history, state, kv },
    close() {
      closing ??= (async () => {
        await Promise.all([history.close(), state.close(), kv.close()]);
        await env.close();
      })();
      return closing;
    },
  };
}
