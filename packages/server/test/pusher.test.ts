import { afterEach, describe, expect, it } from "vitest";
import type Pusher from "pusher-js";
import WebSocket from "ws";
import { ErrorCode } from "@arqon/core";
import { payloadOf, type TestGateway } from "../src/testing.js";
import { APPS, signedPost, authEndpoint, connected, once, pusherClient, pusherServer, record, sleep, startPusherGateway } from "./pusher-helpers.js";

const clients: Pusher[] = [];
const servers: Array<{ close(cb: () => void): void }> = [];
let gw: TestGateway | undefined;

function track(p: Pusher): Pusher {
  clients.push(p);
  return p;
}

afterEach(async () => {
  for (const p of clients.splice(0)) p.disconnect();
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
  await gw?.close();
  gw = undefined;
});

describe("Pusher protocol mode: public channels", () => {
  it("pusher - pusher-js connects on /app/{key}, subscribes to a public channel and shares the room with a native client both ways", async () => {
    gw = await startPusherGateway();
    const p = track(pusherClient(gw, APPS.acme));
    await connected(p);
    expect(p.connection.socket_id).toMatch(/^\d+\.\d+$/);
    const channel = p.subscribe("orders");
    await once(channel, "pusher:subscription_succeeded");

    const native = await gw.client({ sub: "bob", tenant: "acme" });
    await native.subscribe("orders");
    const got = once<{ id: number }>(channel, "created");
    await native.publish("orders", { id: 1 }, { headers: { event: "created" } });
    expect(await got).toEqual({ id: 1 });
    // Without an event header the Pusher event is "message".
    const plain = once<string>(channel, "message");
    await native.publish("orders", "just text");
    expect(await plain).toBe("just text");

    // The HTTP API publishes through the same path: the native client and the history get it too.
    const sdk = pusherServer(gw, APPS.acme);
    const viaApi = once<{ total: number }>(channel, "paid");
    const nativeGot = native.waitFor((f) => f.type === "message" && f.headers?.event === "paid");
    const answer = await sdk.trigger("orders", "paid", { total: 42 });
    expect(answer.status).toBe(200);
    expect(await viaApi).toEqual({ total: 42 });
    const frame = await nativeGot;
    expect(payloadOf(frame)).toEqual({ total: 42 });
    expect(frame.sender).toBe("pusher-api");
    const history = await native.request({ type: "history", room: "orders", requestId: "h1" });
    expect(history.messages?.map((m) => m.headers?.event)).toEqual(["created", undefined, "paid"]);
  });

  it("pusher - pusher:ping is answered with pusher:pong, malformed frames get pusher:error and the connection stays", async () => {
    gw = await startPusherGateway();
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/app/${APPS.acme.key}?protocol=7&client=js&version=8.6.0`);
    const frames: Array<{ event: string; data?: unknown; channel?: string }> = [];
    const waiters: Array<() => void> = [];
    ws.on("message", (d: Buffer) => {
      frames.push(JSON.parse(d.toString()) as { event: string });
      for (const w of waiters.splice(0)) w();
    });
    const next = async (event: string): Promise<{ event: string; data?: unknown; channel?: string }> => {
      for (let i = 0; i < 50; i++) {
        const at = frames.findIndex((f) => f.event === event);
        if (at >= 0) return frames.splice(at, 1)[0]!;
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      throw new Error(`no ${event}`);
    };
    const established = await next("pusher:connection_established");
    const data = JSON.parse(established.data as string) as { socket_id: string; activity_timeout: number };
    expect(data.activity_timeout).toBe(120);
    ws.send(JSON.stringify({ event: "pusher:ping", data: {} }));
    await next("pusher:pong");
    ws.send("not json");
    expect(((await next("pusher:error")).data as { code: unknown }).code).toBeNull();
    ws.send(JSON.stringify({ data: 1 }));
    await next("pusher:error");
    ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel: "bad,name" } }));
    expect(((await next("pusher:error")).data as { arqon_code: string }).arqon_code).toBe("ARQ_ROOM_INVALID");
    ws.send(JSON.stringify({ event: "pusher:subscribe", data: JSON.stringify({ channel: "still-works" }) }));
    expect((await next("pusher_internal:subscription_succeeded")).channel).toBe("still-works");
    ws.close();
  });

  it("pusher - unknown keys, paths and protocol versions are refused with the protocol's close codes", async () => {
    gw = await startPusherGateway();
    const closeOf = (path: string) =>
      new Promise<{ code: number; error: { code: number } }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${gw!.port}${path}`);
        let error: { code: number } = { code: 0 };
        ws.on("message", (d: Buffer) => (error = (JSON.parse(d.toString()) as { data: { code: number } }).data));
        ws.on("close", (code) => resolve({ code, error }));
        ws.on("error", reject);
      });
    expect(await closeOf("/app/nope?protocol=7")).toEqual({ code: 4001, error: expect.objectContaining({ code: 4001 }) });
    expect((await closeOf(`/app/${APPS.acme.key}`)).code).toBe(4008);
    expect((await closeOf(`/app/${APPS.acme.key}?protocol=x`)).code).toBe(4006);
    expect((await closeOf(`/app/${APPS.acme.key}?protocol=99`)).code).toBe(4007);
    expect((await closeOf(`/app/${APPS.acme.key}/extra?protocol=7`)).code).toBe(4005);
    // pusher-js itself sees the refusal and does not retry.
    const p = track(pusherClient(gw, { ...APPS.acme, key: "unknown-key" }));
    const failed = await once<{ type: string; error: { data: { code: number } } }>(p.connection, "error");
    expect(failed.error.data.code).toBe(4001);
    await sleep(300);
    expect(p.connection.state).toBe("disconnected");
  });

  it("pusher - tenant isolation: the same channel name in two tenants are two rooms; an app's HTTP API reaches its own tenant only", async () => {
    gw = await startPusherGateway();
    const a = track(pusherClient(gw, APPS.acme));
    const b = track(pusherClient(gw, APPS.beta));
    const chA = a.subscribe("news");
    const chB = b.subscribe("news");
    await Promise.all([once(chA, "pusher:subscription_succeeded"), once(chB, "pusher:subscription_succeeded")]);
    const seenB = record(chB);
    const nativeBeta = await gw.client({ sub: "eve", tenant: "beta" });
    await nativeBeta.subscribe("news");

    const gotA = once(chA, "scoop");
    await pusherServer(gw, APPS.acme).trigger("news", "scoop", { x: 1 });
    await gotA;
    // Names that would try to reach another tenant's room are not channels here.
    for (const trick of ["beta.news", "beta/news", "../beta/news", "beta:news", "beta%2Fnews"]) {
      const res = await signedPost(gw, APPS.acme, "events", { name: "scoop", channel: trick, data: "{}" });
      expect(res.status, trick).toBe(trick === "beta.news" ? 200 : 400);
    }
    // acme's secret does not sign for beta's app id, and acme's key with beta's app id is refused.
    await expect(pusherServer(gw, APPS.beta, APPS.acme.secret).trigger("news", "scoop", {})).rejects.toMatchObject({ status: 401 });
    await expect(pusherServer(gw, APPS.acme, APPS.acme.secret, APPS.beta.appId).trigger("news", "scoop", {})).rejects.toMatchObject({ status: 401 });
    await sleep(200);
    expect(seenB.filter((e) => !e.event.startsWith("pusher"))).toEqual([]);
    await expect(nativeBeta.waitFor((f) => f.type === "message", { timeoutMs: 100 })).rejects.toThrow();
  });
});

