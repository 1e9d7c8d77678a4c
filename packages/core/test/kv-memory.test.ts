import { describe, expect, it } from "vitest";
import { MemoryKeyValueStore } from "../src/backends.js";
import { ManualClock, describeKeyValueContract, json } from "../src/testing.js";

describeKeyValueContract("memory", async ({ clock }) => {
  const store = new MemoryKeyValueStore({ now: () => clock.now() });
  return { nodes: [store, store] as const, cleanup: () => store.close() };
});

describe("MemoryKeyValueStore", () => {
  it("kv - a conflict carries namespace, key, expected and actual revisions", async () => {
    const store = new MemoryKeyValueStore();
    await store.put("ns", "k", json(1));
    await expect(store.put("ns", "k", json(2), { ifRevision: 5 })).rejects.toMatchObject({
      code: "CONFLICT",
      message: 'key "k" in "ns" is at revision 1, not 5',
      detail: { namespace: "ns", key: "k", expected: 5, actual: 1 },
    });
  });

  it("kv - revisions keep counting across a delete; stored bytes are a copy", async () => {
    const clock = new ManualClock(42);
    const store = new MemoryKeyValueStore({ now: () => clock.now() });
    const value = json("v");
    expect(await store.put("ns", "k", value)).toBe(1);
    value[1] = 0x77;
    expect(await store.delete("ns", "k")).toBe(true);
    expect(await store.put("ns", "k", json("w"))).toBe(3);
    await store.put("ns", "j", value);
    expect(await store.get("ns", "k")).toEqual({ key: "k", value: json("w"), revision: 3, updatedAt: 42 });
  });

  it("kv - empty namespace or key is refused with VALIDATION_ERROR; a closed store with ARQ_BACKEND_UNAVAILABLE", async () => {
    const store = new MemoryKeyValueStore();
    await expect(store.put("", "k", json(1))).rejects.toMatchObject({ code: "VALIDATION_ERROR" });
    await expect(store.put("ns", "", json(1))).rejects.toMatchObject({ code: "VALIDATION_ERROR" });
    await store.close();
    await expect(store.get("ns", "k")).rejects.toMatchObject({ code: "ARQ_BACKEND_UNAVAILABLE" });
  });
});
