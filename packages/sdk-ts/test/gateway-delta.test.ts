import { afterEach, describe, expect, it } from "vitest";
import { startGateway } from "@arqon/server/testing";
import { WebSocket as NodeWebSocket } from "ws";
import { ArqonClient, type RoomMessage, type WebSocketConstructor } from "../src/index.js";
import "../src/protobuf.js";
import { CuttableProxy } from "./helpers/proxy.js";
import { collect, nextEvent, until } from "./helpers/wait.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function client(gw: Awaited<ReturnType<typeof startGateway>>, sub: string, options: ConstructorParameters<typeof ArqonClient>[1] = {}): Promise<ArqonClient> {
  const c = new ArqonClient(gw.url, { token: await gw.token({ sub }), ...options });
  cleanup.push(() => c.close());
  await c.connect();
  return c;
}

describe("gateway - delta messages", () => {
  it("delta - a delta subscriber receives full payloads while the wire carries deltas", async () => {
    const gw = await startGateway();
    cleanup.push(() => gw.close());
    const wire: string[] = [];
    class Tapped extends NodeWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        this.on("message", (data, isBinary) => {
          if (!isBinary) wire.push(String(data));
        });
      }
    }
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob", { WebSocket: Tapped as unknown as WebSocketConstructor });
    const got: RoomMessage[] = [];
    const room = bob.room("ticker");
    const errors = collect(room, "error");
    await room.subscribe((m) => got.push(m), { delta: true });
    const ticks = [1, 2, 3, 4].map((i) => ({ sym: "ACME", price: 100 + i / 4, volume: 1200, note: "a long, mostly unchanging description of the instrument" }));
    for (const t of ticks) await alice.room("ticker").publish(t);
    await until(() => got.length === 4);
    expect(got.map((m) => m.payload)).toEqual(ticks);
    expect(got.map((m) => m.offset)).toEqual([1, 2, 3, 4]);
    expect(errors).toEqual([]);
    // Protocol 1.1 (the default) sends compact message objects: `d` is `delta`.
    const deltas = wire.map((t) => JSON.parse(t) as { m?: string; d?: boolean }).filter((f) => f.m === "ticker" && f.d === true);
    expect(deltas.length).toBeGreaterThanOrEqual(2);
  });

  it("delta - a protobuf delta subscriber behind a dropped link recovers what it missed, then deltas resume", async () => {
    const gw = await startGateway();
    cleanup.push(() => gw.close());
    const proxy = await CuttableProxy.start(gw.port);
    cleanup.push(() => proxy.close());
    const alice = await client(gw, "alice");
    const bob = new ArqonClient(`ws://127.0.0.1:${proxy.port}/ws`, {
      token: await gw.token({ sub: "bob" }),
      codec: "protobuf",
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanup.push(() => bob.close());
    await bob.connect();
    const got: unknown[] = [];
    const room = bob.room("ticker");
    const errors = collect(room, "error");
    await room.subscribe((m) => got.push(m.payload), { delta: true });
    const tick = (i: number): unknown => ({ sym: "ACME", seq: i, note: "a long, mostly unchanging description of the instrument" });
    for (let i = 1; i <= 3; i++) await alice.room("ticker").publish(tick(i));
    await until(() => got.length === 3);
    const resubscribed = nextEvent(room, "subscribed", (e) => e.resubscribed, 5000);
    const disconnected = nextEvent(bob, "disconnected");
    proxy.cut();
    await disconnected;
    for (let i = 4; i <= 5; i++) await alice.room("ticker").publish(tick(i));
    expect((await resubscribed).recovered).toBe(true);
    await until(() => got.length === 5);
    for (let i = 6; i <= 8; i++) await alice.room("ticker").publish(tick(i));
    await until(() => got.length === 8);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map(tick));
    expect(errors).toEqual([]);
  });
});
