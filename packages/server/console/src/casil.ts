/** The CASIL page: the baseline and the tenant layers, an editor with validation (dry run) and apply, decisions. */
import type { VNode } from "preact";
import { useRef, useState } from "preact/hooks";
import { api, tenantPath, type Session } from "./api.js";
import { Card, ErrorLine, Outcome, Table, html, useAction, useLoad } from "./ui.js";

interface Decision {
  tenant?: string;
  mode?: string;
  decision?: string;
  reason?: string;
  count?: number;
}

const decisionKey = (d: Decision): string => `${d.tenant ?? ""}|${d.mode ?? ""}|${d.decision ?? ""}|${d.reason ?? ""}`;

/** The counts first seen of each kind of decision (`primed` once the first answer came). */
interface Seen {
  primed: boolean;
  counts: Map<string, number>;
}

const newSeen = (): Seen => ({ primed: false, counts: new Map() });

/**
 * Decision counters as rows, with how many of each came since the page opened: the server keeps counters, not single
 * decisions, so "recent" is the difference from the counts of the first answer (a kind first seen later is all new).
 */
function decisionRows(list: Decision[] | undefined, seen: Seen): unknown[][] {
  const rows = (list ?? []).map((d) => {
    const key = decisionKey(d);
    const count = d.count ?? 0;
    if (!seen.counts.has(key)) seen.counts.set(key, seen.primed ? 0 : count);
    return [d.tenant ?? "", d.mode ?? "", d.decision ?? "", d.reason ?? "", count, count - seen.counts.get(key)!];
  });
  seen.primed = true;
  return rows;
}

const DECISION_HEAD = ["tenant", "mode", "decision", "reason", "since start", "since opened"];

/** A policy editor: "Validate" sends the document with dryRun (nothing changes), "Apply" sends it for real. */
function Editor(props: { id: string; initial: unknown; put(body: Record<string, unknown>): Promise<Record<string, unknown>>; onApplied(): void; clear?: () => Promise<unknown> }): VNode {
  const [text, setText] = useState(JSON.stringify(props.initial ?? { mode: "monitor" }, null, 2));
  const action = useAction();
  const send = (dryRun: boolean): void =>
    void action.run(async () => {
      let policy: unknown;
      try {
        policy = JSON.parse(text);
      } catch {
        // YAML or JSON text: the server parses it and says what is wrong.
        policy = text;
      }
      const r = await props.put({ policy, dryRun });
      if (!dryRun) props.onApplied();
      return dryRun ? `valid: version ${String(r.version)} would replace ${String(r.previousVersion)}` : `applied: version ${String(r.version)}`;
    });
  return html`<div class="editor" id=${props.id}>
    <label class="block">policy document (JSON or YAML)
      <textarea name="policy" rows="12" spellcheck="false" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
    </label>
    <div class="actions">
      <button class="validate" disabled=${action.busy} onClick=${() => send(true)}>Validate (dry run)</button>
      <button class="apply" disabled=${action.busy} onClick=${() => send(false)}>Apply</button>
      ${props.clear ? html`<button class="danger" disabled=${action.busy} onClick=${() => void action.run(async () => {
        await props.clear!();
        props.onApplied();
        return "layer removed";
      })}>Remove layer</button>` : null}
    </div>
    <${Outcome} note=${action.note} error=${action.error} />
  </div>`;
}

function Baseline(props: { session: Session }): VNode {
  const cred = props.session.credential;
  const base = useLoad(() => api<{ version: number; mode: string; enabled: boolean; source: string; loadedAt: string; document: unknown; effective?: unknown; layers: Array<Record<string, unknown>>; stats: { decisions: Decision[] } }>(cred, "GET", "/api/v1/casil/baseline"), [cred], 5000);
  const b = base.data;
  const seen = useRef(newSeen());
  return html`<${Card} title="Baseline (operator)" id="casil-baseline" wide>
    <${ErrorLine} error=${base.error} />
    ${b ? html`<p>version <strong>${b.version}</strong>, ${b.enabled ? b.mode : "off"}, from ${b.source}, loaded ${b.loadedAt}</p>` : null}
    ${b?.effective ? html`<details class="effective"><summary>effective policy (the document with the defaults filled in)</summary><pre class="code">${JSON.stringify(b.effective, null, 2)}</pre></details>` : null}
    ${b ? html`<${Editor} key=${`b${b.version}`} id="baseline-editor" initial=${b.document} put=${(body: Record<string, unknown>) => api(cred, "PUT", "/api/v1/casil/baseline", body)} onApplied=${() => base.reload()} />` : null}
    <h3>Tenant layers</h3>
    <${Table} head=${["tenant", "version", "mode", "updated", "by"]} rows=${(b?.layers ?? []).map((l) => [String(l.tenant), String(l.version), String(l.mode), String(l.updatedAt ?? ""), String(l.updatedBy ?? "")])} empty="no tenant has a layer" />
    <h3>Decisions</h3>
    <${Table} head=${DECISION_HEAD} rows=${b ? decisionRows(b.stats.decisions, seen.current) : []} empty="no inspections yet" />
  <//>`;
}

function TenantLayer(props: { session: Session; tenant: string }): VNode {
  const { session, tenant } = props;
  const cred = session.credential;
  const view = useLoad(
    () => api<{ baseline: { version: number; mode: string; enabled: boolean }; layer: null | { version: number; mode: string; document: unknown; updatedAt: string; updatedBy: string; error?: string }; effectiveMode?: Record<string, unknown>; stats?: { baseline: Decision[]; layer: Decision[] } }>(cred, "GET", tenantPath(tenant, "casil")),
    [cred, tenant],
    5000,
  );
  const v = view.data;
  const seen = useRef(newSeen());
  const seenLayer = useRef(newSeen());
  return html`<${Card} title=${`Layer of ${tenant}`} id="casil-layer" wide>
    <${ErrorLine} error=${view.error} />
    ${v ? html`<p>baseline version ${v.baseline.version} (${v.baseline.enabled ? v.baseline.mode : "off"}); layer ${v.layer ? html`version <strong id="layer-version">${v.layer.version}</strong>, ${v.layer.mode}, by ${v.layer.updatedBy}` : html`<strong id="layer-version">none</strong>`}</p>` : null}
    ${v?.layer?.error ? html`<p class="error">${v.layer.error}</p>` : null}
    ${v
      ? html`<${Editor}
          key=${`l${v.layer?.version ?? 0}`}
          id="layer-editor"
          initial=${v.layer?.document ?? { mode: "monitor" }}
          put=${(body: Record<string, unknown>) => api(cred, "PUT", tenantPath(tenant, "casil"), body)}
          clear=${v.layer ? () => api(cred, "DELETE", tenantPath(tenant, "casil")) : undefined}
          onApplied=${() => view.reload()}
        />`
      : null}
    <h3>Decisions for ${tenant}</h3>
    <${Table} head=${DECISION_HEAD} rows=${v ? [...decisionRows(v.stats?.baseline, seen.current), ...decisionRows(v.stats?.layer, seenLayer.current)] : []} empty="no inspections yet" />
  <//>`;
}

/** The CASIL page. */
export function Casil(props: { session: Session }): VNode {
  const { session } = props;
  return html`<div>
    <h1>CASIL</h1>
    <div class="grid">
      ${session.kind === "operator" ? html`<${Baseline} session=${session} />` : null}
      ${session.tenant ? html`<${TenantLayer} key=${session.tenant} session=${session} tenant=${session.tenant} />` : html`<p class="muted">Choose a tenant in the header to see its layer.</p>`}
    </div>
  </div>`;
}
