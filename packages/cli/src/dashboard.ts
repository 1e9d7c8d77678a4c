// The Grafana dashboard of ArqonBus, built in code so that `dashboards/arqon.json` (committed, for provisioning) and
// `arqon dashboard export --tenant T` come from one definition. packages/cli/test/dashboard.test.ts checks the committed
// file against this and every PromQL expression against the series a real server exports.

/** The `tenant` matcher every tenant-scoped expression carries; export with a tenant replaces it with an exact match. */
const TENANT = 'tenant=~"$tenant"';
const RATE = "[$__rate_interval]";

/** One panel of the dashboard, before layout. */
interface PanelSpec {
  title: string;
  description: string;
  /** Grafana unit id (`short`, `reqps`, `s`, `bytes`, `Bps`, `percentunit`). */
  unit: string;
  /** `legendFormat` per expression, keyed by the expression. */
  targets: Array<{ expr: string; legend: string }>;
  /** Whether every expression is filtered by tenant: only those panels go into a one-tenant export. */
  tenantScoped: boolean;
  /** Width in grid units (24 per row). @default 8 */
  w?: number;
  /** Draw as stacked bars rather than lines. */
  bars?: boolean;
}

/** One row of panels. */
interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

const rows: RowSpec[] = [
  {
    title: "Connections and traffic",
    panels: [
      {
        title: "Open connections",
        description: "WebSocket connections open now, by tenant (arqon_connections, summed over nodes).",
        unit: "short",
        targets: [{ expr: `sum by (tenant) (arqon_connections{${TENANT}})`, legend: "{{tenant}}" }],
        tenantScoped: true,
      },
      {
        title: "Connections accepted",
        description: "New WebSocket connections per second, by tenant.",
        unit: "cps",
        targets: [{ expr: `sum by (tenant) (rate(arqon_connections_total{${TENANT}}${RATE}))`, legend: "{{tenant}}" }],
        tenantScoped: true,
      },
      {
        title: "Messages in / out",
        description: "Frames received from clients, and room frames queued to clients (deliveries), per second.",
        unit: "reqps",
        targets: [
          { expr: `sum by (tenant) (rate(arqon_messages_in_total{${TENANT}}${RATE}))`, legend: "in {{tenant}}" },
          { expr: `sum by (tenant) (rate(arqon_messages_out_total{${TENANT}}${RATE}))`, legend: "delivered {{tenant}}" },
        ],
        tenantScoped: true,
      },
      {
        title: "Bytes in / out",
        description: "Bytes received from and queued to clients, per second.",
        unit: "Bps",
        targets: [
          { expr: `sum by (tenant) (rate(arqon_bytes_in_total{${TENANT}}${RATE}))`, legend: "in {{tenant}}" },
          { expr: `sum by (tenant) (rate(arqon_bytes_out_total{${TENANT}}${RATE}))`, legend: "out {{tenant}}" },
        ],
        tenantScoped: true,
      },
      {
        title: "Fan-out latency",
        description: "Time to encode one room frame and queue it to every local subscriber (arqon_fanout_seconds): p50, p99.",
        unit: "s",
        targets: [
          { expr: `histogram_quantile(0.5, sum by (le) (rate(arqon_fanout_seconds_bucket{${TENANT}}${RATE})))`, legend: "p50" },
          { expr: `histogram_quantile(0.99, sum by (le) (rate(arqon_fanout_seconds_bucket{${TENANT}}${RATE})))`, legend: "p99" },
        ],
        tenantScoped: true,
      },
      {
        title: "Errors sent",
        description: "Error frames sent to clients per second, by code (docs/errors.md).",
        unit: "reqps",
        targets: [{ expr: `sum by (code) (rate(arqon_errors_total{${TENANT}}${RATE}))`, legend: "{{code}}" }],
        tenantScoped: true,
        bars: true,
      },
    ],
  },
  {
    title: "CASIL",
    panels: [
      {
        title: "CASIL decisions (baseline)",
        description: "Inspections by the baseline policy per second, by decision and reason (monitor mode: what enforce would have done).",
        unit: "reqps",
        targets: [{ expr: `sum by (decision, reason) (rate(arqon_casil_decisions_total{${TENANT}}${RATE}))`, legend: "{{decision}} {{reason}}" }],
        tenantScoped: true,
        w: 12,
        bars: true,
      },
      {
        title: "CASIL decisions (tenant layers)",
        description: "Decisions made by the tenants' own CASIL layers per second, by decision and reason.",
        unit: "reqps",
        targets: [{ expr: `sum by (decision, reason) (rate(arqon_casil_layer_decisions_total{${TENANT}}${RATE}))`, legend: "{{decision}} {{reason}}" }],
        tenantScoped: true,
        w: 12,
        bars: true,
      },
    ],
  },
  {
    title: "Webhooks",
    panels: [
      {
        title: "Webhook backlog",
        description: "Messages waiting for delivery on the webhooks of each tenant (summed over the nodes delivering them).",
        unit: "short",
        targets: [{ expr: `sum by (tenant) (arqon_webhook_backlog{${TENANT}})`, legend: "{{tenant}}" }],
        tenantScoped: true,
      },
      {
        title: "Webhook deliveries",
        description: "Webhook messages per second by outcome: delivered (a 2xx) or dead (sent to the dead letters after the retries).",
        unit: "reqps",
        targets: [{ expr: `sum by (outcome) (rate(arqon_webhook_deliveries_total{${TENANT}}${RATE}))`, legend: "{{outcome}}" }],
        tenantScoped: true,
        bars: true,
      },
      {
        title: "Webhook attempt failures",
        description: "Failed delivery attempts per second by failure class (connect, timeout, http_status, redirect, forbidden, ...).",
        unit: "reqps",
        targets: [{ expr: `sum by (failure) (rate(arqon_webhook_attempt_failures_total{${TENANT}}${RATE}))`, legend: "{{failure}}" }],
        tenantScoped: true,
        bars: true,
      },
    ],
  },
  {
    title: "Server",
    panels: [
      {
        title: "NATS link",
        description: "1 while a node's link to NATS is connected, 0 while it reconnects or is closed (absent on the embedded backends).",
        unit: "short",
        targets: [{ expr: "min by (instance, backend) (arqon_backend_connected)", legend: "{{instance}} {{backend}}" }],
        tenantScoped: false,
      },
      {
        title: "History size",
        description: "Messages and rooms the history store keeps (the whole store; on NATS every node reports the shared stream).",
        unit: "short",
        targets: [
          { expr: "max(arqon_history_messages)", legend: "messages" },
          { expr: "max(arqon_history_rooms)", legend: "rooms" },
        ],
        tenantScoped: false,
      },
      {
        title: "Closes and refused upgrades",
        description: "Connections closed per second by close code, and upgrades refused before the handshake by error code.",
        unit: "reqps",
        targets: [
          { expr: `sum by (code) (rate(arqon_closes_total${RATE}))`, legend: "close {{code}}" },
          { expr: `sum by (code) (rate(arqon_upgrades_rejected_total${RATE}))`, legend: "refused {{code}}" },
        ],
        tenantScoped: false,
        bars: true,
      },
      {
        title: "CPU",
        description: "CPU seconds per second of each server process (1 = one core).",
        unit: "percentunit",
        targets: [{ expr: `rate(arqon_process_cpu_seconds_total${RATE})`, legend: "{{instance}}" }],
        tenantScoped: false,
      },
      {
        title: "Memory",
        description: "Resident memory and V8 heap in use of each server process.",
        unit: "bytes",
        targets: [
          { expr: "arqon_process_resident_memory_bytes", legend: "rss {{instance}}" },
          { expr: "arqon_nodejs_heap_size_used_bytes", legend: "heap {{instance}}" },
        ],
        tenantScoped: false,
      },
      {
        title: "Event loop lag",
        description: "p99 event-loop delay of each server process: how late timers and socket reads run.",
        unit: "s",
        targets: [{ expr: "arqon_nodejs_eventloop_lag_p99_seconds", legend: "{{instance}}" }],
        tenantScoped: false,
      },
    ],
  },
];

