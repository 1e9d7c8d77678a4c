/**
 * @arqon/operators — the standard operators: op.store (key/value for agents), op.cron (scheduled messages),
 * op.webhook (room messages as HTTP POSTs) and the feature-flagged op.omega.* lane. op.casil.* and op.history.* are
 * served by the gateway itself, next to the engines they drive.
 *
 * ```ts
 * const server = createArqonServer({ auth });
 * const operators = await registerStandardOperators(server, { omega: omegaOptionsFromEnv(process.env) });
 * ```
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
} from "./host.js";
export { storeOperator, type StoreOperatorOptions } from "./store.js";
export { cronOperator, type CronOperatorOptions, type CronSchedule } from "./cron.js";
export { webhookOperator, type WebhookOperatorOptions } from "./webhook.js";
export { omegaOperator, omegaOptionsFromEnv, OMEGA_COMMANDS, type OmegaOptions } from "./omega.js";

/** Names of the operators that ship with ArqonBus. */
export const STANDARD_OPERATORS = ["op.webhook", "op.cron", "op.store", "op.casil", "op.history", "op.omega"] as const;
export type StandardOperator = (typeof STANDARD_OPERATORS)[number];

export interface StandardOperatorOptions {
  store?: StoreOperatorOptions | false;
  cron?: CronOperatorOptions | false;
  webhook?: WebhookOperatorOptions | false;
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
