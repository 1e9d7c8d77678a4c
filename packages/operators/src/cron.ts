import { Cron } from "croner";
import { ArqonError, ErrorCode, isValidRoomName, jsonBytes, parseJsonBytes } from "@arqon/core";
import { argsObject, int, str, NAME_RE } from "./args.js";
import type { Operator, OperatorHost } from "./host.js";

export interface CronOperatorOptions {
  /** Shortest `everyMs` accepted. @default 1000 */
  minIntervalMs?: number;
  /** Schedules per tenant. @default 100 */
  maxPerTenant?: number;
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

interface Running {
  schedule: CronSchedule;
  stop(): void;
  runs: number;
  lastError?: string;
}

/**
 * op.cron: publishes a payload into a room on a schedule. Schedules are kept in the host's KeyValueStore (so they
 * survive a restart on a durable store) and run on the node that hosts this operator. Verbs: schedule (admin),
 * cancel (admin), list. Every scheduled message goes through the host's publish path, so CASIL inspects it.
 */
export async function cronOperator(host: OperatorHost, options: CronOperatorOptions = {}): Promise<Operator & { running(): number }> {
  const minIntervalMs = options.minIntervalMs ?? 1000;
  const maxPerTenant = options.maxPerTenant ?? 100;
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
        const ofTenant = [...running.values()].filter((r) => r.schedule.tenant === ctx.tenant).length;
        if (!running.has(key) && ofTenant >= maxPerTenant) {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, `at most ${maxPerTenant} schedules per tenant`);
        }
        await host.kv.put(NAMESPACE, key, jsonBytes(schedule));
        running.get(key)?.stop();
        running.set(key, start(schedule));
        return { name, room, cron: schedule.cron, everyMs: schedule.everyMs };
      },
      { adminOnly: true, description: "publish on a schedule: {name, room, payload, cron | everyMs}" },
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
      { adminOnly: true, description: "stop a schedule: {name}" },
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
      { description: "this tenant's schedules" },
    ),
  ];

  return {
    running: () => running.size,
    async close() {
      for (const f of off) f();
      for (const r of running.values()) r.stop();
      running.clear();
    },
  };
}
