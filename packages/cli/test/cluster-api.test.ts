import { beforeAll, expect, it } from "vitest";
import { ErrorCode } from "@arqon/core";
import { describeWithNats } from "@arqon/nats/testing";
import type { TestGateway } from "@arqon/server/testing";
import { gatewayPair } from "./helpers/gateway-pair.js";

const SECRET = "cluster-api-secret-0123456789abcdef0123";
const KEY = "cluster-api-operator-key-0123456789abc";

// Response bodies are read field by field in the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** Two gateways sharing one real nats-server: the room list, info and history removal answer for the whole cluster. */
describeWithNats("server API across two gateways on NATS", () => {
  const pair = gatewayPair({ secret: SECRET, operatorKeys: [KEY] });
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    ({ a, b } = pair);
    // Each node knows the other once its first heartbeat arrived.
    for (const [gw, other] of [[a, b], [b, a]] as const) {
      const deadline = Date.now() + 5000;
      while (!gw.server.control.clustered || !(await api(gw, "GET", "/api/v1/info")).json.nodes.some((n: Json) => n.id === other.server.nodeId)) {
        if (Date.now() > deadline) throw new Error("the nodes did not find each other within 5 s");
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });

  async function api(gw: TestGateway, method: string, path: string, auth: string | null = KEY): Promise<{ status: number; json: Json }> {
    const headers: Record<string, string> = {};
    if (auth !== null) headers.authorization = `Bearer ${auth}`;
    const res = await fetch(`${gw.httpUrl}${path}`, { method, headers });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  it("rooms - one list over both nodes: subscribers summed, nodes counted, sorted, paged with a cursor", async () => {
    const onA = await a.client({ tenant: "t-rooms", sub: "alice" });
    const onB = await b.client({ tenant: "t-rooms", sub: "bob" });
    const onB2 = await b.client({ tenant: "t-rooms", sub: "carol" });
    const stranger = await b.client({ tenant: "t-other", sub: "eve" });
    for (const room of ["both", "only-a", "x:1"]) await onA.subscribe(room);
    for (const room of ["both", "only-b", "x:2"]) await onB.subscribe(room);
    await onB2.subscribe("both");
    await stranger.subscribe("both");
    const expected = [
      { room: "both", subscribers: 3, nodes: 2 },
      { room: "only-a", subscribers: 1, nodes: 1 },
      { room: "only-b", subscribers: 1, nodes: 1 },
      { room: "x:1", subscribers: 1, nodes: 1 },
      { room: "x:2", subscribers: 1, nodes: 1 },
    ];
    for (const gw of [a, b]) {
      const r = await api(gw, "GET", "/api/v1/tenants/t-rooms/rooms");
      expect(r).toEqual({ status: 200, json: { rooms: expected } });
      const paged: Json[] = [];
      let cursor: string | undefined;
      do {
        const page = await api(gw, "GET", `/api/v1/tenants/t-rooms/rooms?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
        paged.push(...page.json.rooms);
        cursor = page.json.next;
      } while (cursor);
      expect(paged).toEqual(expected);
      expect((await api(gw, "GET", "/api/v1/tenants/t-rooms/rooms?prefix=x:")).json.rooms.map((x: Json) => x.room)).toEqual(["x:1", "x:2"]);
      expect((await api(gw, "GET", "/api/v1/tenants/t-other/rooms")).json.rooms).toEqual([{ room: "both", subscribers: 1, nodes: 1 }]);
    }
    // Who may call it, on a node where the tenant has no local room at all (node A has no t-other room).
    const allowed = [KEY, await a.token({ tenant: "t-other", sub: "root", role: "admin" }), await a.token({ tenant: "t-other", sub: "app", role: "server" })];
    for (const auth of allowed) expect((await api(a, "GET", "/api/v1/tenants/t-other/rooms", auth)).json.rooms).toEqual([{ room: "both", subscribers: 1, nodes: 1 }]);
    const refused: Array<[string | null, number, string]> = [
      [await a.token({ tenant: "t-rooms", sub: "root", role: "admin" }), 403, ErrorCode.FORBIDDEN],
      [await a.token({ tenant: "t-other", sub: "eve" }), 403, ErrorCode.FORBIDDEN],
      [null, 401, ErrorCode.AUTH_MISSING],
    ];
    for (const [auth, status, code] of refused) {
      const r = await api(a, "GET", "/api/v1/tenants/t-other/rooms", auth);
      expect([r.status, r.json.error.code]).toEqual([status, code]);
    }
  });

  it("info - each node lists itself and the other with its numbers; tenant info shows one tenant's numbers per node", async () => {
    const c1 = await a.client({ tenant: "t-info", sub: "alice" });
    await c1.subscribe("lobby");
    const c2 = await b.client({ tenant: "t-info", sub: "bob" });
    await c2.subscribe("lobby");
    await c2.subscribe("side");
    const r = await api(a, "GET", "/api/v1/info");
    expect(r.status).toBe(200);
    expect(r.json.clustered).toBe(true);
    const [self, other] = r.json.nodes;
    expect(self).toMatchObject({ id: a.server.nodeId, self: true, version: expect.any(String), connections: a.server.connectionCount, status: "ok" });
    expect(self.backends).toMatchObject({ bus: "NatsBus", history: "JetStreamHistoryStore" });
    expect(other).toMatchObject({ id: b.server.nodeId, self: false, connections: b.server.connectionCount, lastHeartbeat: expect.any(Number), uptimeMs: expect.any(Number) });
    expect(Date.now() - other.lastHeartbeat).toBeLessThan(5000);

    const admin = await b.token({ tenant: "t-info", sub: "root", role: "admin" });
    for (const auth of [KEY, admin]) {
      const t = await api(b, "GET", "/api/v1/tenants/t-info/info", auth);
      expect(t.status).toBe(200);
      expect(t.json.tenant).toBe("t-info");
      expect([t.json.connections, t.json.subscribers]).toEqual([2, 3]);
      const byId = Object.fromEntries(t.json.nodes.map((n: Json) => [n.id, n]));
      expect(byId[a.server.nodeId]).toEqual({ id: a.server.nodeId, connections: 1, rooms: 1, subscribers: 1 });
      expect(byId[b.server.nodeId]).toEqual({ id: b.server.nodeId, connections: 1, rooms: 2, subscribers: 2 });
    }
    const refused: Array<[string | null, number, string]> = [
      [await b.token({ tenant: "t-info", sub: "app", role: "server" }), 403, ErrorCode.FORBIDDEN],
      [await b.token({ tenant: "t-other", sub: "root", role: "admin" }), 403, ErrorCode.FORBIDDEN],
      [await b.token({ tenant: "t-info", sub: "bob" }), 403, ErrorCode.FORBIDDEN],
      [null, 401, ErrorCode.AUTH_MISSING],
    ];
    for (const [auth, status, code] of refused) {
      const t = await api(b, "GET", "/api/v1/tenants/t-info/info", auth);
      expect([t.status, t.json.error.code]).toEqual([status, code]);
      const i = await api(b, "GET", "/api/v1/info", auth);
      expect([i.status, i.json.error.code]).toEqual([status, code]);
    }
    expect((await api(b, "GET", "/api/v1/info", admin)).json.error.code).toBe(ErrorCode.FORBIDDEN);
  });

  it("history remove on node A: node B reads nothing and refuses recovery from an old position; the room starts over at offset 1", async () => {
    const pub = await a.client({ tenant: "t-hist", sub: "alice" });
    const sub = await b.client({ tenant: "t-hist", sub: "bob" });
    await sub.subscribe("feed");
    let last = { offset: 0, epoch: "" };
    for (let n = 1; n <= 3; n++) {
      const ack = await pub.publish("feed", { n });
      last = { offset: ack.offset!, epoch: ack.epoch! };
    }
    expect((await api(b, "GET", "/api/v1/tenants/t-hist/rooms/feed/history")).json.messages).toHaveLength(3);
    const server = await a.token({ tenant: "t-hist", sub: "app", role: "server" });
    const r = await api(a, "DELETE", "/api/v1/tenants/t-hist/rooms/feed/history", server);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ removed: true, position: { offset: 0, epoch: expect.any(String) } });
    expect(r.json.position.epoch).not.toBe(last.epoch);
    const read = await api(b, "GET", "/api/v1/tenants/t-hist/rooms/feed/history");
    expect(read.json).toEqual({ messages: [], position: r.json.position });
    // A client resubscribing on B from its old position is told its position is gone, never given a gap.
    const late = await b.client({ tenant: "t-hist", sub: "carol" });
    const resumed = await late.request({ type: "subscribe", room: "feed", since: last });
    expect(resumed).toMatchObject({ type: "subscribed", recovered: false });
    const next = await pub.publish("feed", { n: 4 });
    expect([next.offset, next.epoch]).toEqual([1, r.json.position.epoch]);
    const audit = await api(a, "GET", "/api/v1/tenants/t-hist/audit");
    expect(audit.json.records[0]).toMatchObject({ action: "room.history.delete", target: "feed", result: "ok", actor: { kind: "tenant_server", sub: "app" } });
    for (const [auth, status] of [[await a.token({ tenant: "t-other", sub: "app", role: "server" }), 403], [await a.token({ tenant: "t-hist", sub: "bob" }), 403], [null, 401]] as const) {
      expect((await api(b, "DELETE", "/api/v1/tenants/t-hist/rooms/feed/history", auth)).status).toBe(status);
    }
  });

  it("registry - a node that closes leaves the other's node list at once", async () => {
    const c = await pair.node("api-c");
    await expect.poll(async () => (await api(a, "GET", "/api/v1/info")).json.nodes.length, { timeout: 5000 }).toBe(3);
    await c.close();
    await expect.poll(async () => (await api(a, "GET", "/api/v1/info")).json.nodes.map((n: Json) => n.id).sort(), { timeout: 2000 }).toEqual(
      [a.server.nodeId, b.server.nodeId].sort(),
    );
  });
});
