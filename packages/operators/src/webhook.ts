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
  /** Hooks per tenant when the host has no tenant limits (else the tenant's `maxWebhooks`). @default 20 */
  maxPerTenant?: number;
  /** Bytes queued for one tenant's hooks when the host has no tenant limits (else `webhookQueueBytes`). @default 16777216 */
  maxQueueBytesPerTenant?: number;
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
  queue: Array<{ frame: Frame; bytes: number }>;
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
 * `x-arqon-signature: sha256=<hex HMAC of the body>`. Verbs: register, remove and list, all admin-only (a hook's URL
 * and whether it is signed are the tenant admin's business). A tenant's hooks are bounded in number (`maxWebhooks`)
 * and in the bytes waiting for delivery, all its hooks together (`webhookQueueBytes`).
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
  const limitsOf = (tenant: string) => {
    const l = host.tenantLimits?.(tenant);
    return { hooks: l?.maxWebhooks ?? options.maxPerTenant ?? 20, queueBytes: l?.webhookQueueBytes ?? options.maxQueueBytesPerTenant ?? 16 * 1024 * 1024 };
  };
  /** Bytes of deliveries queued per tenant, all its hooks together. */
  const queuedBytes = new Map<string, number>();
  const account = (tenant: string, delta: number) => queuedBytes.set(tenant, Math.max(0, (queuedBytes.get(tenant) ?? 0) + delta));
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
      const { frame, bytes } = hook.queue.shift()!;
      account(hook.def.tenant, -bytes);
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
      const bytes = frame.payload?.length ?? 0;
      const limit = limitsOf(def.tenant).queueBytes;
      // Past the count or the tenant's bytes, the oldest waiting delivery of this hook makes room (counted as dropped).
      while (hook.queue.length > 0 && (hook.queue.length >= maxQueue || (queuedBytes.get(def.tenant) ?? 0) + bytes > limit)) {
        account(def.tenant, -hook.queue.shift()!.bytes);
        hook.dropped++;
      }
      if (bytes > limit) {
        hook.dropped++;
        return;
      }
      hook.queue.push({ frame, bytes });
      account(def.tenant, bytes);
      void drain(hook);
    });
    return hook;
  }

  async function stop(hook: Hook): Promise<void> {
    hook.closed = true;
    for (const q of hook.queue) account(hook.def.tenant, -q.bytes);
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
        const max = limitsOf(ctx.tenant).hooks;
        if (!hooks.has(key) && ofTenant >= max) {
          throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `at most ${max} webhooks per tenant`, { detail: { quota: "maxWebhooks", limit: max } });
        }
        await host.kv.put(NAMESPACE, key, jsonBytes(def));
        const previous = hooks.get(key);
        if (previous) await stop(previous);
        hooks.set(key, await start(def));
        return { name, room, url: def.url, signed: def.secret !== undefined };
      },
      { access: "admin", description: "POST a room's messages to a URL: {name, room, url, secret?}" },
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
      { access: "admin", description: "remove a webhook: {name}" },
    ),
    host.registerCommand(
      "op.webhook.list",
      (ctx) => ({
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
      }),
      { access: "admin", audit: false, description: "this tenant's webhooks (URLs and queue state: admin only)" },
    ),
  ];
  const offRemoved = host.onTenantRemoved?.(async (tenant) => {
    for (const [key, hook] of [...hooks]) {
      if (hook.def.tenant !== tenant) continue;
      hooks.delete(key);
      await stop(hook);
    }
    queuedBytes.delete(tenant);
    for (const stored of await host.kv.list(NAMESPACE, { prefix: `${tenant}/`, limit: 100_000 })) await host.kv.delete(NAMESPACE, stored.key);
  });

  return {
    async close() {
      for (const f of off) f();
      offRemoved?.();
      await Promise.all([...hooks.values()].map(stop));
      hooks.clear();
    },
  };
}

