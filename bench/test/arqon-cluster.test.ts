import { existsSync } from "node:fs";
import { expect, it } from "vitest";
import { describeWithNats } from "@arqon/nats/testing";
import { makePayload } from "../src/payload.js";
import { procCpuMs } from "../src/proc.js";
import { arqonCluster2 } from "../src/systems/arqon-cluster.js";

describeWithNats("bench system arqon-json-workers2 (arqon serve --nats --workers 2)", () => {
  it("delivers a room message over its two workers through NATS, and counts every process of the server", async () => {
    const secret = "bench-cluster-test-secret-0123456789";
    const server = await arqonCluster2.startServer({ secret });
    const pids = server.pids!();
    try {
      // The CLI's primary, its two workers and nats-server, all alive and readable in /proc.
      expect(pids.length).toBe(4);
      for (const pid of pids) expect(procCpuMs(pid).userMs).toBeGreaterThanOrEqual(0);
      const factory = await arqonCluster2.createClientFactory({ port: server.port, secret });
      await factory.prepare(0, 8);
      const stamps: number[] = [];
      const conns = await Promise.all(Array.from({ length: 8 }, (_, i) => factory.connect(i, { onTs: (ts) => i > 0 && stamps.push(ts) })));
      await Promise.all(conns.map((c) => c.subscribe("chat-1")));
      // Eight connections over two workers (node:cluster hands them out in turn): the publisher's room mates on the
      // other worker get the message only through NATS.
      const payload = makePayload(1);
      conns[0]!.publish("chat-1", payload);
      const deadline = Date.now() + 10_000;
      while (stamps.length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(stamps.length).toBe(7);
      expect(new Set(stamps)).toEqual(new Set([JSON.parse(payload).ts]));
      const mem = await server.memory!();
      expect(mem.rss).toBeGreaterThan(3 * 20 * 1024 * 1024);
      for (const c of conns) c.close();
    } finally {
      await server.close();
    }
    // Closed: every process of it has exited.
    const gone = Date.now() + 10_000;
    while (pids.some((pid) => existsSync(`/proc/${pid}`)) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
  }, 90_000);
});
