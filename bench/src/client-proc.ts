import { subscribe as subscribeChannel } from "node:diagnostics_channel";
import type { Socket } from "node:net";
import { serveIpc } from "./ipc.js";
import { getSystem } from "./systems/index.js";
import type { ClientConn, ClientFactory } from "./systems/types.js";
import { now, sleep } from "./clock.js";
import { Histogram } from "./hist.js";
import { makePayload } from "./payload.js";
import { tcpPair } from "./tcp.js";

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

/**
 * The TCP socket of connections opened alone (a `connect` call with count 1): the one socket Node created during that
 * call, caught through the `net.client.socket` diagnostics channel — every system's client (ws, socket.io-client on
 * ws) opens its socket with net.connect. Used by `pauseReading` (the slow-consumer workload's paused reader).
 */
const sockets = new Map<number, Socket>();
let created: Socket[] = [];
subscribeChannel("net.client.socket", (msg) => {
  created.push((msg as { socket: Socket }).socket);
});

/**
 * Optional latency timeline (the `timeline` command): the largest latency of the messages received in each
 * `timelineMs` slice since it was switched on, by arrival time — to see when a disturbance happened within a step.
 */
let timelineMs = 0;
let timelineFrom = 0;
const timelineMax: number[] = [];
const TIMELINE_SLICES = 1200;

const hooks = {
  onTs(ts: number): void {
    const t = now();
    if (received === 0) firstAt = t;
    lastAt = t;
    received++;
    hist.record(t - ts);
    if (timelineMs > 0) {
      const i = Math.floor((t - timelineFrom) / timelineMs);
      if (i >= 0 && i < TIMELINE_SLICES && !(timelineMax[i]! >= t - ts)) timelineMax[i] = t - ts;
    }
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
    created = [];
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
    if (args.count === 1 && created.length === 1 && errors.length === 0) sockets.set(base, created[0]!);
    created = [];
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
  /** `on`: starts a fresh timeline of `sliceMs` slices from now; off: returns it (largest latency per slice, ms). */
  timeline(args: { on: boolean; sliceMs?: number }) {
    if (args.on) {
      timelineMs = args.sliceMs ?? 100;
      timelineFrom = now();
      timelineMax.length = 0;
      return { from: timelineFrom };
    }
    const out = { from: timelineFrom, sliceMs: timelineMs, max: Array.from(timelineMax, (v) => v ?? 0) };
    timelineMs = 0;
    return out;
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
  async publish(args: { rate: number; durationMs: number; tickMs?: number; payloadBytes?: number }) {
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
        conns[p.conn]!.publish(p.room, makePayload(sent, args.payloadBytes));
        expected += p.deliveries;
        sent++;
      }
      t1 = now();
      if (elapsed >= args.durationMs) break;
      await sleep(tickMs);
    }
    return { sent, expected, t0, t1 };
  },
  /**
   * Stops reading connection `conn` (local index; it must have been opened alone, see `sockets`): its TCP socket is
   * paused — what `(ws as any)._socket.pause()` does — so the kernel's receive buffer fills, the window closes and the
   * server's writes back up. `resume` is disabled meanwhile: ws resumes a socket it paused itself once its receiver
   * drains, which would undo this. Watches the connection's two ends in /proc/net/tcp every `watchMs` from then on.
   */
  pauseReading(args: { conn: number; watchMs?: number }) {
    const s = sockets.get(args.conn);
    if (!s) throw new Error(`connection ${args.conn}: no socket of its own (open it with a connect call of count 1)`);
    s.pause();
    s.resume = () => s;
    const w: PauseWatch = {
      conn: args.conn,
      socket: s,
      pausedAt: now(),
      localPort: s.localPort ?? 0,
      remotePort: s.remotePort ?? 0,
      serverLeftAt: undefined,
      serverState: "ESTABLISHED",
      maxServerSendQueue: 0,
      maxClientRecvQueue: 0,
      closedAt: undefined,
      timer: undefined,
    };
    s.once("close", () => (w.closedAt ??= now()));
    const look = (): void => {
      const t = tcpPair(w.localPort, w.remotePort);
      if (t.server) w.maxServerSendQueue = Math.max(w.maxServerSendQueue, t.server.txQueue);
      if (t.client) w.maxClientRecvQueue = Math.max(w.maxClientRecvQueue, t.client.rxQueue);
      const state = t.server?.state ?? "gone";
      if (state !== "ESTABLISHED" && w.serverLeftAt === undefined) {
        w.serverLeftAt = now();
        w.serverState = state;
      }
    };
    look();
    w.timer = setInterval(look, args.watchMs ?? 100);
    watches.set(args.conn, w);
    return { pausedAt: w.pausedAt, localPort: w.localPort, remotePort: w.remotePort };
  },
  /** What the watch of a paused connection saw so far (times on the shared clock, ms). */
  pauseReport(args: { conn: number }) {
    const w = watches.get(args.conn);
    if (!w) throw new Error(`connection ${args.conn} is not paused`);
    return {
      pausedAt: w.pausedAt,
      serverLeftAt: w.serverLeftAt,
      serverState: w.serverState,
      maxServerSendQueue: w.maxServerSendQueue,
      maxClientRecvQueue: w.maxClientRecvQueue,
      closedAt: w.closedAt,
    };
  },
  /**
   * Resumes a paused connection and reads for up to `forMs` (until its socket closes or stops receiving): what it
   * then gets (messages counted by `count`) tells whether the server kept its backlog or cut it.
   */
  async resumeReading(args: { conn: number; forMs: number }) {
    const w = watches.get(args.conn);
    if (!w) throw new Error(`connection ${args.conn} is not paused`);
    clearInterval(w.timer);
    delete (w.socket as { resume?: unknown }).resume; // back to the prototype's
    const before = received;
    w.socket.resume();
    const end = now() + args.forMs;
    let last = -1;
    let still = 0;
    while (now() < end && w.closedAt === undefined) {
      await sleep(100);
      if (received === last) {
        if (++still >= 10) break;
      } else still = 0;
      last = received;
    }
    watches.delete(args.conn);
    return { receivedAfterResume: received - before, closedAt: w.closedAt, destroyed: w.socket.destroyed };
  },
  /** Closes connection `conn` from this side (terminate: the socket is destroyed, paused or not) and drops its watch. */
  drop(args: { conn: number }) {
    const w = watches.get(args.conn);
    if (w) clearInterval(w.timer);
    watches.delete(args.conn);
    conns[args.conn]?.close();
    sockets.delete(args.conn);
    return true;
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
    sockets.clear();
    for (const w of watches.values()) clearInterval(w.timer);
    watches.clear();
    await sleep(50);
    return true;
  },
  exit() {
    setImmediate(() => process.exit(0));
    return true;
  },
});

interface PauseWatch {
  conn: number;
  socket: Socket;
  pausedAt: number;
  localPort: number;
  remotePort: number;
  /** When the server's end left ESTABLISHED (closed: FIN_WAIT1 with its backlog unsent, or gone), shared clock. */
  serverLeftAt: number | undefined;
  serverState: string;
  /** Largest send queue of the server's end seen (bytes in its kernel buffer, unacknowledged or unsent). */
  maxServerSendQueue: number;
  /** Largest receive queue of the paused end seen (bytes the kernel holds for the reader that does not read). */
  maxClientRecvQueue: number;
  closedAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

const watches = new Map<number, PauseWatch>();
