import { afterEach, describe, expect, it } from "vitest";
import { ArqonClient, ArqonRequestError, CloseCode, type ArqonClientOptions, type RoomMessage } from "../src/index.js";
import { WebSocket as NodeWebSocket } from "ws";
import { createDelta, jsonBytes } from "@arqon/core";
import type { WebSocketConstructor } from "../src/index.js";
import { FakeServer, defaultHandler, type FakeServerOptions } from "./helpers/fake-server.js";
import { collect, nextEvent, until } from "./helpers/wait.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(options: FakeServerOptions = {}, clientOptions: ArqonClientOptions = {}) {
  const server = await FakeServer.start(options);
  cleanup.push(() => server.close());
  const client = new ArqonClient(server.url, { token: "t0k3n", reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, ...clientOptions });
  cleanup.push(() => client.close());
  return { server, client };
}

describe("fake server - connection", () => {
  it("connect - token and codec travel in the subprotocol list; status goes connecting → connected", async () => {
    const { server, client } = await setup();
    const statuses = collect(client, "status");
    await client.connect();
    const conn = server.connections[0]!;
    expect(conn.protocols).toEqual(["arqon.v1.json", "bearer.t0k3n"]);
    expect(statuses.map((s) => s.type)).toEqual(["connecting", "connected"]);
    expect(client.clientId).toBe("c_1");
  });

  it("connect - tokenTransport query puts the token in ?token=", async () => {
    const { server, client } = await setup({}, { token: "a.b-c", tokenTransport: "query" });
    await client.connect();
    expect(server.connections[0]!.url).toBe("/ws?protocol=1.1&token=a.b-c");
    expect(server.connections[0]!.protocols).toEqual(["arqon.v1.json"]);
  });

  it("connect - an injected WebSocket constructor is used with the url and subprotocols", async () => {
    const made: Array<{ url: string; protocols: unknown }> = [];
    class Recording extends NodeWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        made.push({ url, protocols });
      }
    }
    const { client } = await setup({}, { WebSocket: Recording as unknown as WebSocketConstructor, token: "abc" });
    await client.connect();
    expect(made).toEqual([{ url: `${client.url}?protocol=1.1`, protocols: ["arqon.v1.json", "bearer.abc"] }]);
  });

  it("requests - replies arriving out of order settle their own requests by requestId", async () => {
    const held: Array<() => void> = [];
    const { server, client } = await setup({
      onFrame: (conn, frame) => {
        if (frame.type !== "command") return defaultHandler(conn, frame);
        const payload = new TextEncoder().encode(JSON.stringify({ echo: frame.command }));
        held.push(() => conn.send({ type: "response", requestId: frame.requestId, status: "ok", payload }));
        if (held.length === 2) {
          held[1]!();
          held[0]!();
        }
      },
    });
    void server;
    await client.connect();
    const [a, b] = await Promise.all([client.command("op.a.first"), client.command("op.b.second")]);
    expect(a).toEqual({ echo: "op.a.first" });
    expect(b).toEqual({ echo: "op.b.second" });
  });

  it("errors - an error frame rejects its request with the server's code; a command error response too", async () => {
    const { client } = await setup({
      onFrame: (conn, frame) => {
        if (frame.type === "publish") {
          conn.send({ type: "error", requestId: frame.requestId, error: { code: "ARQ_RATE_LIMITED", message: "publish rate exceeded", retryable: true } });
        } else if (frame.type === "command") {
          conn.send({ type: "response", requestId: frame.requestId, status: "error", error: { code: "AUTHORIZATION_ERROR", message: "admin only" } });
        } else defaultHandler(conn, frame);
      },
    });
    await client.connect();
    const pub = await client.room("lobby").publish({ text: "hi" }).catch((e: unknown) => e);
    expect(pub).toBeInstanceOf(ArqonRequestError);
    expect(pub).toMatchObject({ code: "ARQ_RATE_LIMITED", message: "publish rate exceeded", retryable: true });
    const cmd = await client.command("op.casil.set", { x: 1 }).catch((e: unknown) => e);
    expect(cmd).toBeInstanceOf(ArqonRequestError);
    expect(cmd).toMatchObject({ code: "AUTHORIZATION_ERROR", message: "admin only", retryable: false });
  });

  it("frames - unknown frame types are ignored, garbage is reported as an error event, the client keeps working", async () => {
    const { server, client } = await setup();
    await client.connect();
    const conn = server.connections[0]!;
    const errors = collect(client, "error");
    conn.send('{"type":"hologram","room":"lobby"}');
    conn.send("{not json");
    const ack = await client.room("lobby").publish(1);
    expect(ack).toEqual({ id: "m_x", offset: 1, epoch: "e1", duplicate: false });
    expect(errors.map((e) => e.code)).toEqual(["ARQ_FRAME_MALFORMED"]);
    expect(client.connected).toBe(true);
  });

  it("requests - a request without a reply is rejected with ARQ_REQUEST_TIMEOUT", async () => {
    const { client } = await setup({ onFrame: () => undefined }, { requestTimeoutMs: 80 });
    await client.connect();
    const err = await client.command("op.slow.run").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ARQ_REQUEST_TIMEOUT" });
  });
});

