import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { describeBusContract, describeControlPlaneContract } from "@arqon/core/testing";
import { encodeProto, roomKey, utf8Decode, utf8Encode, type Envelope, type RoomKey } from "@arqon/core";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { NatsBus, NatsControlPlane, NatsLink } from "../src/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function envelope(n: number, extra: Partial<Envelope> = {}): Envelope {
  return { frame: { type: "message", room: "lobby", id: `m${n}`, offset: n, epoch: "ep1", payload: utf8Encode(JSON.stringify({ n })) }, ...extra };
}

function record(bus: NatsBus): { key: RoomKey; envelope: Envelope }[] {
  const got: { key: RoomKey; envelope: Envelope }[] = [];
  bus.onEnvelope((key, e) => got.push({ key, envelope: e }));
  return got;
}

const ns = (got: { key: RoomKey; envelope: Envelope }[], key: RoomKey) =>
  got.filter((g) => g.key === key).map((g) => (JSON.parse(utf8Decode(g.envelope.frame.payload!)) as { n: number }).n);

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(5);
  }
}

describeWithNats("NATS bus and control plane", () => {
  let nats: NatsServerHandle;
  const open: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterEach(async () => {
    for (const c of open.splice(0).reverse()) await c();
  });
  afterAll(() => nats?.stop());

  async function links(): Promise<[NatsLink, NatsLink]> {
    const pair: [NatsLink, NatsLink] = [await NatsLink.connect({ servers: nats.url }), await NatsLink.connect({ servers: nats.url })];
    open.push(async () => {
      await Promise.all(pair.map((l) => l.close()));
    });
    return pair;
  }

  async function buses(): Promise<[NatsBus, NatsBus]> {
    const [la, lb] = await links();
    const pair: [NatsBus, NatsBus] = [new NatsBus({ link: la }), new NatsBus({ link: lb })];
    open.push(async () => {
      await Promise.all(pair.map((b) => b.close()));
    });
    return pair;
  }

  it("bus - envelopes keep frame, origin and echo; the receiver gets the protobuf bytes in `encoded`", async () => {
    const [a, b] = await buses();
    const key = roomKey("acme", "lobby");
    const got = record(b);
    await b.subscribe(key);
    const sent = envelope(7, { originClientId: "client-1", echo: true });
    await a.publish(key, sent);
    await until(() => got.length === 1);
    expect(got[0]!.key).toBe(key);
    const { payload, ...rest } = got[0]!.envelope.frame;
    const { payload: sentPayload, ...sentRest } = sent.frame;
    expect(rest).toEqual(sentRest);
    expect(Array.from(payload!)).toEqual(Array.from(sentPayload!));
    expect(got[0]!.envelope.originClientId).toBe("client-1");
    expect(got[0]!.envelope.echo).toBe(true);
    expect(Array.from(got[0]!.envelope.encoded!)).toEqual(Array.from(encodeProto(sent.frame)));
  });

  it("bus - `encoded` bytes are carried as they are, not re-encoded", async () => {
    const [a, b] = await buses();
    const key = roomKey("acme", "lobby");
    const got = record(b);
    await b.subscribe(key);
    const other = envelope(9).frame;
    await a.publish(key, { frame: envelope(1).frame, encoded: encodeProto(other) });
    await until(() => got.length === 1);
    expect(got[0]!.envelope.frame.id).toBe("m9");
  });

  it("bus - per key, 500 envelopes from one node arrive in order on both nodes; nothing crosses keys", async () => {
    const [a, b] = await buses();
    const k1 = roomKey("acme", "orders");
    const k2 = roomKey("acme", "ticks");
    const gotA = record(a);
    const gotB = record(b);
    await Promise.all([a.subscribe(k1), a.subscribe(k2), b.subscribe(k1), b.subscribe(k2)]);
    const sent: Promise<void>[] = [];
    for (let i = 1; i <= 500; i++) sent.push(a.publish(k1, envelope(i)), a.publish(k2, envelope(i)));
    await Promise.all(sent);
    await until(() => gotA.length === 1000 && gotB.length === 1000);
    const range = Array.from({ length: 500 }, (_, i) => i + 1);
    for (const got of [gotA, gotB]) {
      expect(ns(got, k1)).toEqual(range);
      expect(ns(got, k2)).toEqual(range);
    }
  });

  it("bus - interest: no subscription, no delivery; subscribe is idempotent; one unsubscribe removes it", async () => {
    const [a, b] = await buses();
    const key = roomKey("acme", "lobby");
    const marker = roomKey("acme", "marker");
    const got = record(b);
    await b.subscribe(marker);
    await a.publish(key, envelope(1));
    // The marker follows envelope 1 through the same connection: once it is in, 1 went by while b had no interest.
    await a.publish(marker, envelope(100));
    await until(() => got.some((g) => g.key === marker));
    await b.subscribe(key);
    await b.subscribe(key);
    expect(b.subscribedKeys.sort()).toEqual([key, marker].sort());
    await a.publish(key, envelope(2));
    await until(() => ns(got, key).length === 1);
    await b.unsubscribe(key);
    await b.unsubscribe(roomKey("acme", "never"));
    await a.publish(key, envelope(3));
    await a.publish(marker, envelope(101));
    await until(() => ns(got, marker).includes(101));
    await sleep(100);
    expect(ns(got, key)).toEqual([2]);
  });

  it("bus - subscribeTenant: every room of the tenant, once per envelope beside the room's own subscription, nothing of other tenants; a stream across the switch loses nothing", async () => {
    const [a, b] = await buses();
    const got = record(b);
    const lobby = roomKey("acme", "lobby");
    const orders = roomKey("acme", "orders:1");
    // Another tenant whose name starts like acme's, and room names that look like subject syntax.
    const foreign = [roomKey("acme-2", "lobby"), roomKey("acmf", "x"), roomKey("other", "acme.lobby"), roomKey("other", ">")];
    await b.subscribe(lobby);
    // A numbered stream on lobby runs while b switches to the tenant-wide subscription and back.
    let n = 0;
    const stream = (async () => {
      while (n < 300) {
        await a.publish(lobby, envelope(++n));
        if (n % 10 === 0) await sleep(1);
      }
    })();
    await until(() => n > 50);
    await b.subscribeTenant("acme");
    await until(() => n > 150);
    await b.unsubscribeTenant("acme");
    await until(() => n > 200);
    await b.subscribeTenant("acme");
    await stream;
    await a.publish(orders, envelope(1));
    for (const k of foreign) await a.publish(k, envelope(1));
    await a.publish(orders, envelope(2));
    await until(() => ns(got, orders).length === 2 && ns(got, lobby).at(-1) === 300);
    await sleep(50);
    // Nothing lost across the switches; the few envelopes that arrived by both subscriptions at a switch are the
    // fan-out's to drop (by offset): a round trip's worth per switch.
    const seen = ns(got, lobby);
    expect([...new Set(seen)]).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(seen.length - 300).toBeLessThan(60);
    expect(ns(got, orders)).toEqual([1, 2]);
    for (const k of foreign) expect(got.filter((g) => g.key === k)).toEqual([]);
    await b.unsubscribeTenant("acme");
    await b.unsubscribeTenant("acme");
    await a.publish(orders, envelope(3));
    await a.publish(lobby, envelope(301));
    await until(() => ns(got, lobby).includes(301));
    await sleep(50);
    expect(ns(got, orders)).toEqual([1, 2]);
  });

  it("bus - room messages of two publishers that cross are put back in offset order; a gap is skipped after the window", async () => {
    const [a, b] = await buses();
    const [, lb] = await links();
    const other = new NatsBus({ link: lb });
    open.push(() => other.close());
    const key = roomKey("acme", "chat");
    const got = record(b);
    await b.subscribe(key);
    await a.publish(key, envelope(1));
    await until(() => got.length === 1);
    await other.publish(key, envelope(3));
    await a.publish(key, envelope(2));
    await until(() => got.length === 3);
    expect(ns(got, key)).toEqual([1, 2, 3]);
    const start = Date.now();
    await a.publish(key, envelope(5));
    await a.publish(key, envelope(6));
    await until(() => got.length === 5);
    expect(Date.now() - start).toBeGreaterThanOrEqual(90);
    expect(ns(got, key)).toEqual([1, 2, 3, 5, 6]);
    // Presence and state frames carry no offset and are never held.
    await a.publish(key, { frame: { type: "presence_join", room: "chat", members: [{ clientId: "c1" }] } });
    await until(() => got.length === 6);
    expect(got[5]!.envelope.frame.type).toBe("presence_join");
  });

  it("bus - a frame on the room subject that is not protobuf is reported, not delivered", async () => {
    const [la] = await links();
    const bad: string[] = [];
    const bus = new NatsBus({ link: la, onBadFrame: (_key, error) => bad.push((error as { code?: string }).code ?? "") });
    open.push(() => bus.close());
    const got = record(bus);
    const key = roomKey("acme", "lobby");
    await bus.subscribe(key);
    la.nc.publish(`arqon.room.${key}`, utf8Encode("not protobuf \u0000\u00ff"));
    await bus.publish(key, envelope(1));
    await until(() => got.length === 1);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatch(/^ARQ_FRAME_/);
  });

  describeBusContract("nats", async () => {
    const [la, lb] = await links();
    const nodes = [new NatsBus({ link: la }), new NatsBus({ link: lb })] as const;
    return {
      nodes,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.close()));
      },
    };
  });

  describeControlPlaneContract("nats", async () => {
    const [la, lb] = await links();
    const nodes = [await NatsControlPlane.create({ link: la }), await NatsControlPlane.create({ link: lb })] as const;
    return {
      nodes,
      cleanup: async () => {
        await Promise.all(nodes.map((n) => n.close()));
      },
    };
  });
});
