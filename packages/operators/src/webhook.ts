import { createHmac } from "node:crypto";
import { ArqonError, ErrorCode, isValidRoomName, jsonBytes, parseJsonBytes, toBase64, type Frame } from "@arqon/core";
import { argsObject, str, NAME_RE } from "./args.js";
import type { Operator, OperatorHost } from "./host.js";

export interface WebhookOperatorOptions {
  /**
   * Which target URLs may be registered. The default accepts http and https URLs only; pass a stricter check in
   * production (for example an allowlist of hosts) so tenants cannot aim the server at internal services.
   */
  allowUrl?: (url: URL) => boolean;
  /** Per-request timeout. @default 5000 */
  timeoutMs?: number;
  /** Attempts per delivery (first try included), with exponential backoff from `retryBaseMs`. @default 3 */
  attempts?: number;
  /** @default 200 */
  retryBaseMs?: number;
  /** Deliveries queued per hook; past it the oldest is dropped and counted. @default 1000 */
  maxQueue?: number;
  /** Hooks per tenant. @default 20 */
  maxPerTenant?: number;
}

interface HookDefinition {
  tenant: string;
  name: string;
  room: string;
  url: string;
  secret?: string;
  createdBy: string;
}

interface Hook {
  def: HookDefinition;
  queue: Frame[];
  sending: boolean;
  delivered: number;
  failed: number;
  dropped: number;
  lastError?: string;
  unsubscribe(): Promise<void>;
  closed: boolean;
}

const NAMESPACE = "op.webhook";

/** The JSON body POSTed for each room message. */
function bodyOf(frame: Frame): string {
  const payload =
    frame.payload === undefined ? null : frame.payloadFormat === "binary" ? toBase64(frame.payload) : parseJsonBytes(frame.payload);
  return JSON.stringify({
    room: frame.room,
    id: frame.id,
    offset: frame.offset,
    epoch: frame.epoch,
    timestamp: frame.timestamp,
    sender: frame.sender,
    headers: frame.headers ?? {},
    payloadFormat: frame.payloadFormat ?? "json",
    payload,
  });
}

/**
 * op.webhook: turns room messages into HTTP POSTs. Each hook delivers its room's messages in order, one request at a
 * time, with a timeout, bounded retries and a bounded queue; with a `secret`, each request carries
 * `x-arqon-signature: sha256=<hex HMAC of the body>`. Verbs: register (admin), remove (admin), list.
 */
