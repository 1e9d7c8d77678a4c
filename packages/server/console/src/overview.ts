/** The overview page: nodes, connections, rooms, message rates (live sparklines), CASIL decisions, webhook queue. */
import type { VNode } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, metricsText, parseMetrics, sum, tenantPath, type Sample, type Session } from "./api.js";
import type { BusConnection } from "./bus.js";
import { Card, ErrorLine, Sparkline, Stat, Table, describeError, html, useLoad } from "./ui.js";

const POLL_MS = 2000;
const POINTS = 60;

interface NodeInfo {
  id: string;
  self?: boolean;
  version?: string;
  status?: string;
  uptimeMs?: number;
  connections?: number;
  rooms?: number;
  tenants?: number;
  answered?: boolean;
}

interface Rates {
  inPerSec: number[];
  outPerSec: number[];
  last?: { at: number; inTotal: number; outTotal: number };
}

/** CASIL decision counters by decision (allow, deny, ...): baseline and tenant layers. */
function decisionsOf(samples: Sample[]): Array<[string, number]> {
  const by = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== "arqon_casil_decisions_total" && s.name !== "arqon_casil_layer_decisions_total") continue;
    const key = `${s.name.includes("layer") ? "layer" : "baseline"} ${s.labels.mode ?? ""} ${s.labels.decision ?? ""}${s.labels.reason ? ` (${s.labels.reason})` : ""}`;
    by.set(key, (by.get(key) ?? 0) + s.value);
  }
  return [...by].sort((a, b) => b[1] - a[1]);
}

function OperatorOverview(props: { session: Session }): VNode {
  const cred = props.session.credential;
  const rates = useRef<Rates>({ inPerSec: [], outPerSec: [] });
  const [, redraw] = useState(0);
  const status = useLoad(() => api(cred, "GET", "/status"), [cred], POLL_MS);
  const info = useLoad(() => api<{ nodes: NodeInfo[]; clustered: boolean }>(cred, "GET", "/api/v1/info"), [cred], POLL_MS);
  const [samples, setSamples] = useState<Sample[]>([]);
  const [metricsError, setMetricsError] = useState<string>();
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (): Promise<void> => {
      try {
        const parsed = parseMetrics(await metricsText(cred));
        if (!live) return;
        const now = Date.now();
        const inTotal = sum(parsed, "arqon_messages_in_total");
        const outTotal = sum(parsed, "arqon_messages_out_total");
        const r = rates.current;
        if (r.last) {
          const dt = Math.max(0.001, (now - r.last.at) / 1000);
          r.inPerSec = [...r.inPerSec, Math.max(0, inTotal - r.last.inTotal) / dt].slice(-POINTS);
          r.outPerSec = [...r.outPerSec, Math.max(0, outTotal - r.last.outTotal) / dt].slice(-POINTS);
        }
        r.last = { at: now, inTotal, outTotal };
        setSamples(parsed);
        setMetricsError(undefined);
        redraw((n) => n + 1);
      } catch (err) {
        if (live) setMetricsError(describeError(err));
      } finally {
        if (live) timer = setTimeout(() => void poll(), POLL_MS);
      }
    };
    void poll();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [cred]);
  const s = status.data as { connections?: number; rooms?: number; tenants?: number; version?: string; status?: string; uptimeMs?: number } | undefined;
  const backlog = sum(samples, "arqon_webhook_backlog");
  const delivered = sum(samples, "arqon_webhook_deliveries_total", { outcome: "delivered" });
  const dead = sum(samples, "arqon_webhook_deliveries_total", { outcome: "dead" });
  return html`<div class="grid">
    <${Card} title="This node" id="ov-node">
      <${ErrorLine} error=${status.error} />
      <div class="stats">
        <${Stat} label="connections" value=${s?.connections ?? "…"} id="ov-connections" />
        <${Stat} label="rooms" value=${s?.rooms ?? "…"} id="ov-rooms" />
        <${Stat} label="tenants" value=${s?.tenants ?? "…"} id="ov-tenants" />
        <${Stat} label="status" value=${s?.status ?? "…"} />
      </div>
      <p class="muted">version ${s?.version ?? "…"}, up ${s?.uptimeMs !== undefined ? Math.round(s.uptimeMs / 1000) : "…"} s</p>
    <//>
    <${Card} title="Messages per second" id="ov-rates">
      <${ErrorLine} error=${metricsError} />
      <div class="sparks">
        <${Sparkline} values=${rates.current.inPerSec} label="in / s" id="spark-in" />
        <${Sparkline} values=${rates.current.outPerSec} label="out / s" id="spark-out" />
      </div>
    <//>
    <${Card} title="Nodes" id="ov-nodes" wide>
      <${ErrorLine} error=${info.error} />
      <${Table}
        head=${["node", "status", "version", "connections", "rooms", "tenants"]}
        rows=${(info.data?.nodes ?? []).map((n) => [
          html`<code>${n.id}</code>${n.self ? " (this)" : ""}${n.answered === false ? " (no answer)" : ""}`,
          n.status ?? "",
          n.version ?? "",
          n.connections ?? "",
          n.rooms ?? "",
          n.tenants ?? "",
        ])}
      />
    <//>
    <${Card} title="CASIL decisions" id="ov-casil">
      <${Table} head=${["kind", "count"]} rows=${decisionsOf(samples).map(([k, v]) => [k, v])} empty="no inspections yet" />
    <//>
    <${Card} title="Webhook queue" id="ov-webhooks">
      <div class="stats">
        <${Stat} label="waiting" value=${backlog} id="ov-backlog" />
        <${Stat} label="delivered" value=${delivered} />
        <${Stat} label="dead letters" value=${dead} />
      </div>
    <//>
  </div>`;
}

