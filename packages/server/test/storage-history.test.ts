import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, HEADER_TWIST_ID, jsonBytes, parseJsonBytes, roomKey, type Frame } from "@arqon/core";
import { ManualClock } from "@arqon/core/testing";
import { LmdbHistoryStore, openEmbeddedStorage, type EmbeddedStorageOptions } from "../src/storage/index.js";

type EmbeddedOptions = Omit<EmbeddedStorageOptions, "path">;

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-hist-"));
  dirs.push(dir);
  return dir;
}

const msg = (n: number, headers?: Record<string, string>): Frame => ({
  type: "message",
  room: "r",
  payload: jsonBytes({ n }),
  ...(headers ? { headers } : {}),
});
/** A message whose payload is `bytes` long (JSON `{"n":n,"p":"xx.."}`). */
const sized = (n: number, bytes: number): Frame => {
  const bare = JSON.stringify({ n, p: "" }).length;
  return { type: "message", room: "r", payload: jsonBytes({ n, p: "x".repeat(bytes - bare) }) };
};
const ns = (frames: readonly Frame[]) => frames.map((f) => (parseJsonBytes(f.payload!) as { n: number }).n);

async function withStorage<T>(dir: string, options: EmbeddedOptions, run: (s: Awaited<ReturnType<typeof openEmbeddedStorage>>) => Promise<T>) {
  const storage = await openEmbeddedStorage({ path: dir, ...options });
  try {
    return await run(storage);
  } finally {
    await storage.close();
  }
}

