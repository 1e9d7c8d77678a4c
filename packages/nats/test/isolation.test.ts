import { afterAll, beforeAll, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { roomKey, utf8Encode, type Envelope, type RoomKey } from "@arqon/core";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { NatsBus, NatsLink } from "../src/index.js";

const HOSTILE = ["*", ">", ".", "$SYS", "a.b", "a.*", "a.>", "$SYS.>", "~", "~2a", " ", "", "lobby"];

function envelope(n: number): Envelope {
  return { frame: { type: "message", room: "r", id: `m${n}`, payload: utf8Encode(JSON.stringify({ n })) } };
}

async function waitUntil(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describeWithNats("NATS subjects - room names crafted to cross tenants stay on their own subject", () => {
  let nats: NatsServerHandle;
  let spy: NatsConnection;
  let link: NatsLink;
  let bus: NatsBus;
  beforeAll(async () => {
    nats = await startNatsServer();
    spy = await connect({ servers: nats.url });
    link = await NatsLink.connect({ servers: nats.url });
    bus = new NatsBus({ link });
  });
  afterAll(async () => {
    await bus?.close();
    await link?.close();
    await spy?.close();
    await nats?.stop();
  });

  it("isolation - every (tenant, room) pair of wildcard/dot/$SYS strings publishes on exactly its own escaped subject", async () => {
    const seen: string[] = [];
    const sub = spy.subscribe(">", { callback: (_e, m) => void seen.push(m.subject) });
    await spy.flush();
    const keys: RoomKey[] = [];
    for (const tenant of HOSTILE) for (const room of HOSTILE) keys.push(roomKey(tenant, room));
    expect(new Set(keys).size).toBe(keys.length);
    for (const key of keys) await bus.subscribe(key);
    const got: RoomKey[] = [];
    bus.onEnvelope((key) => got.push(key));
    for (let i = 0; i < keys.length; i++) await bus.publish(keys[i]!, envelope(i));
    await waitUntil(() => seen.filter((s) => s.startsWith("arqon.room.")).length >= keys.length && got.length >= keys.length);
    sub.unsubscribe();
    const roomSubjects = seen.filter((s) => s.startsWith("arqon.room."));
    expect(roomSubjects).toEqual(keys.map((k) => `arqon.room.${k}`));
    for (const subject of roomSubjects) {
      const tokens = subject.split(".");
      expect(tokens).toHaveLength(4);
      for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_~-]+$/);
    }
    expect(seen.some((s) => s.startsWith("$SYS"))).toBe(false);
    // each key received only its own envelope, once
    expect(got).toEqual(keys);
  });

  it("isolation - a node subscribed to wildcard-looking rooms receives nothing from other rooms", async () => {
    const wild = [roomKey("t1", "*"), roomKey("t1", ">"), roomKey("*", "*"), roomKey(">", ">")];
    const other = new NatsBus({ link });
    const got: RoomKey[] = [];
    other.onEnvelope((key) => got.push(key));
    for (const key of wild) await other.subscribe(key);
    const victims = [roomKey("t1", "lobby"), roomKey("t2", "lobby"), roomKey("t1", "a.b")];
    for (const key of victims) await bus.publish(key, envelope(1));
    const marker = roomKey("t1", "*");
    await bus.publish(marker, envelope(2));
    await waitUntil(() => got.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([marker]);
    await other.close();
  });

  it("isolation - a key that is not a room key is refused before it reaches a subject", async () => {
    await expect(bus.publish("t1.a.b" as RoomKey, envelope(1))).rejects.toThrow(/not a room key/);
    await expect(bus.subscribe(">" as RoomKey)).rejects.toThrow(/not a room key/);
  });
});
