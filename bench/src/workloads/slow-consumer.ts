import { mkdirSync } from "node:fs";
import path from "node:path";
import { now, sleep } from "../clock.js";
import { runStep, Session, split, type StepResult } from "../harness.js";
import { mergeHistograms, summarize, type HistogramData } from "../hist.js";
import type { Child } from "../ipc.js";
import type { Metric, Workload } from "./types.js";

/** Published messages per second (one publisher). */
export const SLOW_RATE = 1000;
/** Payload of each message: ~6 KB of JSON, so the publisher sends ~6 MB/s. */
export const SLOW_PAYLOAD_BYTES = 6 * 1024;
/** Subscribers that read normally, whose latency is measured (two client processes). */
export const SLOW_NORMAL_SUBSCRIBERS = 4;
/**
 * ArqonBus's `limits.maxPendingBytes` in this workload: the shipped default (4 MiB), through the adapter's
 * ARQON_BENCH_MAX_PENDING_BYTES. The adapter raises it to 64 MiB for the saturation searches; here the slow-consumer
 * cut is part of what is measured, so it runs as shipped.
 */
export const SLOW_MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** How long the last round's paused reader is given to read what it still gets once resumed. */
const RESUME_MS = 3000;
/** Pause between rounds, after the paused reader is dropped, so its teardown is not in the next window. */
const SETTLE_MS = 500;
const TIMELINE_SLICE_MS = 100;
const ROOM = "slow";

/** The six slowest slices of a timeline, in time order: "+1.5: 64 ms, …". */
function slowest(t: Array<{ atS: number; maxMs: number }>): string {
  const top = [...t].sort((a, b) => b.maxMs - a.maxMs).slice(0, 6).sort((a, b) => a.atS - b.atS);
  return top.length ? top.map((p) => `+${p.atS.toFixed(1)}: ${p.maxMs.toFixed(0)} ms`).join(", ") : "-";
}

/** The normal subscribers' timelines merged: per slice, seconds after `origin` and the largest latency (ms). */
export function mergeTimelines(parts: Array<{ from: number; max: number[] }>, origin: number): Array<{ atS: number; maxMs: number }> {
  const slices = new Map<number, number>();
  for (const p of parts)
    p.max.forEach((v, i) => {
      const at = Math.round((p.from + i * TIMELINE_SLICE_MS - origin) / TIMELINE_SLICE_MS);
      slices.set(at, Math.max(slices.get(at) ?? 0, v));
    });
  return [...slices.entries()].sort((a, b) => a[0] - b[0]).map(([at, maxMs]) => ({ atS: (at * TIMELINE_SLICE_MS) / 1000, maxMs }));
}

interface ServerWatch {
  gc: Array<{ at: number; ms: number; kind: string }>;
  loop: { p50: number; p99: number; max: number };
}

interface PauseReport {
  pausedAt: number;
  serverLeftAt?: number;
  serverState: string;
  maxServerSendQueue: number;
  maxClientRecvQueue: number;
  closedAt?: number;
}

/** A step's figures without its histogram (kept for merging, too large for the results JSON). */
function lean(r: StepResult): Omit<StepResult, "hist"> {
  const { hist: _hist, ...rest } = r;
  return rest;
}

/**
 * Slow-consumer isolation: one room, one publisher sending SLOW_RATE messages/s of ~6 KB (~6 MB/s),
 * SLOW_NORMAL_SUBSCRIBERS subscribers that read normally, and — in the second half of each round — one more that
 * stops reading: its client process pauses the connection's TCP socket (`(ws as any)._socket.pause()`), so its kernel
 * receive buffer fills, its window closes, and whatever the server sends it backs up in the server.
 *
 * Each round (profile.slowConsumer.rounds, in one session): the normal subscribers' publish-to-receive latency over
 * `withoutMs` without a paused reader, then a fresh reader joins the room, stops reading, and the latency is measured
 * over `withMs`; then that reader is dropped (its side terminates the socket) and the server gets SETTLE_MS. Without
 * and with alternate so the neighbours' load falls on both; the latencies of all "without" windows are merged, and of
 * all "with" windows, and the figure is p99(with) / p99(without).
 *
 * The paused reader's two TCP ends are watched in /proc/net/tcp: when the server's end leaves ESTABLISHED the server
 * has closed it (ArqonBus: `close(4000)` once maxPendingBytes are queued, then `terminate()` after its close
 * timeout, 5 s — the `withMs` window covers both; the floor and Socket.IO do not cut). The last round's reader is
 * resumed for up to RESUME_MS before it is dropped: what it still reads, and whether its socket closes, are recorded.
 */
