import { afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "@arqon/server/testing";
import { ArqonError, ErrorCode } from "@arqon/core";
import { ArqonClient, type ArqonClientOptions, type RoomMessage } from "../src/index.js";
import "../src/protobuf.js";
import { nextEvent, until } from "./helpers/wait.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function gateway(): Promise<TestGateway> {
  const gw = await startGateway();
  cleanup.push(() => gw.close());
  return gw;
}

async function client(gw: TestGateway, sub: string, options: ArqonClientOptions = {}): Promise<ArqonClient> {
  const c = new ArqonClient(gw.url, { token: await gw.token({ sub }), reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  cleanup.push(() => c.close());
  await c.connect();
  return c;
}

describe("protocol 1.1 - the SDK", () => {
  it("protocol - asks for 1.1 by default; protocol 1.0 connects as before; both read the same messages", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const readers = {
      json11: await client(gw, "bob"),
      json10: await client(gw, "carol", { protocol: "1.0" }),
      proto11: await client(gw, "dave", { codec: "protobuf" }),
      proto10: await client(gw, "erin", { codec: "protobuf", protocol: "1.0" }),
    };
    expect(readers.json11.status).toMatchObject({ protocol: "1.1" });
    expect(readers.json10.status).toMatchObject({ protocol: "1.0" });
    expect(readers.proto11.status).toMatchObject({ protocol: "1.1" });
    const got: Record<string, RoomMessage[]> = {};
    for (const [name, c] of Object.entries(readers)) {
      got[name] = [];
      await c.room("lobby").subscribe((m) => got[name]!.push(m));
    }
    await alice.room("lobby").publish({ text: "hi" });
    await alice.room("lobby").publish("twisted", { headers: { "x-twist-id": "draft-2", trace: "t1" } });
    await alice.room("lobby").publish(new Uint8Array([1, 2, 255]));
    await until(() => Object.values(got).every((list) => list.length === 3));
    const reference = got.json10!;
    expect(reference[0]).toMatchObject({ payload: { text: "hi" }, sender: "alice", offset: 1, headers: { "x-twist-id": "main" } });
    expect(reference[0]!.epoch).toMatch(/.+/);
    expect(reference[0]!.headers["x-timestamp"]).toBe(String(reference[0]!.timestamp));
    expect(reference[1]!.headers).toEqual({ "x-twist-id": "draft-2", trace: "t1", "x-timestamp": String(reference[1]!.timestamp) });
    for (const name of ["json11", "proto11", "proto10"]) expect(got[name], name).toEqual(reference);
  });

  it("protocol - history reads the same through 1.1 and 1.0", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    for (let i = 1; i <= 5; i++) await alice.room("lobby").publish({ n: i }, i === 3 ? { headers: { "x-twist-id": "side" } } : {});
    const p11 = await (await client(gw, "bob")).room("lobby").history({ fromOffset: 1 });
    const p10 = await (await client(gw, "carol", { protocol: "1.0" })).room("lobby").history({ fromOffset: 1 });
    expect(p11).toEqual(p10);
    expect(p11.messages.map((m) => m.epoch)).toEqual(Array(5).fill(p11.position.epoch));
    expect(p11.messages[2]!.headers["x-twist-id"]).toBe("side");
  });

  it("protocol - recovery by since/offset/epoch on 1.1: the replayed messages carry the subscription's epoch", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const first = await alice.room("feed").publish(1);
    for (let i = 2; i <= 4; i++) await alice.room("feed").publish(i);
    const bob = await client(gw, "bob");
    const got: RoomMessage[] = [];
    const room = bob.room("feed");
    const event = await room.subscribe((m) => got.push(m), { since: { offset: 2, epoch: first.epoch } });
    expect(event).toMatchObject({ recovered: true, position: { offset: 4, epoch: first.epoch } });
    await until(() => got.length === 2);
    await alice.room("feed").publish(5);
    await until(() => got.length === 3);
    expect(got.map((m) => [m.offset, m.epoch, m.payload])).toEqual([
      [3, first.epoch, 3],
      [4, first.epoch, 4],
      [5, first.epoch, 5],
    ]);
    expect(room.position).toEqual({ offset: 5, epoch: first.epoch });
  });

  it("protocol - delta subscribers rebuild compact delta messages", async () => {
    const gw = await gateway();
    const alice = await client(gw, "alice");
    const bob = await client(gw, "bob");
    const got: unknown[] = [];
    await bob.room("ticker").subscribe((m) => got.push(m.payload), { delta: true });
    const tick = (i: number) => ({ symbol: "ACME", name: "Acme Corporation Common Stock", exchange: "XNYS", bid: 100 + i, ask: 101 + i });
    for (let i = 1; i <= 4; i++) await alice.room("ticker").publish(tick(i));
    await until(() => got.length === 4);
    expect(got).toEqual([1, 2, 3, 4].map(tick));
  });

  it("protocol - an option the SDK does not speak is refused at construction with ARQ_PROTOCOL_UNSUPPORTED", () => {
    let caught: unknown;
    try {
      new ArqonClient("ws://127.0.0.1:1/ws", { token: "t", protocol: "2.0" as never });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ArqonError);
    expect(caught).toMatchObject({ code: ErrorCode.PROTOCOL_UNSUPPORTED });
  });

  it("protocol - a URL that already names a protocol is left as it is", async () => {
    const gw = await gateway();
    const c = new ArqonClient(`${gw.url}?protocol=1.0`, { token: await gw.token({ sub: "alice" }) });
    cleanup.push(() => c.close());
    const connected = nextEvent(c, "connected");
    await c.connect();
    expect((await connected).protocol).toBe("1.0");
  });
});
