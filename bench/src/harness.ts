import { readFileSync } from "node:fs";
import { Child } from "./ipc.js";
import { now, sleep } from "./clock.js";
import { mergeHistograms, summarize, type HistogramData, type LatencySummary } from "./hist.js";
import { PROFILES } from "./profile.js";
import type { SystemAdapter } from "./systems/types.js";
import type { WorkloadContext } from "./workloads/types.js";

/** A system's server process plus the client processes driving it. `stop()` ends all of them. */
export class Session {
  readonly clients: Child[] = [];
  private constructor(
    readonly ctx: WorkloadContext,
    readonly server: Child,
    readonly port: number,
  ) {}

  /** A session outside a bench run (the focused tools): no run number, no saturation memory, plain logging. */
  static forTool(system: SystemAdapter, secret: string): Promise<Session> {
    return Session.start({
      system,
      profile: PROFILES.short,
      secret,
      run: 0,
      serverNodeArgs: [],
      log: (msg) => console.log(msg),
      searchStart: (fallback) => fallback,
      rememberSaturation: () => undefined,
    });
  }

  /** `serverEnv`: extra environment of the server process (e.g. ARQON_BENCH_MAX_PENDING_BYTES for ArqonBus). */
  static async start(ctx: WorkloadContext, opts: { serverEnv?: Record<string, string> } = {}): Promise<Session> {
    const server = new Child(`${ctx.system.id} server`, "server-proc.ts", [ctx.system.id], {
      nodeArgs: ctx.serverNodeArgs,
      env: { ...opts.serverEnv, ARQON_BENCH_SECRET: ctx.secret },
    });
    try {
      const ready = (await server.ready) as { port: number };
      return new Session(ctx, server, ready.port);
    } catch (err) {
      await server.stop(1000);
      throw err;
    }
  }

  async addClients(n: number): Promise<Child[]> {
    const made: Child[] = [];
    for (let i = 0; i < n; i++) {
      const c = new Child(`${this.ctx.system.id} client ${this.clients.length}`, "client-proc.ts", [this.ctx.system.id, String(this.port)], {
        env: { ARQON_BENCH_SECRET: this.ctx.secret },
      });
      this.clients.push(c);
      made.push(c);
    }
    await Promise.all(made.map((c) => c.ready));
    return made;
  }

