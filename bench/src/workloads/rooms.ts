import { runStep, searchSaturation, Session } from "../harness.js";
import type { Workload } from "./types.js";

/**
 * Many rooms (the chat pattern): rooms of 2, 3 and 4 members (in turn); every member publishes to its own room, the
 * other members receive (publisher excluded). Finds the message rate at saturation and the p99 at half of it.
 */
export const roomsWorkload: Workload = {
  id: "rooms",
  title: "many rooms of 2-4 members",
  enabled: (profile) => profile.rooms > 0,
  async run(ctx) {
    const { profile } = ctx;
    const roomCount = profile.rooms;
    const sizes = Array.from({ length: roomCount }, (_, i) => 2 + (i % 3));
    const members = sizes.reduce((a, b) => a + b, 0);
    const perMessage = sizes.reduce((a, s) => a + s * (s - 1), 0) / members;
    const procs = Math.max(2, Math.ceil(members / profile.maxPerProc));
    const s = await Session.start(ctx);
    try {
      const clients = await s.addClients(procs);
      const rooms: string[][] = Array.from({ length: procs }, () => []);
      const deliveries: number[][] = Array.from({ length: procs }, () => []);
      sizes.forEach((size, i) => {
        const p = i % procs;
        for (let m = 0; m < size; m++) {
          rooms[p]!.push(`chat-${i}`);
          deliveries[p]!.push(size - 1);
        }
      });
      await s.connect(clients, rooms.map((r) => r.length));
      ctx.log(`    ${members} members in ${roomCount} rooms connected`);
      await Promise.all(clients.map((c, i) => s.subscribe(c, rooms[i]!, deliveries[i]!)));
      const step = (target: number, durationMs = profile.stepMs) =>
        runStep(s, clients, clients, target, target / perMessage, durationMs, Math.max(2000, 2 * durationMs));
      await step(ctx.searchStart(20_000) / 2, 1000); // warm-up, not reported
      const sat = await searchSaturation(step, { start: ctx.searchStart(20_000), maxSteps: profile.maxSteps, maxRate: 10_000_000, log: ctx.log });
      ctx.rememberSaturation(sat.saturation);
      const half = await step(sat.saturation / 2, profile.latencyMs);
      ctx.log(
        `    half load: p50 ${half.latency.p50.toFixed(2)} p99 ${half.latency.p99.toFixed(2)} ms${half.keptUp ? "" : " (BEHIND)"}; ` +
          `server per message: ${(half.serverCpuUsPerDelivery * perMessage).toFixed(1)} µs CPU, ` +
          `${(half.serverWritesPerDelivery * perMessage).toFixed(2)} writes, ${(half.serverReadsPerDelivery * perMessage).toFixed(2)} reads`,
      );
      return [
        {
          key: "rooms.messages",
          label: `${roomCount} rooms of 2-4: messages/s at saturation`,
          unit: "/s",
          value: sat.saturation / perMessage,
          better: "higher",
          detail: { deliveriesPerMessage: perMessage, deliveries: sat.saturation, lastGood: sat.lastGood, firstBad: sat.firstBad, steps: sat.steps },
        },
        {
          key: "rooms.cpu",
          label: `${roomCount} rooms: server CPU per message at half load`,
          unit: "µs",
          value: half.serverCpuUsPerDelivery * perMessage,
          better: "lower",
        },
        { key: "rooms.half.p50", label: `${roomCount} rooms: p50 at half load`, unit: "ms", value: half.latency.p50, better: "lower", detail: half },
        { key: "rooms.half.p99", label: `${roomCount} rooms: p99 at half load`, unit: "ms", value: half.latency.p99, better: "lower" },
      ];
    } finally {
      await s.stop();
    }
  },
};
