import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { open, type Database, type Key, type RootDatabase } from "lmdb";
import { BackendUnavailableError } from "@arqon/core";

/**
 * Where the stores read the time and schedule their sweeps. Structurally the same as core's `Clock`, so the
 * contract suites' `ManualClock` drives retention and dedupe windows without sleeping.
 */
export interface StorageClock {
  now(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Wall time; sweep timers never keep the process alive on their own. */
export const wallClock: StorageClock = {
  now: () => Date.now(),
  setInterval(callback, ms) {
    const handle = setInterval(callback, ms);
    handle.unref();
    return handle;
  },
  clearInterval(handle) {
    clearInterval(handle as ReturnType<typeof setInterval>);
  },
};

/**
 * When a write is acknowledged.
 * - "commit" (the default): after the LMDB commit reached the OS (the environment is opened with `noSync`). It
 *   survives a process kill, which is the guarantee ArqonBus makes; a power loss or kernel crash may lose the last
 *   commits. About 5x the serial append rate of "flush" here (bench/delta/storage.ts).
 * - "flush": after the commit and its fsync: also survives a power loss.
 */
export type Durability = "flush" | "commit";

/** Names of the LMDB sub-databases inside one environment. */
export const DB = {
  meta: "meta",
  historyRooms: "history.rooms",
  historyMessages: "history.messages",
  historyDedupe: "history.dedupe",
  historyExpiry: "history.dedupe-expiry",
  historyTenants: "history.tenants",
  stateRooms: "state.rooms",
  stateEntries: "state.entries",
  stateLog: "state.log",
  stateBase: "state.base",
  stateTenants: "state.tenants",
  kvEntries: "kv.entries",
  kvTombstones: "kv.tombstones",
} as const;

/** One LMDB environment (a directory) shared by the history, state and key-value stores. */
export class StorageEnv {
  /** Random id drawn once when the database is created; lost data means a new id, hence new epochs. */
  readonly storeId: string;
  readonly durability: Durability;
  #closed = false;

  private constructor(
    /** @internal The LMDB root (its types stay out of the published declarations). */
    readonly root: RootDatabase,
    readonly path: string,
    storeId: string,
    durability: Durability,
  ) {
    this.storeId = storeId;
    this.durability = durability;
  }

  /** Opens (creating when missing) the environment under `path`. */
  static async open(path: string, options: { durability?: Durability } = {}): Promise<StorageEnv> {
    let root: RootDatabase;
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
      root = open({ path, maxDbs: 32, noSubdir: false, noSync: (options.durability ?? "commit") === "commit" });
    } catch (cause) {
      throw new BackendUnavailableError(`cannot open embedded storage at ${path}: ${(cause as Error).message}`, { cause });
    }
    const meta = root.openDB<string, string>({ name: DB.meta });
    let storeId = meta.get("storeId");
    if (storeId === undefined) {
      const fresh = randomBytes(6).toString("hex");
      await root.transaction(() => {
        if (meta.get("storeId") === undefined) meta.put("storeId", fresh);
      });
      await root.flushed;
      storeId = meta.get("storeId")!;
    }
    return new StorageEnv(root, path, storeId, options.durability ?? "commit");
  }

  /** @internal Opens one of the named databases (LMDB types stay out of the published declarations). */
  openDB<V, K extends Key>(name: (typeof DB)[keyof typeof DB]): Database<V, K> {
    return this.root.openDB<V, K>({ name });
  }

  /** Runs `action` inside one LMDB write transaction and resolves once the commit is durable per `durability`. */
  async write<T>(action: () => T): Promise<T> {
    if (this.#closed) throw new BackendUnavailableError("embedded storage is closed");
    const result = await this.root.transaction(action);
    if (this.durability === "flush") await this.root.flushed;
    return result;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.root.flushed;
    await this.root.close();
  }
}

/** lmdb hands back Buffers; callers get plain Uint8Array views (same bytes, no copy). */
export function plainBytes(value: Uint8Array | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  return Object.getPrototypeOf(value) === Uint8Array.prototype ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * Every key of `db` that starts with `prefix`, in key order, read inside the current transaction. The keys are
 * collected before the caller removes any, so removing while scanning is never an issue.
 */
export function keysWithPrefix(db: Database<unknown, string>, prefix: string): string[] {
  const out: string[] = [];
  for (const key of db.getKeys({ start: prefix })) {
    if (!key.startsWith(prefix)) break;
    out.push(key);
  }
  return out;
}

/** Every `[id, ...]` key of `db` whose first element is `id`, collected before the caller removes any. */
export function keysOf<K extends [string, ...Key[]]>(db: Database<unknown, K>, id: string): K[] {
  const out: K[] = [];
  for (const key of db.getKeys({ start: [id] as unknown as K })) {
    if (key[0] !== id) break;
    out.push(key);
  }
  return out;
}

/** Keys longer than this many UTF-8 bytes are stored under their SHA-256 (LMDB keys are at most 1978 bytes). */
const MAX_INLINE_KEY_BYTES = 256;

/** A bounded key part for client-chosen strings (idempotency keys): `=key`, or `#<sha256>` when long. */
export function keyPart(value: string): string {
  if (Buffer.byteLength(value, "utf8") <= MAX_INLINE_KEY_BYTES) return "=" + value;
  return "#" + createHash("sha256").update(value, "utf8").digest("hex");
}
