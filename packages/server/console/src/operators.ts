/** The operators page: webhooks with their queue and dead letters (replay), cron jobs, store keys. */
import type { VNode } from "preact";
import { useState } from "preact/hooks";
import type { BusConnection } from "./bus.js";
import type { Session } from "./api.js";
import { Card, ErrorLine, Outcome, Table, html, jsonText, timeText, useAction, useLoad } from "./ui.js";

interface Webhook {
  name: string;
  room: string;
  url: string;
  state: string;
  delivering: boolean;
  delivered: number;
  failed: number;
  dropped: number;
  backlog: number;
  deadLetters: number;
  lastFailure?: unknown;
}

function DeadLetters(props: { bus: () => BusConnection; hook: string; onReplayed(): void }): VNode {
  const letters = useLoad(() => props.bus().command<{ deadLetters: Array<Record<string, unknown>> }>("op.webhook.dead_letters", { name: props.hook, limit: 50 }), [props.hook]);
  const action = useAction();
  return html`<div class="dead">
    <h3>Dead letters of <code>${props.hook}</code></h3>
    <${ErrorLine} error=${letters.error} />
    <${Table}
      head=${["offset", "epoch", "attempts", "failed at", "failure"]}
      rows=${(letters.data?.deadLetters ?? []).map((l) => [
        String(l.offset ?? ""),
        html`<code>${String(l.epoch ?? "")}</code>`,
        String(l.attempts ?? ""),
        timeText(l.at),
        typeof l.failure === "string" ? l.failure : jsonText(l.failure ?? "", 120),
      ])}
      empty="none"
    />
    <button disabled=${action.busy || (letters.data?.deadLetters.length ?? 0) === 0} onClick=${() => void action.run(async () => {
      const r = await props.bus().command<{ replayed: number; failed: number }>("op.webhook.replay", { name: props.hook });
      letters.reload();
      props.onReplayed();
      return `replayed ${r.replayed}, failed again ${r.failed}`;
    })}>Replay all</button>
    <${Outcome} note=${action.note} error=${action.error} />
  </div>`;
}

function StoreKeys(props: { bus: () => BusConnection; tenant: string }): VNode {
  const [namespace, setNamespace] = useState("default");
  const [prefix, setPrefix] = useState("");
  const [query, setQuery] = useState({ namespace: "default", prefix: "" });
  const entries = useLoad(
    () => props.bus().command<{ entries: Array<{ key: string; value: unknown; revision: number }> }>("op.store.list", { namespace: query.namespace, ...(query.prefix ? { prefix: query.prefix } : {}), limit: 100 }),
    [props.tenant, query.namespace, query.prefix],
  );
  return html`<${Card} title="Store keys" id="ops-store" wide>
    <form class="row-form" onSubmit=${(e: Event) => {
      e.preventDefault();
      setQuery({ namespace: namespace.trim() || "default", prefix: prefix.trim() });
    }}>
      <label>namespace <input name="namespace" value=${namespace} onInput=${(e: Event) => setNamespace((e.target as HTMLInputElement).value)} /></label>
      <label>prefix <input name="store-prefix" value=${prefix} onInput=${(e: Event) => setPrefix((e.target as HTMLInputElement).value)} /></label>
      <button type="submit">List</button>
    </form>
    <${ErrorLine} error=${entries.error} />
    <${Table} id="store-table" head=${["key", "value", "revision"]} rows=${(entries.data?.entries ?? []).map((e) => [html`<code>${e.key}</code>`, html`<code class="payload">${jsonText(e.value, 160)}</code>`, e.revision])} empty="no keys" />
  <//>`;
}

/** The operators page of the tenant in view (an admin token of the tenant runs the op.* commands). */
export function Operators(props: { session: Session; bus: () => BusConnection }): VNode {
  const tenant = props.session.tenant;
  const hooks = useLoad(() => props.bus().command<{ webhooks: Webhook[] }>("op.webhook.list"), [tenant], 5000);
  const cron = useLoad(() => props.bus().command<{ schedules: Array<{ name: string; room: string; cron?: string; everyMs?: number; runningHere: boolean; runs?: number; lastError?: string }> }>("op.cron.list"), [tenant], 5000);
  const [open, setOpen] = useState<string | undefined>(undefined);
  return html`<div>
    <h1>Operators of <code>${tenant}</code></h1>
    <div class="grid">
      <${Card} title="Webhooks" id="ops-webhooks" wide>
        <${ErrorLine} error=${hooks.error} />
        <${Table}
          id="webhooks-table"
          head=${["name", "room", "url", "state", "waiting", "delivered", "failed", "dead", ""]}
          rows=${(hooks.data?.webhooks ?? []).map((w) => [
            html`<code>${w.name}</code>`,
            html`<code>${w.room}</code>`,
            html`<code class="payload">${w.url}</code>`,
            `${w.state}${w.delivering ? " (delivering here)" : ""}`,
            w.backlog,
            w.delivered,
            w.failed,
            w.deadLetters,
            html`<button class="link" data-hook=${w.name} onClick=${() => setOpen(w.name)}>dead letters</button>`,
          ])}
          empty="no webhooks"
        />
        ${open ? html`<${DeadLetters} key=${open} bus=${props.bus} hook=${open} onReplayed=${() => hooks.reload()} />` : null}
      <//>
      <${Card} title="Cron jobs" id="ops-cron" wide>
        <${ErrorLine} error=${cron.error} />
        <${Table}
          id="cron-table"
          head=${["name", "room", "schedule", "running here", "runs", "last error"]}
          rows=${(cron.data?.schedules ?? []).map((s) => [html`<code>${s.name}</code>`, html`<code>${s.room}</code>`, s.cron ?? (s.everyMs ? `every ${s.everyMs} ms` : ""), s.runningHere ? "yes" : "no", s.runs ?? "", s.lastError ?? ""])}
          empty="no schedules"
        />
      <//>
      <${StoreKeys} bus=${props.bus} tenant=${tenant} />
    </div>
  </div>`;
}
