/** The tenants page: the operator lists tenants, sets limits, disables and enables, kicks; an admin sees its own. */
import type { VNode } from "preact";
import { useState } from "preact/hooks";
import { api, tenantPath, type Session } from "./api.js";
import { Card, ErrorLine, Outcome, Table, html, jsonText, useAction, useLoad } from "./ui.js";

interface TenantRecord {
  name: string;
  status: string;
  limits: Record<string, number>;
  description?: string;
}

interface TenantView {
  name: string;
  status: string;
  /** The limits in force (record, configuration and defaults together). */
  limits: Record<string, number>;
  /** The tenant's own record, when it has one (its `limits` are the ones set for it). */
  record?: { limits?: Record<string, number> };
  usage?: { rooms: number; storeKeys: number; storeBytes: number };
  connectionsHere?: number;
  revocations?: unknown[];
}

/** Kick (4504) a user's connections, or all of the tenant's. */
function KickForm(props: { session: Session; tenant: string }): VNode {
  const [user, setUser] = useState("");
  const action = useAction();
  return html`<form
    class="row-form"
    onSubmit=${(e: Event) => {
      e.preventDefault();
      void action.run(async () => {
        const r = await api<{ closedHere: number }>(props.session.credential, "POST", tenantPath(props.tenant, "kick"), user.trim() ? { user: user.trim() } : {});
        return `closed ${r.closedHere} connection(s) on this node`;
      });
    }}
  >
    <label>user <input name="kick-user" value=${user} placeholder="every user when empty" onInput=${(e: Event) => setUser((e.target as HTMLInputElement).value)} /></label>
    <button type="submit" class="danger" disabled=${action.busy}>Kick</button>
    <${Outcome} note=${action.note} error=${action.error} />
  </form>`;
}

/** The limits of one tenant, editable as JSON by the operator (a limit set to null goes back to the default). */
function LimitsForm(props: { session: Session; tenant: string; limits: Record<string, number>; hasRecord: boolean; onSaved(): void }): VNode {
  const [text, setText] = useState(JSON.stringify(props.limits, null, 2));
  const action = useAction();
  return html`<form
    onSubmit=${(e: Event) => {
      e.preventDefault();
      void action.run(async () => {
        let limits: unknown;
        try {
          limits = JSON.parse(text);
        } catch {
          throw new Error("limits must be a JSON object, e.g. {\"maxConnections\": 100}");
        }
        // A tenant without a record (open mode) gets one, with these limits.
        if (props.hasRecord) await api(props.session.credential, "PATCH", tenantPath(props.tenant), { limits });
        else await api(props.session.credential, "POST", "/api/v1/tenants", { name: props.tenant, limits });
        props.onSaved();
        return props.hasRecord ? "limits saved" : "limits saved (the tenant's record was created)";
      });
    }}
  >
    <label class="block">limits (JSON; null puts a limit back to the default)
      <textarea name="limits" rows="6" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
    </label>
    <button type="submit" disabled=${action.busy}>Save limits</button>
    <${Outcome} note=${action.note} error=${action.error} />
  </form>`;
}

