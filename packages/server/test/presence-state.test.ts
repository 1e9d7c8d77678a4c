import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, MemoryPresenceStore, jsonBytes, parseJsonBytes, roomKey, type Frame, type Member } from "@arqon/core";
import { payloadOf, startGateway, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

const users = (members: Member[] | undefined) => (members ?? []).map((m) => m.userId).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("gateway presence", () => {
  it("presence - subscribe lists members; joins and leaves reach the room", async () => {
    gw = await startGateway({ presenceOptions: { coalesceMs: 0 } });
    const alice = await gw.client({ sub: "alice" });
    await alice.subscribe("lobby", { info: { info: jsonBytes({ name: "Alice" }) } });
    const bob = await gw.client({ sub: "bob" });
    const sub = await bob.subscribe("lobby");
    expect(users(sub.members)).toEqual(["alice", "bob"]);
    const aliceEntry = sub.members!.find((m) => m.userId === "alice")!;
    expect(parseJsonBytes(aliceEntry.info!)).toEqual({ name: "Alice" });
    expect(aliceEntry.clientId).toBe(alice.clientId);
    const join = await alice.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "bob");
    expect(join.room).toBe("lobby");
    await bob.close();
    const leave = await alice.next("presence_leave");
    expect(leave.members?.[0]).toMatchObject({ clientId: bob.clientId });
    expect(leave.reason).toBe("disconnect");
    const list = await alice.request({ type: "presence_list", room: "lobby" });
    expect(list.type).toBe("presence");
    expect(users(list.members)).toEqual(["alice"]);
  });

  it("presence - presence_set updates the metadata; oversize info is ARQ_PRESENCE_INFO_TOO_LARGE", async () => {
    gw = await startGateway({ presenceOptions: { coalesceMs: 0 }, limits: { maxPresenceInfoBytes: 64 } });
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    await alice.subscribe("lobby");
    await bob.subscribe("lobby");
    const notSubscribed = await alice.request({ type: "presence_set", room: "elsewhere", info: { info: jsonBytes({}) } });
    expect(notSubscribed.error?.code).toBe(ErrorCode.NOT_SUBSCRIBED);
    const ack = await alice.request({ type: "presence_set", room: "lobby", info: { info: jsonBytes({ status: "away" }) } });
    expect(ack.type).toBe("ack");
    const update = await bob.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "alice" && f.members[0].info !== undefined);
    expect(parseJsonBytes(update.members![0]!.info!)).toEqual({ status: "away" });
    const big = await alice.request({ type: "presence_set", room: "lobby", info: { info: jsonBytes({ pad: "x".repeat(100) }) } });
    expect(big.error?.code).toBe(ErrorCode.PRESENCE_INFO_TOO_LARGE);
  });

  it("presence - churn within the window is coalesced into one presence_diff", async () => {
    gw = await startGateway({ presenceOptions: { coalesceMs: 300 } });
    const watcher = await gw.client({ sub: "watcher" });
    await watcher.subscribe("busy");
    await sleep(350);
    const first = await gw.client({ sub: "u0" });
    await first.subscribe("busy");
    const burst = [];
    for (let i = 1; i <= 8; i++) burst.push(await gw.client({ sub: `u${i}` }));
    await Promise.all(burst.map((c) => c.subscribe("busy")));
    await burst[0]!.close();
    const single = await watcher.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "u0");
    expect(single.members).toHaveLength(1);
    const diff = await watcher.next("presence_diff", "busy", { timeoutMs: 2000 });
    expect(users(diff.joined)).toEqual(["u2", "u3", "u4", "u5", "u6", "u7", "u8"]);
    expect(diff.left?.map((m) => m.clientId)).toEqual([burst[0]!.clientId]);
    const presenceFrames = watcher.frames.filter((f) => f.type.startsWith("presence_") && f.room === "busy");
    expect(presenceFrames.length).toBeLessThanOrEqual(3);
  });

  it("presence - per-user mode shows one entry per user with a connection count", async () => {
    gw = await startGateway({ presenceOptions: { perUser: true, coalesceMs: 0 } });
    const watcher = await gw.client({ sub: "watcher" });
    await watcher.subscribe("room");
    const tab1 = await gw.client({ sub: "alice" });
    const tab2 = await gw.client({ sub: "alice" });
    await tab1.subscribe("room");
    await watcher.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "alice" && f.members[0].connections === 1);
    const sub2 = await tab2.subscribe("room");
    const alice = sub2.members!.find((m) => m.userId === "alice")!;
    expect(alice.connections).toBe(2);
    expect(alice.clientId).toBeUndefined();
    await watcher.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "alice" && f.members[0].connections === 2);
    await tab1.close();
    await watcher.waitFor((f) => f.type === "presence_join" && f.members?.[0]?.userId === "alice" && f.members[0].connections === 1);
    expect(watcher.frames.some((f) => f.type === "presence_leave")).toBe(false);
    await tab2.close();
    const leave = await watcher.next("presence_leave");
    expect(leave.members).toEqual([{ userId: "alice" }]);
  });

  it("presence - a vanished client is dropped and its leave is broadcast within the ping timeout", async () => {
    gw = await startGateway({ presenceOptions: { coalesceMs: 0 }, limits: { pingIntervalMs: 100, pongTimeoutMs: 200 } });
    const alice = await gw.client({ sub: "alice" });
    const ghost = await gw.client({ sub: "ghost" });
    await alice.subscribe("lobby");
    await ghost.subscribe("lobby");
    // The ghost stops reading: its socket answers no ping (as if the machine vanished without a FIN).
    (ghost.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    const leave = await alice.waitFor((f) => f.type === "presence_leave" && f.members?.[0]?.clientId === ghost.clientId, { timeoutMs: 2000 });
    expect(leave.reason).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(100 + 200 + 400);
    const list = await alice.request({ type: "presence_list", room: "lobby" });
    expect(users(list.members)).toEqual(["alice"]);
  });

  it("presence - without the presence capability, lists are forbidden and no events arrive", async () => {
    gw = await startGateway({ presenceOptions: { coalesceMs: 0 } });
    const blind = await gw.client({ sub: "blind", caps: { sub: ["*"], pub: ["*"] } });
    const sub = await blind.subscribe("lobby");
    expect(sub.members).toBeUndefined();
    const other = await gw.client({ sub: "other" });
    await other.subscribe("lobby");
    await other.publish("lobby", "marker");
    await blind.next("message");
    expect(blind.frames.some((f) => f.type.startsWith("presence"))).toBe(false);
    expect((await blind.request({ type: "presence_list", room: "lobby" })).error?.code).toBe(ErrorCode.FORBIDDEN);
  });

  it("presence - rooms in disabledRooms keep no members, send no events, and answer ARQ_PRESENCE_DISABLED", async () => {
    const store = new MemoryPresenceStore();
    gw = await startGateway({ presence: store, presenceOptions: { coalesceMs: 0, disabledRooms: ["feed/*"] } });
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    const first = await alice.subscribe("feed/prices");
    expect(first.members).toBeUndefined();
    const second = await bob.subscribe("feed/prices");
    expect(second.members).toBeUndefined();
    // Presence stays on elsewhere: the same clients see each other in lobby.
    await alice.subscribe("lobby");
    await bob.subscribe("lobby");
    await alice.waitFor((f) => f.type === "presence_join" && f.room === "lobby" && f.members?.[0]?.userId === "bob");
    expect(await store.list(roomKey("acme", "feed/prices"))).toEqual([]);
    expect((await store.list(roomKey("acme", "lobby"))).length).toBe(2);
    const list = await alice.request({ type: "presence_list", room: "feed/prices" });
    expect(list.error?.code).toBe(ErrorCode.PRESENCE_DISABLED);
    const set = await alice.request({ type: "presence_set", room: "feed/prices", info: { info: jsonBytes({ s: 1 }) } });
    expect(set.error?.code).toBe(ErrorCode.PRESENCE_DISABLED);
    const withInfo = await bob.request({ type: "subscribe", room: "feed/other", info: { info: jsonBytes({ s: 1 }) } });
    expect(withInfo.error?.code).toBe(ErrorCode.PRESENCE_DISABLED);
    await bob.publish("feed/prices", "tick");
    expect(payloadOf(await alice.waitFor((f) => f.type === "message" && f.room === "feed/prices"))).toBe("tick");
    await bob.close();
    await alice.waitFor((f) => f.type === "presence_leave" && f.room === "lobby");
    expect(alice.frames.some((f) => f.type.startsWith("presence") && f.room === "feed/prices")).toBe(false);
  });
});

