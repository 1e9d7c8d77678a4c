import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { parseJsonBytes, roomKey, type Frame } from "@arqon/core";
import { mintToken, startGateway, TestClient, type TestGateway } from "@arqon/server/testing";
import WebSocket from "ws";
import { describeWithNats, startNatsServer, type NatsServerHandle } from "@arqon/nats/testing";
import { connectNatsBackends } from "../src/index.js";

const SECRET = "cluster-test-secret-0123456789abcdef";
const n = (f: Frame) => (parseJsonBytes(f.payload!) as { n: number }).n;
const userIds = (f: Frame) => (f.members ?? []).map((m) => m.userId).sort();

describeWithNats("cluster - gateways joined by NATS", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function nats(): Promise<NatsServerHandle> {
    const server = await startNatsServer();
    cleanups.push(() => server.stop());
    return server;
  }

  async function gateway(url: string, name: string, leaseMs = 1000): Promise<TestGateway> {
    const backends = await connectNatsBackends({ servers: url, name, presence: { leaseMs } });
    cleanups.push(() => backends.close());
    const { link: _link, status: _status, onStatus: _onStatus, close: _close, ...stores } = backends;
    const gw = await startGateway({ secret: SECRET, ...stores, presenceOptions: { coalesceMs: 0 } });
    cleanups.push(() => gw.close());
    return gw;
  }

  it("cluster - a client on node A publishes; clients on B and C receive in order; presence converges on all nodes", async () => {
    const { url } = await nats();
    const [a, b, c] = [await gateway(url, "a"), await gateway(url, "b"), await gateway(url, "c")];
    const alice = await a.client({ sub: "alice" });
    const bob = await b.client({ sub: "bob" });
    const carol = await c.client({ sub: "carol" });
    for (const client of [alice, bob, carol]) expect((await client.subscribe("lobby")).type).toBe("subscribed");
    for (let i = 1; i <= 30; i++) expect((await alice.publish("lobby", { n: i })).type).toBe("ack");
    for (const client of [bob, carol]) {
      const got = await client.collect(30, (f) => f.type === "message" && f.room === "lobby");
      expect(got.map(n)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(got.map((f) => f.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(new Set(got.map((f) => f.epoch)).size).toBe(1);
    }
    for (const client of [alice, bob, carol]) {
      const list = await client.request({ type: "presence_list", room: "lobby" });
      expect(userIds(list)).toEqual(["alice", "bob", "carol"]);
    }
    // Joins on B and C reached A's client as presence events.
    const seen = new Set<string>();
    for (let i = 0; i < 10 && !(seen.has("bob") && seen.has("carol")); i++) {
      const f = await alice.waitFor((x) => x.type.startsWith("presence_") && x.room === "lobby");
      for (const m of [...(f.members ?? []), ...(f.joined ?? [])]) if (m.userId) seen.add(m.userId);
    }
    expect([...seen].filter((u) => u !== "alice").sort()).toEqual(["bob", "carol"]);
  }, 30_000);

  it("cluster - while NATS is down a publish gets ARQ_BACKEND_UNAVAILABLE (never an ack); the gateway recovers by itself", async () => {
    const server = await nats();
    const a = await gateway(server.url, "a");
    const alice = await a.client({ sub: "alice" });
    await alice.subscribe("lobby");
    expect((await alice.publish("lobby", { n: 1 })).type).toBe("ack");
    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    const refused = await alice.publish("lobby", { n: 2 }, { idempotencyKey: "k2" });
    expect(refused.type).toBe("error");
    expect(refused.error?.code).toBe("ARQ_BACKEND_UNAVAILABLE");
    await server.start();
    let ack: Frame | undefined;
    for (let i = 0; i < 100 && ack?.type !== "ack"; i++) {
      ack = await alice.publish("lobby", { n: 2 }, { idempotencyKey: "k2" });
      if (ack.type !== "ack") await new Promise((r) => setTimeout(r, 50));
    }
    expect(ack).toMatchObject({ type: "ack", offset: 2 });
    const again = await alice.publish("lobby", { n: 2 }, { idempotencyKey: "k2" });
    expect(again).toMatchObject({ type: "ack", offset: 2 });
    const page = await a.server.history.read(roomKey("acme", "lobby"), {});
    expect(page.messages.map(n)).toEqual([1, 2]);
  }, 30_000);

  it("cluster - kill -9 of node B: its members leave everywhere within the lease; its client recovers on A", async () => {
    const { url } = await nats();
    const leaseMs = 1000;
    const a = await gateway(url, "a", leaseMs);
    const c = await gateway(url, "c", leaseMs);
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions", "arqon-source", fileURLToPath(new URL("./fixtures/gateway-node.ts", import.meta.url))],
      { env: { ...process.env, ARQON_NATS_URL: url, ARQON_SECRET: SECRET, ARQON_LEASE_MS: String(leaseMs), ARQON_LOG_LEVEL: "silent" }, stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error("child gateway did not start")), 15_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      child.once("exit", (code) => reject(new Error(`child gateway exited with ${code}`)));
    });

    const alice = await a.client({ sub: "alice" });
    const carol = await c.client({ sub: "carol" });
    await alice.subscribe("lobby");
    await carol.subscribe("lobby");
    const token = await mintToken(SECRET, { sub: "bob" });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } });
    const bob = new TestClient(ws, "json");
    cleanups.push(() => bob[Symbol.asyncDispose]());
    await bob.next("welcome", undefined, { timeoutMs: 5000 });
    expect((await bob.subscribe("lobby")).type).toBe("subscribed");
    for (let i = 1; i <= 3; i++) await alice.publish("lobby", { n: i });
    const before = await bob.collect(3, (f) => f.type === "message");
    expect(before.map(n)).toEqual([1, 2, 3]);
    const last = before[2]!;
    expect(userIds(await alice.request({ type: "presence_list", room: "lobby" }))).toEqual(["alice", "bob", "carol"]);

    const killedAt = Date.now();
    child.kill("SIGKILL");
    await exited;
    await bob.closed;
    for (let i = 4; i <= 8; i++) await alice.publish("lobby", { n: i });

    // B's member leaves on A and C with reason "expired", within the lease (plus one sweep interval).
    for (const client of [alice, carol]) {
      await client.waitFor(
        (f) =>
          (f.type === "presence_leave" && (f.members ?? []).some((m) => m.userId === "bob")) ||
          (f.type === "presence_diff" && (f.left ?? []).some((m) => m.userId === "bob")),
        { timeoutMs: leaseMs * 3 },
      );
    }
    const leftAfter = Date.now() - killedAt;
    expect(leftAfter).toBeLessThan(leaseMs * 2.5);
    for (const client of [alice, carol]) {
      expect(userIds(await client.request({ type: "presence_list", room: "lobby" }))).toEqual(["alice", "carol"]);
    }
    expect((await a.server.presence.list(roomKey("acme", "lobby"))).map((m) => m.userId).sort()).toEqual(["alice", "carol"]);

    // Bob reconnects to A and recovers exactly what he missed.
    const bob2 = await a.client({ sub: "bob" });
    const sub = await bob2.subscribe("lobby", { since: { offset: last.offset!, epoch: last.epoch! } });
    expect(sub).toMatchObject({ type: "subscribed", recovered: true, offset: 8, epoch: last.epoch });
    const missed = await bob2.collect(5, (f) => f.type === "message");
    expect(missed.map(n)).toEqual([4, 5, 6, 7, 8]);
    expect(missed.map((f) => f.offset)).toEqual([4, 5, 6, 7, 8]);
    console.log(`[cluster] kill -9 → leave seen on A and C after ${leftAfter} ms (lease ${leaseMs} ms)`);
  }, 40_000);
});
