import { afterEach, describe, expect, it } from "vitest";
import { EventSource } from "eventsource";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { ArqonClient, CloseCode, type ArqonClientOptions, type RoomMessage, type Transport } from "../src/index.js";
import { ArqonServerClient } from "../src/server.js";
import { CuttableProxy } from "./helpers/proxy.js";
import { collect, nextEvent, until } from "./helpers/wait.js";

// The same gateway, reached over each transport: a WebSocket (`ws`), SSE (the `eventsource` package) and a fetch
// stream (Node's global fetch). Only `transports` differs between the runs.
const KEY = "fallback-operator-key-0123456789abcdef";
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function gateway(): Promise<TestGateway> {
  const gw = await startGateway({ operatorKeys: [KEY], limits: { publishRatePerSecond: 10_000, publishBurst: 10_000 } });
  cleanup.push(() => gw.close());
  return gw;
}

function optionsFor(transport: Transport): ArqonClientOptions {
  return { transports: [transport], EventSource: EventSource as unknown as typeof globalThis.EventSource, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } };
}

async function client(url: string, token: string, options: ArqonClientOptions): Promise<ArqonClient> {
  const c = new ArqonClient(url, { token, ...options });
  cleanup.push(() => c.close());
  await c.connect();
  return c;
}

describe.each(["websocket", "sse", "http-stream"] as const)("gateway over %s", (transport) => {
  it("connect, publish with ack, presence: the client says which transport it is on", async () => {
    const gw = await gateway();
    const alice = await client(gw.url, await gw.token({ sub: "alice" }), optionsFor(transport));
    expect(alice.transport).toBe(transport);
    expect(alice.status).toMatchObject({ type: "connected", transport, protocol: "1.1" });
    const bob = await client(gw.url, await gw.token({ sub: "bob" }), {});
    const got: RoomMessage[] = [];
    const room = alice.room("lobby");
    const sub = await room.subscribe((m) => got.push(m));
    expect(sub.members.map((m) => m.userId)).toEqual(["alice"]);
    const joined = nextEvent(room.presence, "join");
    await bob.room("lobby").subscribe();
    expect((await joined).userId).toBe("bob");
    expect(room.presence.current.map((m) => m.userId).sort()).toEqual(["alice", "bob"]);
    const ack = await alice.room("lobby").publish({ text: "hi" });
    expect(ack).toMatchObject({ offset: 1, duplicate: false });
    await bob.room("lobby").publish({ text: "hello alice" });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ room: "lobby", payload: { text: "hello alice" }, sender: "bob", offset: 2 });
    expect(await alice.ping()).toBeGreaterThanOrEqual(0);
  });

  it("recovery - the link is cut during a stream of 300 sequenced messages: 0 lost, 0 duplicated, in order, recovered", async () => {
    const gw = await gateway();
    const proxy = await CuttableProxy.start(gw.port);
    cleanup.push(() => proxy.close());
    const bob = await client(`ws://127.0.0.1:${proxy.port}/ws`, await gw.token({ sub: "bob" }), optionsFor(transport));
    const alice = await client(gw.url, await gw.token({ sub: "alice" }), {});
    const got: number[] = [];
    const offsets: number[] = [];
    const room = bob.room("feed");
    await room.subscribe((m) => {
      got.push(m.payload as number);
      offsets.push(m.offset);
    });
    const resubscribed = nextEvent(room, "subscribed", (e) => e.resubscribed, 10_000);
    const disconnected = nextEvent(bob, "disconnected", undefined, 10_000);
    const total = 300;
    for (let n = 1; n <= total; n++) {
      await alice.room("feed").publish(n);
      if (n === 100) proxy.cut();
    }
    expect((await disconnected).willReconnect).toBe(true);
    expect((await resubscribed).recovered).toBe(true);
    await until(() => got.length >= total, 10_000, `${total} messages`);
    await alice.room("feed").publish(total + 1);
    await until(() => got.length === total + 1, 5000);
    expect(got).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
    expect(offsets).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
    expect(bob.transport).toBe(transport);
    expect(bob.status).toMatchObject({ type: "connected", transport, reconnected: true });
  });

  it("auth - a bad token closes the client for good (4500), as over a WebSocket; with getToken one fresh token is tried", async () => {
    const gw = await gateway();
    const bad = new ArqonClient(gw.url, { token: "not-a-jwt", ...optionsFor(transport) });
    cleanup.push(() => bad.close());
    const reconnecting = collect(bad, "reconnecting");
    const closed = nextEvent(bad, "closed");
    await expect(bad.connect()).rejects.toMatchObject({ code: "ARQ_CLIENT_CLOSED" });
    expect(await closed).toEqual({ code: CloseCode.AUTH_INVALID, reason: "upgrade refused with HTTP 401" });
    expect(reconnecting).toEqual([]);

    let calls = 0;
    const good = await gw.token({ sub: "carol" });
    const retried = new ArqonClient(gw.url, { getToken: () => (++calls === 1 ? "expired-or-bad" : good), ...optionsFor(transport) });
    cleanup.push(() => retried.close());
    await retried.connect();
    expect(calls).toBe(2);
    expect(retried.transport).toBe(transport);
  });

  it("close codes - a kick (4504) and a disabled tenant (4503) close the client for good", async () => {
    const gw = await gateway();
    const api = new ArqonServerClient({ url: gw.httpUrl, operatorKey: KEY, tenant: "acme" });
    const mallory = await client(gw.url, await gw.token({ sub: "mallory" }), optionsFor(transport));
    const kicked = nextEvent(mallory, "closed");
    expect(await api.kick({ user: "mallory" })).toEqual({ closedHere: 1 });
    expect((await kicked).code).toBe(CloseCode.KICKED);

    const carol = await client(gw.url, await gw.token({ sub: "carol" }), optionsFor(transport));
    const disabled = nextEvent(carol, "closed");
    await api.disableTenant("acme");
    expect((await disabled).code).toBe(CloseCode.TENANT_DISABLED);
    expect(carol.closed).toBe(true);
  });
});