describe("storage - history", () => {
  it("storage - history, epochs, offsets and idempotency keys survive a clean restart", async () => {
    const dir = tempDir();
    const key = roomKey("acme", "lobby");
    const first = await withStorage(dir, {}, async ({ history }) => {
      for (let n = 1; n <= 5; n++) await history.append(key, msg(n), n === 3 ? { idempotencyKey: "k3" } : undefined);
      return history.position(key);
    });
    await withStorage(dir, {}, async ({ history }) => {
      expect(await history.position(key)).toEqual(first);
      expect(ns((await history.read(key, {})).messages)).toEqual([1, 2, 3, 4, 5]);
      expect(await history.append(key, msg(99), { idempotencyKey: "k3" })).toMatchObject({ duplicate: true, offset: 3, epoch: first.epoch });
      expect(await history.append(key, msg(6))).toMatchObject({ duplicate: false, offset: 6, epoch: first.epoch });
      const recovered = await history.recover(key, { offset: 2, epoch: first.epoch }, 100);
      expect(recovered.recovered && ns(recovered.messages)).toEqual([3, 4, 5, 6]);
    });
  });

  it("storage - rooms get distinct epochs; payloads come back as plain Uint8Array", async () => {
    await withStorage(tempDir(), {}, async ({ history }) => {
      const a = await history.append(roomKey("acme", "a"), msg(1));
      const b = await history.append(roomKey("acme", "b"), msg(1));
      expect(a.epoch).not.toBe(b.epoch);
      const [stored] = (await history.read(roomKey("acme", "a"), {})).messages;
      expect(Object.getPrototypeOf(stored!.payload)).toBe(Uint8Array.prototype);
    });
  });

  it("storage - retention rules match room patterns, first match wins, others get the defaults", async () => {
    const clock = new ManualClock();
    const retention = [
      { pattern: "ticker:*", maxMessages: 3, maxAgeMs: 60_000 },
      { pattern: "ticker:**", maxMessages: 5 },
      { pattern: "chat/*", maxAgeMs: 1_000 },
      { pattern: "feed", maxBytes: 50 },
    ];
    await withStorage(tempDir(), { retention, clock }, async ({ history }) => {
      const ticker = roomKey("t", "ticker:btc");
      const deep = roomKey("t", "ticker:btc:eur");
      const chat = roomKey("t", "chat/general");
      const other = roomKey("t", "lobby");
      const feed = roomKey("t", "feed");
      expect(history.policy(ticker)).toEqual({ maxMessages: 3, maxAgeMs: 60_000, maxBytes: 0 });
      expect(history.policy(deep)).toEqual({ maxMessages: 5, maxAgeMs: 86_400_000, maxBytes: 0 });
      expect(history.policy(other)).toEqual({ maxMessages: 1000, maxAgeMs: 86_400_000, maxBytes: 0 });
      expect(history.policy(feed)).toEqual({ maxMessages: 1000, maxAgeMs: 86_400_000, maxBytes: 50 });
      for (let n = 1; n <= 4; n++) await history.append(feed, sized(n, 20));
      expect(ns((await history.read(feed, {})).messages)).toEqual([3, 4]);
      for (let n = 1; n <= 8; n++) {
        for (const key of [ticker, deep, chat, other]) await history.append(key, msg(n));
      }
      expect(ns((await history.read(ticker, {})).messages)).toEqual([6, 7, 8]);
      expect(ns((await history.read(deep, {})).messages)).toEqual([4, 5, 6, 7, 8]);
      expect(ns((await history.read(other, {})).messages)).toHaveLength(8);
      await clock.advance(1_500);
      expect((await history.read(chat, {})).messages).toEqual([]);
      const position = await history.position(chat);
      expect(await history.recover(chat, { offset: 7, epoch: position.epoch }, 10)).toEqual({
        recovered: false,
        reason: "retention_exceeded",
        position,
      });
      expect(ns((await history.read(ticker, {})).messages)).toEqual([6, 7, 8]);
    });
  });

  it("storage - the sweep deletes aged messages and expired idempotency keys from disk", async () => {
    const clock = new ManualClock();
    const dir = tempDir();
    const key = roomKey("t", "chat");
    await withStorage(dir, { retention: { maxAgeMs: 1_000 }, clock, history: { sweepIntervalMs: 500 } }, async ({ history, env }) => {
      await history.append(key, msg(1), { idempotencyKey: "once", dedupeWindowMs: 800 });
      await history.append(key, msg(2));
      await clock.advance(1_600);
      await history.sweep();
      const rows = [...env.root.openDB({ name: "history.messages" }).getRange({})];
      expect(rows).toHaveLength(0);
      expect([...env.root.openDB({ name: "history.dedupe" }).getRange({})]).toHaveLength(0);
      expect(await history.append(key, msg(3), { idempotencyKey: "once" })).toMatchObject({ duplicate: false, offset: 3 });
    });
  });

  it("storage - the sweep works through many rooms in bounded steps", async () => {
    const clock = new ManualClock();
    await withStorage(tempDir(), { retention: { maxAgeMs: 1_000 }, clock, history: { sweepIntervalMs: 3_600_000 } }, async ({ history, env }) => {
      await Promise.all(Array.from({ length: 1_100 }, (_, i) => history.append(roomKey("t", `room-${i}`), msg(i))));
      const rows = () => [...env.root.openDB({ name: "history.messages" }).getRange({})].length;
      expect(rows()).toBe(1_100);
      await clock.advance(2_000);
      await history.sweep();
      const afterOne = rows();
      expect(afterOne).toBeGreaterThan(0);
      expect(afterOne).toBeLessThan(1_100);
      await history.sweep();
      expect(rows()).toBe(0);
      expect((await history.position(roomKey("t", "room-7"))).offset).toBe(1);
    });
  });

  it("storage - byte retention deletes from disk, holds across a restart, and starts counting when a bound is added", async () => {
    const dir = tempDir();
    const key = roomKey("t", "feed");
    const rows = (env: { root: { openDB(o: { name: string }): { getRange(o: object): Iterable<unknown> } } }) =>
      [...env.root.openDB({ name: "history.messages" }).getRange({})].length;
    await withStorage(dir, {}, async ({ history, env }) => {
      for (let n = 1; n <= 10; n++) await history.append(key, sized(n, 30));
      expect(rows(env)).toBe(10);
    });
    await withStorage(dir, { retention: { maxBytes: 100 } }, async ({ history, env }) => {
      // The stored messages predate the bound: the first append under it counts them and trims to fit.
      expect(ns((await history.read(key, {})).messages)).toHaveLength(10);
      await history.append(key, sized(11, 30));
      expect(ns((await history.read(key, {})).messages)).toEqual([9, 10, 11]);
      expect(rows(env)).toBe(3);
      await history.append(key, sized(12, 200));
      expect(ns((await history.read(key, {})).messages)).toEqual([12]);
      expect(rows(env)).toBe(1);
    });
    await withStorage(dir, { retention: { maxBytes: 100 }, history: { ringSize: 0 } }, async ({ history, env }) => {
      await history.append(key, sized(13, 40));
      await history.append(key, sized(14, 40));
      expect(ns((await history.read(key, {})).messages)).toEqual([13, 14]);
      await history.append(key, sized(15, 40));
      expect(ns((await history.read(key, {})).messages)).toEqual([14, 15]);
      expect(rows(env)).toBe(2);
      const { epoch } = await history.position(key);
      expect(await history.recover(key, { offset: 12, epoch }, 10)).toMatchObject({ recovered: false, reason: "retention_exceeded" });
    });
  });

  it("storage - deleteTenant clears the tenant from disk; the new epochs and state floors survive a restart", async () => {
    const dir = tempDir();
    const lobby = roomKey("acme", "lobby");
    const kept = roomKey("acme2", "lobby");
    const old = await withStorage(dir, {}, async ({ history, state, env }) => {
      for (let n = 1; n <= 3; n++) await history.append(lobby, msg(n), { idempotencyKey: `k${n}` });
      await history.append(kept, msg(1), { idempotencyKey: "k1" });
      await state.set(lobby, { key: "mode", value: jsonBytes(1) });
      await state.set(lobby, { key: "mode", value: jsonBytes(2) });
      await state.set(kept, { key: "mode", value: jsonBytes(1) });
      const position = await history.position(lobby);
      expect(await history.deleteTenant("acme")).toBe(1);
      expect(await state.deleteTenant("acme")).toBe(1);
      const count = (name: string) => [...env.root.openDB({ name }).getRange({})].length;
      expect(count("history.messages")).toBe(1);
      expect(count("history.dedupe")).toBe(1);
      expect(count("history.rooms")).toBe(1);
      expect(count("state.entries")).toBe(1);
      expect(count("state.log")).toBe(1);
      expect(count("state.rooms")).toBe(1);
      return position;
    });
    await withStorage(dir, {}, async ({ history, state }) => {
      const fresh = await history.position(lobby);
      expect(fresh.offset).toBe(0);
      expect(fresh.epoch).not.toBe(old.epoch);
      expect(await history.recover(lobby, old, 10)).toEqual({ recovered: false, reason: "epoch_mismatch", position: fresh });
      expect(await history.append(lobby, msg(9), { idempotencyKey: "k1" })).toMatchObject({ offset: 1, epoch: fresh.epoch, duplicate: false });
      expect(await history.append(kept, msg(9), { idempotencyKey: "k1" })).toMatchObject({ offset: 1, duplicate: true });
      await expect(state.set(lobby, { key: "mode", value: jsonBytes(3), ifVersion: 2 })).rejects.toMatchObject({ code: ErrorCode.STATE_CONFLICT });
      expect((await state.set(lobby, { key: "mode", value: jsonBytes(3) })).version).toBe(3);
      expect((await state.set(kept, { key: "mode", value: jsonBytes(2) })).version).toBe(2);
    });
  });

  it("storage - two history stores on one directory never serve a deleted room from a stale ring", async () => {
    const storage = await openEmbeddedStorage({ path: tempDir() });
    const other = new LmdbHistoryStore(storage.env);
    try {
      const key = roomKey("acme", "lobby");
      for (let n = 1; n <= 3; n++) await other.append(key, msg(n));
      expect(await storage.history.deleteTenant("acme")).toBe(1);
      for (let n = 11; n <= 13; n++) await storage.history.append(key, msg(n));
      const next = await other.append(key, msg(14));
      expect(next.offset).toBe(4);
      const position = await storage.history.position(key);
      expect(next.epoch).toBe(position.epoch);
      for (const store of [other, storage.history]) {
        expect(ns((await store.read(key, {})).messages)).toEqual([11, 12, 13, 14]);
        const rec = await store.recover(key, { offset: 1, epoch: position.epoch }, 10);
        expect(rec.recovered && ns(rec.messages)).toEqual([12, 13, 14]);
      }
    } finally {
      await other.close();
      await storage.close();
    }
  });

  it("storage - an unusable path fails with ARQ_BACKEND_UNAVAILABLE", async () => {
    const file = path.join(tempDir(), "file");
    writeFileSync(file, "x");
    await expect(openEmbeddedStorage({ path: path.join(file, "data") })).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
  });

  it("storage - reads that cross the in-memory ring and the database return the same as the database alone", async () => {
    const dir = tempDir();
    const key = roomKey("t", "feed");
    await withStorage(dir, { history: { ringSize: 4 } }, async ({ history }) => {
      for (let n = 1; n <= 20; n++) await history.append(key, msg(n, { [HEADER_TWIST_ID]: n % 3 === 0 ? "three" : "other" }));
      expect(ns((await history.read(key, { fromOffset: 15 })).messages)).toEqual([15, 16, 17, 18, 19, 20]);
      expect(ns((await history.read(key, { fromOffset: 18 })).messages)).toEqual([18, 19, 20]);
      expect(ns((await history.read(key, { toOffset: 19, reverse: true, limit: 5 })).messages)).toEqual([19, 18, 17, 16, 15]);
      expect(ns((await history.read(key, { twistId: "three", reverse: true, limit: 3 })).messages)).toEqual([18, 15, 12]);
      const { epoch } = await history.position(key);
      const rec = await history.recover(key, { offset: 10, epoch }, 100);
      expect(rec.recovered && ns(rec.messages)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    });
    await withStorage(dir, { history: { ringSize: 0 } }, async ({ history }) => {
      expect(ns((await history.read(key, { fromOffset: 15 })).messages)).toEqual([15, 16, 17, 18, 19, 20]);
      expect(ns((await history.read(key, { twistId: "three", reverse: true, limit: 3 })).messages)).toEqual([18, 15, 12]);
    });
  });

  it("storage - a long idempotency key is stored by hash and still deduplicates", async () => {
    await withStorage(tempDir(), {}, async ({ history }) => {
      const key = roomKey("t", "r");
      const long = "x".repeat(5_000);
      expect((await history.append(key, msg(1), { idempotencyKey: long })).duplicate).toBe(false);
      expect(await history.append(key, msg(2), { idempotencyKey: long })).toMatchObject({ duplicate: true, offset: 1 });
      expect((await history.append(key, msg(3), { idempotencyKey: long + "y" })).offset).toBe(2);
    });
  });

  it("storage - racing appends with one idempotency key store one message; the others are duplicates of it", async () => {
    await withStorage(tempDir(), {}, async ({ history }) => {
      const key = roomKey("t", "orders");
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => history.append(key, msg(i), { idempotencyKey: "same" })));
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.offset))).toEqual(new Set([1]));
      expect(results.every((r) => ns([r.message])[0] === 0)).toBe(true);
      expect((await history.position(key)).offset).toBe(1);
    });
  });

  it("storage - concurrent appends to many rooms stay gapless per room", async () => {
    await withStorage(tempDir(), {}, async ({ history }) => {
      const keys = Array.from({ length: 5 }, (_, i) => roomKey("t", `room-${i}`));
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => history.append(keys[i % 5]!, msg(i))));
      for (const [r, key] of keys.entries()) {
        const offsets = results.filter((_, i) => i % 5 === r).map((x) => x.offset);
        expect(offsets).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
        expect((await history.position(key)).offset).toBe(40);
      }
    });
  });

  it("storage - bad positions and closed stores fail with their codes", async () => {
    const storage = await openEmbeddedStorage({ path: tempDir() });
    const key = roomKey("t", "r");
    const { epoch } = await storage.history.position(key);
    await expect(storage.history.recover(key, { offset: -1, epoch }, 10)).rejects.toMatchObject({ code: ErrorCode.POSITION_INVALID });
    await expect(storage.state.at(key, { revision: 1.5 })).rejects.toMatchObject({ code: ErrorCode.POSITION_INVALID });
    await expect(storage.kv.put("", "k", jsonBytes(1))).rejects.toMatchObject({ code: ErrorCode.VALIDATION_ERROR });
    await expect(storage.kv.put("ns", "k".repeat(2_000), jsonBytes(1))).rejects.toMatchObject({ code: ErrorCode.VALIDATION_ERROR });
    await storage.close();
    await expect(storage.history.append(key, msg(1))).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
    await expect(storage.state.get(key)).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
    await expect(storage.kv.get("ns", "k")).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
  });
});

