import { LATENCY_STEP, runStep, searchSaturation, SEARCH_STEP, Session, split } from "../harness.js";
import { openIdle } from "./idle-memory.js";
import type { Metric, Workload } from "./types.js";

/**
 * Fan-out: one publisher, one room of N subscribers, ~100-byte messages. Finds the delivery rate at saturation, then
 * measures publish-to-receive latency at half of this system's own saturation and at the profile's common rate.
 */
export function fanoutWorkload(n: number): Workload {
  return {
    id: `fanout-${n}`,
    title: `fan-out, 1 room of ${n.toLocaleString("en-US")} subscribers`,
    enabled: (profile) => profile.fanoutSizes.includes(n),
    // Its deliveries target is a ratio to the floor carrying the same frame: those run whenever the default set does.
    extraSystems: ["floor-arqon-json", "floor-arqon-proto"],
    async run(ctx) {
      const { profile } = ctx;
      const s = await Session.start(ctx);
      try {
        const procs = Math.max(profile.subscriberProcs, Math.ceil(n / profile.maxPerProc));
        const subs = await s.addClients(procs);
        const [pub] = await s.addClients(1);
        const counts = split(n, procs);
        // With N equal to the profile's idle count, the subscribers are opened as the idle-memory measurement.
        const idle = profile.idleConnections === n ? await openIdle(ctx, s, subs, counts) : [];
        if (idle.length === 0) {
          const conn = await s.connect(subs, counts, { from: 1 });
          ctx.log(`    ${n} subscribers connected (${conn.ratePerSec.toFixed(0)}/s)`);
        }
        await s.connect([pub!], [1], { from: 0 });
        await Promise.all(subs.map((c, i) => s.subscribe(c, new Array<string>(counts[i]!).fill("fan"))));
        await pub!.call("setPlan", { entries: [{ conn: 0, room: "fan", deliveries: n }] });
        const step = (target: number, durationMs = profile.stepMs, length = SEARCH_STEP) =>
          runStep(s, [pub!], subs, target, target / n, durationMs, Math.max(2000, 2 * durationMs), length);
        await step(ctx.searchStart(Math.max(25_000, 10 * n)) / 2, 1000); // warm-up (JIT, buffers), not reported
        const sat = await searchSaturation(step, { start: ctx.searchStart(Math.max(25_000, 10 * n)), maxSteps: profile.maxSteps, maxRate: 20_000_000, log: ctx.log });
        ctx.rememberSaturation(sat.saturation);
        const half = await step(sat.saturation / 2, profile.latencyMs, LATENCY_STEP);
        ctx.log(
          `    half load ${Math.round(sat.saturation / 2)}/s: p50 ${half.latency.p50.toFixed(2)} p99 ${half.latency.p99.toFixed(2)} max ${half.latency.max.toFixed(1)} ms${half.keptUp ? "" : " (BEHIND)"}; ` +
            `server ${half.serverWritesPerDelivery.toFixed(3)} writes per delivery`,
        );
        const common = await step(profile.commonRate, profile.latencyMs, LATENCY_STEP);
        ctx.log(`    common ${profile.commonRate}/s: p50 ${common.latency.p50.toFixed(2)} p99 ${common.latency.p99.toFixed(2)} max ${common.latency.max.toFixed(1)} ms${common.keptUp ? "" : " (BEHIND)"}`);
        const k = `fanout.n${n}`;
        const lat = (name: string, label: string, r: typeof half, detail: unknown): Metric[] => [
          { key: `${k}.${name}.p50`, label: `${label} p50`, unit: "ms", value: r.latency.p50, better: "lower", detail },
          { key: `${k}.${name}.p99`, label: `${label} p99`, unit: "ms", value: r.latency.p99, better: "lower" },
          { key: `${k}.${name}.max`, label: `${label} max`, unit: "ms", value: r.latency.max, better: "lower" },
        ];
        return [
          {
            key: `${k}.deliveries`,
            label: `fan-out N=${n} deliveries/s at saturation`,
            unit: "/s",
            value: sat.saturation,
            better: "higher",
            detail: { lastGood: sat.lastGood, firstBad: sat.firstBad, steps: sat.steps },
          },
          {
            key: `${k}.cpu`,
            label: `fan-out N=${n} server CPU per delivery at ${profile.commonRate / 1000}k/s`,
            unit: "µs",
            value: common.serverCpuUsPerDelivery,
            better: "lower",
          },
          {
            key: `${k}.cpu_half`,
            label: `fan-out N=${n} server CPU per delivery at half load`,
            unit: "µs",
            value: half.serverCpuUsPerDelivery,
            better: "lower",
          },
          ...lat("half", `fan-out N=${n} latency at half load`, half, half),
          ...lat("common", `fan-out N=${n} latency at ${profile.commonRate / 1000}k/s`, common, common),
          ...idle,
        ];
      } finally {
        await s.stop();
      }
    },
  };
}
