import { serveIpc } from "./ipc.js";
import { getSystem } from "./systems/index.js";
import type { ClientConn, ClientFactory } from "./systems/types.js";
import { now, sleep } from "./clock.js";
import { Histogram } from "./hist.js";
import { makePayload } from "./payload.js";

/**
 * A load generator: holds many client connections of one system, joins rooms, publishes at a given rate and records
 * what arrives (count, first/last arrival, publish-to-receive latency on the shared clock). argv: <system id> <port>.
 */
const system = getSystem(process.argv[2] ?? "");
const port = Number(process.argv[3]);
const factory: ClientFactory = await system.createClientFactory({ port, secret: process.env.ARQON_BENCH_SECRET ?? "" });

const conns: ClientConn[] = [];
/** Per connection: the room it publishes to and how many deliveries one publish makes. */
const plan: Array<{ conn: number; room: string; deliveries: number }> = [];
const hist = new Histogram();
let received = 0;
let firstAt = 0;
let lastAt = 0;
let cpuMark = process.cpuUsage();
let cpuAt = performance.now();

const hooks = {
  onTs(ts: number): void {
    const t = now();
    if (received === 0) firstAt = t;
    lastAt = t;
    received++;
    hist.record(t - ts);
  },
};

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight; returns failures. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>, deadlineMs: number): Promise<string[]> {
  const errors: string[] = [];
  let next = 0;
  const deadline = Date.now() + deadlineMs;
  const worker = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        if (errors.length < 1000) errors.push(err instanceof Error ? err.message : String(err));
        else errors.push("");
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (next < count) errors.push(`deadline passed with ${count - next} not started`);
  return errors;
}

serveIpc({
  /** Opens `count` connections numbered from `from`; tokens (if any) are made before the clock starts. */
  async connect(args: { from: number; count: number; concurrency: number; timeoutMs: number }) {
    await factory.prepare(args.from, args.count);
    const base = conns.length;
    const t0 = now();
    const errors = await pool(
      args.count,
      args.concurrency,
      async (i) => {
        conns[base + i] = await factory.connect(args.from + i, hooks);
      },
      args.timeoutMs,
    );
    const t1 = now();
    return { opened: args.count - errors.length, failed: errors.length, errors: errors.slice(0, 5), t0, t1 };
  },
  /** Joins rooms: `rooms[i]` for local connection i (null: none); `publish` also records the publish plan. */
  async subscribe(args: { rooms: Array<string | null>; deliveries?: number[]; concurrency: number; timeoutMs: number }) {
    plan.length = 0;
    const errors = await pool(
      args.rooms.length,
      args.concurrency,
      async (i) => {
        const room = args.rooms[i];
        if (!room) return;
        const c = conns[i];
        if (!c) throw new Error(`no connection ${i}`);
        await c.subscribe(room);
      },
      args.timeoutMs,
    );
    if (args.deliveries) {
      args.rooms.forEach((room, i) => {
        if (room && conns[i] && (args.deliveries![i] ?? 0) > 0) plan.push({ conn: i, room, deliveries: args.deliveries![i]! });
      });
    }
    return { failed: errors.length, errors: errors.slice(0, 5) };
  },
  /** Sets a plan directly: connection `conn` publishes to `room`, each publish making `deliveries` deliveries. */
  setPlan(args: { entries: Array<{ conn: number; room: string; deliveries: number }> }) {
    plan.length = 0;
    plan.push(...args.entries);
    return plan.length;
  },
  /** Switches every connection to the bare frame reader (src/lean.ts); fails for a system without lean mode. */
  lean() {
    for (const c of conns) {
      if (!c) continue;
      if (!c.lean) throw new Error(`${system.id} has no lean client mode`);
      c.lean(hooks);
    }
    return conns.length;
  },
  reset() {
    hist.reset();
    received = 0;
    firstAt = 0;
    lastAt = 0;
    cpuMark = process.cpuUsage();
    cpuAt = performance.now();
    return true;
  },
  count() {
    return { received, lastAt };
  },
  stats() {
    const c = process.cpuUsage(cpuMark);
    const cpuMs = (c.user + c.system) / 1000;
    return { received, firstAt, lastAt, hist: hist.toJSON(), cpu: cpuMs / (performance.now() - cpuAt), cpuMs };
  },
  /**
   * Publishes at `rate` messages/s for `durationMs`, round-robin over the plan, in ticks of `tickMs`; every message
   * is stamped when it is sent. Returns what was sent and how many deliveries that should make.
   */
  async publish(args: { rate: number; durationMs: number; tickMs?: number }) {
    if (plan.length === 0) throw new Error("no publish plan");
    const tickMs = args.tickMs ?? 5;
    let sent = 0;
    let expected = 0;
    let rr = 0;
    const t0 = now();
    let t1 = t0;
    const maxTicks = Math.ceil(args.durationMs / tickMs) * 4 + 100;
    for (let tick = 0; tick < maxTicks; tick++) {
      const t = now();
      const elapsed = Math.min(t - t0, args.durationMs);
      const due = Math.floor((args.rate * elapsed) / 1000);
      while (sent < due) {
        const p = plan[rr]!;
        rr = rr + 1 === plan.length ? 0 : rr + 1;
        conns[p.conn]!.publish(p.room, makePayload(sent));
        expected += p.deliveries;
        sent++;
      }
      t1 = now();
      if (elapsed >= args.durationMs) break;
      await sleep(tickMs);
    }
    return { sent, expected, t0, t1 };
  },
  async closeAll() {
    for (const c of conns) {
      try {
        c?.close();
      } catch {
        // closing is best effort
      }
    }
    conns.length = 0;
    plan.length = 0;
    await sleep(50);
    return true;
  },
  exit() {
    setImmediate(() => process.exit(0));
    return true;
  },
});
