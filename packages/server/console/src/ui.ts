/** Shared pieces of the console's pages: the `html` template tag (htm on Preact), hooks and small components. */
import { h, type ComponentChildren, type VNode } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import { ApiError } from "./api.js";
import { BusError } from "./bus.js";

/** JSX-like templates without a compiler: html`<p>${text}</p>`. */
export const html = htm.bind(h) as (strings: TemplateStringsArray, ...values: unknown[]) => VNode;

/** The message of an error as a page shows it: its code and text. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError || err instanceof BusError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** Loads with `load` now and every `everyMs` (when given) while the page shows; reloads when `deps` change. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): { data?: T; error?: string; reload(): void } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = (): void => {
      load().then(
        (data) => live && setState({ data }),
        (err: unknown) => live && setState((s) => ({ data: s.data, error: describeError(err) })),
      ).finally(() => {
        if (live && everyMs) timer = setTimeout(run, everyMs);
      });
    };
    run();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Runs an action, keeping its outcome (a message or an error) to show next to the button. */
export function useAction(): { busy: boolean; note?: string; error?: string; run(fn: () => Promise<string | void>): Promise<void> } {
  const [state, setState] = useState<{ busy: boolean; note?: string; error?: string }>({ busy: false });
  return {
    ...state,
    async run(fn) {
      setState({ busy: true });
      try {
        const note = await fn();
        setState({ busy: false, ...(note ? { note } : {}) });
      } catch (err) {
        setState({ busy: false, error: describeError(err) });
      }
    },
  };
}

/** A titled box. */
export function Card(props: { title: string; id?: string; children?: ComponentChildren; wide?: boolean }): VNode {
  return html`<section class=${props.wide ? "card wide" : "card"} id=${props.id}>
    <h2>${props.title}</h2>
    ${props.children}
  </section>`;
}

/** An error line, when there is one. */
export function ErrorLine(props: { error?: string }): VNode | null {
  return props.error ? html`<p class="error" role="alert">${props.error}</p>` : null;
}

/** An outcome line (note or error) of an action. */
export function Outcome(props: { note?: string; error?: string }): VNode | null {
  if (props.error) return html`<p class="error" role="alert">${props.error}</p>`;
  return props.note ? html`<p class="note" role="status">${props.note}</p>` : null;
}

/** A table that scrolls sideways on a narrow screen instead of overflowing it. */
export function Table(props: { head: string[]; rows: ComponentChildren[][]; empty?: string; id?: string }): VNode {
  if (props.rows.length === 0) return html`<p class="muted" id=${props.id}>${props.empty ?? "nothing"}</p>`;
  return html`<div class="table-wrap"><table id=${props.id}>
    <thead><tr>${props.head.map((c) => html`<th>${c}</th>`)}</tr></thead>
    <tbody>${props.rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

/** A figure with its label. */
export function Stat(props: { label: string; value: ComponentChildren; id?: string }): VNode {
  return html`<div class="stat"><span class="stat-value" id=${props.id}>${props.value}</span><span class="stat-label">${props.label}</span></div>`;
}

/** A small line chart of the last values (an SVG, drawn without any inline style). */
export function Sparkline(props: { values: number[]; label: string; id?: string }): VNode {
  const w = 240;
  const hgt = 48;
  const values = props.values.length > 0 ? props.values : [0];
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`).join(" ");
  const last = values[values.length - 1] ?? 0;
  return html`<figure class="spark" id=${props.id}>
    <svg viewBox=${`0 0 ${w} ${hgt}`} preserveAspectRatio="none" role="img" aria-label=${`${props.label}: ${last.toFixed(1)}`}>
      <polyline points=${points} class="spark-line" />
    </svg>
    <figcaption><span class="spark-value">${last.toFixed(1)}</span> ${props.label}</figcaption>
  </figure>`;
}

/** Remembers the latest value of something across renders without re-rendering. */
export function useLatest<T>(value: T): { current: T } {
  const ref = useRef(value);
  ref.current = value;
  return ref;
}

/** A JSON value as short text. */
export function jsonText(value: unknown, max = 400): string {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = "undefined";
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A time (epoch ms or ISO text) as local time of day with the date. */
export function timeText(value: unknown): string {
  const d = typeof value === "number" || typeof value === "string" ? new Date(value) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d.toLocaleString() : "";
}
