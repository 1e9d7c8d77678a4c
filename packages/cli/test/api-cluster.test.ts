import { beforeAll, expect, it } from "vitest";
import { ErrorCode, utf8Decode, type Frame } from "@arqon/core";
import { describeWithNats } from "@arqon/nats/testing";
import { payloadOf, type TestClient, type TestGateway } from "@arqon/server/testing";
import { gatewayPair } from "./helpers/gateway-pair.js";

const SECRET = "api-cluster-secret-0123456789abcdef0123";
const KEY = "api-cluster-operator-key-0123456789abc";

// Response bodies are read field by field in the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/**
 * Two gateways sharing one real nats-server: every server-API room and user route called on gateway A acts on what
 * real WebSocket clients of gateway B see (and reads on A see what happened on B).
 */
describeWithNats("server API across two gateways on NATS", () => {
  const pair = gatewayPair({ secret: SECRET, operatorKeys: [KEY], presenceOptions: { coalesceMs: 0 } });
  let a: TestGateway;
  let b: TestGateway;
  let server: string;

  beforeAll(async () => {
    ({ a, b } = pair);
    server = await a.token({ tenant: "t-api", sub: "backend", role: "server" });
  });

  /** Calls gateway `gw`'s server API as tenant t-api's backend (a `role: "server"` token). */
  async function api(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const res = await fetch(`${gw.httpUrl}/api/v1/tenants/t-api${path}`, {
      method,
      headers: { authorization: `Bearer ${server}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  function client(gw: TestGateway, sub: string): Promise<TestClient> {
    return gw.client({ tenant: "t-api", sub });
  }

  /** Polls `check` until it holds (cluster reads are eventually consistent across nodes). */
  async function eventually(check: () => Promise<boolean>, ms = 2000): Promise<void> {
    const start = Date.now();
    while (!(await check())) {
      if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Resolves true when `c` receives a frame matching `predicate` within `ms`, false otherwise. */
  function receives(c: TestClient, predicate: (f: Frame) => boolean, ms = 300): Promise<boolean> {
    return c.waitFor(predicate, { timeoutMs: ms }).then(
      () => true,
      () => false,
    );
  }

  it("publish on A reaches a subscriber on B; history read on A and on B has it", async () => {
    const onB = await client(b, "reader");
    expect((await onB.subscribe("pub-room")).type).toBe("subscribed");
    const r = await api(a, "POST", "/publish", { room: "pub-room", payload: { text: "from A" } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ room: "pub-room", offset: 1, duplicate: false });
    const message = await onB.next("message", "pub-room");
    expect(payloadOf(message)).toEqual({ text: "from A" });
    expect(message.sender).toBe("backend");
    expect(message.offset).toBe(1);
    for (const gw of [a, b]) {
      const h = await api(gw, "GET", "/rooms/pub-room/history");
      expect(h.json.messages).toMatchObject([{ id: r.json.id, offset: 1, payload: { text: "from A" }, sender: "backend" }]);
    }
  });

  it("broadcast on A reaches subscribers of each room on B", async () => {
    const one = await client(b, "one");
    const two = await client(b, "two");
    expect((await one.subscribe("bc-1")).type).toBe("subscribed");
    expect((await two.subscribe("bc-2")).type).toBe("subscribed");
    const r = await api(a, "POST", "/broadcast", { rooms: ["bc-1", "bc-2"], payload: { alert: true } });
    expect(r.json.results).toMatchObject([
      { room: "bc-1", offset: 1 },
      { room: "bc-2", offset: 1 },
    ]);
    expect(payloadOf(await one.next("message", "bc-1"))).toEqual({ alert: true });
    expect(payloadOf(await two.next("message", "bc-2"))).toEqual({ alert: true });
  });

  it("history on A reads what a client of B published", async () => {
    const onB = await client(b, "writer");
    for (let i = 1; i <= 3; i++) expect((await onB.publish("hist-room", { i })).type).toBe("ack");
    const h = await api(a, "GET", "/rooms/hist-room/history?fromOffset=2");
    expect(h.json.messages.map((m: Json) => m.payload)).toEqual([{ i: 2 }, { i: 3 }]);
    expect(h.json.position.offset).toBe(3);
  });

  it("presence on A lists the clients of B; stats on A count them", async () => {
    const b1 = await client(b, "alice");
    const b2 = await client(b, "alice");
    const b3 = await client(b, "bob");
    for (const c of [b1, b2, b3]) expect((await c.subscribe("pres-room")).type).toBe("subscribed");
    await eventually(async () => (await api(a, "GET", "/rooms/pres-room/presence")).json.members.length === 3);
    const list = await api(a, "GET", "/rooms/pres-room/presence");
    expect(list.json.members.map((m: Json) => m.clientId).sort()).toEqual([b1, b2, b3].map((c) => c.welcome.clientId).sort());
    expect((await api(a, "GET", "/rooms/pres-room/presence/stats")).json).toEqual({ clients: 3, users: 2 });
  });

  it("state PUT on A is seen by a client of B; GET on B reads it; a stale expectedVersion on B is 409 ARQ_STATE_CONFLICT", async () => {
    const onB = await client(b, "watcher");
    expect((await onB.subscribe("state-room")).type).toBe("subscribed");
    expect((await api(a, "PUT", "/rooms/state-room/state/title", { value: "v1", expectedVersion: 0 })).json).toEqual({ key: "title", version: 1 });
    const changed = await onB.next("state_changed", "state-room");
    expect(changed.state).toMatchObject([{ key: "title", version: 1 }]);
    expect(JSON.parse(utf8Decode(changed.state![0]!.value!))).toBe("v1");
    expect((await api(b, "GET", "/rooms/state-room/state")).json.entries).toMatchObject([{ key: "title", value: "v1", version: 1 }]);
    const stale = await api(b, "PUT", "/rooms/state-room/state/title", { value: "v2", expectedVersion: 0 });
    expect([stale.status, stale.json.error.code]).toEqual([409, ErrorCode.STATE_CONFLICT]);
    expect((await api(b, "PUT", "/rooms/state-room/state/title", { value: "v2", expectedVersion: 1 })).json).toEqual({ key: "title", version: 2 });
    expect((await onB.next("state_changed", "state-room")).state).toMatchObject([{ key: "title", version: 2 }]);
    expect((await api(a, "GET", "/rooms/state-room/state")).json.entries).toMatchObject([{ key: "title", value: "v2", version: 2 }]);
  });

  it("disconnect on A closes the user's connection on B with the code and reason given; others stay", async () => {
    const gone = await client(b, "mallory");
    const stays = await client(b, "carol");
    const r = await api(a, "POST", "/disconnect", { user: "mallory", code: 4321, reason: "bye" });
    expect(r.json).toEqual({ closedHere: 0 });
    const closed = await gone.closed;
    expect([closed.code, closed.reason]).toEqual([4321, "bye"]);
    expect((await stays.request({ type: "ping" })).type).toBe("pong");
  });

  it("subscribe on A subscribes the user's connections on A and B, which then receive what is published on A; unsubscribe on A stops it", async () => {
    const onB = await client(b, "dave");
    const onA = await client(a, "dave");
    const other = await client(b, "erin");
    const s = await api(a, "POST", "/subscribe", { user: "dave", room: "srv-room" });
    expect(s.json).toEqual({ subscribedHere: 1 });
    for (const c of [onA, onB]) {
      const subscribed = await c.next("subscribed", "srv-room");
      expect(subscribed.reason).toBe("server");
      expect(subscribed.requestId).toBeUndefined();
    }
    // The presence join made on B is seen through A.
    await eventually(async () => (await api(a, "GET", "/rooms/srv-room/presence/stats")).json.clients === 2);
    expect((await api(a, "POST", "/publish", { room: "srv-room", payload: { n: 1 } })).status).toBe(200);
    for (const c of [onA, onB]) expect(payloadOf(await c.next("message", "srv-room"))).toEqual({ n: 1 });
    expect(await receives(other, (f) => f.room === "srv-room")).toBe(false);

    // Only B's connection, by its id.
    const u = await api(a, "POST", "/unsubscribe", { user: "dave", room: "srv-room", client: onB.welcome.clientId });
    expect(u.json).toEqual({ unsubscribedHere: 0 });
    expect(await onB.next("unsubscribed", "srv-room")).toEqual({ type: "unsubscribed", room: "srv-room", reason: "server" });
    expect((await api(a, "POST", "/publish", { room: "srv-room", payload: { n: 2 } })).status).toBe(200);
    expect(payloadOf(await onA.next("message", "srv-room"))).toEqual({ n: 2 });
    expect(await receives(onB, (f) => f.type === "message" && f.room === "srv-room")).toBe(false);
    expect((await api(a, "POST", "/unsubscribe", { user: "dave", room: "srv-room" })).json).toEqual({ unsubscribedHere: 1 });
    await eventually(async () => (await api(b, "GET", "/rooms/srv-room/presence/stats")).json.clients === 0);
  });
});
