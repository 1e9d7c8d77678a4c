import { describe, expect, it } from "vitest";
import type { Bus, ControlPlane, Envelope } from "../bus/types.js";
import { HEADER_TWIST_ID, type Frame } from "../frame/types.js";
import { roomKey, type RoomKey } from "../room/names.js";
import { SuiteContext, type ContractEnv, type ContractFixture, type ContractOptions } from "./fixture.js";
import { bytesOf, json, parse, uniqueTenant, waitFor, waitForCount } from "./wait.js";

/** Creates two connected bus nodes (a fresh pair per test). */
export type BusContractFactory = (env: ContractEnv) => Promise<ContractFixture<Bus>>;
/** Creates two connected control-plane nodes (a fresh pair per test). */
export type ControlPlaneContractFactory = (env: ContractEnv) => Promise<ContractFixture<ControlPlane>>;

interface Received {
  key: RoomKey;
  envelope: Envelope;
}

function record(bus: Bus): Received[] {
  const got: Received[] = [];
  bus.onEnvelope((key, envelope) => got.push({ key, envelope }));
  return got;
}

function envelope(room: string, n: number, extra: Partial<Envelope> = {}): Envelope {
  const frame: Frame = {
    type: "message",
    room,
    id: `m${n}`,
    payload: json({ n }),
    offset: n,
    epoch: "ep1",
    headers: { [HEADER_TWIST_ID]: "tw1" },
  };
  return { frame, ...extra };
}