describe("storage - room state and key-value", () => {
  it("storage - state log, at() and versions survive a restart; an overlong log is folded into a snapshot", async () => {
    const dir = tempDir();
    const key = roomKey("t", "game");
    const clock = new ManualClock();
    const times: number[] = [];
    await withStorage(dir, { clock, state: { maxLogEntries: 4 } }, async ({ state }) => {
      for (let i = 1; i <= 9; i++) {
        await clock.advance(10);
        times.push((await state.set(key, { key: `k${i % 2}`, value: jsonBytes(i) })).updatedAt!);
      }
    });
    await withStorage(dir, { clock, state: { maxLogEntries: 4 } }, async ({ state }) => {
      const view = async (p: Parameters<typeof state.at>[1]) =>
        (await state.at(key, p)).map((e) => `${e.key}=${parseJsonBytes(e.value!)}@${e.version}`);
      expect(await view({ revision: 9 })).toEqual(["k0=8@4", "k1=9@5"]);
      expect(await view({ revision: 7 })).toEqual(["k0=6@3", "k1=7@4"]);
      expect(await view({ timestamp: times[6]! })).toEqual(["k0=6@3", "k1=7@4"]);
      await expect(state.at(key, { revision: 1 })).rejects.toMatchObject({ code: ErrorCode.HISTORY_UNAVAILABLE });
      expect((await state.set(key, { key: "k1", value: jsonBytes(10), ifVersion: 5 })).version).toBe(6);
    });
  });

  it("storage - kv revisions and tombstones survive a restart", async () => {
    const dir = tempDir();
    await withStorage(dir, {}, async ({ kv }) => {
      await kv.put("ns", "a", jsonBytes(1));
      await kv.put("ns", "a", jsonBytes(2));
      await kv.put("ns", "b", jsonBytes(3));
      expect(await kv.delete("ns", "b")).toBe(true);
    });
    await withStorage(dir, {}, async ({ kv }) => {
      expect(await kv.get("ns", "a")).toMatchObject({ key: "a", revision: 2 });
      expect(await kv.get("ns", "b")).toBeUndefined();
      await expect(kv.put("ns", "b", jsonBytes(4), { ifRevision: 1 })).rejects.toMatchObject({ code: ErrorCode.CONFLICT });
      expect(await kv.put("ns", "b", jsonBytes(4), { ifRevision: 0 })).toBe(3);
      expect((await kv.list("ns")).map((e) => `${e.key}@${e.revision}`)).toEqual(["a@2", "b@3"]);
    });
  });

  it("storage - deleteNamespaces leaves tombstones that survive a restart", async () => {
    const dir = tempDir();
    const long = `op.store/acme/${"n".repeat(80)}`;
    await withStorage(dir, {}, async ({ kv }) => {
      await kv.put("op.store/acme/a", "k", jsonBytes(1));
      await kv.put("op.store/acme/a", "k", jsonBytes(2));
      await kv.put("op.store/acme2/a", "k", jsonBytes(1));
      await kv.put("op.store/acme", "k", jsonBytes(1));
      await kv.put(long, "k", jsonBytes(1));
      await kv.put(long, "j", jsonBytes(1));
      expect(await kv.deleteNamespaces("op.store/acme/")).toBe(3);
    });
    await withStorage(dir, {}, async ({ kv }) => {
      expect(await kv.get("op.store/acme/a", "k")).toBeUndefined();
      expect(await kv.list(long)).toEqual([]);
      expect(await kv.get("op.store/acme", "k")).toMatchObject({ revision: 1 });
      expect(await kv.get("op.store/acme2/a", "k")).toMatchObject({ revision: 1 });
      await expect(kv.put("op.store/acme/a", "k", jsonBytes(3), { ifRevision: 2 })).rejects.toMatchObject({ code: ErrorCode.CONFLICT });
      expect(await kv.put("op.store/acme/a", "k", jsonBytes(3))).toBe(4);
    });
  });
});
