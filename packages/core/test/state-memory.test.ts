import { describe, expect, it } from "vitest";
import { MemoryRoomStateStore } from "../src/backends.js";
import { ManualClock, describeRoomStateContract, json } from "../src/testing.js";
import { StateConflictError } from "../src/errors.js";
import { roomKey } from "../src/room/names.js";

describeRoomStateContract(
  "memory (manual clock)",
  async ({ clock }) => {
    const store = new MemoryRoomStateStore({ now: () => clock.now() });
    return { nodes: [store, store] as const, cleanup: () => store.close() };
  },
  { time: "manual" },
);

describeRoomStateContract("memory (real time)", async () => {
  const store = new MemoryRoomStateStore();
  return { nodes: [store, store] as const, cleanup: () => store.close() };
});

describe("MemoryRoomStateStore", () => {
  const key = roomKey("acme", "game");

  it("state - a conflict is a StateConflictError carrying key, expected and actual versions", async () => {
    const store = new MemoryRoomStateStore();
    await store.set(key, { key: "mode", value: json(1) });
    const error = await store.set(key, { key: "mode", value: json(2), ifVersion: 7 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateConflictError);
    expect(error).toMatchObject({
      code: "ARQ_STATE_CONFLICT",
      message: 'state key "mode" is at version 1, not 7',
      detail: { key: "mode", expected: 7, actual: 1 },
    });
  });

  it("state - deleting an absent key changes nothing and notifies nobody", async () => {
    const store = new MemoryRoomStateStore();
    const seen: string[] = [];
    store.watch((_k, e) => seen.push(e.key));
    expect(await store.set(key, { key: "ghost", deleted: true })).toEqual({ key: "ghost", version: 0, deleted: true });
    expect(seen).toEqual([]);
    expect(await store.at(key, { revision: 1 })).toEqual([]);
  });

  it("state - the write log is compacted past maxLogEntries; older points reject with ARQ_HISTORY_UNAVAILABLE", async () => {
    const clock = new ManualClock();
    const store = new MemoryRoomStateStore({ maxLogEntries: 10, now: () => clock.now() });
    for (let i = 1; i <= 25; i++) {
      await clock.advance(10);
      await store.set(key, { key: `k${i % 4}`, value: json(i) });
    }
    const now = (await store.get(key)).map((e) => e.key);
    expect(now).toEqual(["k0", "k1", "k2", "k3"]);
    await expect(store.at(key, { revision: 3 })).rejects.toMatchObject({ code: "ARQ_HISTORY_UNAVAILABLE" });
    const at20 = await store.at(key, { revision: 20 });
    expect(at20.map((e) => [e.key, new TextDecoder().decode(e.value)])).toEqual([
      ["k0", "20"],
      ["k1", "17"],
      ["k2", "18"],
      ["k3", "19"],
    ]);
    expect(await store.at(key, { revision: 99 })).toEqual(await store.get(key));
  });

  it("state - bad keys and points are refused with their codes", async () => {
    const store = new MemoryRoomStateStore();
    await expect(store.set(key, { key: "" })).rejects.toMatchObject({ code: "ARQ_STATE_KEY_INVALID" });
    await expect(store.at(key, { revision: -1 })).rejects.toMatchObject({ code: "ARQ_POSITION_INVALID" });
    await expect(store.at(key, { timestamp: Number.NaN })).rejects.toMatchObject({ code: "ARQ_POSITION_INVALID" });
  });
});
