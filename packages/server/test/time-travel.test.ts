import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  BackendUnavailableError,
  ErrorCode,
  HEADER_TIMESTAMP,
  HEADER_TWIST_ID,
  MemoryHistoryStore,
  jsonBytes,
  parseJsonBytes,
  type Frame,
  type Position,
  type RecoveryResult,
  type RoomKey,
} from "@arqon/core";
import { DEFAULT_TWIST_ID } from "../src/index.js";
import { openEmbeddedStorage, type EmbeddedStorage, type EmbeddedStorageOptions } from "../src/storage/index.js";
import { payloadOf, startGateway, type TestClient, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
let storage: EmbeddedStorage | undefined;
const dirs: string[] = [];

afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await storage?.close();
  storage = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function embedded(options: Omit<EmbeddedStorageOptions, "path"> = {}): Promise<EmbeddedStorage> {
  const dir = mkdtempSync(path.join(tmpdir(), "arqon-tt-"));
  dirs.push(dir);
  storage = await openEmbeddedStorage({ path: dir, durability: "commit", ...options });
  return storage;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface CommandBody {
  room: string;
  epoch: string;
  offset: number;
  messages: Array<{ offset: number; epoch: string; payload?: unknown; headers?: Record<string, string> }>;
  next_offset?: number;
  complete?: boolean;
}

async function command(client: TestClient, name: string, args?: unknown): Promise<{ frame: Frame; body: CommandBody }> {
  const frame = await client.request({ type: "command", command: name, ...(args === undefined ? {} : { args: jsonBytes(args) }) });
  return { frame, body: (frame.payload ? parseJsonBytes(frame.payload) : undefined) as CommandBody };
}

/** Publishes `values` one by one, 3 ms apart so their x-timestamps differ; returns the acks. */
async function publishSpaced(client: TestClient, room: string, values: unknown[], headers?: (i: number) => Record<string, string>): Promise<Frame[]> {
  const acks: Frame[] = [];
  for (let i = 0; i < values.length; i++) {
    const ack = await client.publish(room, values[i], headers ? { headers: headers(i) } : {});
    expect(ack.type).toBe("ack");
    acks.push(ack);
    await sleep(3);
  }
  return acks;
}

describe("time travel - positions and headers", () => {
  it("positions - delivered messages carry offset, epoch, x-timestamp and x-twist-id (\"main\" unless the publisher set one)", async () => {
    gw = await startGateway();
    expect(gw.server.status().storage).toEqual({ backend: "memory", durable: false });
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    const sub = await bob.subscribe("lobby");
    await alice.publish("lobby", 1);
    await alice.publish("lobby", 2, { headers: { [HEADER_TWIST_ID]: "draft:7" } });
    await gw.server.publish("acme", "lobby", 3);
    const msgs = await bob.collect(3, (f) => f.type === "message");
    expect(msgs.map((m) => [m.offset, m.epoch, m.headers?.[HEADER_TWIST_ID]])).toEqual([
      [1, sub.epoch, DEFAULT_TWIST_ID],
      [2, sub.epoch, "draft:7"],
      [3, sub.epoch, DEFAULT_TWIST_ID],
    ]);
    for (const m of msgs) expect(m.headers?.[HEADER_TIMESTAMP]).toBe(String(m.timestamp));
    expect(DEFAULT_TWIST_ID).toBe("main");

    const bad = await alice.publish("lobby", 4, { headers: { [HEADER_TWIST_ID]: "no spaces" } });
    expect(bad.error).toMatchObject({ code: ErrorCode.HEADER_INVALID });
    await expect(gw.server.publish("acme", "lobby", 5, { headers: { [HEADER_TWIST_ID]: "x".repeat(65) } })).rejects.toMatchObject({
      code: ErrorCode.HEADER_INVALID,
    });
    const page = await bob.request({ type: "history", room: "lobby", history: { twistId: "main" } });
    expect(page.messages?.map((m) => m.offset)).toEqual([1, 3]);
  });
});

describe("time travel - history frame and commands", () => {
  it("history - pages forwards and backwards by offset with a limit, a time window and a twist id (LMDB)", async () => {
    const s = await embedded();
    gw = await startGateway({ history: s.history });
    expect(gw.server.status().storage).toEqual({ backend: "lmdb", durable: true });
    const alice = await gw.client();
    const acks = await publishSpaced(alice, "feed", [1, 2, 3, 4, 5, 6, 7, 8], (i) => ({ [HEADER_TWIST_ID]: i % 2 ? "odd" : "even" }));
    const all = await alice.request({ type: "history", room: "feed", history: {} });
    expect(all).toMatchObject({ type: "history_page", offset: 8, epoch: acks[0]!.epoch });
    const times = all.messages!.map((m) => Number(m.headers![HEADER_TIMESTAMP]));

    const first = await alice.request({ type: "history", room: "feed", history: { limit: 3 } });
    expect(first.messages!.map((m) => m.offset)).toEqual([1, 2, 3]);
    const second = await alice.request({ type: "history", room: "feed", history: { fromOffset: 4, limit: 3 } });
    expect(second.messages!.map((m) => m.offset)).toEqual([4, 5, 6]);
    const back = await alice.request({ type: "history", room: "feed", history: { reverse: true, limit: 3 } });
    expect(back.messages!.map((m) => m.offset)).toEqual([8, 7, 6]);
    const backMore = await alice.request({ type: "history", room: "feed", history: { reverse: true, toOffset: 5, limit: 3 } });
    expect(backMore.messages!.map((m) => m.offset)).toEqual([5, 4, 3]);
    const window = await alice.request({ type: "history", room: "feed", history: { fromTs: times[2], toTs: times[5] } });
    expect(window.messages!.map((m) => m.offset)).toEqual([3, 4, 5, 6]);
    const odd = await alice.request({ type: "history", room: "feed", history: { twistId: "odd", reverse: true, limit: 2 } });
    expect(odd.messages!.map((m) => m.offset)).toEqual([8, 6]);
    expect(odd.messages!.map((m) => payloadOf(m))).toEqual([8, 6]);

    const denied = await (await gw.client({ caps: { sub: ["other"] } })).request({ type: "history", room: "feed", history: {} });
    expect(denied.error?.code).toBe(ErrorCode.FORBIDDEN);
  });

  it("op.history.get - pages with next_offset, filters by twist id, checks the sub capability and the arguments", async () => {
    gw = await startGateway({ limits: { maxHistoryPage: 4 } });
    const alice = await gw.client();
    await publishSpaced(alice, "feed", [1, 2, 3, 4, 5, 6], (i): Record<string, string> => (i === 4 ? { [HEADER_TWIST_ID]: "side" } : {}));
    const page1 = await command(alice, "op.history.get", { room: "feed", limit: 10 });
    expect(page1.frame).toMatchObject({ type: "response", status: "ok", command: "op.history.get" });
    expect(page1.body.offset).toBe(6);
    expect(page1.body.messages.map((m) => m.payload)).toEqual([1, 2, 3, 4]);
    expect(page1.body.messages[0]).toMatchObject({ offset: 1, epoch: page1.body.epoch, headers: { [HEADER_TWIST_ID]: "main" } });
    expect(page1.body.next_offset).toBe(5);
    const page2 = await command(alice, "op.history.get", { room: "feed", from_offset: page1.body.next_offset, limit: 4 });
    expect(page2.body.messages.map((m) => m.offset)).toEqual([5, 6]);
    expect(page2.body.next_offset).toBeUndefined();
    const back = await command(alice, "op.history.get", { room: "feed", reverse: true, limit: 2 });
    expect(back.body.messages.map((m) => m.offset)).toEqual([6, 5]);
    expect(back.body.next_offset).toBe(4);
    const side = await command(alice, "op.history.get", { room: "feed", twist_id: "side" });
    expect(side.body.messages.map((m) => m.offset)).toEqual([5]);
    // The command frame's room is used when args carry none.
    const viaFrame = await alice.request({ type: "command", command: "op.history.get", room: "feed", args: jsonBytes({ limit: 1 }) });
    expect((parseJsonBytes(viaFrame.payload!) as { messages: unknown[] }).messages).toHaveLength(1);

    const reader = await gw.client({ sub: "eve", caps: { sub: ["public:*"], pub: ["feed"] } });
    const denied = await command(reader, "op.history.get", { room: "feed" });
    expect(denied.frame).toMatchObject({ status: "error", error: { code: ErrorCode.AUTHORIZATION_ERROR } });
    expect(denied.frame.error!.message).toContain("feed");
    for (const args of [{}, { room: "feed", limit: -1 }, { room: "feed", from_ts: "yesterday" }, { room: "bad room" }, [1], { room: "feed", twist_id: "a b" }]) {
      const r = await command(alice, "op.history.get", args);
      expect(r.frame).toMatchObject({ status: "error", error: { code: ErrorCode.VALIDATION_ERROR } });
    }
  });

  it("op.history.replay - a time window oldest first with limit and complete; strict_sequence answers ARQ_HISTORY_GAP once retention trimmed the window", async () => {
    gw = await startGateway({ history: new MemoryHistoryStore({ retention: { maxMessages: 5, maxAgeMs: 0 } }) });
    const alice = await gw.client();
    await publishSpaced(alice, "feed", [1, 2, 3]);
    const kept = await alice.request({ type: "history", room: "feed", history: {} });
    const t = kept.messages!.map((m) => Number(m.headers![HEADER_TIMESTAMP]));
    const whole = await command(alice, "op.history.replay", { room: "feed", from_ts: t[0], to_ts: t[2], strict_sequence: true });
    expect(whole.frame.status).toBe("ok");
    expect(whole.body).toMatchObject({ room: "feed", offset: 3, complete: true });
    expect(whole.body.messages.map((m) => m.payload)).toEqual([1, 2, 3]);
    const limited = await command(alice, "op.history.replay", { room: "feed", from_ts: t[0], limit: 2 });
    expect(limited.body.messages.map((m) => m.offset)).toEqual([1, 2]);
    expect(limited.body.complete).toBe(false);
    const inner = await command(alice, "op.history.replay", { room: "feed", from_ts: t[1], to_ts: t[1] });
    expect(inner.body.messages.map((m) => m.offset)).toEqual([2]);

    await publishSpaced(alice, "feed", [4, 5, 6, 7, 8]);
    // Offsets 1..3 are gone; a window reaching back to them cannot be vouched for.
    const gap = await command(alice, "op.history.replay", { room: "feed", from_ts: t[0], strict_sequence: true });
    expect(gap.frame).toMatchObject({ status: "error", error: { code: ErrorCode.HISTORY_GAP } });
    expect(gap.frame.error!.message).toContain("1..3");
    const lenient = await command(alice, "op.history.replay", { room: "feed", from_ts: t[0] });
    expect(lenient.body.messages.map((m) => m.offset)).toEqual([4, 5, 6, 7, 8]);
    // A window starting after the oldest kept message is whole.
    const now = await alice.request({ type: "history", room: "feed", history: {} });
    const t5 = Number(now.messages![1]!.headers![HEADER_TIMESTAMP]);
    const after = await command(alice, "op.history.replay", { room: "feed", from_ts: t5, strict_sequence: true });
    expect(after.frame.status).toBe("ok");
    expect(after.body.messages.map((m) => m.offset)).toEqual([5, 6, 7, 8]);

    const denied = await command(await gw.client({ caps: { sub: [] } }), "op.history.replay", { room: "feed" });
    expect(denied.frame.error?.code).toBe(ErrorCode.AUTHORIZATION_ERROR);
    const backwards = await command(alice, "op.history.replay", { room: "feed", from_ts: 10, to_ts: 5 });
    expect(backwards.frame.error?.code).toBe(ErrorCode.VALIDATION_ERROR);
  });
});

describe("time travel - recovery outcomes, idempotency, state at a point", () => {
  it("recovery - recovered false with too_many_missed, retention_exceeded, epoch_mismatch and position_ahead, each with the current position", async () => {
    gw = await startGateway({
      limits: { maxRecoveryMessages: 3 },
      history: new MemoryHistoryStore({ retention: { maxMessages: 5, maxAgeMs: 0 } }),
    });
    const alice = await gw.client();
    const acks = [];
    for (let i = 1; i <= 8; i++) acks.push(await alice.publish("r", i));
    const epoch = acks[0]!.epoch!;
    const bob = await gw.client({ sub: "bob" });
    const cases: Array<[number, string, string | undefined]> = [
      [5, epoch, undefined],
      [4, epoch, "too_many_missed"],
      [1, epoch, "retention_exceeded"],
      [3, "other-epoch", "epoch_mismatch"],
      [9, epoch, "position_ahead"],
    ];
    for (const [offset, e, reason] of cases) {
      const reply = await bob.subscribe("r", { since: { offset, epoch: e } });
      expect(reply).toMatchObject({ type: "subscribed", offset: 8, epoch, recovered: reason === undefined });
      expect(reply.reason).toBe(reason);
    }
    // Only the recovered case replayed messages: 6, 7, 8.
    await sleep(20);
    expect(bob.frames.filter((f) => f.type === "message").map((m) => m.offset)).toEqual([6, 7, 8]);
  });

  it("recovery - a history store that cannot answer gives recovered false, reason unavailable, and live delivery still works", async () => {
    class FlakyHistory extends MemoryHistoryStore {
      override async recover(_key: RoomKey, _since: Position, _max: number): Promise<RecoveryResult> {
        throw new BackendUnavailableError("history cluster unreachable");
      }
    }
    gw = await startGateway({ history: new FlakyHistory() });
    const alice = await gw.client();
    const bob = await gw.client({ sub: "bob" });
    const first = await alice.publish("r", 1);
    const reply = await bob.subscribe("r", { since: { offset: 0, epoch: first.epoch! } });
    expect(reply).toMatchObject({ type: "subscribed", recovered: false, reason: "unavailable" });
    await alice.publish("r", 2);
    expect(await bob.next("message", "r")).toMatchObject({ offset: 2 });
  });

  it("idempotency - the dedupe window is limits.dedupeWindowMs: a repeat after it is a new message", async () => {
    gw = await startGateway({ limits: { dedupeWindowMs: 50 } });
    const alice = await gw.client();
    const a1 = await alice.publish("w", 1, { idempotencyKey: "k" });
    const a2 = await alice.publish("w", 1, { idempotencyKey: "k" });
    await sleep(80);
    const a3 = await alice.publish("w", 1, { idempotencyKey: "k" });
    expect([a1.offset, a2.offset, a3.offset]).toEqual([1, 1, 2]);
  });

  it("idempotency - a publish repeated with the same key on a new connection is acked with the original offset and delivered once (LMDB)", async () => {
    const s = await embedded();
    gw = await startGateway({ history: s.history });
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("orders");
    const first = await gw.client({ sub: "alice" });
    const a1 = await first.publish("orders", { n: 1 }, { idempotencyKey: "order-1" });
    await first.close();
    const second = await gw.client({ sub: "alice" });
    const a2 = await second.publish("orders", { n: 1 }, { idempotencyKey: "order-1" });
    const a3 = await second.publish("orders", { n: 2 }, { idempotencyKey: "order-2" });
    expect(a1).toMatchObject({ type: "ack", offset: 1 });
    expect(a1.duplicate).toBeUndefined();
    // The repeat says so (as POST /api/publish does): same id and offset, duplicate: true.
    expect(a2).toMatchObject({ type: "ack", offset: 1, epoch: a1.epoch, id: a1.id, duplicate: true });
    expect(a3).toMatchObject({ type: "ack", offset: 2 });
    expect(a3.duplicate).toBeUndefined();
    await bob.waitFor((f) => f.type === "message" && f.offset === 2);
    await sleep(20);
    expect(bob.frames.filter((f) => f.type === "message").map((m) => payloadOf(m))).toEqual([{ n: 1 }, { n: 2 }]);
    const page = await bob.request({ type: "history", room: "orders", history: {} });
    expect(page.messages!.map((m) => m.offset)).toEqual([1, 2]);
  });

  it("state - state_get with offset (a state-log revision) or timestamp returns the map as of then (LMDB)", async () => {
    const s = await embedded();
    gw = await startGateway({ state: s.state });
    const alice = await gw.client();
    const set = (key: string, value: unknown) => alice.request({ type: "state_set", room: "game", state: [{ key, value: jsonBytes(value) }] });
    await set("mode", "lobby");
    await sleep(5);
    const between = Date.now();
    await sleep(5);
    await set("mode", "quiz");
    await set("round", 1);
    const view = (f: Frame) => Object.fromEntries((f.state ?? []).map((e) => [e.key, parseJsonBytes(e.value!)]));
    expect(view(await alice.request({ type: "state_get", room: "game" }))).toEqual({ mode: "quiz", round: 1 });
    expect(view(await alice.request({ type: "state_get", room: "game", offset: 1 }))).toEqual({ mode: "lobby" });
    expect(view(await alice.request({ type: "state_get", room: "game", offset: 2 }))).toEqual({ mode: "quiz" });
    expect(view(await alice.request({ type: "state_get", room: "game", timestamp: between }))).toEqual({ mode: "lobby" });
  });
});