describe("Pusher HTTP API", () => {
  it("pusher - the official SDK triggers to several channels, batches, and reads channel info and users; bad signatures are refused", async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    const p = track(pusherClient(gw, APPS.acme));
    const one = p.subscribe("one");
    const two = p.subscribe("two");
    await Promise.all([once(one, "pusher:subscription_succeeded"), once(two, "pusher:subscription_succeeded")]);
    const both = Promise.all([once(one, "e"), once(two, "e")]);
    await sdk.trigger(["one", "two"], "e", "hello");
    expect(await both).toEqual(["hello", "hello"]);

    const batched = Promise.all([once(one, "b1"), once(two, "b2")]);
    const batch = await sdk.triggerBatch([
      { channel: "one", name: "b1", data: { n: 1 } },
      { channel: "two", name: "b2", data: { n: 2 } },
    ]);
    expect(batch.status).toBe(200);
    expect(await batched).toEqual([{ n: 1 }, { n: 2 }]);

    // socket_id excludes that connection, as Pusher does.
    const seen = record(one);
    const other = track(pusherClient(gw, APPS.acme));
    const otherOne = other.subscribe("one");
    await once(otherOne, "pusher:subscription_succeeded");
    const otherGot = once(otherOne, "x");
    await sdk.trigger("one", "x", {}, { socket_id: p.connection.socket_id });
    await otherGot;
    await sleep(100);
    expect(seen.map((e) => e.event)).not.toContain("x");

    const info = (await (await sdk.get({ path: "/channels/one", params: { info: "subscription_count" } })).json()) as Record<string, unknown>;
    expect(info).toEqual({ occupied: true, subscription_count: 2 });
    const list = (await (await sdk.get({ path: "/channels", params: {} })).json()) as { channels: Record<string, unknown> };
    expect(Object.keys(list.channels).sort()).toEqual(["one", "two"]);
    const empty = (await (await sdk.get({ path: "/channels/nobody-here", params: {} })).json()) as Record<string, unknown>;
    expect(empty).toEqual({ occupied: false });

    // Tampered or unsigned requests: refused with 401, nothing published.
    await expect(pusherServer(gw, APPS.acme, "wrong-secret-0123456789").trigger("one", "bad", {})).rejects.toMatchObject({ status: 401 });
    const unsigned = await fetch(`${gw.httpUrl}/apps/${APPS.acme.appId}/events`, { method: "POST", body: JSON.stringify({ name: "bad", channel: "one", data: "{}" }) });
    expect(unsigned.status).toBe(401);
    const unknownApp = await fetch(`${gw.httpUrl}/apps/9999/events`, { method: "POST", body: "{}" });
    expect(unknownApp.status).toBe(404);
    expect(((await unknownApp.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.NOT_FOUND);
    expect(seen.map((e) => e.event)).not.toContain("bad");
  });

  it("pusher - signed-query checks: body_md5, stale timestamps, oversized bodies and malformed bodies", async () => {
    gw = await startPusherGateway({ http: { maxBodyBytes: 4096 } });
    const post = async (body: string, opts: { md5?: string; ts?: number } = {}) => {
      const res = await signedPost(gw!, APPS.acme, "events", body, opts);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const good = JSON.stringify({ name: "e", channel: "c", data: "{}" });
    expect(await post(good)).toEqual({ status: 200, body: {} });
    expect((await post(good, { md5: "0".repeat(32) })).status).toBe(401);
    expect((await post(good, { ts: Math.floor(Date.now() / 1000) - 3600 })).body).toMatchObject({ error: { code: "ARQ_AUTH_EXPIRED" } });
    expect((await post("{not json")).status).toBe(400);
    expect((await post(JSON.stringify({ name: "e", data: "{}" }))).body).toMatchObject({ error: { code: "ARQ_FRAME_MISSING_FIELD" } });
    expect((await post(JSON.stringify({ name: "e", channel: "bad;name", data: "{}" }))).body).toMatchObject({ error: { code: "ARQ_ROOM_INVALID" } });
    expect((await post(JSON.stringify({ name: "e", channel: "c", data: "x".repeat(5000) }))).status).toBe(413);
    // The gateway still serves.
    expect((await fetch(`${gw.httpUrl}/health`)).status).toBe(200);
  });
});

describe("Pusher private and presence channels", () => {
  it("pusher - private channels need the auth endpoint's signature; a bad one is a subscription error", async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    const endpoint = await authEndpoint(sdk, { deny: (c) => c === "private-denied" });
    servers.push(endpoint.server);
    const p = track(pusherClient(gw, APPS.acme, { channelAuthorization: { endpoint: endpoint.url, transport: "ajax" } }));
    const ch = p.subscribe("private-orders");
    await once(ch, "pusher:subscription_succeeded");
    expect(endpoint.calls).toEqual([{ socketId: p.connection.socket_id, channel: "private-orders" }]);
    const got = once(ch, "shipped");
    await sdk.trigger("private-orders", "shipped", { id: 7 });
    expect(await got).toEqual({ id: 7 });

    const denied = p.subscribe("private-denied");
    const err = await once<{ status: number }>(denied, "pusher:subscription_error");
    expect(err.status).toBe(403);

    // A signature made by another app's secret (beta signs for acme's channel) is refused by the server.
    const forger = pusherServer(gw, APPS.beta);
    const forged = await authEndpoint(forger);
    servers.push(forged.server);
    const q = track(pusherClient(gw, APPS.acme, { channelAuthorization: { endpoint: forged.url, transport: "ajax" } }));
    const bad = q.subscribe("private-orders");
    const refused = await once<{ status: number; arqon_code: string }>(bad, "pusher:subscription_error");
    expect(refused).toMatchObject({ status: 401, arqon_code: "ARQ_AUTH_INVALID" });
  });

  it("pusher - presence channels: members list, member_added / member_removed, per-user aggregation, native presence, users API", async () => {
    gw = await startPusherGateway();
    const sdk = pusherServer(gw, APPS.acme);
    const users = new Map<string, string>();
    const endpoint = await authEndpoint(sdk, { presence: (sid) => ({ user_id: users.get(sid) ?? "nobody", user_info: { name: users.get(sid) } }) });
    servers.push(endpoint.server);
    const connect = async (user: string) => {
      const p = track(pusherClient(gw!, APPS.acme, { channelAuthorization: { endpoint: endpoint.url, transport: "ajax" } }));
      await connected(p);
      users.set(p.connection.socket_id, user);
      return p;
    };
    const ann = await connect("ann");
    const annCh = ann.subscribe("presence-room");
    const members = await once<{ count: number; me: { id: string; info: unknown } }>(annCh, "pusher:subscription_succeeded");
    expect(members.count).toBe(1);
    expect(members.me).toEqual({ id: "ann", info: { name: "ann" } });

    const added = once<{ id: string; info: unknown }>(annCh, "pusher:member_added");
    const ben = await connect("ben");
    const benCh = ben.subscribe("presence-room");
    const benMembers = await once<{ count: number; members: Record<string, unknown> }>(benCh, "pusher:subscription_succeeded");
    expect(benMembers.count).toBe(2);
    expect(benMembers.members).toEqual({ ann: { name: "ann" }, ben: { name: "ben" } });
    expect(await added).toEqual({ id: "ben", info: { name: "ben" } });

    // A second connection of ben is no new member.
    const annEvents = record(annCh);
    const ben2 = await connect("ben");
    await once(ben2.subscribe("presence-room"), "pusher:subscription_succeeded");
    // A native client in the room is a member too (its sub, its info).
    const native = await gw.client({ sub: "cat", tenant: "acme" });
    const nativeAdded = once<{ id: string; info: unknown }>(annCh, "pusher:member_added");
    await native.subscribe("presence-room", { info: { info: new TextEncoder().encode(JSON.stringify({ name: "cat" })) } });
    expect(await nativeAdded).toEqual({ id: "cat", info: { name: "cat" } });
    expect(annEvents.filter((e) => e.event === "pusher:member_added").map((e) => (e.data as { id: string }).id)).toEqual(["cat"]);

    const usersApi = (await (await sdk.get({ path: "/channels/presence-room/users", params: {} })).json()) as { users: Array<{ id: string }> };
    expect(usersApi.users.map((u) => u.id).sort()).toEqual(["ann", "ben", "cat"]);
    const counts = (await (await sdk.get({ path: "/channels/presence-room", params: { info: "user_count,subscription_count" } })).json()) as Record<string, unknown>;
    expect(counts).toEqual({ occupied: true, user_count: 3, subscription_count: 4 });

    // ben leaves with one connection: still a member; with the second: member_removed.
    ben.disconnect();
    await sleep(150);
    expect(annEvents.filter((e) => e.event === "pusher:member_removed")).toEqual([]);
    const removed = once<{ id: string }>(annCh, "pusher:member_removed");
    ben2.unsubscribe("presence-room");
    expect((await removed).id).toBe("ben");
    // The native client sees the Pusher members through the existing presence.
    const list = await native.request({ type: "presence_list", room: "presence-room", requestId: "p1" });
    expect(list.members?.map((m) => m.userId).sort()).toEqual(["ann", "cat"]);
  });
});

describe("Pusher client events", () => {
  it("pusher - client- events on private channels reach the others (not the sender) and native clients; refused where not allowed", async () => {
    gw = await startPusherGateway();
    const endpointAcme = await authEndpoint(pusherServer(gw, APPS.acme));
    const endpointBeta = await authEndpoint(pusherServer(gw, APPS.beta));
    servers.push(endpointAcme.server, endpointBeta.server);
    const a = track(pusherClient(gw, APPS.acme, { channelAuthorization: { endpoint: endpointAcme.url, transport: "ajax" } }));
    const b = track(pusherClient(gw, APPS.acme, { channelAuthorization: { endpoint: endpointAcme.url, transport: "ajax" } }));
    const chA = a.subscribe("private-chat");
    const chB = b.subscribe("private-chat");
    await Promise.all([once(chA, "pusher:subscription_succeeded"), once(chB, "pusher:subscription_succeeded")]);
    const native = await gw.client({ sub: "nat", tenant: "acme" });
    await native.subscribe("private-chat");
    const seenA = record(chA);
    const gotB = once(chB, "client-typing");
    const gotNative = native.waitFor((f) => f.type === "message" && f.headers?.event === "client-typing");
    expect(chA.trigger("client-typing", { who: "a" })).toBe(true);
    expect(await gotB).toEqual({ who: "a" });
    expect(payloadOf(await gotNative)).toEqual({ who: "a" });
    await sleep(100);
    expect(seenA.map((e) => e.event)).not.toContain("client-typing");

    // Public channels take no client events.
    const pub = a.subscribe("lobby");
    await once(pub, "pusher:subscription_succeeded");
    const refused = once<{ data: { arqon_code: string } }>(a.connection, "error");
    pub.trigger("client-x", {});
    expect((await refused).data.arqon_code).toBe(ErrorCode.FORBIDDEN);

    // beta's app does not allow client events.
    const c = track(pusherClient(gw, APPS.beta, { channelAuthorization: { endpoint: endpointBeta.url, transport: "ajax" } }));
    const chC = c.subscribe("private-chat");
    await once(chC, "pusher:subscription_succeeded");
    const disabled = once<{ data: { arqon_code: string } }>(c.connection, "error");
    chC.trigger("client-x", {});
    expect((await disabled).data.arqon_code).toBe(ErrorCode.FRAME_FEATURE_DISABLED);
  });

  it("pusher - CASIL inspects client events and HTTP API events like native publishes: a block is a pusher:error / a 422", async () => {
    gw = await startPusherGateway({
      inspector: {
        inspect: (input) =>
          Buffer.from(input.payload).toString("utf8").includes("forbidden")
            ? { action: "block", reasonCode: "CASIL_POLICY_BLOCKED_PATTERN", message: "blocked by test policy" }
            : { action: "allow" },
      },
    });
    const sdk = pusherServer(gw, APPS.acme);
    const endpoint = await authEndpoint(sdk);
    servers.push(endpoint.server);
    const a = track(pusherClient(gw, APPS.acme, { channelAuthorization: { endpoint: endpoint.url, transport: "ajax" } }));
    const b = track(pusherClient(gw, APPS.acme, { channelAuthorization: { endpoint: endpoint.url, transport: "ajax" } }));
    const chA = a.subscribe("private-x");
    const chB = b.subscribe("private-x");
    await Promise.all([once(chA, "pusher:subscription_succeeded"), once(chB, "pusher:subscription_succeeded")]);
    const seenB = record(chB);
    const blocked = once<{ data: { code: null; arqon_code: string } }>(a.connection, "error");
    chA.trigger("client-msg", { text: "forbidden words" });
    expect((await blocked).data).toMatchObject({ code: null, arqon_code: "CASIL_POLICY_BLOCKED_PATTERN" });
    await expect(sdk.trigger("private-x", "server-msg", { text: "forbidden" })).rejects.toMatchObject({ status: 422 });
    const ok = once(chB, "client-msg");
    chA.trigger("client-msg", { text: "fine" });
    expect(await ok).toEqual({ text: "fine" });
    expect(seenB.filter((e) => !e.event.startsWith("pusher")).map((e) => e.data)).toEqual([{ text: "fine" }]);
  });
});