function AdminOverview(props: { session: Session; bus: () => BusConnection }): VNode {
  const { credential: cred, tenant } = props.session;
  const info = useLoad(
    () => api<{ connections: number; subscribers: number; nodes: Array<{ id: string; connections: number; rooms: number; subscribers: number }> }>(cred, "GET", tenantPath(tenant, "info")),
    [cred, tenant],
    POLL_MS,
  );
  const rooms = useLoad(() => api<{ rooms: unknown[]; next?: string }>(cred, "GET", `${tenantPath(tenant, "rooms")}?limit=1000`), [cred, tenant], POLL_MS * 2);
  const casil = useLoad(() => api<{ stats?: { baseline: Array<Record<string, unknown>>; layer: Array<Record<string, unknown>> } }>(cred, "GET", tenantPath(tenant, "casil")), [cred, tenant], POLL_MS * 2);
  const hooks = useLoad(() => props.bus().command<{ webhooks: Array<{ backlog: number; deadLetters: number }> }>("op.webhook.list"), [cred, tenant], POLL_MS * 2);
  const decisions = [...(casil.data?.stats?.baseline ?? []).map((d) => ["baseline", d] as const), ...(casil.data?.stats?.layer ?? []).map((d) => ["layer", d] as const)];
  return html`<div class="grid">
    <${Card} title=${`Tenant ${tenant}`} id="ov-node">
      <${ErrorLine} error=${info.error} />
      <div class="stats">
        <${Stat} label="connections" value=${info.data?.connections ?? "…"} id="ov-connections" />
        <${Stat} label="subscriptions" value=${info.data?.subscribers ?? "…"} />
        <${Stat} label="live rooms" value=${rooms.data ? `${rooms.data.rooms.length}${rooms.data.next ? "+" : ""}` : "…"} id="ov-rooms" />
      </div>
      <p class="muted">Message rates are server-wide figures from /metrics, which only the operator reads.</p>
    <//>
    <${Card} title="Nodes" id="ov-nodes">
      <${Table} head=${["node", "connections", "rooms", "subscriptions"]} rows=${(info.data?.nodes ?? []).map((n) => [html`<code>${n.id}</code>`, n.connections, n.rooms, n.subscribers])} />
    <//>
    <${Card} title="CASIL decisions" id="ov-casil">
      <${ErrorLine} error=${casil.error} />
      <${Table} head=${["where", "mode", "decision", "reason", "count"]} rows=${decisions.map(([w, d]) => [w, String(d.mode ?? ""), String(d.decision ?? ""), String(d.reason ?? ""), String(d.count ?? "")])} empty="no inspections yet" />
    <//>
    <${Card} title="Webhook queue" id="ov-webhooks">
      <${ErrorLine} error=${hooks.error} />
      <div class="stats">
        <${Stat} label="waiting" value=${(hooks.data?.webhooks ?? []).reduce((n, w) => n + w.backlog, 0)} id="ov-backlog" />
        <${Stat} label="dead letters" value=${(hooks.data?.webhooks ?? []).reduce((n, w) => n + w.deadLetters, 0)} />
        <${Stat} label="webhooks" value=${hooks.data?.webhooks.length ?? "…"} />
      </div>
    <//>
  </div>`;
}

/** The overview page for whoever is signed in. */
export function Overview(props: { session: Session; bus: () => BusConnection }): VNode {
  return html`<div>
    <h1>Overview</h1>
    <p class="muted">Refreshed every ${POLL_MS / 1000} s.</p>
    ${props.session.kind === "operator" ? html`<${OperatorOverview} session=${props.session} />` : html`<${AdminOverview} session=${props.session} bus=${props.bus} />`}
  </div>`;
}
