import { parseArgs } from "node:util";
import type { TenancyMode, TenantLimits, TenantRecord, TenantView } from "@arqon/server";
import type { CliIo } from "../index.js";
import { CliError } from "../config.js";
import { isoTime, OPERATOR_FLAGS, OPERATOR_FLAGS_HELP, OperatorClient, seg, table, type ApiScope, type OperatorContext } from "./operator-client.js";
import { formatDuration, formatSize, parseCount, parseDuration, parseRate, parseSize } from "./units.js";

type LimitKind = "count" | "size" | "duration" | "rate";

/** The flag of every tenant limit (kebab-case of the field, unit suffixes dropped) and how its value is written. */
const LIMIT_FLAGS: Readonly<Record<keyof TenantLimits, { flag: string; kind: LimitKind }>> = {
  maxConnections: { flag: "max-connections", kind: "count" },
  maxRooms: { flag: "max-rooms", kind: "count" },
  publishRatePerSecond: { flag: "publish-rate", kind: "rate" },
  publishBurst: { flag: "publish-burst", kind: "count" },
  maxMessageBytes: { flag: "max-message-bytes", kind: "size" },
  historyRetentionMs: { flag: "history-retention", kind: "duration" },
  historyMaxMessages: { flag: "history-max-messages", kind: "count" },
  historyMaxBytes: { flag: "history-max-bytes", kind: "size" },
  maxPresencePerRoom: { flag: "max-presence-per-room", kind: "count" },
  maxStateKeys: { flag: "max-state-keys", kind: "count" },
  maxStateBytes: { flag: "max-state-bytes", kind: "size" },
  maxStoreKeys: { flag: "max-store-keys", kind: "count" },
  maxStoreBytes: { flag: "max-store-bytes", kind: "size" },
  maxCronJobs: { flag: "max-cron-jobs", kind: "count" },
  cronRatePerSecond: { flag: "cron-rate", kind: "rate" },
  maxWebhooks: { flag: "max-webhooks", kind: "count" },
  wasmBudgetMs: { flag: "wasm-budget", kind: "duration" },
  wasmMaxMemoryBytes: { flag: "wasm-max-memory", kind: "size" },
  wasmCallsPerSecond: { flag: "wasm-calls-per-second", kind: "count" },
};

const LIMIT_ENTRIES = Object.entries(LIMIT_FLAGS) as Array<[keyof TenantLimits, { flag: string; kind: LimitKind }]>;

const LIMIT_OPTIONS = Object.fromEntries(LIMIT_ENTRIES.map(([, { flag }]) => [flag, { type: "string" as const }])) as Record<string, { type: "string" }>;

const HELP = `usage: arqon tenant create <name> [limit flags] [--description D] [--disabled]
       arqon tenant list
       arqon tenant show <name>
       arqon tenant set <name> [limit flags] [--unset <limit>]... [--description D]
       arqon tenant disable <name>
       arqon tenant enable <name>
       arqon tenant delete <name> --yes

Manages the server's tenants through its API. Every verb needs an operator key, except show, which a token with
role "admin" of that tenant may also use. disable closes the tenant's connections (4503) on every node and refuses
new ones until enable; delete removes the tenant's data (history, room state, op.store values, schedules, hooks,
CASIL layer, revocations) and its record, and needs --yes.

Limit flags (create, set); unset limits take the server's defaults for tenants:
  --max-connections N          open connections across the cluster
  --max-rooms N                rooms holding data (history or state)
  --publish-rate N/s           publishes per second, the whole tenant (0 = no bound; plain N works too)
  --publish-burst N            publishes allowed at once above the rate (default 2 x rate)
  --max-message-bytes SIZE     largest payload of one message
  --history-retention DUR      age bound of every room's history (0 = the store's own rule)
  --history-max-messages N     messages kept per room (0 = the store's own rule)
  --history-max-bytes SIZE     payload bytes of history kept per room (0 = no bound)
  --max-presence-per-room N    presence members per room (0 = no bound)
  --max-state-keys N           state keys per room
  --max-state-bytes SIZE       bytes of state values per room
  --max-store-keys N           op.store keys of the tenant
  --max-store-bytes SIZE       bytes of op.store values of the tenant
  --max-cron-jobs N            op.cron schedules
  --cron-rate N/s              scheduled publishes per second, all schedules together
  --max-webhooks N             op.webhook hooks
  --wasm-budget DUR            time budget of one call of the tenant's Wasm policies
  --wasm-max-memory SIZE       largest memory a Wasm policy may declare (a multiple of 64KiB)
  --wasm-calls-per-second N    calls per second of the tenant's Wasm policies
  --unset LIMIT                (set) return a limit to the default, e.g. --unset publish-rate; repeatable
SIZE is bytes: 1024, 64KiB, 16MiB, 1GiB (powers of 1024) or 500KB, 16MB, 1GB (powers of 1000).
DUR is 500ms, 30s, 5m, 1h or 7d. N is a whole number.

Options:
  --description D      (create, set) a note kept with the record
  --disabled           (create) create the tenant disabled
  --yes                (delete) confirm that all the tenant's data is removed
${OPERATOR_FLAGS_HELP}`;

