import { describe, expect, it } from "vitest";
import type { KeyValueStore } from "../kv/types.js";
import { ErrorCode } from "../errors.js";
import { SuiteContext, type ContractEnv, type ContractFixture, type ContractOptions } from "./fixture.js";
import { json, parse, uniqueTenant } from "./wait.js";

/** Creates two handles on one key-value backend (a fresh pair per test). */
export type KeyValueContractFactory = (env: ContractEnv) => Promise<ContractFixture<KeyValueStore>>;

async function rejection(promise: Promise<unknown>): Promise<{ code?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: unknown };
  }
  throw new Error("expected the call to be rejected");
}

/**
 * The guarantees of `KeyValueStore` (kv/types.ts). Namespaces are `ns_<random hex>` (with `/`-separated parts in the
 * `deleteNamespaces` tests), keys `[a-z0-9/._-]`.
 */
export function describeKeyValueContract(name: string, factory: KeyValueContractFactory, options: ContractOptions = {}): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    const ctx = new SuiteContext<ContractFixture<KeyValueStore>, ContractEnv>(factory, options);
    const open = () => ctx.open({});
    const namespace = () => uniqueTenant("ns_");

    it("kv - put returns revisions 1, 2, ...; get reflects every resolved put on both nodes", async () => {
      const { nodes: [a, b] } = await open();
      const ns = namespace();
      expect(await a.get(ns, "cfg")).toBeUndefined();
      expect(await a.put(ns, "cfg", json({ v: 1 }))).toBe(1);
      expect(await a.put(ns, "cfg", json({ v: 2 }))).toBe(2);
      const entry = await b.get(ns, "cfg");
      expect(entry).toMatchObject({ key: "cfg", revision: 2 });
      expect(parse(entry!.value)).toEqual({ v: 2 });
      expect(typeof entry!.updatedAt).toBe("number");
    });

    it("kv - compare-and-set applies on a matching revision; a conflict rejects with CONFLICT and changes nothing", async () => {
      const { nodes: [a, b] } = await open();
      const ns = namespace();
      expect(await a.put(ns, "k", json("a"), { ifRevision: 0 })).toBe(1);
      expect(await b.put(ns, "k", json("b"), { ifRevision: 1 })).toBe(2);
      expect((await rejection(a.put(ns, "k", json("c"), { ifRevision: 1 }))).code).toBe(ErrorCode.CONFLICT);
      expect((await rejection(a.put(ns, "k", json("d"), { ifRevision: 0 }))).code).toBe(ErrorCode.CONFLICT);
      expect((await rejection(a.put(ns, "new", json("e"), { ifRevision: 4 }))).code).toBe(ErrorCode.CONFLICT);
      const entry = await a.get(ns, "k");
      expect(entry?.revision).toBe(2);
      expect(parse(entry!.value)).toBe("b");
      expect(await a.get(ns, "new")).toBeUndefined();
    });

    it("kv - of racing compare-and-sets on one revision exactly one wins", async () => {
      const { nodes: [a, b] } = await open();
      const ns = namespace();
      await a.put(ns, "lock", json("free"));
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).put(ns, "lock", json(`owner${i}`), { ifRevision: 1 })),
      );
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected") expect((r.reason as { code?: unknown }).code).toBe(ErrorCode.CONFLICT);
      }
      const entry = await a.get(ns, "lock");
      expect(parse(entry!.value)).toBe(`owner${won[0]}`);
    });

    it("kv - delete removes the key once; afterwards the key counts as absent for compare-and-set", async () => {
      const { nodes: [a, b] } = await open();
      const ns = namespace();
      await a.put(ns, "k", json(1));
      const before = (await a.get(ns, "k"))!.revision;
      expect(await b.delete(ns, "k")).toBe(true);
      expect(await b.delete(ns, "k")).toBe(false);
      expect(await a.delete(ns, "never")).toBe(false);
      expect(await a.get(ns, "k")).toBeUndefined();
      expect((await rejection(a.put(ns, "k", json(2), { ifRevision: before }))).code).toBe(ErrorCode.CONFLICT);
      const revision = await a.put(ns, "k", json(3), { ifRevision: 0 });
      expect(revision).toBeGreaterThan(0);
      expect(await a.get(ns, "k")).toMatchObject({ key: "k", revision });
    });

    it("kv - list returns one namespace's keys in ascending order, with prefix and limit", async () => {
      const { nodes: [a, b] } = await open();
      const ns = namespace();
      const other = namespace();
      for (const key of ["b", "c/1", "a", "c/0", "ab", "c.x", "d"]) await a.put(ns, key, json(key));
      await a.put(other, "a", json("other"));
      await a.delete(ns, "d");
      const all = await b.list(ns);
      expect(all.map((e) => e.key)).toEqual(["a", "ab", "b", "c.x", "c/0", "c/1"]);
      expect(all.map((e) => parse(e.value))).toEqual(["a", "ab", "b", "c.x", "c/0", "c/1"]);
      expect((await b.list(ns, { prefix: "c/" })).map((e) => e.key)).toEqual(["c/0", "c/1"]);
      expect((await b.list(ns, { limit: 2 })).map((e) => e.key)).toEqual(["a", "ab"]);
      expect((await b.list(ns, { prefix: "c", limit: 2 })).map((e) => e.key)).toEqual(["c.x", "c/0"]);
      expect(await b.list(namespace())).toEqual([]);
    });

    it("kv - namespaces are independent", async () => {
      const { nodes: [a, b] } = await open();
      const n1 = namespace();
      const n2 = namespace();
      await a.put(n1, "k", json("one"));
      await a.put(n1, "k", json("one again"));
      expect(await b.put(n2, "k", json("two"), { ifRevision: 0 })).toBe(1);
      expect(parse((await a.get(n1, "k"))!.value)).toBe("one again");
      expect(parse((await a.get(n2, "k"))!.value)).toBe("two");
      expect(await a.delete(n2, "k")).toBe(true);
      expect((await a.get(n1, "k"))?.revision).toBe(2);
      expect((await a.list(n1)).map((e) => e.key)).toEqual(["k"]);
    });

    it("kv - deleteNamespaces deletes every key of the namespaces under a prefix and nothing else", async () => {
      const { nodes: [a, b] } = await open();
      const root = namespace();
      const one = `${root}/op.store/acme/one`;
      const two = `${root}/op.store/acme/two`;
      // Namespaces that share the start of the prefix but not all of it.
      const sibling = `${root}/op.store/acme2/one`;
      const parent = `${root}/op.store/acme`;
      const stranger = namespace();
      for (const key of ["a", "b", "c/1"]) await a.put(one, key, json(key));
      await a.put(one, "a", json("a2"));
      await a.delete(one, "b");
      await b.put(two, "x", json("x"));
      await b.put(sibling, "a", json("sibling"));
      await b.put(parent, "a", json("parent"));
      await a.put(stranger, "a", json("stranger"));

      expect(await a.deleteNamespaces(`${root}/op.store/acme/`)).toBe(3);
      for (const node of [a, b]) {
        expect(await node.get(one, "a")).toBeUndefined();
        expect(await node.get(one, "c/1")).toBeUndefined();
        expect(await node.get(two, "x")).toBeUndefined();
        expect(await node.list(one)).toEqual([]);
        expect(await node.list(two)).toEqual([]);
        expect(parse((await node.get(sibling, "a"))!.value)).toBe("sibling");
        expect(parse((await node.get(parent, "a"))!.value)).toBe("parent");
        expect((await node.get(stranger, "a"))?.revision).toBe(1);
      }
      expect(await b.deleteNamespaces(`${root}/op.store/acme/`)).toBe(0);
      expect(await b.deleteNamespaces(namespace())).toBe(0);
      for (const prefix of ["", 7 as unknown as string]) {
        expect((await rejection(a.deleteNamespaces(prefix))).code).toBe(ErrorCode.VALIDATION_ERROR);
      }
    });

    it("kv - deleteNamespaces with a whole namespace name; revisions of deleted keys are never reused", async () => {
      const { nodes: [a, b] } = await open();
      const rooms = `${namespace()}/arqon.rooms/acme`;
      await a.put(rooms, "lobby", json(1));
      await a.put(rooms, "lobby", json(2));
      const before = (await a.get(rooms, "lobby"))!.revision;
      await a.put(rooms, "game", json(1));
      expect(await b.deleteNamespaces(rooms)).toBe(2);
      expect(await a.list(rooms)).toEqual([]);
      expect((await rejection(a.put(rooms, "lobby", json("stale"), { ifRevision: before }))).code).toBe(ErrorCode.CONFLICT);
      const revision = await a.put(rooms, "lobby", json(3), { ifRevision: 0 });
      expect(revision).toBeGreaterThan(before);
      expect(await b.get(rooms, "lobby")).toMatchObject({ key: "lobby", revision });
      expect((await b.list(rooms)).map((e) => e.key)).toEqual(["lobby"]);
      expect(await b.put(rooms, "lobby", json(4), { ifRevision: revision })).toBeGreaterThan(revision);
    });
  });
}
