import { describe, expect, it } from "vitest";
import { HEADER_TIMESTAMP, HEADER_TWIST_ID, type Frame } from "../frame/types.js";
import type { HistoryStore, RetentionPolicy } from "../history/types.js";
import { roomKey } from "../room/names.js";
import { ErrorCode } from "../errors.js";
import { SuiteContext, type ContractEnv, type ContractFixture, type ContractOptions } from "./fixture.js";
import { json, parse, uniqueTenant } from "./wait.js";

export interface HistoryContractEnv extends ContractEnv {
  /** Retention every room of this fixture must apply (`maxAgeMs: 0` = no age bound, `maxBytes: 0` = no byte bound). */
  retention: Required<RetentionPolicy>;
}

/** Creates two handles on one history backend (a fresh pair per test) with the given retention. */
export type HistoryContractFactory = (env: HistoryContractEnv) => Promise<ContractFixture<HistoryStore>>;

/** Age window of the age-retention test: 60 s on the manual clock, 300 ms of real time otherwise. */
const AGE_WINDOW = { manual: 60_000, real: 300 };

function msg(n: number, headers?: Record<string, string>): Frame {
  const frame: Frame = { type: "message", room: "lobby", payload: json({ n }) };
  if (headers) frame.headers = headers;
  return frame;
}

/** A message whose payload (UTF-8 JSON `{"n":n,"p":"xx.."}`) is exactly `bytes` long. */
function sized(n: number, bytes: number): Frame {
  const bare = JSON.stringify({ n, p: "" }).length;
  if (bytes < bare) throw new Error(`a message with n=${n} needs at least ${bare} bytes`);
  return { type: "message", room: "lobby", payload: json({ n, p: "x".repeat(bytes - bare) }) };
}

function ns(messages: readonly Frame[]): number[] {
  return messages.map((m) => (parse(m.payload) as { n: number }).n);
}

function offsets(messages: readonly Frame[]): number[] {
  return messages.map((m) => m.offset ?? 0);
}