describe("gateway room state", () => {
  it("state - compare-and-set writes, versions, broadcast, and the map on subscribe", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice" });
    const bob = await gw.client({ sub: "bob" });
    await bob.subscribe("game");
    const created = await alice.request({ type: "state_set", room: "game", state: [{ key: "mode", value: jsonBytes("lobby"), ifVersion: 0 }] });
    expect(created.type).toBe("ack");
    expect(created.state?.[0]).toMatchObject({ key: "mode", version: 1, updatedBy: "alice" });
    const changed = await bob.next("state_changed", "game");
    expect(changed.state?.[0]).toMatchObject({ key: "mode", version: 1 });
    expect(parseJsonBytes(changed.state![0]!.value!)).toBe("lobby");
    const conflict = await alice.request({ type: "state_set", room: "game", state: [{ key: "mode", value: jsonBytes("play"), ifVersion: 0 }] });
    expect(conflict.error?.code).toBe(ErrorCode.STATE_CONFLICT);
    const next = await alice.request({ type: "state_set", room: "game", state: [{ key: "mode", value: jsonBytes("play"), ifVersion: 1 }] });
    expect(next.state?.[0]?.version).toBe(2);
    const carol = await gw.client({ sub: "carol" });
    const sub = await carol.subscribe("game");
    expect(sub.state).toHaveLength(1);
    expect(parseJsonBytes(sub.state![0]!.value!)).toBe("play");
    const get = await carol.request({ type: "state_get", room: "game" });
    expect(get.type).toBe("state");
    expect(get.state?.[0]?.version).toBe(2);
    const deleted = await alice.request({ type: "state_set", room: "game", state: [{ key: "mode", deleted: true }] });
    expect(deleted.state?.[0]).toMatchObject({ deleted: true, version: 3 });
    const bad = await alice.request({ type: "state_set", room: "game", state: [{ key: "bad key!", value: jsonBytes(1) }] });
    expect(bad.error?.code).toBe(ErrorCode.STATE_KEY_INVALID);
  });

  it("state - writing needs the publish capability", async () => {
    gw = await startGateway();
    const reader = await gw.client({ caps: { sub: ["*"], pub: [] } });
    const denied = await reader.request({ type: "state_set", room: "game", state: [{ key: "k", value: jsonBytes(1) }] });
    expect(denied.error?.code).toBe(ErrorCode.FORBIDDEN);
  });
});

