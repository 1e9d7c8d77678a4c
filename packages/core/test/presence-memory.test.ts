import { describe, expect, it } from "vitest";
import { MemoryPresenceStore } from "../src/backends.js";
import { ManualClock, describePresenceContract } from "../src/testing.js";
import type { PresenceEvent } from "../src/presence/types.js";
import { roomKey } from "../src/room/names.js";

describePresenceContract(
  "memory (manual clock)",
  async ({ leaseMs, clock }) => {
    const store = new MemoryPresenceStore({ leaseMs, clock });
    return {
      nodes: [store, store] as const,
      renew: async () => void store.renew(),
      halt: async () => {},
      cleanup: () => store.close(),
    };
  },
  { time: "manual" },
);

describePresenceContract("memory (real time)", async ({ leaseMs }) => {
  const store = new MemoryPresenceStore({ leaseMs });
  return {
    nodes: [store, store] as const,
    renew: async () => void store.renew(),
    halt: async () => {},
    cleanup: () => store.close(),
  };
});

describe("MemoryPresenceStore", () => {
  const key = roomKey("acme", "lobby");

  it("presence - without leaseMs members never expire and no timer is scheduled", async () => {
    const clock = new ManualClock();
    const store = new MemoryPresenceStore({ clock });
    expect(clock.pendingTimers).toBe(0);
    await store.join(key, { clientId: "c1" });
    await clock.advance(10 * 86_400_000);
    expect(store.sweep()).toBe(0);
    expect(store.renew()).toBe(0);
    expect((await store.list(key)).map((m) => m.clientId)).toEqual(["c1"]);
  });

  it("presence - renew by room or member, sweep reports what expired, close stops the timer", async () => {
    const clock = new ManualClock();
    const store = new MemoryPresenceStore({ leaseMs: 1000, sweepIntervalMs: 60_000, clock });
    const events: PresenceEvent[] = [];
    store.watch((_k, e) => events.push(e));
    const other = roomKey("acme", "other");
    await store.join(key, { clientId: "c1" });
    await store.join(key, { clientId: "c2" });
    await store.join(other, { clientId: "c3" });
    await clock.advance(900);
    expect(store.renew(key, "c1")).toBe(1);
    expect(store.renew(other)).toBe(1);
    expect(store.renew(key, "nobody")).toBe(0);
    await clock.advance(100);
    expect(store.sweep()).toBe(1);
    expect(events.at(-1)).toMatchObject({ type: "leave", member: { clientId: "c2" }, reason: "expired" });
    expect((await store.list(key)).map((m) => m.clientId)).toEqual(["c1"]);
    await clock.advance(900);
    expect((await store.list(key)).map((m) => m.clientId)).toEqual([]);
    expect(clock.pendingTimers).toBe(1);
    await store.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it("presence - a rejoin with unchanged info renews the lease without an event; joinedAt is kept", async () => {
    const clock = new ManualClock(5_000);
    const store = new MemoryPresenceStore({ leaseMs: 1000, clock });
    const events: PresenceEvent[] = [];
    store.watch((_k, e) => events.push(e));
    const info = new TextEncoder().encode('{"a":1}');
    await store.join(key, { clientId: "c1", userId: "u", info });
    info[2] = 0x62;
    await clock.advance(800);
    await store.join(key, { clientId: "c1", userId: "u", info: new TextEncoder().encode('{"a":1}') });
    await clock.advance(800);
    const [m] = await store.list(key);
    expect(m).toMatchObject({ clientId: "c1", joinedAt: 5_000 });
    expect(new TextDecoder().decode(m!.info)).toBe('{"a":1}');
    expect(events.map((e) => e.type)).toEqual(["join"]);
  });

  it("presence - a member without clientId is refused with ARQ_FRAME_MISSING_FIELD", async () => {
    const store = new MemoryPresenceStore();
    await expect(store.join(key, { userId: "u" })).rejects.toMatchObject({ code: "ARQ_FRAME_MISSING_FIELD" });
    await store.close();
    await expect(store.list(key)).rejects.toMatchObject({ code: "ARQ_BACKEND_UNAVAILABLE" });
  });
});
