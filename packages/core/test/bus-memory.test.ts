import { describe, expect, it } from "vitest";
import { MemoryBus, MemoryBusHub, MemoryControlPlane } from "../src/backends.js";
import { describeBusContract, describeControlPlaneContract, json, parse } from "../src/testing.js";
import { roomKey, type RoomKey } from "../src/room/names.js";
import type { Envelope } from "../src/bus/types.js";

describeBusContract("memory", async () => {
  const hub = new MemoryBusHub();
  const nodes = [new MemoryBus({ hub }), new MemoryBus({ hub })] as const;
  return { nodes, cleanup: async () => void (await Promise.all(nodes.map((n) => n.close()))) };
});

describeControlPlaneContract("memory", async () => {
  const hub = new MemoryBusHub();
  const nodes = [new MemoryControlPlane({ hub }), new MemoryControlPlane({ hub })] as const;
  return { nodes, cleanup: async () => void (await Promise.all(nodes.map((n) => n.close()))) };
});

const env = (n: number): Envelope => ({ frame: { type: "message", room: "r", payload: json({ n }) } });
const n = (e: Envelope) => (parse(e.frame.payload) as { n: number }).n;

describe("MemoryBus", () => {
  const key = roomKey("acme", "lobby");

  it("bus - publishNow delivers before it returns, in order with publish, and throws once closed", async () => {
    const hub = new MemoryBusHub();
    const a = new MemoryBus({ hub });
    const b = new MemoryBus({ hub });
    const got: number[] = [];
    b.onEnvelope((_k, e) => got.push(n(e)));
    await b.subscribe(key);
    await a.publish(key, env(1));
    a.publishNow(key, env(2));
    expect(got).toEqual([1, 2]);
    await a.publish(key, env(3));
    expect(got).toEqual([1, 2, 3]);
    await a.close();
    expect(() => a.publishNow(key, env(4))).toThrow();
    await b.close();
  });

  it("bus - a lone MemoryBus is its own hub; separate hubs never see each other", async () => {
    const a = new MemoryBus();
    const b = new MemoryBus();
    const got: number[] = [];
    b.onEnvelope((_k, e) => got.push(n(e)));
    await b.subscribe(key);
    await a.publish(key, env(1));
    expect(got).toEqual([]);
    await b.publish(key, env(2));
    expect(got).toEqual([2]);
  });

  it("bus - publish delivers before it resolves, and hands every node the same envelope object", async () => {
    const hub = new MemoryBusHub();
    const a = new MemoryBus({ hub });
    const b = new MemoryBus({ hub });
    const seen: Envelope[] = [];
    a.onEnvelope((_k, e) => seen.push(e));
    b.onEnvelope((_k, e) => seen.push(e));
    await a.subscribe(key);
    await b.subscribe(key);
    const sent = env(1);
    const pending = a.publish(key, sent);
    expect(seen).toEqual([sent, sent]);
    expect(seen[0]).toBe(sent);
    await pending;
  });

  it("bus - an envelope published from inside a handler reaches every node after the current one", async () => {
    const hub = new MemoryBusHub();
    const a = new MemoryBus({ hub });
    const b = new MemoryBus({ hub });
    const order: string[] = [];
    a.onEnvelope((_k, e) => {
      order.push(`a${n(e)}`);
      if (n(e) === 1) void a.publish(key, env(2));
    });
    b.onEnvelope((_k, e) => order.push(`b${n(e)}`));
    await a.subscribe(key);
    await b.subscribe(key);
    await a.publish(key, env(1));
    expect(order).toEqual(["a1", "b1", "a2", "b2"]);
  });

  it("bus - a throwing handler is reported and does not stop delivery to others", async () => {
    const errors: unknown[] = [];
    const hub = new MemoryBusHub();
    const a = new MemoryBus({ hub, onHandlerError: (e) => errors.push(e) });
    const b = new MemoryBus({ hub });
    const got: number[] = [];
    a.onEnvelope(() => {
      throw new Error("handler bug");
    });
    a.onEnvelope((_k, e) => got.push(n(e)));
    b.onEnvelope((_k, e) => got.push(n(e) * 10));
    await a.subscribe(key);
    await b.subscribe(key);
    await a.publish(key, env(1));
    expect(got).toEqual([1, 10]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe("handler bug");
  });

  it("bus - close drops the node's interest and later calls reject with ARQ_BACKEND_UNAVAILABLE", async () => {
    const hub = new MemoryBusHub();
    const a = new MemoryBus({ hub });
    const b = new MemoryBus({ hub });
    const keys: RoomKey[] = [key, roomKey("acme", "other")];
    for (const k of keys) await b.subscribe(k);
    expect(hub.interestCount).toBe(2);
    await b.close();
    expect(hub.interestCount).toBe(0);
    await a.publish(key, env(1));
    await expect(b.publish(key, env(2))).rejects.toMatchObject({ code: "ARQ_BACKEND_UNAVAILABLE", message: "bus is closed" });
    await expect(b.subscribe(key)).rejects.toMatchObject({ code: "ARQ_BACKEND_UNAVAILABLE" });
    await b.close();
  });

  it("control - a closed plane hears nothing and cannot broadcast", async () => {
    const hub = new MemoryBusHub();
    const a = new MemoryControlPlane({ hub });
    const b = new MemoryControlPlane({ hub });
    const got: string[] = [];
    b.onBroadcast((topic) => got.push(topic));
    await a.broadcast("one", new Uint8Array());
    await b.close();
    await a.broadcast("two", new Uint8Array());
    expect(got).toEqual(["one"]);
    await expect(b.broadcast("three", new Uint8Array())).rejects.toMatchObject({ code: "ARQ_BACKEND_UNAVAILABLE" });
  });
});
