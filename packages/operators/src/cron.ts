import { Cron } from "croner";
import { ArqonError, ErrorCode, isValidRoomName, jsonBytes, parseJsonBytes } from "@arqon/core";
import { randomBytes } from "node:crypto";
import { argsObject, int, str, NAME_RE } from "./args.js";
import { KvLease } from "./lease.js";
import type { Operator, OperatorHost } from "./host.js";

/** Options of {@link cronOperator} (op.cron). */
export interface CronOperatorOptions {
  /** Shortest `everyMs` accepted. @default 1000 */
  minIntervalMs?: number;
  /** Schedules per tenant when the host has no tenant limits (else the tenant's `maxCronJobs`). @default 100 */
  maxPerTenant?: number;
  /** Scheduled publishes per second per tenant when the host has no tenant limits (else `cronRatePerSecond`). @default 10 */
  maxRatePerTenant?: number;
  /** How often the runner renews its lease and picks up schedules registered on other nodes. @default 2000 */
  syncIntervalMs?: number;
  /** The runner's lease lasts this long without renewal; another node takes over after it. @default 10000 */
  leaseTtlMs?: number;
  /** Called when a scheduled publish fails (blocked by CASIL, room invalid, backend down). */
  onError?: (err: unknown, schedule: CronSchedule) => void;
}

/** One op.cron schedule, as stored in the host's key-value store (namespace `op.cron`, key `<tenant>/<name>`). */
export interface CronSchedule {
  /** The tenant it belongs to and publishes into. */
  tenant: string;
  /** Its name, unique within the tenant: 1-64 letters, digits and `_ . : -`. */
  name: string;
  /** The room it publishes into. */
  room: string;
  /** The JSON value published at every run. */
  payload: unknown;
  /** A cron expression (5 or 6 fields, croner syntax) ... */
  cron?: string;
  /** ... or a fixed interval. */
  everyMs?: number;
  /** The `sub` of the admin who scheduled it. */
  createdBy: string;
}

const NAMESPACE = "op.cron";

/**
 * The fastest rate a schedule publishes at, per second: 1000/everyMs, or for a cron expression the shortest gap among
 * its next runs (a schedule firing every second at :00-:09 of each minute counts as 1/s).
 */
export function scheduleRate(schedule: Pick<CronSchedule, "cron" | "everyMs">): number {
  if (schedule.everyMs !== undefined) return 1000 / schedule.everyMs;
  const runs = new Cron(schedule.cron!, { paused: true }).nextRuns(16);
  let gap = Number.POSITIVE_INFINITY;
  for (let i = 1; i < runs.length; i++) gap = Math.min(gap, runs[i]!.getTime() - runs[i - 1]!.getTime());
  return Number.isFinite(gap) && gap > 0 ? 1000 / gap : 0;
}

interface Running {
  schedule: CronSchedule;
  stop(): void;
  runs: number;
  lastError?: string;
}

/**
 * op.cron: publishes a payload into a room on a schedule. Schedules are kept in the host's KeyValueStore (so they
 * survive a restart on a durable store, and every node of a cluster sees them on NATS KV). **One node runs them**:
 * the holder of the runner lease (`op.cron.lease` / `runner`, renewed every `syncIntervalMs`), so each job fires once
 * per tick across the cluster. A runner that stops renewing (it died, or lost NATS) stops firing at once and another
 * node takes over when the lease expires (`leaseTtlMs`); ticks that fall into that gap are skipped, not made up
 * (missed-run policy: skip). Verbs: schedule, cancel and list, all admin-only. Every scheduled message goes through the host's publish path, so CASIL inspects it and the
 * tenant's message size and publish rate apply; a tenant's schedules are bounded in number (`maxCronJobs`), in
 * their summed rate (`cronRatePerSecond`) and in payload size (`maxMessageBytes`). The operator it resolves with
 * also has `running()`: how many schedules fire on this node.
 */