const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

/** A Grafana dashboard document (the JSON model Grafana imports and provisioning loads). */
export type Dashboard = Record<string, unknown> & { panels: Array<Record<string, unknown>>; title: string; uid: string };

/** Options of {@link buildDashboard}. */
export interface DashboardOptions {
  /**
   * Pre-filter for one tenant: every expression matches `tenant="<name>"` exactly, the tenant variable and the
   * server-wide panels (process, NATS link, history size, closes) are left out.
   */
  tenant?: string;
}

/** Escapes a tenant name for a PromQL string literal in double quotes. */
function promString(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** The dashboard: every tenant with a `tenant` variable, or (`tenant`) one tenant's. */
export function buildDashboard(options: DashboardOptions = {}): Dashboard {
  const tenant = options.tenant;
  const panels: Array<Record<string, unknown>> = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    const chosen = tenant === undefined ? row.panels : row.panels.filter((p) => p.tenantScoped);
    if (chosen.length === 0) continue;
    panels.push({ type: "row", id: id++, title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    for (const p of chosen) {
      const w = p.w ?? 8;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      panels.push({
        type: "timeseries",
        id: id++,
        title: p.title,
        description: p.description,
        datasource: DATASOURCE,
        gridPos: { h: 8, w, x, y },
        fieldConfig: {
          defaults: { unit: p.unit, custom: p.bars ? { drawStyle: "bars", stacking: { mode: "normal" }, fillOpacity: 80 } : { drawStyle: "line", fillOpacity: 10 } },
          overrides: [],
        },
        options: { legend: { displayMode: "list", placement: "bottom" }, tooltip: { mode: "multi" } },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DATASOURCE,
          expr: tenant === undefined ? t.expr : t.expr.split(TENANT).join(`tenant="${promString(tenant)}"`),
          legendFormat: t.legend,
        })),
      });
      x += w;
    }
    y += 8;
  }
  const variables: Array<Record<string, unknown>> = [
    { name: "datasource", label: "Prometheus", type: "datasource", query: "prometheus", current: {}, hide: 0 },
  ];
  if (tenant === undefined) {
    variables.push({
      name: "tenant",
      label: "Tenant",
      type: "query",
      datasource: DATASOURCE,
      query: { query: "label_values(arqon_connections_total, tenant)", refId: "tenants" },
      definition: "label_values(arqon_connections_total, tenant)",
      refresh: 2,
      multi: true,
      includeAll: true,
      allValue: ".*",
      current: { selected: true, text: ["All"], value: ["$__all"] },
      sort: 1,
      hide: 0,
    });
  }
  return {
    uid: tenant === undefined ? "arqonbus" : `arqonbus-${tenantUid(tenant)}`,
    title: tenant === undefined ? "ArqonBus" : `ArqonBus: tenant ${tenant}`,
    description:
      tenant === undefined
        ? "Connections, traffic, fan-out latency, CASIL, webhooks, NATS link and process health of ArqonBus servers, per tenant."
        : `The traffic, fan-out latency, CASIL decisions and webhooks of tenant ${tenant}.`,
    tags: ["arqonbus"],
    editable: true,
    graphTooltip: 1,
    refresh: "10s",
    schemaVersion: 39,
    time: { from: "now-1h", to: "now" },
    timezone: "",
    version: 1,
    templating: { list: variables },
    annotations: { list: [] },
    links: [],
    panels,
  };
}

/** A uid-safe form of a tenant name (Grafana uids: at most 40 characters of [A-Za-z0-9_-]). */
function tenantUid(tenant: string): string {
  return tenant.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 30);
}

/** Every PromQL expression of a dashboard, with the title of its panel. */
export function dashboardExpressions(dashboard: Dashboard): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  for (const panel of dashboard.panels) {
    for (const target of (panel.targets as Array<{ expr: string }> | undefined) ?? []) out.push({ panel: String(panel.title), expr: target.expr });
  }
  return out;
}
