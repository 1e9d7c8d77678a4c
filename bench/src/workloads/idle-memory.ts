import path from "node:path";
import { sleep } from "../clock.js";
import type { Child } from "../ipc.js";
import { Session, split } from "../harness.js";
import type { Metric, Workload, WorkloadContext } from "./types.js";

/**
 * Idle memory: RSS of the server process, after full GCs, with N idle connections (connected and ready, no room)
 * minus the RSS of the freshly started empty server, divided by N. Also reported: RSS over the empty server after a
 * warm-up (400 connections opened and closed: JIT code, heap growth and allocator arenas of the handshake path in the
 * baseline), and V8 heap used over that warmed-up baseline. Opening the N connections (64 in flight per client process,
 * after the warm-up) is also the connection-setup measurement: handshakes/s and server CPU per handshake.
 *
 * When a fan-out workload has the same N, it opens its subscribers through `openIdle` and reports these figures, and
 * this workload does not run on its own (one session of 10,000 connections per system instead of two).
 */
/** Warm-up, baseline, N timed connections on `clients` (split evenly), memory after: the idle and setup figures. */
export async function openIdle(ctx: WorkloadContext, s: Session, clients: Child[], counts: number[]): Promise<Metric[]> {
  const n = counts.reduce((a, b) => a + b, 0);
  // Warm-up: open and close a few hundred connections so JIT code, young-generation growth and allocator
  // arenas from the handshake path are in the warmed-up baseline.
  await sleep(300);
  const fresh = await s.serverMemory();
  await s.connect(clients, clients.map(() => 200), { from: 1_000_000, concurrency: 64 });
  await Promise.all(clients.map((c) => c.call("closeAll")));
  await sleep(500);
  const snapDir = process.env.ARQON_BENCH_HEAPSNAP;
  const base = await s.serverMemory();
  if (snapDir) await s.server.call("snapshot", { file: path.join(snapDir, `${ctx.system.id}-base.heapsnapshot`) }, 120_000);
  await s.server.call("cpu");
  const setup = await s.connect(clients, counts, { from: 1, concurrency: 64 });
  const setupCpu = await s.server.call<{ cpuMs: number }>("cpu");
  const cpuPer = (setupCpu.cpuMs * 1000) / setup.opened;
  ctx.log(`    ${n} connections: ${setup.ratePerSec.toFixed(0)} handshakes/s, server CPU ${cpuPer.toFixed(0)} µs each`);
  await sleep(1000);
  const after = await s.serverMemory();
  if (snapDir) await s.server.call("snapshot", { file: path.join(snapDir, `${ctx.system.id}-${n}.heapsnapshot`) }, 120_000);
  const rss = (after.rss - base.rss) / n / 1024;
  const heap = (after.heapUsed - base.heapUsed) / n / 1024;
  const rssFresh = (after.rss - fresh.rss) / n / 1024;
  ctx.log(`    ${n} idle: RSS ${rssFresh.toFixed(2)} KB/conn (${rss.toFixed(2)} over the warmed-up server), heap used ${heap.toFixed(2)} KB/conn`);
  return [
    { key: "idle.rss", label: `idle RSS per connection (${n.toLocaleString("en-US")} conns)`, unit: "KB", value: rssFresh, better: "lower", detail: { fresh, base, after, n } },
    { key: "idle.rss_warm", label: "idle RSS per connection over a warmed-up empty server", unit: "KB", value: rss, better: "lower" },
    { key: "idle.heap", label: "idle heap per connection", unit: "KB", value: heap, better: "lower" },
    { key: "connect.rate", label: `connection setup (${n.toLocaleString("en-US")} conns)`, unit: "/s", value: setup.ratePerSec, better: "higher", detail: setup },
    { key: "connect.cpu", label: "connection setup: server CPU per handshake", unit: "µs", value: cpuPer, better: "lower" },
  ];
}

export const idleMemoryWorkload: Workload = {
  id: "idle-memory",
  title: "idle memory per connection",
  enabled: (profile) => profile.idleConnections > 0 && !profile.fanoutSizes.includes(profile.idleConnections),
  async run(ctx) {
    const n = ctx.profile.idleConnections;
    const s = await Session.start(ctx);
    try {
      const procs = Math.max(2, Math.ceil(n / ctx.profile.maxPerProc));
      const clients = await s.addClients(procs);
      return await openIdle(ctx, s, clients, split(n, procs));
    } finally {
      await s.stop();
    }
  },
};
