/**
 * The ArqonBus web console: a static page served by the gateway at /console. Every figure comes from the server API,
 * /status, /metrics and the bus itself; the page keeps the credential in this tab's sessionStorage only.
 */
import { render, type VNode } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, api, loadSession, saveSession, signIn, type Session } from "./api.js";
import { BusConnection } from "./bus.js";
import { Casil } from "./casil.js";
import { Operators } from "./operators.js";
import { Overview } from "./overview.js";
import { Rooms } from "./rooms.js";
import { Tenants } from "./tenants.js";
import { Outcome, html, useAction } from "./ui.js";

const PAGES = [
  { id: "overview", title: "Overview" },
  { id: "tenants", title: "Tenants" },
  { id: "rooms", title: "Rooms" },
  { id: "casil", title: "CASIL" },
  { id: "operators", title: "Operators" },
] as const;
type PageId = (typeof PAGES)[number]["id"];

function meta(name: string, fallback: string): string {
  const value = document.querySelector(`meta[name="${name}"]`)?.getAttribute("content");
  return value && !value.startsWith("%") ? value : fallback;
}

const WS_PATH = meta("arqon-ws-path", "/ws");

function pageOf(hash: string): PageId {
  const id = hash.replace(/^#\/?/, "");
  return (PAGES.find((p) => p.id === id)?.id ?? "overview") as PageId;
}

function SignIn(props: { onSignedIn(s: Session): void }): VNode {
  const [credential, setCredential] = useState("");
  const [tenant, setTenant] = useState("");
  const action = useAction();
  return html`<main class="signin">
    <form id="signin" onSubmit=${(e: Event) => {
      e.preventDefault();
      void action.run(async () => {
        props.onSignedIn(await signIn(credential, tenant));
      });
    }}>
      <h1>ArqonBus console</h1>
      <p class="muted">Sign in with an operator key (from the server's configuration; in dev mode .arqon/operator-key) or a token with role "admin" of a tenant.</p>
      <label class="block">operator key or admin token
        <input name="credential" type="password" autocomplete="off" value=${credential} onInput=${(e: Event) => setCredential((e.target as HTMLInputElement).value)} />
      </label>
      <label class="block">tenant (optional: the one to look at first, or a token's tenant when its claim is not "tenant")
        <input name="tenant" value=${tenant} onInput=${(e: Event) => setTenant((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" id="signin-submit" disabled=${action.busy}>Sign in</button>
      <${Outcome} error=${action.error} />
    </form>
  </main>`;
}

/** The operator's tenant chooser: a free field with the known tenants offered. */
function TenantChooser(props: { session: Session; onChange(t: string): void }): VNode {
  const [value, setValue] = useState(props.session.tenant);
  const [known, setKnown] = useState<string[]>([]);
  useEffect(() => setValue(props.session.tenant), [props.session.tenant]);
  useEffect(() => {
    Promise.all([
      api<{ tenants: Array<{ name: string }> }>(props.session.credential, "GET", "/api/v1/tenants"),
      api<{ connectionsByTenant?: Record<string, number> }>(props.session.credential, "GET", "/status"),
    ]).then(
      ([t, s]) => setKnown([...new Set([...t.tenants.map((x) => x.name), ...Object.keys(s.connectionsByTenant ?? {})])].sort()),
      () => undefined,
    );
  }, [props.session.credential, props.session.tenant]);
  return html`<form class="tenant-chooser" onSubmit=${(e: Event) => {
    e.preventDefault();
    props.onChange(value.trim());
  }}>
    <label>tenant <input name="view-tenant" list="known-tenants" value=${value} size="12" onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} onChange=${(e: Event) => props.onChange((e.target as HTMLInputElement).value.trim())} /></label>
    <datalist id="known-tenants">${known.map((t) => html`<option value=${t}></option>`)}</datalist>
  </form>`;
}

function App(): VNode {
  const [session, setSession] = useState<Session | undefined>(loadSession());
  const [page, setPage] = useState<PageId>(pageOf(location.hash));
  useEffect(() => {
    const onHash = (): void => setPage(pageOf(location.hash));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const update = (s: Session | undefined): void => {
    saveSession(s);
    setSession(s);
  };
  // One read-only connection (live tail) and one admin connection (op.* commands) per tenant in view, made when a
  // page first needs one.
  const buses = useMemo(() => {
    const made: Partial<Record<"read" | "admin", BusConnection>> = {};
    const get = (access: "read" | "admin") => (): BusConnection => {
      if (!session) throw new ApiError(401, "AUTH_MISSING", "signed out");
      return (made[access] ??= new BusConnection(session, session.tenant, access, WS_PATH));
    };
    return { read: get("read"), admin: get("admin"), close: () => Object.values(made).forEach((b) => b.close()) };
  }, [session?.credential, session?.tenant]);
  useEffect(() => () => buses.close(), [buses]);
  useEffect(() => {
    document.body.dataset.ready = "true";
    document.body.dataset.page = session ? page : "signin";
  }, [session, page]);
  if (!session) return html`<${SignIn} onSignedIn=${(s: Session) => update(s)} />`;
  const needsTenant = page !== "overview" && page !== "tenants" && !session.tenant;
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/overview">ArqonBus</a>
      <nav>
        ${PAGES.map((p) => html`<a href=${`#/${p.id}`} class=${p.id === page ? "active" : ""} id=${`nav-${p.id}`}>${p.title}</a>`)}
      </nav>
      <div class="who">
        ${session.kind === "operator"
          ? html`<span class="badge">operator</span><${TenantChooser} session=${session} onChange=${(t: string) => update({ ...session, tenant: t })} />`
          : html`<span class="badge">admin of <code>${session.tenant}</code></span>`}
        <button class="link" id="signout" onClick=${() => update(undefined)}>Sign out</button>
      </div>
    </header>
    <main class="page" id=${`page-${page}`}>
      ${needsTenant
        ? html`<p class="muted">Choose a tenant in the header (or on the Tenants page) to see its ${page}.</p>`
        : page === "overview"
          ? html`<${Overview} session=${session} bus=${buses.admin} />`
          : page === "tenants"
            ? html`<${Tenants} session=${session} selectTenant=${(t: string) => update({ ...session, tenant: t })} />`
            : page === "rooms"
              ? html`<${Rooms} key=${session.tenant} session=${session} bus=${buses.read} />`
              : page === "casil"
                ? html`<${Casil} session=${session} />`
                : html`<${Operators} key=${session.tenant} session=${session} bus=${buses.admin} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app")!);