const VERBS = ["create", "list", "show", "set", "disable", "enable", "delete"] as const;
type Verb = (typeof VERBS)[number];

/** The options each verb takes beyond the shared ones. */
const VERB_OPTIONS: Record<Verb, readonly string[]> = {
  create: [...LIMIT_ENTRIES.map(([, l]) => l.flag), "description", "disabled"],
  list: [],
  show: [],
  set: [...LIMIT_ENTRIES.map(([, l]) => l.flag), "description", "unset"],
  disable: [],
  enable: [],
  delete: ["yes"],
};

function parseLimit(kind: LimitKind, value: string, flag: string): number {
  switch (kind) {
    case "count":
      return parseCount(value, flag);
    case "size":
      return parseSize(value, flag);
    case "duration":
      return parseDuration(value, flag);
    case "rate":
      return parseRate(value, flag);
  }
}

function formatLimit(field: keyof TenantLimits, value: number): string {
  switch (LIMIT_FLAGS[field].kind) {
    case "count":
      return String(value);
    case "size":
      return formatSize(value);
    case "duration":
      return formatDuration(value);
    case "rate":
      return `${value}/s`;
  }
}

/** The field named by `--unset` (its flag name, with or without dashes, or the API's field name). */
function limitField(name: string): keyof TenantLimits {
  const bare = name.replace(/^--/, "");
  const found = LIMIT_ENTRIES.find(([field, { flag }]) => flag === bare || field === bare);
  if (!found) throw new CliError(`--unset: unknown limit "${name}" (one of ${LIMIT_ENTRIES.map(([, l]) => l.flag).join(", ")})`);
  return found[0];
}

function limitsSummary(limits: TenantLimits): string {
  const parts = LIMIT_ENTRIES.filter(([field]) => limits[field] !== undefined).map(([field, { flag }]) => `${flag}=${formatLimit(field, limits[field]!)}`);
  return parts.length ? parts.join(" ") : "defaults";
}

function showLines(view: TenantView): string[] {
  const own = view.record?.limits ?? {};
  const lines = [`name: ${view.name}`, `status: ${view.status}`];
  if (view.record?.description !== undefined) lines.push(`description: ${view.record.description}`);
  if (view.record) lines.push(`created: ${isoTime(view.record.createdAt)}`, `updated: ${isoTime(view.record.updatedAt)}`);
  if (view.record?.disabledAt !== undefined) lines.push(`disabled since: ${isoTime(view.record.disabledAt)}`);
  lines.push(
    `connections here: ${view.connectionsHere}`,
    `rooms: ${view.usage.rooms}`,
    `store keys: ${view.usage.storeKeys}`,
    `store bytes: ${formatSize(view.usage.storeBytes)}`,
    `revocations: ${view.revocations.length}`,
    "limits (* set for this tenant, the others are the server's defaults):",
  );
  const width = Math.max(...LIMIT_ENTRIES.map(([, { flag }]) => flag.length)) + 1;
  for (const [field, { flag }] of LIMIT_ENTRIES) {
    lines.push(`  ${`${flag}:`.padEnd(width)} ${formatLimit(field, view.limits[field])}${own[field] !== undefined ? " *" : ""}`);
  }
  return lines;
}

