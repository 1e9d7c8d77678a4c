import { describe, expect, it } from "vitest";
import type { StateEntry } from "../frame/types.js";
import type { RoomStateStore } from "../state/types.js";
import { roomKey, type RoomKey } from "../room/names.js";
import { ErrorCode } from "../errors.js";
import { SuiteContext, type ContractEnv, type ContractFixture, type ContractOptions } from "./fixture.js";
import { json, parse, uniqueTenant, waitFor } from "./wait.js";

/** Creates two handles on one room-state backend (a fresh pair per test). */
export type RoomStateContractFactory = (env: ContractEnv) => Promise<ContractFixture<RoomStateStore>>;

/** `key=value@version` of live entries, sorted by key. */
function view(entries: readonly StateEntry[]): string[] {
  return entries
    .filter((e) => !e.deleted)
    .map((e) => `${e.key}=${JSON.stringify(parse(e.value))}@${e.version}`)
    .sort();
}

function line(e: StateEntry): string {
  return e.deleted ? `${e.key} deleted@${e.version}` : `${e.key}=${JSON.stringify(parse(e.value))}@${e.version}`;
}

async function rejection(promise: Promise<unknown>): Promise<{ code?: unknown; detail?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: unknown };
  }
  throw new Error("expected the write to be rejected");
}

/**
 * The guarantees of `RoomStateStore` (state/types.ts). `at({ timestamp })` is checked between writes spaced by
 * 20 ms (manual clock or real).
 */
