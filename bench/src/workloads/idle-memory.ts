import { sleep } from "../clock.js";
import { Session, split } from "../harness.js";
import type { Workload } from "./types.js";

/**
 * Idle memory: RSS and V8 heap of the server process, after full GCs, with N idle connections (connected and ready,
 * no room) minus the same figures of the freshly started empty server, divided by N.
 */
export const idleMemoryWorkload: Workload = {
  id: "idle-memory",
  title: "idle memory per connection",
  enabled: (profile) => profile.idleConnections > 0,
  async run(ctx) {
    const n = ctx.profile.idleConnections;
    const s = await Session.start(ctx);
    try {
      const procs = Math.max(2, Math.ceil(n / ctx.profile.maxPerProc));
      const clients = await s.addClients(procs);
      await sleep(300);
      const base = await s.serverMemory();
      await s.connect(clients, split(n, procs));
      await sleep(1000);
      const after = await s.serverMemory();
      const rss = (after.rss - base.rss) / n / 1024;
      const heap = (after.heapUsed - base.heapUsed) / n / 1024;
      ctx.log(`    ${n} idle: RSS ${rss.toFixed(2)} KB/conn, heap ${heap.toFixed(2)} KB/conn`);
      return [
        { key: "idle.rss", label: `idle RSS per connection (${n.toLocaleString("en-US")} conns)`, unit: "KB", value: rss, better: "lower", detail: { base, after, n } },
        { key: "idle.heap", label: `idle heap per connection`, unit: "KB", value: heap, better: "lower" },
      ];
    } finally {
      await s.stop();
    }
  },
};