describe("fake server - rooms", () => {
  it("messages - duplicates and stale offsets of the same epoch are dropped, order kept", async () => {
    const { server, client } = await setup();
    await client.connect();
    const got: RoomMessage[] = [];
    await client.room("ticker").subscribe((m) => got.push(m));
    const conn = server.connections[0]!;
    for (const offset of [1, 2, 2, 1, 3]) {
      conn.send({ type: "message", id: `m${offset}`, room: "ticker", payload: new TextEncoder().encode(String(offset)), offset, epoch: "e1" });
    }
    await until(() => got.length >= 3);
    await client.ping();
    expect(got.map((m) => [m.id, m.payload, m.offset])).toEqual([
      ["m1", 1, 1],
      ["m2", 2, 2],
      ["m3", 3, 3],
    ]);
    expect(client.room("ticker").position).toEqual({ offset: 3, epoch: "e1" });
  });

  it("delta - subscribe asks for deltas; delta messages are rebuilt against the previous payload", async () => {
    const { server, client } = await setup();
    await client.connect();
    const got: RoomMessage[] = [];
    const room = client.room("ticker");
    const errors = collect(room, "error");
    await room.subscribe((m) => got.push(m), { delta: true });
    const conn = server.connections[0]!;
    expect((await conn.next("subscribe")).delta).toBe(true);
    const ticks = [
      { sym: "ACME", price: 101.5, volume: 1200, note: "opening bell, nothing unusual to report today" },
      { sym: "ACME", price: 101.75, volume: 1200, note: "opening bell, nothing unusual to report today" },
      { sym: "ACME", price: 101.75, volume: 1300, note: "opening bell, nothing unusual to report today" },
    ];
    const bytes = ticks.map((t) => jsonBytes(t));
    conn.send({ type: "message", id: "m1", room: "ticker", payload: bytes[0], offset: 1, epoch: "e1" });
    for (let i = 1; i < bytes.length; i++) {
      const delta = createDelta(bytes[i - 1]!, bytes[i]!)!;
      expect(delta.length).toBeLessThan(bytes[i]!.length);
      conn.send({ type: "message", id: `m${i + 1}`, room: "ticker", payload: delta, payloadFormat: "binary", delta: true, offset: i + 1, epoch: "e1" });
    }
    await until(() => got.length === 3);
    expect(got.map((m) => m.payload)).toEqual(ticks);
    expect(got.map((m) => m.format)).toEqual(["json", "json", "json"]);
    expect(errors).toEqual([]);
  });

  it("delta - an unusable delta is reported as ARQ_DELTA_INVALID; the room re-subscribes from its last good position", async () => {
    const { server, client } = await setup();
    await client.connect();
    const got: RoomMessage[] = [];
    const room = client.room("ticker");
    await room.subscribe((m) => got.push(m), { delta: true });
    const conn = server.connections[0]!;
    await conn.next("subscribe");
    conn.send({ type: "message", id: "m8", room: "ticker", payload: jsonBytes({ n: 8 }), offset: 8, epoch: "e1" });
    await until(() => got.length === 1);
    const error = nextEvent(room, "error");
    const resubscribed = nextEvent(room, "subscribed");
    // A delta built against a payload this client never received: the checksum does not match.
    const delta = createDelta(jsonBytes({ a: "x".repeat(40) }), jsonBytes({ a: "x".repeat(40), b: 1 }))!;
    conn.send({ type: "message", id: "m9", room: "ticker", payload: delta, payloadFormat: "binary", delta: true, offset: 9, epoch: "e1" });
    expect(await error).toMatchObject({ code: "ARQ_DELTA_INVALID" });
    const again = await conn.next("subscribe");
    expect(again.since).toEqual({ offset: 8, epoch: "e1" });
    expect(again.delta).toBe(true);
    await resubscribed;
    conn.send({ type: "message", id: "m9", room: "ticker", payload: jsonBytes({ n: 9 }), offset: 9, epoch: "e1" });
    await until(() => got.length === 2);
    expect(got.map((m) => m.payload)).toEqual([{ n: 8 }, { n: 9 }]);
  });

  it("presence - join, leave and coalesced diffs keep the member list; events fire per member", async () => {
    const { server, client } = await setup({
      onFrame: (conn, frame) => {
        if (frame.type === "subscribe") {
          conn.send({ type: "subscribed", requestId: frame.requestId, room: frame.room, epoch: "e1", members: [{ clientId: "c_1", userId: "me" }] });
        } else defaultHandler(conn, frame);
      },
    });
    await client.connect();
    const room = client.room("stadium");
    const joins = collect(room.presence, "join");
    const leaves = collect(room.presence, "leave");
    const sub = await room.subscribe();
    expect(sub.members).toEqual([{ clientId: "c_1", userId: "me" }]);
    const conn = server.connections[0]!;
    conn.send({ type: "presence_join", room: "stadium", members: [{ clientId: "c_2", userId: "bob", info: new TextEncoder().encode('{"name":"Bob"}') }] });
    conn.send({ type: "presence_diff", room: "stadium", joined: [{ clientId: "c_3", userId: "carol" }], left: [{ clientId: "c_2", userId: "bob" }] });
    conn.send({ type: "presence_leave", room: "stadium", members: [{ clientId: "c_3", userId: "carol" }], reason: "ping_timeout" });
    await until(() => leaves.length === 2);
    expect(joins.map((m) => m.userId)).toEqual(["bob", "carol"]);
    expect(leaves).toEqual([
      { clientId: "c_2", userId: "bob", info: { name: "Bob" } },
      { clientId: "c_3", userId: "carol", reason: "ping_timeout" },
    ]);
    expect(room.presence.current.map((m) => m.userId)).toEqual(["me"]);
  });

  it("resubscribe - after a reconnect the last seen position goes out as since; recovered messages follow", async () => {
    const { server, client } = await setup({
      onFrame: (conn, frame) => {
        if (frame.type === "subscribe" && frame.since) {
          conn.send({ type: "subscribed", requestId: frame.requestId, room: frame.room, offset: 7, epoch: "e1", recovered: true });
          for (const offset of [6, 7]) {
            conn.send({ type: "message", id: `m${offset}`, room: frame.room, payload: new TextEncoder().encode(`{"n":${offset}}`), offset, epoch: "e1" });
          }
        } else if (frame.type === "subscribe") {
          conn.send({ type: "subscribed", requestId: frame.requestId, room: frame.room, offset: 4, epoch: "e1" });
          conn.send({ type: "message", id: "m5", room: frame.room, payload: new TextEncoder().encode('{"n":5}'), offset: 5, epoch: "e1" });
        } else defaultHandler(conn, frame);
      },
    });
    await client.connect();
    const room = client.room("lobby");
    const got: unknown[] = [];
    const subscribed = collect(room, "subscribed");
    const first = await room.subscribe((m) => got.push(m.payload));
    expect(first).toMatchObject({ position: { offset: 4, epoch: "e1" }, resubscribed: false });
    expect(first.recovered).toBeUndefined();
    await until(() => got.length === 1);
    server.connections[0]!.close(CloseCode.SERVICE_RESTART, "restart");
    const conn2 = await server.connection(1);
    const sub = await conn2.next("subscribe");
    expect(sub.since).toEqual({ offset: 5, epoch: "e1" });
    await until(() => got.length === 3);
    expect(got).toEqual([{ n: 5 }, { n: 6 }, { n: 7 }]);
    expect(subscribed[1]).toMatchObject({ recovered: true, resubscribed: true, position: { offset: 7, epoch: "e1" } });
  });

  it("resubscribe - recovered false carries the reason and the position restarts from the new epoch", async () => {
    const { client } = await setup({
      onFrame: (conn, frame) => {
        if (frame.type === "subscribe" && frame.since) {
          conn.send({ type: "subscribed", requestId: frame.requestId, room: frame.room, offset: 2, epoch: "e2", recovered: false, reason: "epoch_mismatch" });
        } else defaultHandler(conn, frame);
      },
    });
    await client.connect();
    const room = client.room("lobby");
    const event = await room.subscribe(undefined, { since: { offset: 9, epoch: "e1" } });
    expect(event).toMatchObject({ recovered: false, reason: "epoch_mismatch", position: { offset: 2, epoch: "e2" } });
    expect(room.position).toEqual({ offset: 2, epoch: "e2" });
  });

  it("subscribe, unsubscribe, subscribe in a row - the last word wins on the server too", async () => {
    const { server, client } = await setup();
    await client.connect();
    const room = client.room("lobby");
    const first = room.subscribe().catch((e: unknown) => e);
    const off = room.unsubscribe();
    const again = room.subscribe();
    await off;
    await expect(again).resolves.toMatchObject({ room: "lobby" });
    expect(await first).toMatchObject({ code: "ARQ_CLIENT_CLOSED" });
    expect(server.connections[0]!.frames.filter((f) => f.room === "lobby").map((f) => f.type)).toEqual(["subscribe", "unsubscribe", "subscribe"]);
    expect(room.subscribed).toBe(true);
  });

  it("subscribe before connect - the subscription is sent once the welcome arrives", async () => {
    const { server, client } = await setup();
    const sub = client.room("early").subscribe();
    await client.connect();
    await expect(sub).resolves.toMatchObject({ room: "early", resubscribed: false });
    expect(server.connections[0]!.frames.filter((f) => f.type === "subscribe")).toHaveLength(1);
  });
});

