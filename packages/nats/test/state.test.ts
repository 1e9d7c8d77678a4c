import { afterAll, beforeAll, expect, it } from "vitest";
import { describeRoomStateContract } from "@arqon/core/testing";
import { ErrorCode, roomKey, utf8Encode } from "@arqon/core";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { NatsKvRoomStateStore, NatsLink } from "../src/index.js";

describeWithNats("NATS KV room state store", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(() => nats?.stop());

  describeRoomStateContract("nats", async () => {
    const links = [await NatsLink.connect({ servers: nats.url }), await NatsLink.connect({ servers: nats.url })];
    const nodes = [await NatsKvRoomStateStore.create({ link: links[0]! }), await NatsKvRoomStateStore.create({ link: links[1]! })] as const;
    return {
      nodes,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.close()));
        await Promise.all(links.map((l) => l.close()));
      },
    };
  });

  it("state - at() before the kept log rejects with ARQ_HISTORY_UNAVAILABLE; values survive a NATS restart", async () => {
    const link = await NatsLink.connect({ servers: nats.url, reconnectTimeWaitMs: 50 });
    const store = await NatsKvRoomStateStore.create({ link, bucket: "ARQON_STATE_SHORT", maxLogEntries: 3 });
    const key = roomKey("acme", "game");
    for (let i = 1; i <= 5; i++) await store.set(key, { key: "k", value: utf8Encode(String(i)) });
    await expect(store.at(key, { revision: 1 })).rejects.toMatchObject({ code: ErrorCode.HISTORY_UNAVAILABLE });
    expect((await store.at(key, { revision: 4 }))[0]?.version).toBe(4);
    await expect(store.at(key, { revision: -1 })).rejects.toMatchObject({ code: ErrorCode.POSITION_INVALID });
    await nats.restart();
    for (let i = 0; i < 500 && link.status !== "connected"; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await store.get(key)).map((e) => e.version)).toEqual([5]);
    await store.close();
    await link.close();
  }, 20_000);
});
