import { describe, expect, it } from "vitest";
import type { Member } from "../frame/types.js";
import type { PresenceEvent, PresenceStore } from "../presence/types.js";
import { roomKey, type RoomKey } from "../room/names.js";
import { SuiteContext, type ContractEnv, type ContractFixture, type ContractOptions } from "./fixture.js";
import { json, parse, uniqueTenant, waitFor, waitForCount } from "./wait.js";

export interface PresenceContractEnv extends ContractEnv {
  /** Lease every member gets: 10 s on the manual clock, 300 ms with real time. */
  leaseMs: number;
}

export interface PresenceContractFixture extends ContractFixture<PresenceStore> {
  /** Does what a live node does to keep the members it holds (a no-op for backends that renew by themselves). */
  renew(node: 0 | 1): Promise<void>;
  /** Makes `node` stop renewing its members as if it had died, without removing them. */
  halt(node: 0 | 1): Promise<void>;
}

/** Creates two handles on one presence backend (a fresh pair per test) whose members hold `leaseMs` leases. */
export type PresenceContractFactory = (env: PresenceContractEnv) => Promise<PresenceContractFixture>;

const LEASE = { manual: 10_000, real: 300 };

interface Seen {
  key: RoomKey;
  event: PresenceEvent;
}

function record(store: PresenceStore): Seen[] {
  const got: Seen[] = [];
  store.watch((key, event) => got.push({ key, event }));
  return got;
}

function summary(seen: readonly Seen[], key: RoomKey): string[] {
  return seen
    .filter((s) => s.key === key)
    .map(({ event }) =>
      event.type === "join"
        ? `join ${event.member.clientId} ${JSON.stringify(parse(event.member.info))}`
        : `leave ${event.member.clientId} ${event.reason ?? ""}`.trimEnd(),
    );
}

function ids(members: readonly Member[]): string[] {
  return members.map((m) => m.clientId ?? "").sort();
}

function member(clientId: string, userId: string, info?: unknown): Member {
  const m: Member = { clientId, userId };
  if (info !== undefined) m.info = json(info);
  return m;
}

/**
 * The guarantees of `PresenceStore` (presence/types.ts). Lease expiry runs on the manual clock with
 * `time: "manual"`, else on 300 ms real leases (expiry is awaited for at most `timeoutMs`).
 */
