/** Names of the operators that ship with ArqonBus. */
export const STANDARD_OPERATORS = [
  "op.webhook",
  "op.cron",
  "op.store",
  "op.casil",
  "op.history",
  "op.omega",
] as const;

export type StandardOperator = (typeof STANDARD_OPERATORS)[number];
