import { describe, expect, it } from "vitest";
import { MemoryHistoryStore } from "../src/backends.js";
import { ManualClock, describeHistoryContract, json } from "../src/testing.js";
import { roomKey } from "../src/room/names.js";
import type { HistoryContractEnv } from "../src/testing.js";

function factory({ retention, clock }: HistoryContractEnv) {
  const store = new MemoryHistoryStore({ retention, now: () => clock.now() });
  return Promise.resolve({ nodes: [store, store] as const, cleanup: () => store.close() });
}

describeHistoryContract("memory (manual clock)", factory, { time: "manual" });
describeHistoryContract("memory (real time)", ({ retention }) => {
  const store = new MemoryHistoryStore({ retention });
  return Promise.resolve({ nodes: [store, store] as const, cleanup: () => store.close() });
});

const msg = (n: number) => ({ type: "message" as const, room: "lobby", payload: json({ n }) });

describe("MemoryHistoryStore", () => {
  const key = roomKey("acme", "lobby");

  it("history - appendNow answers in the call, continues append's offsets, dedupes, and copies the frame", async () => {
    const store = new MemoryHistoryStore();
    await store.append(key, msg(1));
    const given = msg(2);
    const now = store.appendNow(key, given, { idempotencyKey: "k" });
    expect(now).toMatchObject({ offset: 2, duplicate: false });
    expect(now.message).not.toBe(given);
    expect(given).not.toHaveProperty("offset");
    expect(store.appendNow(key, msg(3), { idempotencyKey: "k" })).toMatchObject({ offset: 2, duplicate: true });
    expect(await store.append(key, msg(4))).toMatchObject({ offset: 3, epoch: now.epoch });
    const page = await store.read(key, {});
    expect(page.messages.map((m) => m.offset)).toEqual([1, 2, 3]);
    await store.close();
    expect(() => store.appendNow(key, msg(5))).toThrow(/closed/);
  });

  it("history - a new store instance draws a new epoch, so old positions are refused", async () => {
    const first = new MemoryHistoryStore();
    await first.append(key, msg(1));
    const old = await first.position(key);
    await first.close();
    const second = new MemoryHistoryStore();
    const fresh = await second.position(key);
    expect(fresh.offset).toBe(0);
    expect(fresh.epoch).not.toBe(old.epoch);
    expect(await second.recover(key, old, 100)).toEqual({ recovered: false, reason: "epoch_mismatch", position: fresh });
  });

  it("history - the dedupe window defaults to 120 s and can be set per append", async () => {
    const clock = new ManualClock();
    const store = new MemoryHistoryStore({ now: () => clock.now() });
    expect((await store.append(key, msg(1), { idempotencyKey: "k" })).offset).toBe(1);
    await clock.advance(119_999);
    expect(await store.append(key, msg(2), { idempotencyKey: "k" })).toMatchObject({ offset: 1, duplicate: true });
    await clock.advance(1);
    expect(await store.append(key, msg(3), { idempotencyKey: "k" })).toMatchObject({ offset: 2, duplicate: false });
    expect((await store.append(key, msg(4), { idempotencyKey: "short", dedupeWindowMs: 50 })).offset).toBe(3);
    await clock.advance(50);
    expect(await store.append(key, msg(5), { idempotencyKey: "short", dedupeWindowMs: 50 })).toMatchObject({
      offset: 4,
      duplicate: false,
    });
  });

  it("history - a duplicate still answers after its message left the ring", async () => {
    const store = new MemoryHistoryStore({ retention: { maxMessages: 2 } });
    await store.append(key, msg(1), { idempotencyKey: "first" });
    for (let n = 2; n <= 5; n++) await store.append(key, msg(n));
    const again = await store.append(key, msg(9), { idempotencyKey: "first" });
    expect(again).toMatchObject({ offset: 1, duplicate: true });
    expect(again.message.offset).toBe(1);
  });

  it("history - retention can be chosen per room; maxMessages 0 keeps offsets but no messages", async () => {
    const store = new MemoryHistoryStore({
      retention: (k) => (k === roomKey("acme", "ephemeral") ? { maxMessages: 0 } : { maxMessages: 3 }),
    });
    const eph = roomKey("acme", "ephemeral");
    await store.append(eph, msg(1));
    await store.append(eph, msg(2));
    const position = await store.position(eph);
    expect(position.offset).toBe(2);
    expect((await store.read(eph, {})).messages).toEqual([]);
    expect(await store.recover(eph, { offset: 1, epoch: position.epoch }, 10)).toEqual({
      recovered: false,
      reason: "retention_exceeded",
      position,
    });
    expect(await store.recover(eph, position, 10)).toEqual({ recovered: true, messages: [], position });
    for (let n = 1; n <= 5; n++) await store.append(key, msg(n));
    expect((await store.read(key, {})).messages.map((m) => m.offset)).toEqual([3, 4, 5]);
  });

  it("history - the ring stays correct across many trims (compaction of dropped slots)", async () => {
    const store = new MemoryHistoryStore({ retention: { maxMessages: 7 } });
    for (let n = 1; n <= 5000; n++) await store.append(key, msg(n));
    const page = await store.read(key, {});
    expect(page.messages.map((m) => m.offset)).toEqual([4994, 4995, 4996, 4997, 4998, 4999, 5000]);
    const rec = await store.recover(key, { offset: 4996, epoch: page.position.epoch }, 10);
    expect(rec.recovered && rec.messages.map((m) => m.offset)).toEqual([4997, 4998, 4999, 5000]);
  });

  it("history - invalid recovery positions reject with ARQ_POSITION_INVALID; a closed store with ARQ_BACKEND_UNAVAILABLE", async () => {
    const store = new MemoryHistoryStore();
    const { epoch } = await store.position(key);
    for (const offset of [-1, 1.5, Number.NaN]) {
      await expect(store.recover(key, { offset, epoch }, 10)).rejects.toMatchObject({ code: "ARQ_POSITION_INVALID" });
    }
    await store.close();
    await expect(store.append(key, msg(1))).rejects.toMatchObject({
      code: "ARQ_BACKEND_UNAVAILABLE",
      message: "history store is closed",
    });
  });
});