export async function webhookOperator(host: OperatorHost, options: WebhookOperatorOptions = {}): Promise<Operator> {
  const names = ["op.webhook.register", "op.webhook.remove", "op.webhook.list"];
  const subscribe = host.subscribe?.bind(host);
  if (!subscribe) {
    for (const n of names) host.commands.disable(n, "this host cannot subscribe to rooms server-side");
    return { close: async () => undefined };
  }
  const allowUrl = options.allowUrl ?? ((u: URL) => u.protocol === "http:" || u.protocol === "https:");
  const timeoutMs = options.timeoutMs ?? 5000;
  const attempts = options.attempts ?? 3;
  const retryBaseMs = options.retryBaseMs ?? 200;
  const maxQueue = options.maxQueue ?? 1000;
  const maxPerTenant = options.maxPerTenant ?? 20;
  const hooks = new Map<string, Hook>();
  const id = (tenant: string, name: string) => `${tenant}/${name}`;

  async function post(hook: Hook, frame: Frame): Promise<void> {
    const body = bodyOf(frame);
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "arqon-webhook/1" };
    if (hook.def.secret) headers["x-arqon-signature"] = "sha256=" + createHmac("sha256", hook.def.secret).update(body).digest("hex");
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(hook.def.url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) return;
        throw new Error(`HTTP ${res.status}`);
      } catch (err) {
        if (attempt >= attempts || hook.closed) throw err;
        await new Promise((r) => setTimeout(r, retryBaseMs * 2 ** (attempt - 1)));
      }
    }
  }

  async function drain(hook: Hook): Promise<void> {
    if (hook.sending) return;
    hook.sending = true;
    while (hook.queue.length > 0 && !hook.closed) {
      const frame = hook.queue.shift()!;
      try {
        await post(hook, frame);
        hook.delivered++;
      } catch (err) {
        hook.failed++;
        hook.lastError = err instanceof Error ? err.message : String(err);
      }
    }
    hook.sending = false;
  }

  async function start(def: HookDefinition): Promise<Hook> {
    const hook: Hook = { def, queue: [], sending: false, delivered: 0, failed: 0, dropped: 0, closed: false, unsubscribe: async () => undefined };
    hook.unsubscribe = await subscribe!(def.tenant, def.room, (frame) => {
      if (hook.queue.length >= maxQueue) {
        hook.queue.shift();
        hook.dropped++;
      }
      hook.queue.push(frame);
      void drain(hook);
    });
    return hook;
  }

  async function stop(hook: Hook): Promise<void> {
    hook.closed = true;
    hook.queue.length = 0;
    await hook.unsubscribe();
  }

  for (const stored of await host.kv.list(NAMESPACE, { limit: 10000 })) {
    const def = parseJsonBytes(stored.value) as HookDefinition;
    hooks.set(stored.key, await start(def));
  }

  const off = [
    host.registerCommand(
      "op.webhook.register",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const name = str(args, "name", { pattern: NAME_RE });
        const room = str(args, "room", { max: 200 });
        if (!isValidRoomName(room)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"room" is not a valid room name');
        const rawUrl = str(args, "url", { max: 2048 });
        let url: URL;
        try {
          url = new URL(rawUrl);
        } catch {
          throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"url" is not a URL');
        }
        if (!allowUrl(url)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"url" ${url.origin} is not allowed`);
        const def: HookDefinition = { tenant: ctx.tenant, name, room, url: url.href, createdBy: ctx.sub };
        if (args.secret !== undefined) def.secret = str(args, "secret", { max: 256 });
        const key = id(ctx.tenant, name);
        const ofTenant = [...hooks.values()].filter((h) => h.def.tenant === ctx.tenant).length;
        if (!hooks.has(key) && ofTenant >= maxPerTenant) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `at most ${maxPerTenant} webhooks per tenant`);
        await host.kv.put(NAMESPACE, key, jsonBytes(def));
        const previous = hooks.get(key);
        if (previous) await stop(previous);
        hooks.set(key, await start(def));
        return { name, room, url: def.url, signed: def.secret !== undefined };
      },
      { adminOnly: true, description: "POST a room's messages to a URL: {name, room, url, secret?}" },
    ),
    host.registerCommand(
      "op.webhook.remove",
      async (ctx) => {
        const name = str(argsObject(ctx.args), "name", { pattern: NAME_RE });
        const key = id(ctx.tenant, name);
        const hook = hooks.get(key);
        if (!hook) throw new ArqonError(ErrorCode.NOT_FOUND, `no webhook named "${name}"`);
        hooks.delete(key);
        await stop(hook);
        await host.kv.delete(NAMESPACE, key);
        return { name, removed: true };
      },
      { adminOnly: true, description: "remove a webhook: {name}" },
    ),
    host.registerCommand("op.webhook.list", (ctx) => ({
      webhooks: [...hooks.values()]
        .filter((h) => h.def.tenant === ctx.tenant)
        .map((h) => ({
          name: h.def.name,
          room: h.def.room,
          url: h.def.url,
          signed: h.def.secret !== undefined,
          delivered: h.delivered,
          failed: h.failed,
          dropped: h.dropped,
          queued: h.queue.length,
          lastError: h.lastError,
        })),
    })),
  ];

  return {
    async close() {
      for (const f of off) f();
      await Promise.all([...hooks.values()].map(stop));
      hooks.clear();
    },
  };
}