function numbers(got: readonly Received[], key?: RoomKey): number[] {
  return got.filter((r) => key === undefined || r.key === key).map((r) => (parse(r.envelope.frame.payload) as { n: number }).n);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * The guarantees of `Bus` (bus/types.ts), run against `factory`'s nodes. Negative checks (nothing must arrive) first
 * wait for a sentinel envelope published after the one that must not arrive, then wait `quietMs` more.
 */
export function describeBusContract(name: string, factory: BusContractFactory, options: ContractOptions = {}): void {
  describe(`Bus contract: ${name}`, () => {
    const ctx = new SuiteContext<ContractFixture<Bus>, ContractEnv>(factory, options);

    /** Publishes a sentinel on its own key that `bus` listens to, and waits until `got` has it. */
    async function barrier(publisher: Bus, listener: Bus, got: Received[], tenant: string): Promise<void> {
      const key = roomKey(tenant, `sentinel-${got.length}-${Math.random().toString(36).slice(2)}`);
      await listener.subscribe(key);
      await publisher.publish(key, envelope("sentinel", 0));
      await waitFor(() => got.some((r) => r.key === key), { ...ctx.wait, message: "sentinel envelope" });
      await ctx.quiet();
    }

    it("bus - a subscribed node receives the envelope with frame, origin and echo intact", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const key = roomKey(uniqueTenant(), "lobby");
      const got = record(b);
      await b.subscribe(key);
      await a.publish(key, envelope("lobby", 7, { originClientId: "client-1", echo: true }));
      await waitForCount(got, 1, ctx.wait);
      const { key: k, envelope: e } = got[0]!;
      expect(k).toBe(key);
      expect(e.frame.type).toBe("message");
      expect(e.frame.room).toBe("lobby");
      expect(e.frame.id).toBe("m7");
      expect(e.frame.offset).toBe(7);
      expect(e.frame.epoch).toBe("ep1");
      expect(e.frame.headers).toEqual({ [HEADER_TWIST_ID]: "tw1" });
      expect(parse(e.frame.payload)).toEqual({ n: 7 });
      expect(e.originClientId).toBe("client-1");
      expect(e.echo).toBe(true);
    });

    it("bus - the publishing node receives its own envelope when it is subscribed", async () => {
      const { nodes: [a] } = await ctx.open({});
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      const got = record(a);
      await a.subscribe(key);
      await a.publish(key, envelope("lobby", 1));
      await waitForCount(got, 1, ctx.wait);
      await barrier(a, a, got, tenant);
      expect(numbers(got, key)).toEqual([1]);
    });

    it("bus - per key, 500 envelopes arrive in publish order on every subscribed node", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const tenant = uniqueTenant();
      const k1 = roomKey(tenant, "orders");
      const k2 = roomKey(tenant, "ticks");
      const gotA = record(a);
      const gotB = record(b);
      await Promise.all([a.subscribe(k1), a.subscribe(k2), b.subscribe(k1), b.subscribe(k2)]);
      const sent: Promise<void>[] = [];
      for (let n = 1; n <= 500; n++) {
        sent.push(a.publish(k1, envelope("orders", n)));
        sent.push(a.publish(k2, envelope("ticks", n)));
      }
      await Promise.all(sent);
      await waitForCount(gotA, 1000, ctx.wait);
      await waitForCount(gotB, 1000, ctx.wait);
      for (const got of [gotA, gotB]) {
        expect(numbers(got, k1)).toEqual(range(1, 500));
        expect(numbers(got, k2)).toEqual(range(1, 500));
      }
    });

    it("bus - a node that never subscribed to a key receives nothing for it", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      const gotA = record(a);
      const gotB = record(b);
      await a.publish(key, envelope("lobby", 1));
      await barrier(a, b, gotB, tenant);
      expect(gotB.filter((r) => r.key === key)).toEqual([]);
      expect(gotA.filter((r) => r.key === key)).toEqual([]);
    });

    it("bus - after unsubscribe a node receives nothing more for the key", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      const got = record(b);
      await b.subscribe(key);
      await a.publish(key, envelope("lobby", 1));
      await waitForCount(got, 1, ctx.wait);
      await b.unsubscribe(key);
      await a.publish(key, envelope("lobby", 2));
      await barrier(a, b, got, tenant);
      expect(numbers(got, key)).toEqual([1]);
    });

    it("bus - subscribe is idempotent, delivers once, and one unsubscribe removes the interest", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      const got = record(b);
      await b.subscribe(key);
      await b.subscribe(key);
      await b.subscribe(key);
      await a.publish(key, envelope("lobby", 1));
      await barrier(a, b, got, tenant);
      expect(numbers(got, key)).toEqual([1]);
      await b.unsubscribe(key);
      await a.publish(key, envelope("lobby", 2));
      await barrier(a, b, got, tenant);
      expect(numbers(got, key)).toEqual([1]);
      await b.unsubscribe(roomKey(tenant, "never-subscribed"));
    });

    it("bus - keys are isolated: same room name in two tenants, wildcard-looking rooms", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const t1 = uniqueTenant();
      const t2 = uniqueTenant();
      const mine = roomKey(t1, "lobby");
      const lookalikes = [
        roomKey(t2, "lobby"),
        roomKey(t1, "lobby.x"),
        roomKey(t1, "lobby:x"),
        roomKey(`${t1}.lobby`, "x"),
        roomKey(t1, "lobb"),
      ];
      const wildcards = [roomKey(t1, "*"), roomKey(t1, ">"), roomKey(t1, "**"), roomKey("*", "lobby"), roomKey(">", "")];
      const got = record(b);
      await b.subscribe(mine);
      for (const key of wildcards) await b.subscribe(key);
      let n = 0;
      for (const key of lookalikes) await a.publish(key, envelope("x", ++n));
      await a.publish(mine, envelope("lobby", 100));
      await barrier(a, b, got, t1);
      const relevant = got.filter((r) => r.envelope.frame.room !== "sentinel");
      expect(relevant.map((r) => r.key)).toEqual([mine]);
      expect(numbers(relevant)).toEqual([100]);
    });

    it("bus - every subscribed node receives each envelope exactly once", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "fanout");
      const gotA = record(a);
      const gotB = record(b);
      await a.subscribe(key);
      await b.subscribe(key);
      for (let n = 1; n <= 20; n++) await b.publish(key, envelope("fanout", n));
      await barrier(b, a, gotA, tenant);
      await barrier(a, b, gotB, tenant);
      expect(numbers(gotA, key)).toEqual(range(1, 20));
      expect(numbers(gotB, key)).toEqual(range(1, 20));
    });

    it("bus - a removed handler is no longer called; other handlers are", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      const removed: number[] = [];
      const off = b.onEnvelope((_k, e) => removed.push((parse(e.frame.payload) as { n: number }).n));
      const got = record(b);
      await b.subscribe(key);
      await a.publish(key, envelope("lobby", 1));
      await waitForCount(got, 1, ctx.wait);
      off();
      await a.publish(key, envelope("lobby", 2));
      await barrier(a, b, got, tenant);
      expect(removed).toEqual([1]);
      expect(numbers(got, key)).toEqual([1, 2]);
    });
  });
}