function TenantDetail(props: { session: Session; tenant: string; onChange(): void }): VNode {
  const { session, tenant } = props;
  const view = useLoad(() => api<TenantView>(session.credential, "GET", tenantPath(tenant)), [session.credential, tenant]);
  const toggle = useAction();
  const v = view.data;
  return html`<${Card} title=${`Tenant ${tenant}`} id="tenant-detail" wide>
    <${ErrorLine} error=${view.error} />
    ${v
      ? html`<p>status <strong id="tenant-status">${v.status}</strong>; connections here ${v.connectionsHere ?? 0}; rooms ${v.usage?.rooms ?? 0}; store keys
          ${v.usage?.storeKeys ?? 0} (${v.usage?.storeBytes ?? 0} bytes); revocations ${v.revocations?.length ?? 0}</p>`
      : null}
    ${session.kind === "operator" && v
      ? html`<div class="actions">
          ${v.status === "disabled"
            ? html`<button id="tenant-enable" disabled=${toggle.busy} onClick=${() => void toggle.run(async () => {
                await api(session.credential, "POST", tenantPath(tenant, "enable"));
                view.reload();
                props.onChange();
                return `${tenant} enabled`;
              })}>Enable</button>`
            : html`<button id="tenant-disable" class="danger" disabled=${toggle.busy} onClick=${() => void toggle.run(async () => {
                const r = await api<{ closedHere: number }>(session.credential, "POST", tenantPath(tenant, "disable"));
                view.reload();
                props.onChange();
                return `${tenant} disabled: ${r.closedHere} connection(s) closed with 4503 on this node`;
              })}>Disable</button>`}
          <${Outcome} note=${toggle.note} error=${toggle.error} />
        </div>`
      : null}
    <h3>Kick</h3>
    <${KickForm} session=${session} tenant=${tenant} />
    ${v && session.kind === "operator"
      ? html`<h3>Limits set for ${tenant}</h3>
          <${LimitsForm} key=${tenant} session=${session} tenant=${tenant} limits=${v.record?.limits ?? {}} hasRecord=${v.record !== undefined} onSaved=${() => view.reload()} />`
      : null}
    <h3>Limits in force</h3>
    <pre class="code" id="tenant-limits">${v ? JSON.stringify(v.limits, null, 2) : ""}</pre>
  <//>`;
}

function CreateTenant(props: { session: Session; onCreated(name: string): void }): VNode {
  const [name, setName] = useState("");
  const action = useAction();
  return html`<form class="row-form" onSubmit=${(e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      await api(props.session.credential, "POST", "/api/v1/tenants", { name: name.trim() });
      props.onCreated(name.trim());
      return `created ${name.trim()}`;
    });
  }}>
    <label>new tenant <input name="new-tenant" value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} /></label>
    <button type="submit" disabled=${action.busy}>Create</button>
    <${Outcome} note=${action.note} error=${action.error} />
  </form>`;
}

/** The tenants page. */
export function Tenants(props: { session: Session; selectTenant(t: string): void }): VNode {
  const { session } = props;
  const list = useLoad(
    async () => {
      if (session.kind !== "operator") return undefined;
      const [tenants, status] = await Promise.all([
        api<{ mode: string; tenants: TenantRecord[] }>(session.credential, "GET", "/api/v1/tenants"),
        api<{ connectionsByTenant?: Record<string, number> }>(session.credential, "GET", "/status"),
      ]);
      return { ...tenants, connections: status.connectionsByTenant ?? {} };
    },
    [session.credential],
    5000,
  );
  const [chosen, setChosen] = useState(session.tenant);
  const choose = (t: string): void => {
    setChosen(t);
    props.selectTenant(t);
  };
  if (session.kind !== "operator") {
    return html`<div><h1>Tenant</h1><div class="grid"><${TenantDetail} session=${session} tenant=${session.tenant} onChange=${() => undefined} /></div></div>`;
  }
  const d = list.data;
  const names = new Set([...(d?.tenants ?? []).map((t) => t.name), ...Object.keys(d?.connections ?? {})]);
  const byName = new Map((d?.tenants ?? []).map((t) => [t.name, t]));
  return html`<div>
    <h1>Tenants</h1>
    <div class="grid">
      <${Card} title=${`Tenants (${d?.mode ?? "…"} mode)`} id="tenant-list" wide>
        <${ErrorLine} error=${list.error} />
        <${Table}
          head=${["tenant", "status", "connections here", "limits set"]}
          rows=${[...names].sort().map((name) => {
            const rec = byName.get(name);
            return [
              html`<button class="link" data-tenant=${name} title="open" onClick=${() => choose(name)}>${name}</button>`,
              rec?.status ?? "no record",
              d?.connections[name] ?? 0,
              rec && Object.keys(rec.limits).length > 0 ? jsonText(rec.limits, 80) : "defaults",
            ];
          })}
          empty="no tenants yet"
        />
        <${CreateTenant} session=${session} onCreated=${(n: string) => {
          list.reload();
          choose(n);
        }} />
      <//>
      ${chosen ? html`<${TenantDetail} key=${chosen} session=${session} tenant=${chosen} onChange=${() => list.reload()} />` : null}
    </div>
  </div>`;
}