export async function cronOperator(host: OperatorHost, options: CronOperatorOptions = {}): Promise<Operator & {
  /** How many schedules fire on this node: every schedule while it holds the runner lease, none otherwise. */
  running(): number;
}> {
  const minIntervalMs = options.minIntervalMs ?? 1000;
  const limitsOf = (tenant: string) => {
    const l = host.tenantLimits?.(tenant);
    return {
      jobs: l?.maxCronJobs ?? options.maxPerTenant ?? 100,
      rate: l?.cronRatePerSecond ?? options.maxRatePerTenant ?? 10,
      bytes: l?.maxMessageBytes ?? Number.POSITIVE_INFINITY,
    };
  };
  /** Every schedule, as stored (all nodes). */
  const schedules = new Map<string, CronSchedule>();
  /** The ones firing on this node: all of them while it holds the runner lease, none otherwise. */
  const running = new Map<string, Running>();
  const id = (tenant: string, name: string) => `${tenant}/${name}`;
  const syncIntervalMs = options.syncIntervalMs ?? 2000;
  const lease = new KvLease({
    kv: host.kv,
    namespace: "op.cron.lease",
    key: "runner",
    node: host.nodeId ?? `node-${randomBytes(6).toString("base64url")}`,
    ttlMs: options.leaseTtlMs ?? 10_000,
    solo: host.clustered === false,
  });
  /** Until when this node may fire: its last successful renewal plus the lease's time to live. */
  let heldUntil = 0;
  let closed = false;

  function start(schedule: CronSchedule): Running {
    const entry: Running = { schedule, runs: 0, stop: () => undefined };
    const fire = () => {
      // Fencing: a node that could not renew in time stops firing before anyone else can take over.
      if (Date.now() >= heldUntil) return;
      entry.runs++;
      host.publish(schedule.tenant, schedule.room, schedule.payload, { sender: "op.cron", path: "operator" }).then(
        () => delete entry.lastError,
        (err: unknown) => {
          entry.lastError = err instanceof Error ? err.message : String(err);
          options.onError?.(err, schedule);
        },
      );
    };
    if (schedule.everyMs !== undefined) {
      const timer = setInterval(fire, schedule.everyMs);
      timer.unref?.();
      entry.stop = () => clearInterval(timer);
    } else {
      const job = new Cron(schedule.cron!, { protect: true, unref: true }, fire);
      entry.stop = () => job.stop();
    }
    return entry;
  }

  function stopAll(): void {
    for (const r of running.values()) r.stop();
    running.clear();
  }

  /** Renews (or takes) the runner lease, reads the schedules, and starts or stops timers to match. */
  async function sync(): Promise<void> {
    const stored = await host.kv.list(NAMESPACE, { limit: 100_000 });
    schedules.clear();
    for (const entry of stored) schedules.set(entry.key, parseJsonBytes(entry.value) as CronSchedule);
    let holding = false;
    const asked = Date.now();
    try {
      holding = await lease.tryHold();
    } catch (err) {
      host.logger?.warn({ err }, "cron lease unavailable; not firing");
    }
    if (closed) return;
    if (!holding) {
      heldUntil = 0;
      stopAll();
      return;
    }
    heldUntil = asked + lease.ttlMs;
    for (const [key, schedule] of schedules) {
      const current = running.get(key);
      if (current && JSON.stringify(current.schedule) === JSON.stringify(schedule)) continue;
      current?.stop();
      running.set(key, start(schedule));
    }
    for (const [key, r] of [...running]) {
      if (schedules.has(key)) continue;
      r.stop();
      running.delete(key);
    }
  }

  await sync();
  const syncTimer = setInterval(() => {
    if (!closed) sync().catch((err: unknown) => host.logger?.warn({ err }, "cron sync failed"));
  }, syncIntervalMs);
  syncTimer.unref?.();

  const off = [
    host.registerCommand(
      "op.cron.schedule",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const name = str(args, "name", { pattern: NAME_RE });
        const room = str(args, "room", { max: 200 });
        if (!isValidRoomName(room)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"room" is not a valid room name`);
        if (!("payload" in args)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"payload" is required');
        const limits = limitsOf(ctx.tenant);
        const payloadBytes = jsonBytes(args.payload).length;
        if (payloadBytes > limits.bytes) {
          throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `payload exceeds ${limits.bytes} bytes`, { detail: { limit: limits.bytes } });
        }
        const schedule: CronSchedule = { tenant: ctx.tenant, name, room, payload: args.payload, createdBy: ctx.sub };
        if (args.cron !== undefined) {
          schedule.cron = str(args, "cron", { max: 100 });
          try {
            new Cron(schedule.cron, { paused: true }).stop();
          } catch (err) {
            throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"cron" is not a valid expression: ${(err as Error).message}`);
          }
        } else {
          schedule.everyMs = int(args, "everyMs", { min: minIntervalMs, max: 7 * 24 * 3600 * 1000 });
        }
        const key = id(ctx.tenant, name);
        for (const entry of await host.kv.list(NAMESPACE, { prefix: `${ctx.tenant}/`, limit: 100_000 })) schedules.set(entry.key, parseJsonBytes(entry.value) as CronSchedule);
        const others = [...schedules.entries()].filter(([k, s]) => s.tenant === ctx.tenant && k !== key).map(([, s]) => s);
        if (others.length >= limits.jobs) {
          throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `at most ${limits.jobs} schedules per tenant`, { detail: { quota: "maxCronJobs", limit: limits.jobs } });
        }
        const rate = others.reduce((sum, s) => sum + scheduleRate(s), scheduleRate(schedule));
        if (rate > limits.rate + 1e-9) {
          throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `the tenant's schedules would publish ${rate.toFixed(2)} times a second (limit ${limits.rate})`, {
            detail: { quota: "cronRatePerSecond", limit: limits.rate },
          });
        }
        await host.kv.put(NAMESPACE, key, jsonBytes(schedule));
        schedules.set(key, schedule);
        if (lease.holding && Date.now() < heldUntil) {
          running.get(key)?.stop();
          running.set(key, start(schedule));
        }
        return { name, room, cron: schedule.cron, everyMs: schedule.everyMs };
      },
      { access: "admin", description: "publish on a schedule: {name, room, payload, cron | everyMs}" },
    ),
    host.registerCommand(
      "op.cron.cancel",
      async (ctx) => {
        const name = str(argsObject(ctx.args), "name", { pattern: NAME_RE });
        const key = id(ctx.tenant, name);
        if (!(await host.kv.delete(NAMESPACE, key))) throw new ArqonError(ErrorCode.NOT_FOUND, `no schedule named "${name}"`);
        schedules.delete(key);
        running.get(key)?.stop();
        running.delete(key);
        return { name, cancelled: true };
      },
      { access: "admin", description: "stop a schedule: {name}" },
    ),
    host.registerCommand(
      "op.cron.list",
      async (ctx) => ({
        schedules: (await host.kv.list(NAMESPACE, { prefix: `${ctx.tenant}/`, limit: 100_000 })).map((e) => {
          const s = parseJsonBytes(e.value) as CronSchedule;
          const r = running.get(e.key);
          return { name: s.name, room: s.room, cron: s.cron, everyMs: s.everyMs, runningHere: r !== undefined, runs: r?.runs, lastError: r?.lastError };
        }),
      }),
      { access: "admin", audit: false, description: "this tenant's schedules" },
    ),
  ];
  const offRemoved = host.onTenantRemoved?.(async (tenant) => {
    for (const [key, r] of [...running]) {
      if (r.schedule.tenant !== tenant) continue;
      r.stop();
      running.delete(key);
      schedules.delete(key);
    }
    for (const stored of await host.kv.list(NAMESPACE, { prefix: `${tenant}/`, limit: 100_000 })) await host.kv.delete(NAMESPACE, stored.key);
  });

  return {
    running: () => running.size,
    async close() {
      closed = true;
      clearInterval(syncTimer);
      for (const f of off) f();
      offRemoved?.();
      stopAll();
      await lease.release().catch(() => undefined);
    },
  };
}