export const slowConsumerWorkload: Workload = {
  id: "slow-consumer",
  title: "slow-consumer isolation (one paused reader in a room of 6 KB messages)",
  enabled: (profile) => profile.slowConsumer.rounds > 0,
  async run(ctx) {
    const { rounds, withoutMs, withMs } = ctx.profile.slowConsumer;
    // ARQON_BENCH_SLOW_MAX_PENDING_BYTES: another cap for this workload (an experiment; the figures use the default).
    const maxPending = Number(process.env.ARQON_BENCH_SLOW_MAX_PENDING_BYTES) || SLOW_MAX_PENDING_BYTES;
    const s = await Session.start(ctx, { serverEnv: { ARQON_BENCH_MAX_PENDING_BYTES: String(maxPending) } });
    try {
      const subs = await s.addClients(2);
      const [pub] = await s.addClients(1);
      const [slow] = await s.addClients(1);
      const counts = split(SLOW_NORMAL_SUBSCRIBERS, subs.length);
      await s.connect(subs, counts, { from: 1 });
      await s.connect([pub!], [1], { from: 0 });
      await Promise.all(subs.map((c, i) => s.subscribe(c, new Array<string>(counts[i]!).fill(ROOM))));
      await pub!.call("setPlan", { entries: [{ conn: 0, room: ROOM, deliveries: SLOW_NORMAL_SUBSCRIBERS }] });
      const step = (ms: number): Promise<StepResult> =>
        runStep(s, [pub!], subs, SLOW_RATE * SLOW_NORMAL_SUBSCRIBERS, SLOW_RATE, ms, Math.max(3000, ms), { minMessages: 0, maxMs: ms }, {
          payloadBytes: SLOW_PAYLOAD_BYTES,
          keepHistogram: true,
        });
      // ARQON_BENCH_SLOW_PROF=<dir>: a CPU profile of the server over each window (Node servers only), to compare
      // the windows with and without the paused reader (`npm run prof -w @arqon/bench -- with without --diff`).
      const nodeServer = ctx.system.id !== "centrifugo";
      const profDir = process.env.ARQON_BENCH_SLOW_PROF && ctx.system.id !== "centrifugo" ? process.env.ARQON_BENCH_SLOW_PROF : undefined;
      if (profDir) mkdirSync(profDir, { recursive: true });
      /** A step with the normal subscribers' latency timeline (largest latency per slice, from `origin`). */
      const timedStep = async (ms: number, name: string, origin?: number) => {
        await Promise.all(subs.map((c: Child) => c.call("timeline", { on: true, sliceMs: TIMELINE_SLICE_MS })));
        if (profDir) await s.server.call("profile", { action: "start", intervalUs: 200 });
        if (nodeServer) await s.server.call("watch", { action: "start" });
        const start = now();
        const r = await step(ms);
        const watched = nodeServer ? await s.server.call<ServerWatch>("watch", { action: "stop" }) : undefined;
        const file = profDir ? path.join(profDir, `${ctx.system.id}-run${ctx.run + 1}-${name}.cpuprofile`) : undefined;
        if (file) await s.server.call("profile", { action: "stop", file }, 60_000);
        const lines = await Promise.all(subs.map((c) => c.call<{ from: number; max: number[] }>("timeline", { on: false })));
        const o = origin ?? start;
        const server = watched && {
          loop: watched.loop,
          gcMs: watched.gc.reduce((a, g) => a + g.ms, 0),
          gcCount: watched.gc.length,
          /** The longest GC pauses, seconds from the window's origin. */
          gcLongest: [...watched.gc]
            .sort((a, b) => b.ms - a.ms)
            .slice(0, 5)
            .map((g) => ({ atS: (g.at - o) / 1000, ms: g.ms, kind: g.kind })),
        };
        return { r, timeline: mergeTimelines(lines, o), profile: file, server };
      };
      const serverText = (w: Awaited<ReturnType<typeof timedStep>>["server"]): string =>
        w
          ? `GC ${w.gcCount} pauses, ${w.gcMs.toFixed(0)} ms, longest ${w.gcLongest
              .slice(0, 3)
              .map((g) => `+${g.atS.toFixed(1)}: ${g.ms.toFixed(1)} ms ${g.kind}`)
              .join(", ")}; event loop delay p99 ${w.loop.p99.toFixed(1)} max ${w.loop.max.toFixed(1)} ms`
          : "-";
      await step(1000); // warm-up (JIT, socket buffers), not reported
      const withoutHists: HistogramData[] = [];
      const withHists: HistogramData[] = [];
      const perRound: unknown[] = [];
      let cuts = 0;
      const cutTimes: number[] = [];
      let resumed: { receivedAfterResume: number; closedAt?: number; destroyed: boolean; receivedBefore: number; published: number } | undefined;
      for (let round = 0; round < rounds; round++) {
        const without = await timedStep(withoutMs, `round${round + 1}-without`);
        // The paused reader: connected alone (so its client process knows which TCP socket is its own), joins the
        // room, stops reading.
        await s.connect([slow!], [1], { from: 1000 + round });
        await s.subscribe(slow!, [...new Array<null>(round).fill(null), ROOM]);
        const memBefore = await s.server.call<{ rss: number }>("mem", {}, 30_000);
        const countAtPause = (await slow!.call<{ received: number }>("count")).received;
        const paused = await slow!.call<{ pausedAt: number }>("pauseReading", { conn: round, watchMs: 100 });
        const withSlow = await timedStep(withMs, `round${round + 1}-with`, paused.pausedAt);
        const watch = await slow!.call<PauseReport>("pauseReport", { conn: round });
        const memAfter = await s.server.call<{ rss: number }>("mem", {}, 30_000);
        const cutS = watch.serverLeftAt !== undefined ? (watch.serverLeftAt - paused.pausedAt) / 1000 : undefined;
        if (cutS !== undefined) {
          cuts++;
          cutTimes.push(cutS);
        }
        withoutHists.push(without.r.hist!);
        withHists.push(withSlow.r.hist!);
        const last = round === rounds - 1;
        if (last) {
          const before = await slow!.call<{ received: number }>("count");
          const r = await slow!.call<{ receivedAfterResume: number; closedAt?: number; destroyed: boolean }>(
            "resumeReading",
            { conn: round, forMs: RESUME_MS },
            RESUME_MS + 30_000,
          );
          resumed = { ...r, receivedBefore: before.received - countAtPause, published: withSlow.r.sent };
        }
        await slow!.call("drop", { conn: round });
        const mb = (b: number) => (b / 2 ** 20).toFixed(1);
        ctx.log(
          `    round ${round + 1}: without p50 ${without.r.latency.p50.toFixed(2)} p99 ${without.r.latency.p99.toFixed(2)} max ${without.r.latency.max.toFixed(1)} ms` +
            `${without.r.keptUp ? "" : " (BEHIND)"}; with the paused reader p50 ${withSlow.r.latency.p50.toFixed(2)} p99 ${withSlow.r.latency.p99.toFixed(2)} ` +
            `max ${withSlow.r.latency.max.toFixed(1)} ms${withSlow.r.keptUp ? "" : " (BEHIND)"}; server CPU per delivery ` +
            `${without.r.serverCpuUsPerDelivery.toFixed(1)} -> ${withSlow.r.serverCpuUsPerDelivery.toFixed(1)} µs; machine ` +
            `${(without.r.machineBusy * 100).toFixed(0)}% / ${(withSlow.r.machineBusy * 100).toFixed(0)}% busy`,
        );
        ctx.log(
          `      paused reader: ${cutS === undefined ? `not cut in ${(withMs / 1000).toFixed(1)} s` : `server closed its end ${cutS.toFixed(1)} s after the pause (${watch.serverState})`}; ` +
            `kernel held up to ${mb(watch.maxServerSendQueue)} MB (server send queue) + ${mb(watch.maxClientRecvQueue)} MB (reader receive queue); ` +
            `server RSS ${mb(memBefore.rss)} -> ${mb(memAfter.rss)} MB` +
            (resumed
              ? `; resumed: ${resumed.receivedBefore + resumed.receivedAfterResume} of the ${resumed.published} messages published while it was in the room received, socket ${resumed.closedAt !== undefined || resumed.destroyed ? "closed" : "open"}`
              : ""),
        );
        ctx.log(`      slowest ${TIMELINE_SLICE_MS} ms slices (s from the window's start: largest latency): without ${slowest(without.timeline)}; with (from the pause) ${slowest(withSlow.timeline)}`);
        if (nodeServer) ctx.log(`      server main thread: without: ${serverText(without.server)}; with: ${serverText(withSlow.server)}`);
        perRound.push({
          without: lean(without.r),
          with: lean(withSlow.r),
          pausedReader: { cutAfterS: cutS, ...watch },
          serverRss: { before: memBefore.rss, after: memAfter.rss },
          timelineWithout: without.timeline,
          timelineWith: withSlow.timeline,
          server: { without: without.server, with: withSlow.server },
          profiles: profDir ? { without: without.profile, with: withSlow.profile } : undefined,
        });
        if (!last) await sleep(SETTLE_MS);
      }
      const w0 = summarize(mergeHistograms(withoutHists));
      const w1 = summarize(mergeHistograms(withHists));
      const ratio = w1.p99 / w0.p99;
      ctx.log(
        `    all rounds: p99 without ${w0.p99.toFixed(2)} ms, with ${w1.p99.toFixed(2)} ms: ${ratio.toFixed(2)}x; ` +
          `paused reader cut by the server in ${cuts} of ${rounds} rounds${cutTimes.length ? ` (after ${cutTimes.map((t) => t.toFixed(1)).join(", ")} s)` : ""}`,
      );
      const cpu = (k: "without" | "with") =>
        (perRound as Array<Record<"without" | "with", StepResult>>).reduce((a, r) => a + r[k].serverCpuUsPerDelivery, 0) / perRound.length;
      const detail = {
        rate: SLOW_RATE,
        payloadBytes: SLOW_PAYLOAD_BYTES,
        normalSubscribers: SLOW_NORMAL_SUBSCRIBERS,
        maxPendingBytes: ctx.system.id.startsWith("arqon") ? maxPending : undefined,
        rounds: perRound,
        without: w0,
        with: w1,
        cuts,
        resumed,
      };
      const metrics: Metric[] = [
        { key: "slow.without.p50", label: "slow consumer: normal subscribers' p50 without the paused reader", unit: "ms", value: w0.p50, better: "lower" },
        { key: "slow.without.p99", label: "slow consumer: normal subscribers' p99 without the paused reader", unit: "ms", value: w0.p99, better: "lower" },
        { key: "slow.with.p50", label: "slow consumer: normal subscribers' p50 with the paused reader", unit: "ms", value: w1.p50, better: "lower" },
        { key: "slow.with.p99", label: "slow consumer: normal subscribers' p99 with the paused reader", unit: "ms", value: w1.p99, better: "lower" },
        { key: "slow.p99_ratio", label: "slow consumer: normal subscribers' p99 with / without the paused reader", unit: "x", value: ratio, better: "lower", detail },
        {
          key: "slow.cpu_ratio",
          label: "slow consumer: server CPU per delivery with / without the paused reader",
          unit: "x",
          value: cpu("with") / cpu("without"),
          better: "lower",
        },
        { key: "slow.cuts", label: `slow consumer: paused readers cut by the server (of ${rounds})`, unit: "readers", value: cuts, better: "higher" },
      ];
      if (cutTimes.length)
        metrics.push({
          key: "slow.cut_s",
          label: "slow consumer: paused reader's socket closed by the server after",
          unit: "s",
          value: cutTimes.reduce((a, b) => a + b, 0) / cutTimes.length,
          better: "lower",
        });
      return metrics;
    } finally {
      await s.stop();
    }
  },
};
