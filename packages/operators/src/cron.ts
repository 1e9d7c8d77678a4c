import { Cron } from "croner";
import { ArqonError, ErrorCode, isValidRoomName, jsonBytes, parseJsonBytes } from "@arqon/core";
import { argsObject, int, str, NAME_RE } from "./args.js";
import type { Operator, OperatorHost } from "./host.js";

export interface CronOperatorOptions {
  /** Shortest `everyMs` accepted. @default 1000 */
  minIntervalMs?: number;
  /** Schedules per tenant when the host has no tenant limits (else the tenant's `maxCronJobs`). @default 100 */
  maxPerTenant?: number;
  /** Scheduled publishes per second per tenant when the host has no tenant limits (else `cronRatePerSecond`). @default 10 */
  maxRatePerTenant?: number;
  /** Called when a scheduled publish fails (blocked by CASIL, room invalid, backend down). */
  onError?: (err: unknown, schedule: CronSchedule) => void;
}

export interface CronSchedule {
  tenant: string;
  name: string;
  room: string;
  payload: unknown;
  /** A cron expression (5 or 6 fields, croner syntax) ... */
  cron?: string;
  /** ... or a fixed interval. */
  everyMs?: number;
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
 * survive a restart on a durable store) and run on the node that hosts this operator. Verbs: schedule, cancel and
 * list, all admin-only. Every scheduled message goes through the host's publish path, so CASIL inspects it and the
 * tenant's message size and publish rate apply; a tenant's schedules are bounded in number (`maxCronJobs`), in
 * their summed rate (`cronRatePerSecond`) and in payload size (`maxMessageBytes`).
 */
export async function cronOperator(host: OperatorHost, options: CronOperatorOptions = {}): Promise<Operator & { running(): number }> {
  const minIntervalMs = options.minIntervalMs ?? 1000;
  const limitsOf = (tenant: string) => {
    const l = host.tenantLimits?.(tenant);
    return {
      jobs: l?.maxCronJobs ?? options.maxPerTenant ?? 100,
      rate: l?.cronRatePerSecond ?? options.maxRatePerTenant ?? 10,
      bytes: l?.maxMessageBytes ?? Number.POSITIVE_INFINITY,
    };
  };
  const running = new Map<string, Running>();
  const id = (tenant: string, name: string) => `${tenant}/${name}`;

  function start(schedule: CronSchedule): Running {
    const entry: Running = { schedule, runs: 0, stop: () => undefined };
    const fire = () => {
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

  // Resume stored schedules.
  for (const stored of await host.kv.list(NAMESPACE, { limit: 10000 })) {
    const schedule = parseJsonBytes(stored.value) as CronSchedule;
    running.set(stored.key, start(schedule));
  }

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
        const others = [...running.entries()].filter(([k, r]) => r.schedule.tenant === ctx.tenant && k !== key).map(([, r]) => r.schedule);
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
        running.get(key)?.stop();
        running.set(key, start(schedule));
        return { name, room, cron: schedule.cron, everyMs: schedule.everyMs };
      },
      { access: "admin", description: "publish on a schedule: {name, room, payload, cron | everyMs}" },
    ),
    host.registerCommand(
      "op.cron.cancel",
      async (ctx) => {
        const name = str(argsObject(ctx.args), "name", { pattern: NAME_RE });
        const key = id(ctx.tenant, name);
        const entry = running.get(key);
        if (!entry) throw new ArqonError(ErrorCode.NOT_FOUND, `no schedule named "${name}"`);
        entry.stop();
        running.delete(key);
        await host.kv.delete(NAMESPACE, key);
        return { name, cancelled: true };
      },
      { access: "admin", description: "stop a schedule: {name}" },
    ),
    host.registerCommand(
      "op.cron.list",
      (ctx) => ({
        schedules: [...running.values()]
          .filter((r) => r.schedule.tenant === ctx.tenant)
          .map((r) => ({
            name: r.schedule.name,
            room: r.schedule.room,
            cron: r.schedule.cron,
            everyMs: r.schedule.everyMs,
            runs: r.runs,
            lastError: r.lastError,
          })),
      }),
      { access: "admin", audit: false, description: "this tenant's schedules" },
    ),
  ];
  const offRemoved = host.onTenantRemoved?.(async (tenant) => {
    for (const [key, r] of [...running]) {
      if (r.schedule.tenant !== tenant) continue;
      r.stop();
      running.delete(key);
    }
    for (const stored of await host.kv.list(NAMESPACE, { prefix: `${tenant}/`, limit: 100_000 })) await host.kv.delete(NAMESPACE, stored.key);
  });

  return {
    running: () => running.size,
    async close() {
      for (const f of off) f();
      offRemoved?.();
      for (const r of running.values()) r.stop();
      running.clear();
    },
  };
}