describe("automatic fallback", () => {
  const blocked = class {
    constructor() {
      throw new Error("blocked");
    }
  } as unknown as ArqonClientOptions["WebSocket"];

  it("a WebSocket that cannot be opened: the client ends up on sse, and on http-stream without EventSource", async () => {
    const gw = await gateway();
    const token = await gw.token({ sub: "alice" });
    const sse = await client(gw.url, token, { WebSocket: blocked, EventSource: EventSource as unknown as typeof globalThis.EventSource });
    expect(sse.transport).toBe("sse");
    const stream = await client(gw.url, token, { WebSocket: blocked });
    expect(stream.transport).toBe("http-stream");
    const got: unknown[] = [];
    await stream.room("lobby").subscribe((m) => got.push(m.payload));
    await sse.room("lobby").publish({ via: "sse" });
    await until(() => got.length === 1);
    expect(got).toEqual([{ via: "sse" }]);
  });

  it("a WebSocket path answered 404 (a proxy that does not pass upgrades): the client falls back to http-stream and stays there", async () => {
    const gw = await gateway();
    const proxy = await CuttableProxy.start(gw.port);
    cleanup.push(() => proxy.close());
    let upgrades = 0;
    // A WebSocket whose upgrade is refused as a proxy would refuse it: an error event with the status, then 1006.
    const refused = class {
      readyState = 0;
      onerror: ((e: unknown) => void) | null = null;
      onclose: ((e: { code: number; reason: string }) => void) | null = null;
      constructor() {
        upgrades += 1;
        setTimeout(() => {
          this.onerror?.({ message: "Unexpected server response: 404" });
          this.onclose?.({ code: 1006, reason: "" });
        }, 5);
      }
      send(): void {}
      close(): void {}
    } as unknown as ArqonClientOptions["WebSocket"];
    const c = await client(`ws://127.0.0.1:${proxy.port}/ws`, await gw.token({ sub: "alice" }), { WebSocket: refused, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    expect(c.transport).toBe("http-stream");
    expect(upgrades).toBe(1);
    const connected = nextEvent(c, "connected", undefined, 5000);
    proxy.cut();
    expect(await connected).toMatchObject({ transport: "http-stream", reconnected: true });
    expect(upgrades).toBe(1);
  });

  it("protobuf: the fallback transports are left out; with no WebSocket at all the constructor throws", async () => {
    await import("../src/protobuf.js");
    let error: unknown;
    try {
      new ArqonClient("ws://127.0.0.1:1/ws", { token: "t", codec: "protobuf", transports: ["sse", "http-stream"], EventSource: EventSource as never });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "ARQ_WEBSOCKET_UNAVAILABLE" });
    expect(new ArqonClient("ws://127.0.0.1:1/ws", { token: "t", transports: ["sse", "http-stream"], EventSource: EventSource as never }).transport).toBe("sse");
  });
});