/** The guarantees of `ControlPlane` (bus/types.ts), run against `factory`'s nodes. */
export function describeControlPlaneContract(
  name: string,
  factory: ControlPlaneContractFactory,
  options: ContractOptions = {},
): void {
  describe(`ControlPlane contract: ${name}`, () => {
    const ctx = new SuiteContext<ContractFixture<ControlPlane>, ContractEnv>(factory, options);

    function record(plane: ControlPlane): { topic: string; data: number[] }[] {
      const got: { topic: string; data: number[] }[] = [];
      plane.onBroadcast((topic, data) => got.push({ topic, data: bytesOf(data)! }));
      return got;
    }

    it("control - every node, the sender included, receives each broadcast once, in send order per topic", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const suffix = uniqueTenant("");
      const reload = `casil.reload.${suffix}`;
      const kick = `admin.kick.${suffix}`;
      const gotA = record(a);
      const gotB = record(b);
      const sent: Promise<void>[] = [];
      for (let n = 0; n < 100; n++) sent.push(a.broadcast(n % 2 === 0 ? reload : kick, new Uint8Array([n, 255 - n])));
      await Promise.all(sent);
      await waitForCount(gotA, 100, ctx.wait);
      await waitForCount(gotB, 100, ctx.wait);
      await ctx.quiet();
      for (const got of [gotA, gotB]) {
        const mine = got.filter((g) => g.topic === reload || g.topic === kick);
        expect(mine).toHaveLength(100);
        expect(mine.filter((g) => g.topic === reload).map((g) => g.data)).toEqual(
          range(0, 49).map((i) => [2 * i, 255 - 2 * i]),
        );
        expect(mine.filter((g) => g.topic === kick).map((g) => g.data)).toEqual(
          range(0, 49).map((i) => [2 * i + 1, 254 - 2 * i]),
        );
      }
    });

    it("control - broadcasts from either node reach both; a removed handler hears nothing more", async () => {
      const { nodes: [a, b] } = await ctx.open({});
      const topic = `admin.cmd.${uniqueTenant("")}`;
      const gotA = record(a);
      const removed: number[][] = [];
      const off = b.onBroadcast((t, data) => {
        if (t === topic) removed.push(bytesOf(data)!);
      });
      const gotB = record(b);
      await b.broadcast(topic, json({ from: "b" }));
      await a.broadcast(topic, json({ from: "a" }));
      await waitForCount(gotA, 2, ctx.wait);
      await waitForCount(gotB, 2, ctx.wait);
      expect(new Set(gotA.map((g) => JSON.stringify(parse(new Uint8Array(g.data)))))).toEqual(
        new Set(['{"from":"b"}', '{"from":"a"}']),
      );
      off();
      await a.broadcast(topic, json({ from: "a", n: 2 }));
      await waitForCount(gotB, 3, ctx.wait);
      await ctx.quiet();
      expect(removed).toHaveLength(2);
      expect(gotB).toHaveLength(3);
    });
  });
}
