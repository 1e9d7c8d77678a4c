import { sleep } from "../clock.js";
import { Session, split } from "../harness.js";
import type { Workload } from "./types.js";

/**
 * Connection setup: handshakes per second from two client processes, 64 in flight each, until every connection is
 * ready (ArqonBus: HTTP upgrade with JWT verification, then `welcome`; Socket.IO: namespace connected; floor: open).
 * Tokens are minted before the clock starts. A warm-up of 1,000 connections runs first and is closed, and the server
 * is given half a second to handle those closes, before the clock starts.
 */
const WARMUP = 1000;
const SETTLE_MS = 500;
export const connectWorkload: Workload = {
  id: "connect",
  title: "connection setup",
  enabled: (profile) => profile.setupConnections > 0,
  async run(ctx) {
    const n = ctx.profile.setupConnections;
    const s = await Session.start(ctx);
    try {
      const clients = await s.addClients(2);
      // Warm-up: enough handshakes for the JIT to settle on every system's hot path; its closes are handled by the
      // server before the clock starts (with 200 and no pause, both counted against the measured window).
      await s.connect(clients, [WARMUP / 2, WARMUP / 2], { from: 0, concurrency: 64 });
      await Promise.all(clients.map((c) => c.call("closeAll")));
      await sleep(SETTLE_MS);
      await s.server.call("cpu");
      const r = await s.connect(clients, split(n, 2), { from: WARMUP, concurrency: 64 });
      const cpu = await s.server.call<{ cpuMs: number; userMs: number; systemMs: number }>("cpu");
      const cpuPer = (cpu.cpuMs * 1000) / r.opened;
      const userPer = (cpu.userMs * 1000) / r.opened;
      ctx.log(
        `    ${n} connections: ${r.ratePerSec.toFixed(0)} handshakes/s, server CPU ${cpuPer.toFixed(0)} µs each ` +
          `(user ${userPer.toFixed(0)}, kernel ${(cpuPer - userPer).toFixed(0)})`,
      );
      return [
        { key: "connect.rate", label: `connection setup (${n.toLocaleString("en-US")} conns)`, unit: "/s", value: r.ratePerSec, better: "higher", detail: r },
        { key: "connect.cpu", label: "connection setup: server CPU per handshake", unit: "µs", value: cpuPer, better: "lower" },
      ];
    } finally {
      await s.stop();
    }
  },
};
