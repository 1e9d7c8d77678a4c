/**
 * @arqon/operators — the standard operators: op.store (key/value for agents), op.cron (scheduled messages),
 * op.webhook (room messages as HTTP POSTs) and the feature-flagged op.omega.* lane. op.casil.* and op.history.* are
 * served by the gateway itself, next to the engines they drive.
 *
 * ```ts
 * const server = createArqonServer({ auth });
 * const operators = await registerStandardOperators(server, { omega: omegaOptionsFromEnv(process.env) });
 * ```
 *
 * @module @arqon/operators
 */
import type { Operator, OperatorHost } from "./host.js";
import { cronOperator, type CronOperatorOptions } from "./cron.js";
import { omegaOperator, type OmegaOptions } from "./omega.js";
import { storeOperator, type StoreOperatorOptions } from "./store.js";
import { webhookOperator, type WebhookOperatorOptions } from "./webhook.js";

export type {
  Operator,
  OperatorHost,
  OperatorHandler,
  OperatorCommandContext,
  OperatorCommandOptions,
  OperatorAccess,
  OperatorTenantLimits,
  OperatorUsageDelta,
  OperatorPublishResult,
  OperatorMeter,
} from "./host.js";
export { storeOperator, type StoreOperatorOptions } from "./store.js";
export { cronOperator, type CronOperatorOptions, type CronSchedule } from "./cron.js";
export { webhookOperator, type WebhookOperatorOptions } from "./webhook.js";
export { omegaOperator, omegaOptionsFromEnv, OMEGA_COMMANDS, type OmegaOptions } from "./omega.js";

/** Names of the operators that ship with ArqonBus. */
export const STANDARD_OPERATORS = ["op.webhook", "op.cron", "op.store", "op.casil", "op.history", "op.omega"] as const;
/** The name of one operator that ships with ArqonBus. */
export type StandardOperator = (typeof STANDARD_OPERATORS)[number];

/** Options of {@link registerStandardOperators}, per operator. */
export interface StandardOperatorOptions {
  /** Options of op.store, or false to leave it out. */
  store?: StoreOperatorOptions | false;
  /** Options of op.cron, or false to leave it out. */
  cron?: CronOperatorOptions | false;
  /** Options of op.webhook, or false to leave it out. */
  webhook?: WebhookOperatorOptions | false;
  /** Options of op.omega.*, which is always registered: its commands answer FEATURE_DISABLED unless `enabled`. */
  omega?: OmegaOptions;
}

/** Registers op.store, op.cron, op.webhook and op.omega on a host; `close()` stops them all. */
export async function registerStandardOperators(host: OperatorHost, options: StandardOperatorOptions = {}): Promise<Operator> {
  const started: Operator[] = [];
  if (options.store !== false) started.push(storeOperator(host, options.store || {}));
  if (options.cron !== false) started.push(await cronOperator(host, options.cron || {}));
  if (options.webhook !== false) started.push(await webhookOperator(host, options.webhook || {}));
  started.push(omegaOperator(host, options.omega ?? {}));
  return {
    async close() {
      await Promise.all(started.map((o) => o.close()));
    },
  };
}