/** `arqon tenant <verb>`. Exit codes: 0 ok, 1 refused or unreachable, 2 usage. */
export async function tenantCommand(argv: readonly string[], io: CliIo, ctx: OperatorContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      ...OPERATOR_FLAGS,
      ...LIMIT_OPTIONS,
      unset: { type: "string", multiple: true },
      description: { type: "string" },
      disabled: { type: "boolean" },
      yes: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  const [verb, name, ...extra] = positionals;
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (!VERBS.includes(verb as Verb)) {
    io.err(verb === undefined ? HELP : `arqon tenant: unknown verb "${verb}" (${VERBS.join(", ")}; see arqon tenant --help)`);
    return 2;
  }
  const v = verb as Verb;
  if (v === "list" ? name !== undefined : name === undefined) {
    throw new CliError(v === "list" ? "tenant list takes no name" : `tenant ${v} needs a tenant name: arqon tenant ${v} <name>`);
  }
  if (extra.length > 0) throw new CliError(`unexpected argument "${extra[0]}"`);
  const shared = new Set(Object.keys(OPERATOR_FLAGS));
  const given = values as Record<string, unknown>;
  for (const option of Object.keys(given)) {
    if (given[option] === undefined || shared.has(option) || VERB_OPTIONS[v].includes(option)) continue;
    throw new CliError(`--${option} is not an option of tenant ${v}`);
  }

  const limits: Record<string, number | null> = {};
  for (const [field, { flag, kind }] of LIMIT_ENTRIES) {
    const raw = given[flag] as string | undefined;
    if (raw !== undefined) limits[field] = parseLimit(kind, raw, `--${flag}`);
  }
  for (const unset of values.unset ?? []) {
    const field = limitField(unset);
    if (limits[field] !== undefined) throw new CliError(`--${LIMIT_FLAGS[field].flag} is both set and unset`);
    limits[field] = null;
  }
  const description = values.description;
  if (v === "set" && Object.keys(limits).length === 0 && description === undefined) {
    throw new CliError("tenant set needs a limit flag, --unset or --description (see arqon tenant --help)");
  }
  if (v === "delete" && !values.yes) {
    throw new CliError(
      `deleting tenant "${name}" removes all its data (history, room state, op.store values, schedules, hooks, its CASIL layer, revocations and its record) and closes its connections; run again with --yes to confirm`,
    );
  }

  const scope: ApiScope = v === "show" ? "tenant-admin" : "operator";
  const client = OperatorClient.fromFlags(values, ctx, scope);
  const tenant = name ?? "";
  const path = `/api/v1/tenants/${seg(tenant)}`;
  const print = (body: unknown, human: () => string[]): void => {
    if (values.json) io.out(JSON.stringify(body));
    else for (const line of human()) io.out(line);
  };
  try {
    switch (v) {
      case "list": {
        const body = await client.request<{ mode: TenancyMode; tenants: TenantRecord[] }>("GET", "/api/v1/tenants");
        print(body, () => [
          ...(body.tenants.length
            ? table(["NAME", "STATUS", "CREATED", "LIMITS"], body.tenants.map((t) => [t.name, t.status, isoTime(t.createdAt), limitsSummary(t.limits)]))
            : ["no tenant records"]),
          `tenancy mode: ${body.mode}`,
        ]);
        return 0;
      }
      case "show": {
        const view = await client.request<TenantView>("GET", path);
        print(view, () => showLines(view));
        return 0;
      }
      case "create": {
        const body: Record<string, unknown> = { name: tenant };
        if (Object.keys(limits).length) body.limits = limits;
        if (description !== undefined) body.description = description;
        if (values.disabled) body.disabled = true;
        const record = await client.request<TenantRecord>("POST", "/api/v1/tenants", body);
        print(record, () => [`created tenant ${record.name} (${record.status}; limits: ${limitsSummary(record.limits)})`]);
        return 0;
      }
      case "set": {
        const body: Record<string, unknown> = {};
        if (Object.keys(limits).length) body.limits = limits;
        if (description !== undefined) body.description = description;
        const record = await client.request<TenantRecord>("PATCH", path, body);
        print(record, () => [`updated tenant ${record.name} (limits: ${limitsSummary(record.limits)})`]);
        return 0;
      }
      case "disable": {
        const result = await client.request<{ record: TenantRecord; closedHere: number }>("POST", `${path}/disable`);
        print(result, () => [`disabled tenant ${tenant}: ${result.closedHere} connection(s) closed on the node that answered, the other nodes close theirs`]);
        return 0;
      }
      case "enable": {
        const record = await client.request<TenantRecord>("POST", `${path}/enable`);
        print(record, () => [`enabled tenant ${record.name}`]);
        return 0;
      }
      case "delete": {
        const result = await client.request<{ rooms: number; stateRooms: number; storeKeys: number }>("DELETE", `${path}?confirm=${seg(tenant)}`);
        print(result, () => [`deleted tenant ${tenant}: history of ${result.rooms} room(s), state of ${result.stateRooms} room(s), ${result.storeKeys} store key(s) removed`]);
        return 0;
      }
    }
  } catch (err) {
    return client.report(io, "tenant", err, ctx);
  }
}
