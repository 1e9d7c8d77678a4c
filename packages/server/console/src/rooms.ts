/** The rooms page: search by prefix, members, state, history with offsets and epochs, a live tail, a publish form. */
import type { VNode } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, tenantPath, type Session } from "./api.js";
import type { BusConnection, Frame } from "./bus.js";
import { Card, ErrorLine, Outcome, Table, describeError, html, jsonText, timeText, useAction, useLoad } from "./ui.js";

interface HistoryMessage {
  id: string;
  offset: number;
  epoch: string;
  timestamp?: number | string;
  sender?: string;
  payload: unknown;
  payloadFormat?: string;
}

/** Most lines the live tail keeps. */
const TAIL_LINES = 200;

function History(props: { session: Session; tenant: string; room: string }): VNode {
  const [before, setBefore] = useState<number | undefined>(undefined);
  const page = useLoad(
    () =>
      api<{ messages: HistoryMessage[]; position: { offset: number; epoch: string } }>(
        props.session.credential,
        "GET",
        `${tenantPath(props.tenant, "rooms", props.room, "history")}?reverse=true&limit=20${before !== undefined ? `&toOffset=${before}` : ""}`,
      ),
    [props.session.credential, props.tenant, props.room, before],
    before === undefined ? 5000 : undefined,
  );
  const msgs = page.data?.messages ?? [];
  const oldest = msgs.length > 0 ? Math.min(...msgs.map((m) => m.offset)) : undefined;
  return html`<${Card} title="History" id="room-history" wide>
    <${ErrorLine} error=${page.error} />
    <p class="muted">newest offset <strong id="history-position">${page.data?.position.offset ?? "…"}</strong> in epoch <code>${page.data?.position.epoch ?? "…"}</code></p>
    <${Table}
      id="history-table"
      head=${["offset", "epoch", "time", "sender", "payload"]}
      rows=${msgs.map((m) => [m.offset, html`<code>${m.epoch}</code>`, timeText(m.timestamp), m.sender ?? "", html`<code class="payload">${m.payloadFormat === "binary" ? `(binary) ${String(m.payload)}` : jsonText(m.payload)}</code>`])}
      empty="no stored messages"
    />
    <div class="actions">
      <button onClick=${() => page.reload()}>Refresh</button>
      <button disabled=${before === undefined} onClick=${() => setBefore(undefined)}>Newest</button>
      <button disabled=${oldest === undefined || oldest <= 1} onClick=${() => oldest !== undefined && setBefore(oldest - 1)}>Older</button>
    </div>
  <//>`;
}

function LiveTail(props: { tenant: string; room: string; bus: () => BusConnection }): VNode {
  const [lines, setLines] = useState<Frame[]>([]);
  const [following, setFollowing] = useState(false);
  const [status, setStatus] = useState("not following");
  useEffect(() => {
    if (!following) return;
    let stop: (() => void) | undefined;
    let live = true;
    setStatus("subscribing");
    props
      .bus()
      .follow(props.room, (frame) => {
        if (frame.type === "message") setLines((l) => [frame, ...l].slice(0, TAIL_LINES));
      })
      .then(
        (off) => {
          if (!live) return off();
          stop = off;
          setStatus("following");
        },
        (err: unknown) => {
          if (live) {
            setStatus(describeError(err));
            setFollowing(false);
          }
        },
      );
    return () => {
      live = false;
      stop?.();
    };
  }, [following, props.tenant, props.room]);
  return html`<${Card} title="Live tail" id="room-tail" wide>
    <div class="actions">
      <button id="tail-toggle" onClick=${() => setFollowing((f) => !f)}>${following ? "Stop" : "Follow"}</button>
      <button onClick=${() => setLines([])}>Clear</button>
      <span class="muted" id="tail-status" data-status=${status}>${status}</span>
    </div>
    <ol class="tail" id="tail">
      ${lines.map(
        (f) => html`<li>
          <span class="muted">#${String(f.offset ?? "")} ${timeText(f.timestamp)} ${String(f.sender ?? "")}</span>
          <code class="payload">${f.payloadFormat === "binary" ? "(binary)" : jsonText(f.payload)}</code>
        </li>`,
      )}
    </ol>
  <//>`;
}

