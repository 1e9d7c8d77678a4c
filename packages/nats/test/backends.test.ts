import { afterEach, expect, it } from "vitest";
import { ErrorCode, roomKey, utf8Encode, type Envelope, type RoomKey } from "@arqon/core";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { connectNatsBackends, type NatsBackends } from "../src/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(10);
  }
}

describeWithNats("connectNatsBackends", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function node(nats: NatsServerHandle, name: string): Promise<NatsBackends> {
    const b = await connectNatsBackends({ servers: nats.url, name, reconnectTimeWaitMs: 50, requestTimeoutMs: 1000, presence: { leaseMs: 500 } });
    cleanups.push(() => b.close());
    return b;
  }

  it("backends - connecting to a port without NATS rejects with ARQ_BACKEND_UNAVAILABLE", async () => {
    const nats = await startNatsServer();
    const url = nats.url;
    await nats.stop();
    await expect(connectNatsBackends({ servers: url })).rejects.toMatchObject({ code: ErrorCode.BACKEND_UNAVAILABLE });
  });

  it("backends - two nodes share bus, history, presence, state and kv", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const a = await node(nats, "a");
    const b = await node(nats, "b");
    expect(a.status()).toBe("connected");
    const key = roomKey("acme", "lobby");
    const got: { key: RoomKey; envelope: Envelope }[] = [];
    b.bus.onEnvelope((k, envelope) => got.push({ key: k, envelope }));
    await b.bus.subscribe(key);
    const appended = await a.history.append(key, { type: "message", room: "lobby", payload: utf8Encode('{"text":"hi"}') });
    await a.bus.publish(key, { frame: appended.message, originClientId: "c1" });
    await until(() => got.length === 1);
    expect(got[0]!.envelope.frame).toMatchObject({ offset: 1, epoch: appended.epoch, room: "lobby" });
    expect(got[0]!.envelope.originClientId).toBe("c1");
    expect(got[0]!.envelope.encoded).toBeInstanceOf(Uint8Array);
    expect(await b.history.position(key)).toEqual({ offset: 1, epoch: appended.epoch });
    await a.presence.join(key, { clientId: "c1", userId: "alice" });
    expect((await a.presence.list(key)).map((m) => m.userId)).toEqual(["alice"]);
    // Another node's list follows its KV watch: eventually consistent, within milliseconds.
    let members: string[] = [];
    for (let i = 0; i < 100 && members.length === 0; i++) {
      members = (await b.presence.list(key)).map((m) => m.userId ?? "");
      if (members.length === 0) await sleep(10);
    }
    expect(members).toEqual(["alice"]);
    await a.state.set(key, { key: "mode", value: utf8Encode('"chat"') });
    expect((await b.state.get(key)).map((e) => e.version)).toEqual([1]);
    expect(await a.kv.put("ns", "k", utf8Encode("1"))).toBe(1);
    expect((await b.kv.get("ns", "k"))?.revision).toBe(1);
    const topics: string[] = [];
    b.controlPlane.onBroadcast((topic) => topics.push(topic));
    await a.controlPlane.broadcast("casil.reload", utf8Encode("{}"));
    await until(() => topics.length === 1);
    expect(topics).toEqual(["casil.reload"]);
  });

  it("backends - a frame beyond the NATS max_payload is refused with ARQ_PAYLOAD_TOO_LARGE, not as an outage", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const a = await node(nats, "a");
    const key = roomKey("acme", "big");
    const frame = { type: "message" as const, room: "big", payload: new Uint8Array(2 * 1024 * 1024) };
    await expect(a.history.append(key, frame)).rejects.toMatchObject({ code: ErrorCode.PAYLOAD_TOO_LARGE });
    await expect(a.bus.publish(key, { frame })).rejects.toMatchObject({ code: ErrorCode.PAYLOAD_TOO_LARGE });
    expect(a.status()).toBe("connected");
    expect((await a.history.append(key, { ...frame, payload: new Uint8Array(10) })).offset).toBe(1);
  });

  it("backends - while NATS is down every write rejects with ARQ_BACKEND_UNAVAILABLE; the node recovers by itself", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const a = await node(nats, "a");
    const statuses: string[] = [];
    a.onStatus((s) => statuses.push(s));
    const key = roomKey("acme", "lobby");
    await nats.kill();
    await until(() => a.status() === "reconnecting");
    const unavailable = { code: ErrorCode.BACKEND_UNAVAILABLE };
    const frame = { type: "message" as const, room: "lobby", payload: utf8Encode("1") };
    await expect(a.bus.publish(key, { frame })).rejects.toMatchObject(unavailable);
    await expect(a.bus.subscribe(key)).rejects.toMatchObject(unavailable);
    await expect(a.history.append(key, frame)).rejects.toMatchObject(unavailable);
    await expect(a.presence.join(key, { clientId: "c1" })).rejects.toMatchObject(unavailable);
    await expect(a.state.set(key, { key: "k", value: utf8Encode("1") })).rejects.toMatchObject(unavailable);
    await expect(a.kv.put("ns", "k", utf8Encode("1"))).rejects.toMatchObject(unavailable);
    await expect(a.controlPlane.broadcast("t", utf8Encode("1"))).rejects.toMatchObject(unavailable);
    await nats.start();
    await until(() => a.status() === "connected");
    expect(statuses).toEqual(["reconnecting", "connected"]);
    let offset: number | undefined;
    for (let i = 0; i < 100 && offset === undefined; i++) {
      offset = await a.history.append(key, frame).then((r) => r.offset, () => sleep(20).then(() => undefined));
    }
    expect(offset).toBe(1);
    await a.bus.subscribe(key);
    await a.presence.join(key, { clientId: "c1" });
    expect((await a.presence.list(key)).map((m) => m.clientId)).toEqual(["c1"]);
  }, 20_000);
});