  /** Opens `counts[i]` connections on `clients[i]` (numbered globally from `from`); throws if any failed. */
  async connect(clients: Child[], counts: number[], opts: { from?: number; concurrency?: number; timeoutMs?: number } = {}) {
    let from = opts.from ?? 0;
    const results = await Promise.all(
      clients.map((c, i) => {
        const r = c.call<{ opened: number; failed: number; errors: string[]; t0: number; t1: number }>(
          "connect",
          { from, count: counts[i], concurrency: opts.concurrency ?? 128, timeoutMs: opts.timeoutMs ?? 120_000 },
          (opts.timeoutMs ?? 120_000) + 30_000,
        );
        from += counts[i]!;
        return r;
      }),
    );
    const failed = results.reduce((a, r) => a + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} connections failed: ${results.flatMap((r) => r.errors).slice(0, 3).join("; ")}`);
    const opened = results.reduce((a, r) => a + r.opened, 0);
    const t0 = Math.min(...results.map((r) => r.t0));
    const t1 = Math.max(...results.map((r) => r.t1));
    return { opened, t0, t1, ratePerSec: (opened / (t1 - t0)) * 1000 };
  }

  async subscribe(client: Child, rooms: Array<string | null>, deliveries?: number[]): Promise<void> {
    const r = await client.call<{ failed: number; errors: string[] }>("subscribe", { rooms, deliveries, concurrency: 64, timeoutMs: 120_000 }, 150_000);
    if (r.failed > 0) throw new Error(`${r.failed} subscriptions failed: ${r.errors.join("; ")}`);
  }

  async serverMemory(): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number }> {
    return this.server.call("mem", {}, 30_000);
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.call("closeAll", {}, 30_000).catch(() => undefined)));
    await Promise.all(this.clients.map((c) => c.stop(5000)));
    await this.server.stop(10_000);
  }
}

/** Busy and total jiffies of the whole machine (all processes, all cores), from /proc/stat; zeros elsewhere. */
function machineTicks(): { busy: number; total: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export interface StepResult {
  /** Delivery rate asked for (deliveries/s). */
  target: number;
  /** Publish rate used (messages/s over all publishers). */
  msgRate: number;
  sent: number;
  expected: number;
  received: number;
  /** Deliveries/s achieved: received over the time from the first publish to the last receipt. */
  achieved: number;
  /** Deliveries/s offered: expected deliveries over the publishing time. */
  offered: number;
  drained: boolean;
  keptUp: boolean;
  latency: LatencySummary;
  serverCpu: number;
  /**
   * Server CPU time (user + system) per delivery during the step, in µs. Unlike rates, this hardly depends on what
   * else the machine is doing, so it is the steadiest figure on a shared host.
   */
  serverCpuUsPerDelivery: number;
  /** The user-space part of it (the rest is kernel time: socket writes, mostly). */
  serverUserUsPerDelivery: number;
  /**
   * Write system calls of the server process per delivery (from /proc/<pid>/io; NaN where unreadable): 1 when every
   * delivery is its own write, less when a server merges what a socket has queued into one write.
   */
  serverWritesPerDelivery: number;
  /** Read system calls of the server process per delivery (the publishes it reads, for the many-rooms workload). */
  serverReadsPerDelivery: number;
  /** CPU time of all receiving client processes per delivery, in µs (they share the machine with the server). */
  receiverCpuUsPerDelivery: number;
  clientCpu: number[];
  /** Share of the machine's CPU (all cores, all processes — the bench's and everyone else's) busy during the step. */
  machineBusy: number;
  /** The receivers' latency histogram, merged (only with `keepHistogram`). */
  hist?: HistogramData;
}

/** How long a step must run to carry enough messages: at least `minMessages`, stretched up to `maxMs`. */
export interface StepLength {
  minMessages: number;
  maxMs: number;
}

/** Saturation steps: ~10 messages at least (a 10,000-subscriber room at 25k deliveries/s is 2.5 messages/s), <= 5 s. */
export const SEARCH_STEP: StepLength = { minMessages: 10, maxMs: 5000 };

/**
 * Latency steps: a p99 needs more than a handful of messages behind it. At N=10,000 each message is one burst of
 * 10,000 deliveries and the latencies within a burst are not independent, so the step runs for >= 60 messages (up
 * to 12 s; the 10k/s common rate at N=10,000 is 1 message/s and gets 12).
 */
export const LATENCY_STEP: StepLength = { minMessages: 60, maxMs: 12_000 };

/**
 * One load step: reset the receivers, publish at `msgRate` for `durationMs` (stretched by `length`), wait for every
 * expected delivery (at most `drainMs` after publishing ends), then gather counts and latency histograms.
 */
export async function runStep(
  session: Session,
  publishers: Child[],
  receivers: Child[],
  target: number,
  msgRate: number,
  durationMs: number,
  drainMs: number,
  length: StepLength = SEARCH_STEP,
  opts: {
    /** Size of each published payload in bytes (default: PAYLOAD_BYTES, ~100). */
    payloadBytes?: number;
    /** Also return the merged latency histogram (`hist`), to merge several steps' latencies. */
    keepHistogram?: boolean;
  } = {},
): Promise<StepResult> {
  durationMs = Math.min(Math.max(durationMs, (length.minMessages * 1000) / Math.max(msgRate, 1e-3)), Math.max(durationMs, length.maxMs));
  const all = [...new Set([...publishers, ...receivers])];
  await Promise.all(all.map((c) => c.call("reset")));
  await session.server.call("cpu");
  const m0 = machineTicks();
  const pubs = await Promise.all(
    publishers.map((p) =>
      p.call<{ sent: number; expected: number; t0: number; t1: number }>(
        "publish",
        { rate: msgRate / publishers.length, durationMs, payloadBytes: opts.payloadBytes },
        durationMs + 60_000,
      ),
    ),
  );
  const expected = pubs.reduce((a, p) => a + p.expected, 0);
  const sent = pubs.reduce((a, p) => a + p.sent, 0);
  const t0 = Math.min(...pubs.map((p) => p.t0));
  const t1 = Math.max(...pubs.map((p) => p.t1));
  const deadline = now() + drainMs;
  let received = 0;
  let drained = false;
  for (let i = 0; i < 10_000; i++) {
    const counts = await Promise.all(receivers.map((c) => c.call<{ received: number }>("count")));
    received = counts.reduce((a, c) => a + c.received, 0);
    if (received >= expected) {
      drained = true;
      break;
    }
    if (now() > deadline) break;
    await sleep(50);
  }
  const cpu = await session.server.call<{ share: number; cpuMs: number; userMs: number; systemMs: number; readCalls: number; writeCalls: number }>("cpu");
  const serverCpu = cpu.share;
  const m1 = machineTicks();
  const machineBusy = m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN;
  const stats = await Promise.all(
    receivers.map((c) => c.call<{ received: number; lastAt: number; hist: HistogramData; cpu: number; cpuMs: number }>("stats")),
  );
  received = stats.reduce((a, s) => a + s.received, 0);
  const lastAt = drained ? Math.max(...stats.map((s) => s.lastAt)) : Math.max(deadline, ...stats.map((s) => s.lastAt));
  // The publishing window is the shortest time the step can take; a system that keeps up ends just after it.
  const achieved = (received / Math.max(1, t1 - t0, lastAt - t0)) * 1000;
  const offered = (expected / Math.max(1, t1 - t0)) * 1000;
  const hist = mergeHistograms(stats.map((s) => s.hist));
  const latency = summarize(hist);
  if (!drained) await quiesce(receivers);
  return {
    target,
    msgRate,
    sent,
    expected,
    received,
    achieved,
    offered,
    drained,
    // Kept up: everything arrived, at >= 93% of what was offered, and the publishers offered >= 85% of the target
    // (whole messages per step, and a starved publisher, make the offer fall short of the target).
    keptUp: drained && received >= expected && expected > 0 && achieved >= 0.93 * offered && offered >= 0.85 * target,
    latency,
    serverCpu,
    serverCpuUsPerDelivery: received > 0 ? (cpu.cpuMs * 1000) / received : NaN,
    serverUserUsPerDelivery: received > 0 ? (cpu.userMs * 1000) / received : NaN,
    serverWritesPerDelivery: received > 0 ? cpu.writeCalls / received : NaN,
    serverReadsPerDelivery: received > 0 ? cpu.readCalls / received : NaN,
    receiverCpuUsPerDelivery: received > 0 ? (stats.reduce((a, s) => a + s.cpuMs, 0) * 1000) / received : NaN,
    clientCpu: stats.map((s) => s.cpu),
    machineBusy,
    ...(opts.keepHistogram ? { hist } : {}),
  };
}

/** Waits until the receivers stop receiving (a backlog from an overloaded step has drained or been dropped). */
async function quiesce(receivers: Child[]): Promise<void> {
  let last = -1;
  for (let i = 0; i < 60; i++) {
    await sleep(250);
    const counts = await Promise.all(receivers.map((c) => c.call<{ received: number }>("count")));
    const total = counts.reduce((a, c) => a + c.received, 0);
    if (total === last) return;
    last = total;
  }
}

export interface Saturation {
  /** Highest delivery rate achieved in any step (deliveries/s). */
  saturation: number;
  /** Highest target rate the system kept up with. */
  lastGood: number | undefined;
  firstBad: number | undefined;
  steps: StepResult[];
}

/** An overload step offers this many times the best rate the system has delivered so far. */
export const OVERLOAD_FACTOR = 3;
/** Overload steps go on while one raises the best delivered rate by more than this share ... */
export const OVERLOAD_GAIN = 0.1;
/** ... at most this many of them. */
export const MAX_OVERLOAD_STEPS = 5;

/**
 * Raises the offered rate (×2 per step) until delivery falls behind (twice in a row at the same rate), then bisects
 * (geometric mean) until the bounds are within 25% or the step budget is spent, then offers overload steps, each at
 * OVERLOAD_FACTOR times the best rate achieved so far, until one no longer raises that best by more than
 * OVERLOAD_GAIN (at most MAX_OVERLOAD_STEPS). Saturation = the best delivery rate achieved by any step.
 *
 * The overload steps keep the figure from depending on the search's path: a server that coalesces delivers more per
 * write the more is queued (and its subscribers read more frames per read), so one that fell behind at 400k/s may
 * deliver 600k/s when offered 800k/s. Until 2026-12-04 one step offered twice the highest rate *tried*: at N=1,000
 * the floor, which held 800k/s, was offered 3.2M/s, while ArqonBus JSON, which fell behind at 800k/s, was offered
 * 1.6M/s (or 800k/s after a low start). One step at three times the best rate delivered still depended on the path
 * at N=10,000, where every system falls "behind" (a 1 s step loses more than 7% to the fan-out's own latency) at
 * 30-60k/s yet delivers 80% of whatever it is offered up to several 100k/s: the best rate seen was set by the
 * search's first step (0.6x the previous run's result), and the floor, offered 632k/s after a start at 269k/s,
 * measured 398k/s while ArqonBus JSON, offered 263k/s after a start at 102k/s, measured 191k/s — with 1M/s offered
 * to both, the same servers deliver 608k/s and 512k/s (`fanout-cost --n 10000`). Repeating the overload step until
 * more offered load no longer brings more delivered takes every system to its plateau whatever the start; each step
 * offers a multiple of what the system has shown it delivers, so a slow system's backlog stays ~2 steps' worth.
 */
export async function searchSaturation(
  step: (target: number) => Promise<StepResult>,
  opts: { start: number; maxSteps: number; maxRate: number; log: (m: string) => void },
): Promise<Saturation> {
  let rate = opts.start;
  let good: number | undefined;
  let bad: number | undefined;
  let retried: number | undefined;
  const steps: StepResult[] = [];
  for (let i = 0; i < opts.maxSteps; i++) {
    const r = await step(rate);
    steps.push(r);
    opts.log(
      `    step ${i + 1}: target ${fmtRate(rate)}/s achieved ${fmtRate(r.achieved)}/s ${r.keptUp ? "ok" : "BEHIND"}` +
        ` p99 ${r.latency.p99.toFixed(1)} ms server cpu ${(r.serverCpu * 100).toFixed(0)}% clients ${r.clientCpu.map((c) => (c * 100).toFixed(0) + "%").join("/")} machine ${(r.machineBusy * 100).toFixed(0)}%`,
    );
    if (r.keptUp) good = Math.max(good ?? 0, rate);
    else if (retried !== rate && i + 1 < opts.maxSteps) {
      // A shared machine stalls now and then: a rate counts as too high only when it fails twice in a row.
      retried = rate;
      continue;
    } else bad = Math.min(bad ?? Infinity, rate);
    if (bad === undefined) {
      if (rate * 2 > opts.maxRate) break;
      rate *= 2;
    } else if (good === undefined) {
      rate /= 2;
      if (rate < 100) break;
    } else {
      if (bad / good <= 1.25) break;
      rate = Math.sqrt(good * bad);
    }
  }
  let best = Math.max(0, ...steps.map((s) => s.achieved));
  for (let k = 0; k < MAX_OVERLOAD_STEPS && best > 0; k++) {
    const offer = Math.min(opts.maxRate, OVERLOAD_FACTOR * best);
    const r = await step(offer);
    steps.push(r);
    opts.log(`    overload: target ${fmtRate(offer)}/s achieved ${fmtRate(r.achieved)}/s`);
    const gained = r.achieved > best * (1 + OVERLOAD_GAIN);
    best = Math.max(best, r.achieved);
    if (!gained || offer >= opts.maxRate) break;
  }
  return { saturation: Math.max(0, ...steps.map((s) => s.achieved)), lastGood: good, firstBad: bad, steps };
}

export function fmtRate(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return v.toFixed(0);
}

/** Splits `total` into `parts` near-equal counts. */
export function split(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}