function PublishForm(props: { session: Session; tenant: string; room: string }): VNode {
  const [text, setText] = useState('{"text": "hello from the console"}');
  const action = useAction();
  return html`<${Card} title="Publish" id="room-publish">
    <form onSubmit=${(e: Event) => {
      e.preventDefault();
      void action.run(async () => {
        let payload: unknown;
        try {
          payload = JSON.parse(text);
        } catch {
          throw new Error("the payload must be JSON (a string needs quotes)");
        }
        const r = await api<{ offset: number; epoch: string }>(props.session.credential, "POST", tenantPath(props.tenant, "publish"), { room: props.room, payload });
        return `published at offset ${r.offset} (epoch ${r.epoch})`;
      });
    }}>
      <label class="block">payload (JSON)
        <textarea name="payload" rows="4" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
      </label>
      <button type="submit" id="publish-send" disabled=${action.busy}>Publish</button>
      <${Outcome} note=${action.note} error=${action.error} />
    </form>
  <//>`;
}

function Room(props: { session: Session; tenant: string; room: string; bus: () => BusConnection }): VNode {
  const { session, tenant, room } = props;
  const members = useLoad(
    () => api<{ members: Array<{ clientId: string; user: string; info?: unknown; joinedAt?: number }> }>(session.credential, "GET", tenantPath(tenant, "rooms", room, "presence")),
    [session.credential, tenant, room],
    3000,
  );
  const state = useLoad(
    () => api<{ entries: Array<{ key: string; value: unknown; version: number; updatedAt?: number }> }>(session.credential, "GET", tenantPath(tenant, "rooms", room, "state")),
    [session.credential, tenant, room],
    5000,
  );
  return html`<div class="grid">
    <${LiveTail} key=${`${tenant}/${room}`} tenant=${tenant} room=${room} bus=${props.bus} />
    <${PublishForm} session=${session} tenant=${tenant} room=${room} />
    <${Card} title="Members" id="room-members">
      <${ErrorLine} error=${members.error} />
      <${Table} id="members-table" head=${["user", "client", "joined", "info"]} rows=${(members.data?.members ?? []).map((m) => [m.user, html`<code>${m.clientId}</code>`, timeText(m.joinedAt), m.info === undefined ? "" : jsonText(m.info, 80)])} empty="nobody" />
    <//>
    <${Card} title="State" id="room-state">
      <${ErrorLine} error=${state.error} />
      <${Table} head=${["key", "value", "version"]} rows=${(state.data?.entries ?? []).map((e) => [html`<code>${e.key}</code>`, html`<code class="payload">${jsonText(e.value, 120)}</code>`, e.version])} empty="no state" />
    <//>
    <${History} session=${session} tenant=${tenant} room=${room} />
  </div>`;
}

/** The rooms page of the tenant in view. */
export function Rooms(props: { session: Session; bus: () => BusConnection }): VNode {
  const { session } = props;
  const tenant = session.tenant;
  const [prefix, setPrefix] = useState("");
  const [query, setQuery] = useState("");
  const [room, setRoom] = useState<string | undefined>(undefined);
  const [typed, setTyped] = useState("");
  const list = useLoad(
    () => api<{ rooms: Array<{ room: string; subscribers: number; nodes: number }>; next?: string; partial?: boolean }>(session.credential, "GET", `${tenantPath(tenant, "rooms")}?limit=100${query ? `&prefix=${encodeURIComponent(query)}` : ""}`),
    [session.credential, tenant, query],
    5000,
  );
  return html`<div>
    <h1>Rooms of <code>${tenant}</code></h1>
    <div class="grid">
      <${Card} title="Live rooms" id="room-search" wide>
        <form class="row-form" onSubmit=${(e: Event) => {
          e.preventDefault();
          setQuery(prefix.trim());
        }}>
          <label>prefix <input name="prefix" value=${prefix} onInput=${(e: Event) => setPrefix((e.target as HTMLInputElement).value)} /></label>
          <button type="submit">Search</button>
        </form>
        <${ErrorLine} error=${list.error} />
        <${Table}
          id="rooms-table"
          head=${["room", "subscribers", "nodes"]}
          rows=${(list.data?.rooms ?? []).map((r) => [html`<button class="link" data-room=${r.room} title="open" onClick=${() => setRoom(r.room)}><code>${r.room}</code></button>`, r.subscribers, r.nodes])}
          empty="no room has a subscriber now"
        />
        ${list.data?.next ? html`<p class="muted">more rooms: narrow the prefix</p>` : null}
        <form class="row-form" onSubmit=${(e: Event) => {
          e.preventDefault();
          if (typed.trim()) setRoom(typed.trim());
        }}>
          <label>any room <input name="room" value=${typed} placeholder="lobby" onInput=${(e: Event) => setTyped((e.target as HTMLInputElement).value)} /></label>
          <button type="submit" id="room-open">Open</button>
        </form>
      <//>
    </div>
    ${room ? html`<h2 class="room-title">Room <code id="room-name">${room}</code></h2><${Room} key=${`${tenant}/${room}`} session=${session} tenant=${tenant} room=${room} bus=${props.bus} />` : null}
  </div>`;
}