export function describePresenceContract(name: string, factory: PresenceContractFactory, options: ContractOptions = {}): void {
  describe(`PresenceStore contract: ${name}`, () => {
    const ctx = new SuiteContext<PresenceContractFixture, PresenceContractEnv>(factory, options);
    const leaseMs = LEASE[ctx.time];
    const open = () => ctx.open({ leaseMs });

    it("presence - join is an upsert keyed by clientId: one entry, latest info", async () => {
      const { nodes: [a] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      await a.join(key, member("c1", "alice", { status: "here" }));
      await a.join(key, member("c1", "alice", { status: "away" }));
      const list = await a.list(key);
      expect(list).toHaveLength(1);
      expect(list[0]!.clientId).toBe("c1");
      expect(list[0]!.userId).toBe("alice");
      expect(parse(list[0]!.info)).toEqual({ status: "away" });
    });

    it("presence - list reflects resolved joins and leaves; leave reports whether it removed an entry", async () => {
      const { nodes: [a] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      expect(await a.list(key)).toEqual([]);
      await a.join(key, member("c1", "alice"));
      await a.join(key, member("c2", "bob"));
      await a.join(key, member("c3", "alice"));
      expect(ids(await a.list(key))).toEqual(["c1", "c2", "c3"]);
      expect(await a.leave(key, "c1")).toBe(true);
      expect(await a.leave(key, "c1")).toBe(false);
      expect(await a.leave(key, "nobody")).toBe(false);
      expect(ids(await a.list(key))).toEqual(["c2", "c3"]);
    });

    it("presence - watchers on every node see joins, info changes and leaves once, in order", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      const seenA = record(a);
      const seenB = record(b);
      await a.join(key, member("c1", "alice", { v: 1 }));
      await a.join(key, member("c2", "bob", { v: 1 }));
      await a.join(key, member("c1", "alice", { v: 2 }));
      await a.leave(key, "c2", "closed");
      await a.leave(key, "c1");
      const expected = ['join c1 {"v":1}', 'join c2 {"v":1}', 'join c1 {"v":2}', "leave c2 closed", "leave c1"];
      for (const seen of [seenA, seenB]) {
        await waitFor(() => summary(seen, key).length >= expected.length, { ...ctx.wait, message: "presence events" });
      }
      await ctx.quiet();
      expect(summary(seenA, key)).toEqual(expected);
      expect(summary(seenB, key)).toEqual(expected);
      expect(await b.list(key)).toEqual([]);
    });

    it("presence - a member whose node stops renewing leaves everywhere with reason expired", async () => {
      const fixture = await open();
      const [a, b] = fixture.nodes;
      const key = roomKey(uniqueTenant(), "lobby");
      const seen = record(b);
      await a.join(key, member("c1", "alice"));
      await fixture.halt(0);
      await ctx.elapse(leaseMs * 2);
      await waitFor(() => summary(seen, key).includes("leave c1 expired"), {
        timeoutMs: ctx.timeoutMs + (ctx.time === "real" ? leaseMs * 2 : 0),
        message: "leave with reason expired",
      });
      expect(summary(seen, key).filter((s) => s.startsWith("leave"))).toEqual(["leave c1 expired"]);
      expect(await b.list(key)).toEqual([]);
    });

    it("presence - members of a node that keeps renewing outlive their lease", async () => {
      const fixture = await open();
      const [a, b] = fixture.nodes;
      const key = roomKey(uniqueTenant(), "lobby");
      const seen = record(b);
      await a.join(key, member("c1", "alice"));
      for (let i = 0; i < 5; i++) {
        await ctx.elapse(leaseMs * 0.3);
        await fixture.renew(0);
      }
      expect(ids(await a.list(key))).toEqual(["c1"]);
      expect(ids(await b.list(key))).toEqual(["c1"]);
      expect(summary(seen, key).filter((s) => s.startsWith("leave"))).toEqual([]);
    });

    it("presence - rooms and tenants are independent: same room name in two tenants", async () => {
      const { nodes: [a, b] } = await open();
      const k1 = roomKey(uniqueTenant(), "lobby");
      const k2 = roomKey(uniqueTenant(), "lobby");
      const seen = record(b);
      await a.join(k1, member("c1", "alice"));
      await a.join(k2, member("c2", "bob"));
      await a.join(k2, member("c1", "mallory"));
      expect(ids(await a.list(k1))).toEqual(["c1"]);
      expect((await a.list(k1))[0]!.userId).toBe("alice");
      expect(ids(await a.list(k2))).toEqual(["c1", "c2"]);
      expect(await a.leave(k1, "c2")).toBe(false);
      expect(await a.leave(k2, "c1")).toBe(true);
      expect(ids(await a.list(k1))).toEqual(["c1"]);
      await waitForCount(seen, 4, ctx.wait);
      expect(summary(seen, k1)).toEqual(["join c1 undefined"]);
    });

    it("presence - a removed watcher sees nothing more", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      const removed: Seen[] = [];
      const off = b.watch((k, event) => removed.push({ key: k, event }));
      const kept = record(b);
      await a.join(key, member("c1", "alice"));
      await waitFor(() => removed.length >= 1 && kept.length >= 1, { ...ctx.wait, message: "first join" });
      off();
      await a.join(key, member("c2", "bob"));
      await waitFor(() => summary(kept, key).length >= 2, { ...ctx.wait, message: "second join" });
      await ctx.quiet();
      expect(summary(removed, key)).toEqual(["join c1 undefined"]);
    });
  });
}
