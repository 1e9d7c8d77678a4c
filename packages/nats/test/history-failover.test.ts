import { afterEach, expect, it } from "vitest";
import { ErrorCode, roomKey, utf8Decode, utf8Encode, type Frame } from "@arqon/core";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { JetStreamHistoryStore, NatsLink } from "../src/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msg = (n: number): Frame => ({ type: "message", room: "orders", payload: utf8Encode(JSON.stringify({ n })) });
const n = (f: Frame) => (JSON.parse(utf8Decode(f.payload!)) as { n: number }).n;

describeWithNats("JetStream history - NATS failures", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(): Promise<{ nats: NatsServerHandle; link: NatsLink; store: JetStreamHistoryStore }> {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const link = await NatsLink.connect({ servers: nats.url, reconnectTimeWaitMs: 50, requestTimeoutMs: 1000 });
    cleanups.push(() => link.close());
    const store = await JetStreamHistoryStore.create({ link });
    cleanups.push(() => store.close());
    return { nats, link, store };
  }

  it("history - NATS killed and restarted during a stream of appends: no acked message lost, none duplicated", async () => {
    const { nats, link, store } = await setup();
    const key = roomKey("acme", "orders");
    const total = 150;
    const acked = new Map<number, number>();
    const failures: string[] = [];
    const epoch = (await store.position(key)).epoch;
    let outage: Promise<void> | undefined;
    const deadline = Date.now() + 20_000;
    for (let i = 1; i <= total; i++) {
      if (i === 60) {
        outage = (async () => {
          await nats.kill();
          await sleep(400);
          await nats.start();
        })();
      }
      // A client retries with the same idempotency key until it gets an ack.
      for (;;) {
        expect(Date.now()).toBeLessThan(deadline);
        try {
          const res = await store.append(key, msg(i), { idempotencyKey: `order-${i}` });
          expect(n(res.message)).toBe(i);
          acked.set(i, res.offset);
          break;
        } catch (error) {
          failures.push((error as { code?: string }).code ?? String(error));
          await sleep(25);
        }
      }
    }
    await outage;
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures)).toEqual(new Set([ErrorCode.BACKEND_UNAVAILABLE]));
    expect(link.status).toBe("connected");

    const page = await store.read(key, { limit: 1000 });
    expect(page.position).toEqual({ offset: total, epoch });
    expect(page.messages.map((m) => m.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(page.messages.map(n)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const [i, offset] of acked) expect(n(page.messages[offset - 1]!)).toBe(i);
  }, 30_000);

  it("history - while NATS is down appends reject with ARQ_BACKEND_UNAVAILABLE and the store recovers by itself", async () => {
    const { nats, link, store } = await setup();
    const key = roomKey("acme", "lobby");
    await store.append(key, msg(1));
    await nats.kill();
    for (let i = 0; i < 100 && link.status === "connected"; i++) await sleep(10);
    expect(link.status).toBe("reconnecting");
    await expect(store.append(key, msg(2))).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
    await expect(store.position(key)).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
    await nats.start();
    for (let i = 0; i < 500 && link.status !== "connected"; i++) await sleep(10);
    expect(link.status).toBe("connected");
    let result;
    for (let i = 0; i < 100 && result === undefined; i++) {
      result = await store.append(key, msg(2)).catch(() => sleep(20).then(() => undefined));
    }
    expect(result?.offset).toBe(2);
    expect((await store.read(key, {})).messages.map(n)).toEqual([1, 2]);
  }, 30_000);

  it("history - epochs and idempotency keys survive a NATS restart and a new node; losing the stream changes the epoch", async () => {
    const { nats, link, store } = await setup();
    const key = roomKey("acme", "lobby");
    await store.append(key, msg(1));
    await store.append(key, msg(2), { idempotencyKey: "order-2" });
    const before = await store.position(key);
    await nats.restart();
    for (let i = 0; i < 500 && link.status !== "connected"; i++) await sleep(10);
    const link2 = await NatsLink.connect({ servers: nats.url });
    cleanups.push(() => link2.close());
    const other = await JetStreamHistoryStore.create({ link: link2 });
    expect(await other.position(key)).toEqual(before);
    const again = await other.append(key, msg(2), { idempotencyKey: "order-2" });
    expect(again).toMatchObject({ duplicate: true, offset: 2, epoch: before.epoch });
    expect(n(again.message)).toBe(2);
    const third = await other.append(key, msg(3));
    expect(third).toMatchObject({ offset: 3, epoch: before.epoch });

    await link2.jsm.streams.delete("ARQON_HISTORY");
    const after = await store.position(key);
    expect(after.offset).toBe(0);
    expect(after.epoch).not.toBe(before.epoch);
    expect(await store.recover(key, { offset: 2, epoch: before.epoch }, 100)).toEqual({
      recovered: false,
      reason: "epoch_mismatch",
      position: after,
    });
    const fresh = await other.append(key, msg(9));
    expect(fresh).toMatchObject({ offset: 1, epoch: after.epoch });
  }, 30_000);
});