describe("gateway tenants", () => {
  it("tenants - the same room name in two tenants shares no messages, presence or state", async () => {
    gw = await startGateway({ presenceOptions: { coalesceMs: 0 } });
    const a1 = await gw.client({ sub: "a1", tenant: "tenant-a" });
    const a2 = await gw.client({ sub: "a2", tenant: "tenant-a" });
    const b1 = await gw.client({ sub: "b1", tenant: "tenant-b" });
    const b2 = await gw.client({ sub: "b2", tenant: "tenant-b" });
    await a1.subscribe("lobby");
    await b1.subscribe("lobby");
    const subA = await a2.subscribe("lobby");
    const subB = await b2.subscribe("lobby");
    expect(users(subA.members)).toEqual(["a1", "a2"]);
    expect(users(subB.members)).toEqual(["b1", "b2"]);
    await a2.request({ type: "state_set", room: "lobby", state: [{ key: "mode", value: jsonBytes("a") }] });
    const ackA = await a2.publish("lobby", "from a");
    const ackB = await b2.publish("lobby", "from b");
    expect(ackA.offset).toBe(1);
    expect(ackB.offset).toBe(1);
    expect(payloadOf(await a1.next("message"))).toBe("from a");
    expect(payloadOf(await b1.next("message"))).toBe("from b");
    await a1.next("state_changed");
    const stateB = await b1.request({ type: "state_get", room: "lobby" });
    expect(stateB.state).toBeUndefined();
    const seen = (frames: Frame[]) => JSON.stringify(frames.map((f) => [f.type, f.members?.map((m) => m.userId), f.payload && payloadOf(f)]));
    expect(seen(b1.frames)).not.toMatch(/"a[12]"|from a/);
    expect(seen(a1.frames)).not.toMatch(/"b[12]"|from b/);
    expect(b1.frames.some((f) => f.type === "state_changed")).toBe(false);
  });
});