function range(from: number, to: number): number[] {
  return from > to ? [] : Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * The guarantees of `HistoryStore` (history/types.ts), plus the `read` semantics every backend shares (see
 * MemoryHistoryStore). Age retention runs on the manual clock with `time: "manual"`, else on a 300 ms real window.
 */
export function describeHistoryContract(name: string, factory: HistoryContractFactory, options: ContractOptions = {}): void {
  describe(`HistoryStore contract: ${name}`, () => {
    const ctx = new SuiteContext<ContractFixture<HistoryStore>, HistoryContractEnv>(factory, options);
    const open = (retention: Partial<Required<RetentionPolicy>> = {}) =>
      ctx.open({ retention: { maxMessages: 1000, maxAgeMs: 0, maxBytes: 0, ...retention } });

    async function fill(store: HistoryStore, key: ReturnType<typeof roomKey>, count: number): Promise<void> {
      for (let n = 1; n <= count; n++) await store.append(key, msg(n));
    }

    it("history - an empty room is at offset 0 of an epoch that later appends keep", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      const empty = await a.position(key);
      expect(empty.offset).toBe(0);
      expect(typeof empty.epoch).toBe("string");
      expect(empty.epoch.length).toBeGreaterThan(0);
      const first = await a.append(key, msg(1));
      expect(first).toMatchObject({ offset: 1, epoch: empty.epoch, duplicate: false });
      expect(first.message.offset).toBe(1);
      expect(first.message.epoch).toBe(empty.epoch);
      expect(ns([first.message])).toEqual([1]);
      expect(await b.position(key)).toEqual({ offset: 1, epoch: empty.epoch });
    });

    it("history - concurrent appends from two nodes get offsets 1..n, no gap, no repeat, per node in call order", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "busy");
      const fromA = Array.from({ length: 60 }, (_, i) => a.append(key, msg(i + 1)));
      const fromB = Array.from({ length: 60 }, (_, i) => b.append(key, msg(101 + i)));
      const [resA, resB] = await Promise.all([Promise.all(fromA), Promise.all(fromB)]);
      const all = [...resA, ...resB];
      expect(all.map((r) => r.offset).sort((x, y) => x - y)).toEqual(range(1, 120));
      for (const res of [resA, resB]) {
        const seq = res.map((r) => r.offset);
        expect(seq).toEqual([...seq].sort((x, y) => x - y));
        expect(new Set(res.map((r) => r.epoch)).size).toBe(1);
      }
      const page = await a.read(key, { limit: 1000 });
      expect(offsets(page.messages)).toEqual(range(1, 120));
      const byOffset = new Map(all.map((r) => [r.offset, ns([r.message])[0]]));
      expect(ns(page.messages)).toEqual(range(1, 120).map((o) => byOffset.get(o)));
      expect(page.position).toEqual({ offset: 120, epoch: resA[0]!.epoch });
    });

    it("history - an idempotent append returns the original offset and stores one message", async () => {
      const { nodes: [a, b] } = await open();
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "orders");
      const first = await a.append(key, msg(1), { idempotencyKey: "order-42" });
      await a.append(key, msg(2));
      const again = await b.append(key, msg(3), { idempotencyKey: "order-42" });
      expect(again.duplicate).toBe(true);
      expect(again.offset).toBe(first.offset);
      expect(again.epoch).toBe(first.epoch);
      expect(ns([again.message])).toEqual([1]);
      expect((await a.position(key)).offset).toBe(2);
      expect(ns((await a.read(key, {})).messages)).toEqual([1, 2]);
      const elsewhere = await a.append(roomKey(tenant, "other"), msg(9), { idempotencyKey: "order-42" });
      expect(elsewhere).toMatchObject({ offset: 1, duplicate: false });
    });

    it("history - recover returns exactly the messages after the position, in order", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 10);
      const { epoch } = await a.position(key);
      const after3 = await b.recover(key, { offset: 3, epoch }, 100);
      expect(after3.recovered).toBe(true);
      if (!after3.recovered) return;
      expect(offsets(after3.messages)).toEqual(range(4, 10));
      expect(ns(after3.messages)).toEqual(range(4, 10));
      expect(after3.messages.every((m) => m.epoch === epoch)).toBe(true);
      expect(after3.position).toEqual({ offset: 10, epoch });
      const all = await b.recover(key, { offset: 0, epoch }, 100);
      expect(all.recovered && ns(all.messages)).toEqual(range(1, 10));
      const none = await b.recover(key, { offset: 10, epoch }, 100);
      expect(none).toEqual({ recovered: true, messages: [], position: { offset: 10, epoch } });
    });

    it("history - recover refuses a foreign epoch (epoch_mismatch) and a position ahead (position_ahead)", async () => {
      const { nodes: [a] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 3);
      const position = await a.position(key);
      const foreign = await a.recover(key, { offset: 2, epoch: `${position.epoch}-old` }, 100);
      expect(foreign).toEqual({ recovered: false, reason: "epoch_mismatch", position });
      const ahead = await a.recover(key, { offset: 4, epoch: position.epoch }, 100);
      expect(ahead).toEqual({ recovered: false, reason: "position_ahead", position });
    });

    it("history - recover refuses more than maxMessages (too_many_missed), and accepts exactly maxMessages", async () => {
      const { nodes: [a] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 10);
      const position = await a.position(key);
      const tooMany = await a.recover(key, { offset: 5, epoch: position.epoch }, 4);
      expect(tooMany).toEqual({ recovered: false, reason: "too_many_missed", position });
      const exact = await a.recover(key, { offset: 5, epoch: position.epoch }, 5);
      expect(exact.recovered && ns(exact.messages)).toEqual(range(6, 10));
    });

    it("history - count retention keeps the newest maxMessages; recovery over a trimmed gap is retention_exceeded", async () => {
      const { nodes: [a] } = await open({ maxMessages: 5 });
      const key = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 10);
      const position = await a.position(key);
      expect(position.offset).toBe(10);
      expect(offsets((await a.read(key, { limit: 100 })).messages)).toEqual(range(6, 10));
      const trimmed = await a.recover(key, { offset: 4, epoch: position.epoch }, 100);
      expect(trimmed).toEqual({ recovered: false, reason: "retention_exceeded", position });
      const edge = await a.recover(key, { offset: 5, epoch: position.epoch }, 100);
      expect(edge.recovered && offsets(edge.messages)).toEqual(range(6, 10));
      expect((await a.append(key, msg(11))).offset).toBe(11);
    });

    it("history - age retention drops old messages and keeps the offsets counting (manual clock or 300 ms window)", async () => {
      const window = AGE_WINDOW[ctx.time];
      const { nodes: [a] } = await open({ maxAgeMs: window });
      const key = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 3);
      const { epoch } = await a.position(key);
      await ctx.elapse(window * 1.5);
      const fresh = await a.append(key, msg(4));
      expect(fresh).toMatchObject({ offset: 4, epoch });
      const position = { offset: 4, epoch };
      expect(await a.recover(key, { offset: 0, epoch }, 100)).toEqual({
        recovered: false,
        reason: "retention_exceeded",
        position,
      });
      const recent = await a.recover(key, { offset: 3, epoch }, 100);
      expect(recent.recovered && ns(recent.messages)).toEqual([4]);
      expect(ns((await a.read(key, {})).messages)).toEqual([4]);
    });

    it("history - byte retention keeps the newest messages whose payloads fit maxBytes; the newest is always kept", async () => {
      const { nodes: [a, b] } = await open({ maxBytes: 100 });
      const key = roomKey(uniqueTenant(), "lobby");
      for (let n = 1; n <= 4; n++) await a.append(key, sized(n, 30));
      const { epoch } = await a.position(key);
      expect(ns((await b.read(key, {})).messages)).toEqual([2, 3, 4]);
      expect((await a.append(key, sized(5, 60))).offset).toBe(5);
      const position = { offset: 5, epoch };
      expect(ns((await b.read(key, {})).messages)).toEqual([4, 5]);
      expect(await b.recover(key, { offset: 2, epoch }, 100)).toEqual({ recovered: false, reason: "retention_exceeded", position });
      const kept = await b.recover(key, { offset: 3, epoch }, 100);
      expect(kept.recovered && ns(kept.messages)).toEqual([4, 5]);

      expect((await b.append(key, sized(6, 150))).offset).toBe(6);
      expect(ns((await a.read(key, {})).messages)).toEqual([6]);
      const big = await a.recover(key, { offset: 5, epoch }, 100);
      expect(big.recovered && ns(big.messages)).toEqual([6]);
      expect((await a.recover(key, { offset: 4, epoch }, 100)).recovered).toBe(false);
      expect((await a.append(key, sized(7, 20))).offset).toBe(7);
      expect(ns((await b.read(key, {})).messages)).toEqual([7]);
      expect(await b.recover(key, { offset: 5, epoch }, 100)).toEqual({
        recovered: false,
        reason: "retention_exceeded",
        position: { offset: 7, epoch },
      });
      expect((await a.append(key, sized(8, 20))).offset).toBe(8);
      expect(ns((await b.read(key, { reverse: true })).messages)).toEqual([8, 7]);
    });

    it("history - read pages forwards and backwards by offset, message time and twist id", async () => {
      const { nodes: [a] } = await open();
      const key = roomKey(uniqueTenant(), "ticker");
      for (let n = 1; n <= 10; n++) {
        await a.append(key, msg(n, { [HEADER_TIMESTAMP]: String(1_000 * n), [HEADER_TWIST_ID]: n % 2 ? "odd" : "even" }));
      }
      const { epoch } = await a.position(key);
      const forward = await a.read(key, { fromOffset: 3, limit: 4 });
      expect(offsets(forward.messages)).toEqual([3, 4, 5, 6]);
      expect(forward.position).toEqual({ offset: 10, epoch });
      expect(offsets((await a.read(key, { fromOffset: 3, toOffset: 5 })).messages)).toEqual([3, 4, 5]);
      expect(offsets((await a.read(key, { toOffset: 8, limit: 3, reverse: true })).messages)).toEqual([8, 7, 6]);
      expect(offsets((await a.read(key, { limit: 2, reverse: true })).messages)).toEqual([10, 9]);
      expect(offsets((await a.read(key, { fromTs: 3_000, toTs: 5_000 })).messages)).toEqual([3, 4, 5]);
      expect(offsets((await a.read(key, { twistId: "odd" })).messages)).toEqual([1, 3, 5, 7, 9]);
      expect(offsets((await a.read(key, { twistId: "even", reverse: true, limit: 2 })).messages)).toEqual([10, 8]);
      const all = await a.read(key, {});
      expect(all.messages.every((m) => m.epoch === epoch && m.headers?.[HEADER_TWIST_ID] !== undefined)).toBe(true);
    });

    it("history - rooms and tenants are independent: same room name in two tenants", async () => {
      const { nodes: [a, b] } = await open();
      const k1 = roomKey(uniqueTenant(), "lobby");
      const k2 = roomKey(uniqueTenant(), "lobby");
      await fill(a, k1, 3);
      for (let n = 1; n <= 2; n++) await b.append(k2, msg(100 + n));
      expect((await a.position(k1)).offset).toBe(3);
      expect((await a.position(k2)).offset).toBe(2);
      expect(ns((await b.read(k1, {})).messages)).toEqual([1, 2, 3]);
      expect(ns((await a.read(k2, {})).messages)).toEqual([101, 102]);
      const p2 = await a.position(k2);
      const r2 = await a.recover(k2, { offset: 0, epoch: p2.epoch }, 100);
      expect(r2.recovered && ns(r2.messages)).toEqual([101, 102]);
    });

    it("history - stats (when the store has it) counts the rooms and messages appended, as every node sees them", async () => {
      const { nodes: [a, b] } = await open();
      if (a.stats === undefined) {
        expect(b.stats).toBeUndefined();
        return;
      }
      const before = await a.stats();
      const tenant = uniqueTenant();
      await fill(a, roomKey(tenant, "one"), 3);
      await fill(b, roomKey(tenant, "two"), 2);
      for (const node of [a, b]) expect(await node.stats!()).toEqual({ rooms: before.rooms + 2, messages: before.messages + 5 });
    });

    it("history - deleteTenant removes the tenant's rooms on every node and touches no other tenant", async () => {
      const { nodes: [a, b] } = await open();
      const tenant = uniqueTenant();
      const lobby = roomKey(tenant, "lobby");
      const game = roomKey(tenant, "game");
      // The escaped name of this tenant is a prefix of the other one's.
      const longer = roomKey(`${tenant}2`, "lobby");
      const stranger = roomKey(uniqueTenant(), "lobby");
      await fill(a, lobby, 5);
      await b.append(game, msg(1), { idempotencyKey: "once" });
      await fill(b, longer, 3);
      await fill(a, stranger, 2);
      await b.position(roomKey(tenant, "empty"));
      const before = { longer: await a.position(longer), stranger: await b.position(stranger) };

      expect(await a.deleteTenant(tenant)).toBe(2);
      for (const node of [a, b]) {
        expect((await node.read(lobby, {})).messages).toEqual([]);
        expect((await node.read(game, {})).messages).toEqual([]);
        expect((await node.position(lobby)).offset).toBe(0);
        expect(await node.position(longer)).toEqual(before.longer);
        expect(ns((await node.read(longer, {})).messages)).toEqual([1, 2, 3]);
        expect(await node.position(stranger)).toEqual(before.stranger);
        expect(ns((await node.read(stranger, {})).messages)).toEqual([1, 2]);
      }
      const again = await a.append(game, msg(2), { idempotencyKey: "once" });
      expect(again).toMatchObject({ offset: 1, duplicate: false });
      expect(ns([again.message])).toEqual([2]);
      expect(await b.deleteTenant(tenant)).toBe(1);
      expect(await b.deleteTenant(uniqueTenant())).toBe(0);
      expect(ns((await a.read(longer, {})).messages)).toEqual([1, 2, 3]);
      expect((await a.deleteTenant(5 as unknown as string).catch((e: unknown) => e)) as object).toMatchObject({
        code: ErrorCode.VALIDATION_ERROR,
      });
    });

    it("history - after deleteTenant a room starts at offset 1 in a new epoch, whatever either node remembered", async () => {
      const { nodes: [a, b] } = await open();
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      const side = roomKey(tenant, "side");
      await fill(a, key, 3);
      // Both nodes have read and appended to the rooms, so each may remember their epochs and heads.
      await b.append(key, msg(4));
      await a.append(key, msg(5));
      await fill(b, side, 2);
      const oldSide = await a.position(side);
      const old = await b.position(key);
      expect(old.offset).toBe(5);
      expect(await a.position(key)).toEqual(old);

      expect(await a.deleteTenant(tenant)).toBe(2);
      // Appends before anyone read the room again: the node that deleted first, then the other one.
      const sideFirst = await a.append(side, msg(30));
      expect(sideFirst.offset).toBe(1);
      expect(sideFirst.epoch).not.toBe(oldSide.epoch);
      expect(await b.append(side, msg(31))).toMatchObject({ offset: 2, epoch: sideFirst.epoch });
      expect(ns((await b.read(side, {})).messages)).toEqual([30, 31]);

      const empty = await b.position(key);
      expect(empty.offset).toBe(0);
      expect(empty.epoch).not.toBe(old.epoch);
      expect(await a.position(key)).toEqual(empty);
      expect(await b.recover(key, old, 100)).toEqual({ recovered: false, reason: "epoch_mismatch", position: empty });

      const first = await b.append(key, msg(10));
      expect(first).toMatchObject({ offset: 1, epoch: empty.epoch, duplicate: false });
      expect(first.message.epoch).toBe(empty.epoch);
      const second = await a.append(key, msg(11));
      expect(second).toMatchObject({ offset: 2, epoch: empty.epoch });
      expect((await b.append(key, msg(12))).offset).toBe(3);
      const position = { offset: 3, epoch: empty.epoch };
      for (const node of [a, b]) {
        expect(await node.position(key)).toEqual(position);
        const page = await node.read(key, {});
        expect(ns(page.messages)).toEqual([10, 11, 12]);
        expect(page.messages.every((m) => m.epoch === empty.epoch)).toBe(true);
        for (const since of [old, { offset: 1, epoch: old.epoch }]) {
          expect(await node.recover(key, since, 100)).toEqual({ recovered: false, reason: "epoch_mismatch", position });
        }
        const fresh = await node.recover(key, { offset: 1, epoch: empty.epoch }, 100);
        expect(fresh.recovered && ns(fresh.messages)).toEqual([11, 12]);
      }

      // A second delete, this time from the other node, again yields a new epoch.
      expect(await b.deleteTenant(tenant)).toBe(2);
      const third = await a.append(key, msg(20));
      expect(third.offset).toBe(1);
      expect([old.epoch, empty.epoch]).not.toContain(third.epoch);
      expect(await b.position(key)).toEqual({ offset: 1, epoch: third.epoch });
    });

    it("history - deleteRoom removes one room's messages and idempotency keys on every node and touches no other room", async () => {
      const { nodes: [a, b] } = await open();
      const tenant = uniqueTenant();
      const key = roomKey(tenant, "lobby");
      // A room whose key starts with the deleted one's, a sibling room and the same room name in another tenant.
      const longer = roomKey(tenant, "lobby2");
      const sibling = roomKey(tenant, "game");
      const stranger = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 4);
      await b.append(key, msg(5), { idempotencyKey: "once" });
      await fill(b, longer, 3);
      await fill(a, sibling, 2);
      await fill(b, stranger, 2);
      const before = { longer: await a.position(longer), sibling: await b.position(sibling), stranger: await a.position(stranger) };

      expect(await b.deleteRoom(key)).toBe(true);
      for (const node of [a, b]) {
        expect((await node.read(key, {})).messages).toEqual([]);
        expect((await node.position(key)).offset).toBe(0);
        expect(await node.position(longer)).toEqual(before.longer);
        expect(ns((await node.read(longer, {})).messages)).toEqual([1, 2, 3]);
        expect(await node.position(sibling)).toEqual(before.sibling);
        expect(ns((await node.read(sibling, {})).messages)).toEqual([1, 2]);
        expect(await node.position(stranger)).toEqual(before.stranger);
      }
      const again = await a.append(key, msg(6), { idempotencyKey: "once" });
      expect(again).toMatchObject({ offset: 1, duplicate: false });
      expect(ns([again.message])).toEqual([6]);
      expect(await a.deleteRoom(key)).toBe(true);
      expect(await b.deleteRoom(key)).toBe(false);
      expect(await a.deleteRoom(roomKey(tenant, "never-used"))).toBe(false);
      for (const bad of [5, "", undefined]) {
        expect((await a.deleteRoom(bad as unknown as ReturnType<typeof roomKey>).catch((e: unknown) => e)) as object).toMatchObject({
          code: ErrorCode.VALIDATION_ERROR,
        });
      }
    });

    it("history - after deleteRoom the room starts at offset 1 in a new epoch and old positions are epoch_mismatch", async () => {
      const { nodes: [a, b] } = await open();
      const key = roomKey(uniqueTenant(), "lobby");
      await fill(a, key, 3);
      await b.append(key, msg(4));
      const old = await b.position(key);
      expect(await a.position(key)).toEqual(old);

      expect(await a.deleteRoom(key)).toBe(true);
      // The other node appends first, before anyone read the room again.
      const first = await b.append(key, msg(10));
      expect(first.offset).toBe(1);
      expect(first.epoch).not.toBe(old.epoch);
      expect(await a.append(key, msg(11))).toMatchObject({ offset: 2, epoch: first.epoch });
      const position = { offset: 2, epoch: first.epoch };
      for (const node of [a, b]) {
        expect(await node.position(key)).toEqual(position);
        expect(ns((await node.read(key, {})).messages)).toEqual([10, 11]);
        for (const since of [old, { offset: 1, epoch: old.epoch }, { offset: 0, epoch: old.epoch }]) {
          expect(await node.recover(key, since, 100)).toEqual({ recovered: false, reason: "epoch_mismatch", position });
        }
        const fresh = await node.recover(key, { offset: 1, epoch: first.epoch }, 100);
        expect(fresh.recovered && ns(fresh.messages)).toEqual([11]);
      }

      // Deleted again from the other node, with nothing read in between: yet another epoch.
      expect(await b.deleteRoom(key)).toBe(true);
      const empty = await a.position(key);
      expect(empty.offset).toBe(0);
      expect([old.epoch, first.epoch]).not.toContain(empty.epoch);
      const third = await b.append(key, msg(20));
      expect(third).toMatchObject({ offset: 1, epoch: empty.epoch });
    });
  });
}