export function describeRoomStateContract(name: string, factory: RoomStateContractFactory, options: ContractOptions = {}): void {
  describe(`RoomStateStore contract: ${name}`, () => {
    const ctx = new SuiteContext<ContractFixture<RoomStateStore>, ContractEnv>(factory, options);
    const open = () => ctx.open({});

    function record(store: RoomStateStore, key: RoomKey): string[] {
      const seen: string[] = [];
      store.watch((k, entry) => {
        if (k === key) seen.push(line(entry));
      });
      return seen;
    }

    it("state - versions start at 1 and grow by one per write; get reflects every resolved set", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "game");
      const first = await a.set(key, { key: "mode", value: json("lobby"), updatedBy: "alice" });
      expect(first).toMatchObject({ key: "mode", version: 1, updatedBy: "alice" });
      expect(parse(first.value)).toBe("lobby");
      expect(typeof first.updatedAt).toBe("number");
      expect(view(await a.get(key))).toEqual(['mode="lobby"@1']);
      const second = await a.set(key, { key: "mode", value: json({ phase: 2 }) });
      expect(second.version).toBe(2);
      await a.set(key, { key: "score", value: json(0) });
      expect(view(await a.get(key))).toEqual(['mode={"phase":2}@2', "score=0@1"]);
      expect(view(await b.get(key))).toEqual(['mode={"phase":2}@2', "score=0@1"]);
    });

    it("state - compare-and-set applies on a matching version; a conflict rejects and changes nothing", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "game");
      const seen = record(b, key);
      await a.set(key, { key: "mode", value: json("a") });
      expect((await a.set(key, { key: "mode", value: json("b"), ifVersion: 1 })).version).toBe(2);
      const before = view(await a.get(key));

      const stale = await rejection(a.set(key, { key: "mode", value: json("c"), ifVersion: 1 }));
      expect(stale.code).toBe(ErrorCode.STATE_CONFLICT);
      const exists = await rejection(b.set(key, { key: "mode", value: json("d"), ifVersion: 0 }));
      expect(exists.code).toBe(ErrorCode.STATE_CONFLICT);
      const missing = await rejection(a.set(key, { key: "other", value: json("e"), ifVersion: 3 }));
      expect(missing.code).toBe(ErrorCode.STATE_CONFLICT);
      expect(view(await a.get(key))).toEqual(before);

      expect((await a.set(key, { key: "other", value: json("f"), ifVersion: 0 })).version).toBe(1);
      await waitFor(() => seen.length >= 3, { ...ctx.wait, message: "three applied writes" });
      await ctx.quiet();
      expect(seen).toEqual(['mode="a"@1', 'mode="b"@2', 'other="f"@1']);
    });

    it("state - of racing compare-and-sets on one version exactly one wins", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "game");
      await a.set(key, { key: "turn", value: json("nobody") });
      const racers = Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).set(key, { key: "turn", value: json(`p${i}`), ifVersion: 1 }),
      );
      const results = await Promise.allSettled(racers);
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected") expect((r.reason as { code?: unknown }).code).toBe(ErrorCode.STATE_CONFLICT);
      }
      expect(view(await a.get(key))).toEqual([`turn="p${won[0]}"@2`]);
    });

    it("state - a delete keeps the version counting, so a stale compare-and-set never succeeds", async () => {
      const { nodes: [a] } = await open();
      const key = roomKey(uniqueTenant(), "game");
      await a.set(key, { key: "k", value: json(1) });
      await a.set(key, { key: "k", value: json(2) });
      const removed = await a.set(key, { key: "k", deleted: true });
      expect(removed).toMatchObject({ key: "k", version: 3, deleted: true });
      expect(view(await a.get(key))).toEqual([]);
      expect((await rejection(a.set(key, { key: "k", value: json(9), ifVersion: 2 }))).code).toBe(ErrorCode.STATE_CONFLICT);
      expect(view(await a.get(key))).toEqual([]);
      const recreated = await a.set(key, { key: "k", value: json(4), ifVersion: 0 });
      expect(recreated.version).toBe(4);
      expect((await a.set(key, { key: "k", value: json(5) })).version).toBe(5);
    });

    it("state - watchers on every node see each applied write once, in order", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "game");
      const seenA = record(a, key);
      const seenB = record(b, key);
      const applied: string[] = [];
      for (let i = 0; i < 30; i++) {
        const name = `k${i % 3}`;
        const entry = await a.set(key, i % 7 === 6 ? { key: name, deleted: true } : { key: name, value: json(i) });
        applied.push(line(entry));
      }
      await b.set(roomKey(uniqueTenant(), "game"), { key: "k0", value: json("elsewhere") });
      for (const seen of [seenA, seenB]) await waitFor(() => seen.length >= applied.length, { ...ctx.wait, message: "writes" });
      await ctx.quiet();
      expect(seenA).toEqual(applied);
      expect(seenB).toEqual(applied);
    });

    it("state - at(revision) and at(timestamp) return the room as it was after that write", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "game");
      const writes: StateEntry[] = [];
      const plan = [
        { key: "a", value: json(1) },
        { key: "b", value: json(1) },
        { key: "a", value: json(2) },
        { key: "b", deleted: true },
        { key: "c", value: json(1) },
      ];
      for (const write of plan) {
        await ctx.elapse(20);
        writes.push(await a.set(key, write));
      }
      expect(view(await b.at(key, { revision: 0 }))).toEqual([]);
      expect(view(await b.at(key, { revision: 2 }))).toEqual(["a=1@1", "b=1@1"]);
      expect(view(await b.at(key, { revision: 3 }))).toEqual(["a=2@2", "b=1@1"]);
      expect(view(await b.at(key, { revision: 4 }))).toEqual(["a=2@2"]);
      expect(view(await b.at(key, { revision: 5 }))).toEqual(["a=2@2", "c=1@1"]);
      expect(view(await b.at(key, { timestamp: writes[0]!.updatedAt! - 1 }))).toEqual([]);
      expect(view(await b.at(key, { timestamp: writes[2]!.updatedAt! }))).toEqual(["a=2@2", "b=1@1"]);
      expect(view(await b.at(key, { timestamp: writes[3]!.updatedAt! + 1 }))).toEqual(["a=2@2"]);
      expect(view(await b.at(key, { timestamp: writes[4]!.updatedAt! + 60_000 }))).toEqual(view(await b.get(key)));
    });

    it("state - rooms and tenants are independent: same room name in two tenants", async () => {
      const { nodes: [a, b] } = await open();
      const k1 = roomKey(uniqueTenant(), "game");
      const k2 = roomKey(uniqueTenant(), "game");
      await a.set(k1, { key: "mode", value: json("one") });
      await a.set(k1, { key: "mode", value: json("two") });
      const other = await b.set(k2, { key: "mode", value: json("x"), ifVersion: 0 });
      expect(other.version).toBe(1);
      expect(view(await a.get(k1))).toEqual(['mode="two"@2']);
      expect(view(await a.get(k2))).toEqual(['mode="x"@1']);
      expect(view(await a.at(k2, { revision: 2 }))).toEqual(['mode="x"@1']);
    });

    it("state - deleteTenant removes the tenant's rooms and logs on every node and touches no other tenant", async () => {
      const { nodes: [a, b] } = await open();
      const tenant = uniqueTenant();
      const game = roomKey(tenant, "game");
      const chat = roomKey(tenant, "chat");
      // The escaped name of this tenant is a prefix of the other one's.
      const longer = roomKey(`${tenant}2`, "game");
      const stranger = roomKey(uniqueTenant(), "game");
      await a.set(game, { key: "mode", value: json("one") });
      await a.set(game, { key: "mode", value: json("two") });
      await a.set(game, { key: "score", value: json(1) });
      await b.set(chat, { key: "topic", value: json("hi") });
      await b.set(chat, { key: "topic", deleted: true });
      await b.set(longer, { key: "mode", value: json("kept") });
      await a.set(stranger, { key: "mode", value: json("kept too") });

      expect(await a.deleteTenant(tenant)).toBe(2);
      for (const node of [a, b]) {
        expect(await node.get(game)).toEqual([]);
        expect(await node.get(chat)).toEqual([]);
        expect(await node.at(game, { revision: 2 })).toEqual([]);
        expect(view(await node.get(longer))).toEqual(['mode="kept"@1']);
        expect(view(await node.at(longer, { revision: 1 }))).toEqual(['mode="kept"@1']);
        expect(view(await node.get(stranger))).toEqual(['mode="kept too"@1']);
      }
      expect(await b.deleteTenant(uniqueTenant())).toBe(0);
      expect((await rejection(b.deleteTenant(5 as unknown as string))).code).toBe(ErrorCode.VALIDATION_ERROR);
    });

    it("state - after deleteTenant versions keep climbing, so a compare-and-set from before the delete never succeeds", async () => {
      const { nodes: [a, b] } = await open();
      const tenant = uniqueTenant();
      const game = roomKey(tenant, "game");
      await a.set(game, { key: "mode", value: json(1) });
      await a.set(game, { key: "mode", value: json(2) });
      await a.set(game, { key: "mode", value: json(3) });
      await a.set(game, { key: "score", value: json(0) });
      expect(await b.deleteTenant(tenant)).toBe(1);

      expect((await rejection(a.set(game, { key: "mode", value: json("stale"), ifVersion: 3 }))).code).toBe(
        ErrorCode.STATE_CONFLICT,
      );
      const mode = await b.set(game, { key: "mode", value: json("new"), ifVersion: 0 });
      const version = mode.version!;
      expect(version).toBeGreaterThan(3);
      const score = await a.set(game, { key: "score", value: json(1) });
      expect(score.version).toBeGreaterThan(3);
      const fresh = await a.set(roomKey(tenant, "fresh"), { key: "score", value: json(2) });
      expect(fresh.version).toBeGreaterThan(3);
      expect((await rejection(a.set(game, { key: "score", value: json(9), ifVersion: 1 }))).code).toBe(ErrorCode.STATE_CONFLICT);
      expect((await b.set(game, { key: "mode", value: json("next"), ifVersion: version })).version).toBe(version + 1);
      // The room's write log starts again: revision 1 is the first write after the delete.
      expect(view(await b.at(game, { revision: 1 }))).toEqual([`mode="new"@${version}`]);
      expect(view(await a.get(game))).toEqual([`mode="next"@${version + 1}`, `score=1@${score.version}`]);

      expect(await a.deleteTenant(tenant)).toBe(2);
      const again = await b.set(game, { key: "mode", value: json("again") });
      expect(again.version).toBeGreaterThan(version + 1);
    });
  });
}