describe("fake server - connection loss", () => {
  it("half-open - no frame and no pong within the heartbeat: the client drops the socket with 4001 and reconnects", async () => {
    const { server, client } = await setup({
      welcome: { limits: { pingIntervalMs: 60, pongTimeoutMs: 60 } },
      onFrame: (conn, frame) => {
        if (frame.type !== "ping") defaultHandler(conn, frame); // a dead peer: pings go unanswered
      },
    });
    await client.connect();
    await client.room("lobby").subscribe();
    const disconnected = nextEvent(client, "disconnected");
    expect(await disconnected).toEqual({ code: CloseCode.PING_TIMEOUT, reason: "no answer to ping within 60 ms", willReconnect: true });
    const conn2 = await server.connection(1);
    expect((await conn2.next("subscribe")).room).toBe("lobby");
    expect(server.connections[0]!.frames.some((f) => f.type === "ping")).toBe(true);
  });

  it("terminal close - 4501 ends the client: closed event, no reconnect, pending requests rejected", async () => {
    const { server, client } = await setup({ onFrame: () => undefined });
    await client.connect();
    const reconnecting = collect(client, "reconnecting");
    const pending = client.command("op.x.y").catch((e: unknown) => e);
    await server.connections[0]!.next("command");
    const closed = nextEvent(client, "closed");
    server.connections[0]!.close(CloseCode.FORBIDDEN, "forbidden");
    expect(await closed).toEqual({ code: 4501, reason: "forbidden" });
    expect(await pending).toMatchObject({ code: "ARQ_CONNECTION_CLOSED" });
    await new Promise((r) => setTimeout(r, 100));
    expect(reconnecting).toEqual([]);
    expect(server.connections).toHaveLength(1);
    await expect(client.room("lobby").publish(1)).rejects.toMatchObject({ code: "ARQ_CLIENT_CLOSED" });
  });

  it("token expired - 4004 makes the client fetch a fresh token through getToken and reconnect", async () => {
    let n = 0;
    const { server, client } = await setup({}, { token: undefined, getToken: () => `tok${++n}` });
    await client.connect();
    expect(server.connections[0]!.protocols).toContain("bearer.tok1");
    const reconnected = nextEvent(client, "connected", (e) => e.reconnected);
    server.connections[0]!.close(CloseCode.TOKEN_EXPIRED, "token expired");
    const conn2 = await server.connection(1);
    expect(conn2.protocols).toContain("bearer.tok2");
    await reconnected;
  });

  it("normal close - a 1000 from the server is final", async () => {
    const { server, client } = await setup();
    await client.connect();
    const closed = nextEvent(client, "closed");
    const disconnected = nextEvent(client, "disconnected");
    server.connections[0]!.close(CloseCode.NORMAL, "done");
    expect(await disconnected).toEqual({ code: 1000, reason: "done", willReconnect: false });
    expect(await closed).toEqual({ code: 1000, reason: "done" });
    await new Promise((r) => setTimeout(r, 60));
    expect(server.connections).toHaveLength(1);
  });

  it("token expired - without getToken a 4004 is final", async () => {
    const { server, client } = await setup();
    await client.connect();
    const closed = nextEvent(client, "closed");
    server.connections[0]!.close(CloseCode.TOKEN_EXPIRED, "token expired");
    expect(await closed).toEqual({ code: 4004, reason: "token expired" });
  });

  it("token refresh - getToken is called before expiresAt and sent as an auth frame on the live connection", async () => {
    let n = 0;
    const { server, client } = await setup(
      {
        welcome: { expiresAt: Date.now() + 300 },
        onFrame: (conn, frame) => {
          if (frame.type === "auth") conn.send({ type: "auth_ok", requestId: frame.requestId, expiresAt: Date.now() + 60_000 });
          else defaultHandler(conn, frame);
        },
      },
      { token: undefined, getToken: () => `tok${++n}`, tokenRefreshMarginMs: 100 },
    );
    await client.connect();
    const refreshed = await nextEvent(client, "token");
    expect(refreshed.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    const auth = await server.connections[0]!.next("auth");
    expect(auth.token).toBe("tok2");
    expect(server.connections).toHaveLength(1);
    expect(client.connected).toBe(true);
  });

  it("queue - requests made while reconnecting are sent once the new connection is welcomed", async () => {
    const { server, client } = await setup();
    await client.connect();
    const disconnected = nextEvent(client, "disconnected");
    server.connections[0]!.close(CloseCode.GOING_AWAY, "restart");
    await disconnected;
    const ack = client.room("lobby").publish({ queued: true });
    await expect(ack).resolves.toEqual({ id: "m_x", offset: 1, epoch: "e1", duplicate: false });
    expect(server.connections[1]!.frames.find((f) => f.type === "publish")).toBeDefined();
  });

  it("upgrade refused - HTTP 401 with a static token is final (code 4500), connect() rejects", async () => {
    const { client } = await setup({ rejectWith: 401 });
    const reconnecting = collect(client, "reconnecting");
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ARQ_CLIENT_CLOSED", detail: { code: 4500, reason: "upgrade refused with HTTP 401" } });
    expect(reconnecting).toEqual([]);
  });

  it("upgrade refused - with getToken one fresh token is tried after a 401; a second 401 is final", async () => {
    let n = 0;
    const { server, client } = await setup({ rejectWith: 401 }, { token: undefined, getToken: () => `tok${++n}` });
    const reconnecting = collect(client, "reconnecting");
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ARQ_CLIENT_CLOSED", detail: { code: 4500 } });
    expect(n).toBe(2);
    expect(reconnecting.map((r) => r.attempt)).toEqual([1]);
    expect(server.connections).toHaveLength(0);
  });

  it("max attempts - the client gives up after maxAttempts failed reconnects in a row", async () => {
    const { server, client } = await setup({}, { reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 3 } });
    await client.connect();
    const closed = nextEvent(client, "closed");
    const reconnecting = collect(client, "reconnecting");
    await server.close();
    expect((await closed).reason).toMatch(/gave up after 3 attempts/);
    expect(reconnecting.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(client.status.type).toBe("closed");
  });

  it("close - close() while reconnecting stops for good; connect() afterwards starts over", async () => {
    const { server, client } = await setup({}, { reconnect: { initialDelayMs: 200, maxDelayMs: 200 } });
    await client.connect();
    const reconnecting = nextEvent(client, "reconnecting");
    server.connections[0]!.close(CloseCode.GOING_AWAY, "bye");
    await reconnecting;
    await client.close();
    expect(client.status).toEqual({ type: "closed", code: 1000, reason: "client closed" });
    await new Promise((r) => setTimeout(r, 300));
    expect(server.connections).toHaveLength(1);
    await client.connect();
    expect(server.connections).toHaveLength(2);
    expect(client.status).toMatchObject({ type: "connected", reconnected: true });
  });

  it.each(["disconnected", "reconnecting"] as const)("close - close() called from a %s listener stops the reconnect", async (event) => {
    const { server, client } = await setup();
    await client.connect();
    const reconnecting = collect(client, "reconnecting");
    client.on(event, () => void client.close());
    const closed = nextEvent(client, "closed");
    server.connections[0]!.close(CloseCode.GOING_AWAY, "restart");
    expect(await closed).toEqual({ code: 1000, reason: "client closed" });
    await new Promise((r) => setTimeout(r, 100));
    expect(reconnecting.length).toBe(event === "reconnecting" ? 1 : 0);
    expect(server.connections).toHaveLength(1);
  });

  it("server unsubscribe - an unsubscribed frame without request id ends the subscription, with its reason", async () => {
    const { server, client } = await setup();
    await client.connect();
    const room = client.room("lobby");
    await room.subscribe();
    const ended = nextEvent(room, "unsubscribed");
    server.connections[0]!.send({ type: "unsubscribed", room: "lobby", reason: "forbidden" });
    expect(await ended).toEqual({ room: "lobby", reason: "forbidden" });
    expect(room.subscribed).toBe(false);
    const disconnected = nextEvent(client, "connected", (e) => e.reconnected);
    server.connections[0]!.close(CloseCode.GOING_AWAY, "bye");
    await disconnected;
    await client.ping();
    expect(server.connections[1]!.frames.filter((f) => f.type === "subscribe")).toEqual([]);
  });

  it("codec - a binary frame without the protobuf codec is reported, not fatal; codec protobuf needs the import", async () => {
    const { server, client } = await setup();
    await client.connect();
    const error = nextEvent(client, "error");
    server.connections[0]!.ws.send(new Uint8Array([8, 25]));
    expect((await error).code).toBe("ARQ_CODEC_UNAVAILABLE");
    expect(client.connected).toBe(true);
    expect(() => new ArqonClient(server.url, { token: "x", codec: "protobuf" })).toThrow(/import "@arqon\/sdk\/protobuf"/);
  });
});

describe("fake server - protocol 1.1", () => {
  it("protocol 1.1 - a compact message gets the epoch last told: the subscribed reply's, then the one a message carried", async () => {
    const { server, client } = await setup({
      welcome: { protocol: "1.1" },
      onFrame: (conn, frame) => {
        if (frame.type !== "subscribe") return defaultHandler(conn, frame);
        conn.send({ type: "subscribed", requestId: frame.requestId, room: frame.room, offset: 4, epoch: "e1" });
        conn.send('{"m":"lobby","i":"m5","o":5,"t":1767225600123,"s":"alice","p":{"n":5}}');
        // The room's history was lost: the first message of the new epoch says so, the next one does not.
        conn.send('{"m":"lobby","i":"m1","o":1,"e":"e2","t":1767225600124,"s":"alice","h":{"x-twist-id":"t2"},"p":{"n":1}}');
        conn.send('{"m":"lobby","i":"m2","o":2,"t":1767225600125,"p":{"n":2}}');
      },
    });
    await client.connect();
    expect(server.connections[0]!.url).toBe("/ws?protocol=1.1");
    const got: RoomMessage[] = [];
    const room = client.room("lobby");
    await room.subscribe((m) => got.push(m));
    await until(() => got.length === 3);
    expect(got.map((m) => [m.offset, m.epoch])).toEqual([
      [5, "e1"],
      [1, "e2"],
      [2, "e2"],
    ]);
    expect(got[0]).toMatchObject({ id: "m5", sender: "alice", timestamp: 1767225600123, headers: { "x-timestamp": "1767225600123", "x-twist-id": "main" } });
    expect(got[1]!.headers).toEqual({ "x-twist-id": "t2", "x-timestamp": "1767225600124" });
    expect(room.position).toEqual({ offset: 2, epoch: "e2" });
  });

  it("protocol 1.1 - a server that answers 1.0 is read as 1.0", async () => {
    const { client } = await setup({
      onFrame: (conn, frame) => {
        if (frame.type !== "subscribe") return defaultHandler(conn, frame);
        conn.send({ type: "subscribed", requestId: frame.requestId, room: frame.room, offset: 0, epoch: "e1" });
        conn.send({ type: "message", id: "m1", room: "lobby", payload: jsonBytes({ n: 1 }), offset: 1, epoch: "e1", timestamp: 5 });
      },
    });
    const connected = nextEvent(client, "connected");
    await client.connect();
    expect((await connected).protocol).toBe("1.0");
    const got: RoomMessage[] = [];
    await client.room("lobby").subscribe((m) => got.push(m));
    await until(() => got.length === 1);
    // 1.0 frames are taken as they are: nothing is added to them.
    expect(got[0]).toMatchObject({ offset: 1, epoch: "e1", headers: {} });
  });
});
