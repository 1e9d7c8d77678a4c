import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import { createHmac, randomBytes } from "node:crypto";
import { ArqonError, ErrorCode, isValidRoomName, jsonBytes, parseJsonBytes, toBase64, type Frame } from "@arqon/core";
import { argsObject, int, str, NAME_RE } from "./args.js";
import type { Operator, OperatorHost, OperatorOutbound } from "./host.js";
import { KvLease } from "./lease.js";

/** Options of {@link webhookOperator} (op.webhook). */
export interface WebhookOperatorOptions {
  /** Time one delivery request may take. @default 5000 */
  timeoutMs?: number;
  /** Attempts per delivery (the first included) before it goes to the dead letters. @default 8 */
  attempts?: number;
  /** Backoff: attempt n waits a random time in [0, min(retryCapMs, retryBaseMs × 2^n)] (full jitter). @default 500 */
  retryBaseMs?: number;
  /** Upper bound of the backoff delay between two attempts of a delivery, in ms. @default 300000 */
  retryCapMs?: number;
  /** A message older than this when its turn comes goes to the dead letters unsent. @default 86400000 */
  maxAgeMs?: number;
  /** Undelivered messages a hook may fall behind its room; past it the oldest are skipped (and counted). @default 10000 */
  maxBacklog?: number;
  /** Concurrent delivery requests per tenant, all its hooks together. @default 4 */
  concurrencyPerTenant?: number;
  /** Consecutive failures to one target after which it is left alone for `breakerCooldownMs`. @default 5 */
  breakerThreshold?: number;
  /** How long an open circuit breaker leaves a target alone, in ms. @default 30000 */
  breakerCooldownMs?: number;
  /** Dead letters kept per hook (the oldest are dropped beyond). @default 1000 */
  maxDeadLetters?: number;
  /** How long the previous secret still signs after a rotation. @default 86400000 */
  rotationGraceMs?: number;
  /** Hooks per tenant when the host has no tenant limits (else the tenant's `maxWebhooks`). @default 20 */
  maxPerTenant?: number;
  /** How often hooks registered on other nodes are picked up and leases renewed. @default 2000 */
  syncIntervalMs?: number;
  /** A lease lasts this long without renewal (a dead deliverer's successor takes over after it). @default 10000 */
  leaseTtlMs?: number;
}

interface HookDefinition {
  tenant: string;
  name: string;
  room: string;
  url: string;
  /** Stable id of the hook, part of every webhook-id it sends. */
  id: string;
  /** Signing secrets (`whsec_…`), the current one first; a rotated-out one stays until `previousUntil`. */
  secrets: string[];
  previousUntil?: number;
  createdBy: string;
  /** Stored before this version: a raw secret string. */
  secret?: string;
}

interface Cursor {
  epoch: string;
  offset: number;
}

/** Why deliveries fail, as the tenant sees it (details only in the operator's log). */
type FailureClass = "forbidden" | "unresolvable" | "connect" | "timeout" | "http_status" | "redirect" | "expired" | "trimmed" | "backlog";

interface Hook {
  def: HookDefinition;
  lease: KvLease;
  cursor: Cursor | undefined;
  pumping: boolean;
  again: boolean;
  delivered: number;
  failed: number;
  dropped: number;
  lastFailure?: FailureClass;
  state: "idle" | "delivering" | "retrying" | "circuit_open";
  /** Messages after the cursor as of the last page read and delivery (0 until the first read). */
  backlog: number;
  unsubscribe(): Promise<void>;
  closed: boolean;
  wake?: () => void;
}

interface DeadLetter {
  offset: number;
  epoch: string;
  webhookId: string;
  attempts: number;
  failure: FailureClass;
  at: number;
  /** The body that was to be sent (so a replay works after history trimmed it). */
  body: string;
}

const DEFS = "op.webhook";
const CURSORS = "op.webhook.cursor";
const LEASES = "op.webhook.lease";
const deadNamespace = (tenant: string, name: string) => `op.webhook.dead/${tenant}/${name}`;

/** The JSON body POSTed for each room message. */
export function webhookBody(frame: Frame): string {
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

/** A new signing secret in the Standard Webhooks form: `whsec_` and the base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/** The key bytes of a secret: `whsec_<base64>`, or (secrets stored before) the UTF-8 bytes of a raw string. */
function keyOf(secret: string): Buffer {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
}

/**
 * Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret, separated by
 * spaces (two during a rotation).
 */
export function signWebhookPayload(secrets: readonly string[], id: string, timestamp: number, body: string): string {
  return secrets.map((s) => `v1,${createHmac("sha256", keyOf(s)).update(`${id}.${timestamp}.${body}`).digest("base64")}`).join(" ");
}

function failureOf(err: unknown): FailureClass {
  const failure = (err as { failure?: string }).failure;
  return failure === "forbidden" || failure === "unresolvable" || failure === "timeout" || failure === "redirect" ? failure : "connect";
}

/** A counting semaphore per tenant: at most `limit` delivery requests of one tenant at a time. */
class TenantSlots {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  constructor(private readonly limit: number) {}
  async take(tenant: string): Promise<void> {
    if ((this.active.get(tenant) ?? 0) < this.limit) {
      this.active.set(tenant, (this.active.get(tenant) ?? 0) + 1);
      return;
    }
    await new Promise<void>((resolve) => {
      let list = this.waiting.get(tenant);
      if (!list) this.waiting.set(tenant, (list = []));
      list.push(resolve);
    });
  }
  give(tenant: string): void {
    const next = this.waiting.get(tenant)?.shift();
    if (next) return next();
    this.active.set(tenant, Math.max(0, (this.active.get(tenant) ?? 1) - 1));
  }
}

/** Per target origin: consecutive failures, and until when it is left alone. */
class Breakers {
  private readonly state = new Map<string, { failures: number; openUntil: number }>();
  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
  ) {}
  openFor(origin: string, now: number): number {
    const s = this.state.get(origin);
    return s && s.openUntil > now ? s.openUntil - now : 0;
  }
  success(origin: string): void {
    this.state.delete(origin);
  }
  failure(origin: string, now: number): void {
    const s = this.state.get(origin) ?? { failures: 0, openUntil: 0 };
    s.failures++;
    if (s.failures >= this.threshold) {
      s.openUntil = now + this.cooldownMs;
      s.failures = 0;
    }
    this.state.set(origin, s);
  }
}

/**
 * op.webhook: turns a room's messages into HTTP POSTs that receivers can verify with the Standard Webhooks tools
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`; secrets `whsec_…`, two during a rotation).
 *
 * - **Durable.** Deliveries come from the room's history (stored before the publisher's ack) and each hook's
 *   position (`{epoch, offset}`) is stored after each delivery, so nothing is lost to a restart or a kill: delivery is
 *   at least once, and `webhook-id` (stable per hook and message) lets a receiver drop a repeat. A message retention
 *   trimmed before its turn is counted as dropped.
 * - **One deliverer per hook per cluster**, through a lease in the key-value store; another node takes over when the
 *   holder stops renewing.
 * - **Every request goes through the host's outbound guard** (no private targets unless the operator allowlists
 *   them), checked at registration and at every delivery; redirects are failures.
 * - **Retries** with exponential backoff and full jitter, up to `attempts` and `maxAgeMs`, then the dead letters
 *   (readable and replayable by the tenant admin); a per-target circuit breaker; at most `concurrencyPerTenant`
 *   requests of a tenant at a time, so a hanging receiver delays only its own hooks and never a publish.
 * - Tenants see failure classes (`connect`, `timeout`, `http_status`, ...), never a receiver's details; those go to
 *   the operator's log.
 *
 * Verbs, all admin-only: register, remove, list, rotate_secret, dead_letters, replay.
 */
export async function webhookOperator(host: OperatorHost, options: WebhookOperatorOptions = {}): Promise<Operator> {
  const names = ["op.webhook.register", "op.webhook.remove", "op.webhook.list", "op.webhook.rotate_secret", "op.webhook.dead_letters", "op.webhook.replay"];
  const subscribe = host.subscribe?.bind(host);
  const readHistory = host.readHistory?.bind(host);
  const outbound: OperatorOutbound | undefined = host.outbound;
  if (!subscribe || !readHistory || !outbound) {
    for (const n of names) host.commands.disable(n, "this host cannot deliver webhooks (no server-side subscriptions, history or outbound guard)");
    return { close: async () => undefined };
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const attempts = options.attempts ?? 8;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const retryCapMs = options.retryCapMs ?? 300_000;
  const maxAgeMs = options.maxAgeMs ?? 86_400_000;
  const maxBacklog = options.maxBacklog ?? 10_000;
  const maxDead = options.maxDeadLetters ?? 1000;
  const rotationGraceMs = options.rotationGraceMs ?? 86_400_000;
  const syncIntervalMs = options.syncIntervalMs ?? 2000;
  const slots = new TenantSlots(options.concurrencyPerTenant ?? 4);
  const breakers = new Breakers(options.breakerThreshold ?? 5, options.breakerCooldownMs ?? 30_000);
  const node = host.nodeId ?? `node-${randomBytes(6).toString("base64url")}`;
  const hooks = new Map<string, Hook>();
  const key = (tenant: string, name: string) => `${tenant}/${name}`;
  const maxHooks = (tenant: string) => host.tenantLimits?.(tenant).maxWebhooks ?? options.maxPerTenant ?? 20;
  let closed = false;
  // Metrics (when the host has a meter): outcomes per message, failure classes per attempt, and the backlog of the
  // hooks this node delivers, by tenant.
  const meter = host.meter;
  const outcomes = meter?.counter("arqon_webhook_deliveries_total", "Webhook messages by outcome: delivered (a 2xx), dead (sent to the dead letters)", ["tenant", "outcome"]);
  const attemptFailures = meter?.counter(
    "arqon_webhook_attempt_failures_total",
    "Failed webhook delivery attempts by failure class (connect, timeout, http_status, redirect, forbidden, ...)",
    ["tenant", "failure"],
  );
  meter?.gauge("arqon_webhook_backlog", "Messages waiting for delivery on the webhooks this node delivers", ["tenant"], () => {
    const byTenant = new Map<string, number>();
    for (const h of hooks.values()) {
      if (!h.lease.holding) continue;
      const label = meter.tenant(h.def.tenant);
      byTenant.set(label, (byTenant.get(label) ?? 0) + h.backlog);
    }
    return [...byTenant].map(([tenant, n]) => [{ tenant }, n]);
  });

  const sleep = (ms: number, hook: Hook) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        hook.wake = undefined;
        resolve();
      }, ms);
      timer.unref?.();
      hook.wake = () => {
        clearTimeout(timer);
        hook.wake = undefined;
        resolve();
      };
    });

  function secretsOf(def: HookDefinition, now: number): string[] {
    if (def.secrets?.length) return def.previousUntil !== undefined && def.previousUntil <= now ? def.secrets.slice(0, 1) : def.secrets;
    return def.secret !== undefined ? [def.secret] : [];
  }

  /** One POST through the guard. Resolves on a 2xx; otherwise throws with a failure class. */
  async function post(def: HookDefinition, webhookId: string, body: string, trace?: WebhookTrace): Promise<void> {
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "arqon-webhook/2",
      "webhook-id": webhookId,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhookPayload(secretsOf(def, Date.now()), webhookId, timestamp, body),
    };
    await slots.take(def.tenant);
    // Tracing on: one client span per attempt, in the trace of the message, whose context the receiver gets in
    // `traceparent` (outside the signed content: Standard Webhooks signs the id, timestamp and body).
    const span = trace === undefined ? undefined : startDeliverySpan(host.tracer!, def, trace, headers);
    try {
      const res = await outbound!.request(def.url, { method: "POST", headers, body, timeoutMs });
      span?.setAttribute("http.response.status_code", res.status);
      if (res.status >= 200 && res.status < 300) {
        span?.end();
        return;
      }
      const failure: FailureClass = res.status >= 300 && res.status < 400 ? "redirect" : "http_status";
      throw Object.assign(new Error(`HTTP ${res.status}`), { failure, status: res.status });
    } catch (err) {
      if (span !== undefined) {
        span.setAttribute("arqon.webhook.failure", (err as { failure?: FailureClass }).failure ?? failureOf(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        span.end();
      }
      throw err;
    } finally {
      slots.give(def.tenant);
    }
  }

  async function deadLetter(hook: Hook, letter: DeadLetter): Promise<void> {
    const ns = deadNamespace(hook.def.tenant, hook.def.name);
    await host.kv.put(ns, String(letter.offset).padStart(16, "0"), jsonBytes(letter));
    const all = await host.kv.list(ns, { limit: maxDead + 64 });
    for (const extra of all.slice(0, Math.max(0, all.length - maxDead))) await host.kv.delete(ns, extra.key);
  }

  /** Delivers one message with retries; resolves with the outcome (the caller advances the cursor either way). */
  async function deliver(hook: Hook, frame: Frame, epoch: string): Promise<void> {
    const def = hook.def;
    const offset = frame.offset ?? 0;
    const webhookId = `msg_${def.id}_${epoch}_${offset}`;
    const body = webhookBody({ ...frame, room: def.room, epoch });
    const origin = (() => {
      try {
        return new URL(def.url).origin;
      } catch {
        return def.url;
      }
    })();
    let failure: FailureClass = "connect";
    for (let attempt = 0; attempt < attempts && !hook.closed; attempt++) {
      if (Date.now() - (frame.timestamp ?? Date.now()) > maxAgeMs) {
        failure = "expired";
        break;
      }
      const open = breakers.openFor(origin, Date.now());
      if (open > 0) {
        hook.state = "circuit_open";
        await sleep(open, hook);
        attempt--;
        continue;
      }
      hook.state = attempt === 0 ? "delivering" : "retrying";
      try {
        await post(def, webhookId, body, host.tracer === undefined ? undefined : { headers: frame.headers, attempt: attempt + 1 });
        breakers.success(origin);
        hook.delivered++;
        outcomes?.inc({ tenant: meter!.tenant(def.tenant), outcome: "delivered" });
        hook.state = "idle";
        return;
      } catch (err) {
        failure = (err as { failure?: FailureClass }).failure ?? failureOf(err);
        breakers.failure(origin, Date.now());
        hook.lastFailure = failure;
        attemptFailures?.inc({ tenant: meter!.tenant(def.tenant), failure });
        host.logger?.warn({ tenant: def.tenant, webhook: def.name, url: def.url, attempt: attempt + 1, failure, err }, "webhook delivery failed");
        if (failure === "forbidden" || failure === "unresolvable") break;
        const delay = Math.random() * Math.min(retryCapMs, retryBaseMs * 2 ** attempt);
        if (attempt + 1 < attempts) await sleep(delay, hook);
      }
    }
    if (hook.closed) throw new Error("hook closed");
    hook.failed++;
    outcomes?.inc({ tenant: meter!.tenant(def.tenant), outcome: "dead" });
    hook.lastFailure = failure;
    hook.state = "idle";
    await deadLetter(hook, { offset, epoch, webhookId, attempts, failure, at: Date.now(), body });
  }

  async function saveCursor(hook: Hook, cursor: Cursor): Promise<void> {
    hook.cursor = cursor;
    await host.kv.put(CURSORS, key(hook.def.tenant, hook.def.name), jsonBytes(cursor));
  }

  /** Delivers everything after the hook's position, in order, while this node holds the hook's lease. */
  async function pump(hook: Hook): Promise<void> {
    if (hook.pumping) {
      hook.again = true;
      return;
    }
    hook.pumping = true;
    try {
      do {
        hook.again = false;
        if (hook.closed || !(await hook.lease.tryHold())) return;
        const stored = await host.kv.get(CURSORS, key(hook.def.tenant, hook.def.name));
        let cursor = stored ? (parseJsonBytes(stored.value) as Cursor) : hook.cursor;
        for (;;) {
          if (hook.closed || !hook.lease.holding) return;
          const page = await readHistory!(hook.def.tenant, hook.def.room, { fromOffset: (cursor?.offset ?? 0) + 1, limit: 100 });
          const { epoch, offset: head } = page.position;
          hook.backlog = cursor && cursor.epoch === epoch ? Math.max(0, head - cursor.offset) : 0;
          if (!cursor || cursor.epoch !== epoch) {
            // No position yet (a hook stored before positions existed): start at the room's end. A new epoch: the
            // room's history was lost, and with it what the old one held; start at its beginning.
            cursor = { epoch, offset: cursor ? 0 : head };
            await saveCursor(hook, cursor);
            continue;
          }
          if (head - cursor.offset > maxBacklog) {
            hook.dropped += head - cursor.offset - maxBacklog;
            cursor = { epoch, offset: head - maxBacklog };
            await saveCursor(hook, cursor);
            continue;
          }
          if (page.messages.length === 0) {
            // Retention trimmed the rest before its turn.
            if (head > cursor.offset) {
              hook.dropped += head - cursor.offset;
              await saveCursor(hook, { epoch, offset: head });
            }
            break;
          }
          for (const frame of page.messages) {
            const offset = frame.offset ?? 0;
            if (offset > cursor.offset + 1) hook.dropped += offset - cursor.offset - 1;
            await deliver(hook, frame, epoch);
            hook.backlog = Math.max(0, head - offset);
            cursor = { epoch, offset };
            await saveCursor(hook, cursor);
            if (hook.closed || !(await hook.lease.tryHold())) return;
          }
        }
      } while (hook.again && !hook.closed);
    } catch (err) {
      if (!hook.closed) host.logger?.warn({ err, tenant: hook.def.tenant, webhook: hook.def.name }, "webhook pump stopped; retried at the next sync");
    } finally {
      hook.pumping = false;
    }
  }

  async function start(def: HookDefinition): Promise<Hook> {
    const hook: Hook = {
      def,
      lease: new KvLease({ kv: host.kv, namespace: LEASES, key: key(def.tenant, def.name), node, ttlMs: options.leaseTtlMs, solo: host.clustered === false }),
      cursor: undefined,
      pumping: false,
      again: false,
      delivered: 0,
      failed: 0,
      dropped: 0,
      state: "idle",
      backlog: 0,
      closed: false,
      unsubscribe: async () => undefined,
    };
    hook.unsubscribe = await subscribe!(def.tenant, def.room, () => void pump(hook));
    void pump(hook);
    return hook;
  }

  async function stop(hook: Hook): Promise<void> {
    hook.closed = true;
    hook.wake?.();
    await hook.unsubscribe();
    await hook.lease.release().catch(() => undefined);
  }

  function normalize(def: HookDefinition): HookDefinition {
    if (!def.id) def.id = randomBytes(9).toString("base64url");
    if (!def.secrets?.length) def.secrets = def.secret !== undefined ? [def.secret] : [];
    return def;
  }

  /** Picks up hooks registered or removed on other nodes, and gives each a chance to take its lease. */
  async function sync(): Promise<void> {
    const stored = await host.kv.list(DEFS, { limit: 100_000 });
    const seen = new Set<string>();
    for (const entry of stored) {
      seen.add(entry.key);
      const def = normalize(parseJsonBytes(entry.value) as HookDefinition);
      const current = hooks.get(entry.key);
      if (current && JSON.stringify(current.def) === JSON.stringify(def)) {
        void pump(current);
        continue;
      }
      if (current) await stop(current);
      hooks.set(entry.key, await start(def));
    }
    for (const [k, hook] of [...hooks]) {
      if (seen.has(k)) continue;
      hooks.delete(k);
      await stop(hook);
    }
  }

  await sync();
  const syncTimer = setInterval(() => {
    if (!closed) sync().catch((err: unknown) => host.logger?.warn({ err }, "webhook sync failed"));
  }, syncIntervalMs);
  syncTimer.unref?.();

  function hookOf(tenant: string, args: Record<string, unknown>): Hook {
    const name = str(args, "name", { pattern: NAME_RE });
    const hook = hooks.get(key(tenant, name));
    if (!hook) throw new ArqonError(ErrorCode.NOT_FOUND, `no webhook named "${name}"`);
    return hook;
  }

  async function checkTarget(url: string): Promise<void> {
    try {
      await outbound!.check(url);
    } catch (err) {
      if (err instanceof ArqonError) throw err;
      throw new ArqonError(ErrorCode.OUTBOUND_FORBIDDEN, "the target is not allowed");
    }
  }

  const off = [
    host.registerCommand(
      "op.webhook.register",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const name = str(args, "name", { pattern: NAME_RE });
        const room = str(args, "room", { max: 200 });
        if (!isValidRoomName(room)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"room" is not a valid room name');
        const url = str(args, "url", { max: 2048 });
        await checkTarget(url);
        let secret = newWebhookSecret();
        if (args.secret !== undefined) {
          secret = str(args, "secret", { max: 256 });
          if (!/^whsec_[A-Za-z0-9+/]{22,}={0,2}$/.test(secret)) {
            throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"secret" must be a Standard Webhooks secret: "whsec_" and the base64 of at least 16 bytes');
          }
        }
        const k = key(ctx.tenant, name);
        const ofTenant = [...hooks.values()].filter((h) => h.def.tenant === ctx.tenant).length;
        const max = maxHooks(ctx.tenant);
        if (!hooks.has(k) && ofTenant >= max) {
          throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `at most ${max} webhooks per tenant`, { detail: { quota: "maxWebhooks", limit: max } });
        }
        const def: HookDefinition = { tenant: ctx.tenant, name, room, url: new URL(url).href, id: randomBytes(9).toString("base64url"), secrets: [secret], createdBy: ctx.sub };
        await host.kv.put(DEFS, k, jsonBytes(def));
        const previous = hooks.get(k);
        if (previous) await stop(previous);
        // A new hook delivers what is published from now on.
        const { position } = await readHistory(ctx.tenant, room, { limit: 1, reverse: true });
        await host.kv.put(CURSORS, k, jsonBytes({ epoch: position.epoch, offset: position.offset } satisfies Cursor));
        hooks.set(k, await start(def));
        // The secret is shown once, to the admin who registered the hook.
        return { name, room, url: def.url, secret };
      },
      {
        access: "admin",
        description: "POST a room's messages to a URL: {name, room, url, secret?}; answers the signing secret once",
        // The caller's own signing secret is not content: CASIL would block it as a probable secret in enforce mode.
        trustedFields: ["secret"],
      },
    ),
    host.registerCommand(
      "op.webhook.remove",
      async (ctx) => {
        const hook = hookOf(ctx.tenant, argsObject(ctx.args));
        const k = key(ctx.tenant, hook.def.name);
        hooks.delete(k);
        await stop(hook);
        await Promise.all([host.kv.delete(DEFS, k), host.kv.delete(CURSORS, k), host.kv.delete(LEASES, k)]);
        return { name: hook.def.name, removed: true };
      },
      { access: "admin", description: "remove a webhook: {name}" },
    ),
    host.registerCommand(
      "op.webhook.rotate_secret",
      async (ctx) => {
        const hook = hookOf(ctx.tenant, argsObject(ctx.args));
        const secret = newWebhookSecret();
        const def: HookDefinition = { ...hook.def, secrets: [secret, ...secretsOf(hook.def, Date.now()).slice(0, 1)], previousUntil: Date.now() + rotationGraceMs };
        await host.kv.put(DEFS, key(ctx.tenant, def.name), jsonBytes(def));
        hook.def = def;
        return { name: def.name, secret, previousValidUntil: new Date(def.previousUntil!).toISOString() };
      },
      { access: "admin", description: "new signing secret; the previous one also signs for a grace period: {name}" },
    ),
    host.registerCommand(
      "op.webhook.list",
      async (ctx) => {
        const mine = [...hooks.values()].filter((h) => h.def.tenant === ctx.tenant);
        return {
          webhooks: await Promise.all(
            mine.map(async (h) => {
              const position = await readHistory(h.def.tenant, h.def.room, { limit: 1, reverse: true }).then((p) => p.position, () => undefined);
              const cursor = h.cursor ?? (await host.kv.get(CURSORS, key(h.def.tenant, h.def.name)).then((e) => (e ? (parseJsonBytes(e.value) as Cursor) : undefined)));
              return {
                name: h.def.name,
                room: h.def.room,
                url: h.def.url,
                state: h.state,
                delivering: h.lease.holding,
                delivered: h.delivered,
                failed: h.failed,
                dropped: h.dropped,
                backlog: position && cursor && cursor.epoch === position.epoch ? Math.max(0, position.offset - cursor.offset) : 0,
                deadLetters: (await host.kv.list(deadNamespace(h.def.tenant, h.def.name), { limit: maxDead })).length,
                lastFailure: h.lastFailure,
              };
            }),
          ),
        };
      },
      { access: "admin", audit: false, description: "this tenant's webhooks: state, backlog, failures (classes only), dead letters" },
    ),
    host.registerCommand(
      "op.webhook.dead_letters",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const hook = hookOf(ctx.tenant, args);
        const limit = int(args, "limit", { min: 1, max: 1000, fallback: 100 });
        const entries = await host.kv.list(deadNamespace(ctx.tenant, hook.def.name), { limit: maxDead });
        return {
          deadLetters: entries
            .slice(-limit)
            .reverse()
            .map((e) => {
              const { body: _body, ...letter } = parseJsonBytes(e.value) as DeadLetter;
              return letter;
            }),
        };
      },
      { access: "admin", audit: false, description: "deliveries that failed for good, newest first: {name, limit?}" },
    ),
    host.registerCommand(
      "op.webhook.replay",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const hook = hookOf(ctx.tenant, args);
        const only = args.offset === undefined ? undefined : int(args, "offset", { min: 1 });
        const ns = deadNamespace(ctx.tenant, hook.def.name);
        const entries = await host.kv.list(ns, { limit: maxDead });
        let replayed = 0;
        let failed = 0;
        for (const entry of entries) {
          const letter = parseJsonBytes(entry.value) as DeadLetter;
          if (only !== undefined && letter.offset !== only) continue;
          try {
            await post(hook.def, letter.webhookId, letter.body);
            await host.kv.delete(ns, entry.key);
            replayed++;
          } catch (err) {
            failed++;
            host.logger?.warn({ tenant: ctx.tenant, webhook: hook.def.name, err }, "webhook replay failed");
          }
        }
        if (only !== undefined && replayed + failed === 0) throw new ArqonError(ErrorCode.NOT_FOUND, `no dead letter at offset ${only}`);
        return { replayed, failed };
      },
      { access: "admin", description: "send dead letters again (all, or the one at {offset}): {name, offset?}" },
    ),
  ];

  const offRemoved = host.onTenantRemoved?.(async (tenant) => {
    for (const [k, hook] of [...hooks]) {
      if (hook.def.tenant !== tenant) continue;
      hooks.delete(k);
      await stop(hook);
    }
    for (const ns of [DEFS, CURSORS, LEASES]) {
      for (const stored of await host.kv.list(ns, { prefix: `${tenant}/`, limit: 100_000 })) await host.kv.delete(ns, stored.key);
    }
    await host.kv.deleteNamespaces(`op.webhook.dead/${tenant}/`);
  });

  return {
    async close() {
      closed = true;
      clearInterval(syncTimer);
      for (const f of off) f();
      offRemoved?.();
      await Promise.all([...hooks.values()].map(stop));
      hooks.clear();
    },
  };
}

/** What a traced delivery attempt needs: the message's headers (its trace context) and the attempt's number. */
interface WebhookTrace {
  headers: Readonly<Record<string, string>> | undefined;
  attempt: number;
}

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The `webhook deliver` client span of one attempt (none in an unsampled trace); writes its context into the request's headers. */
function startDeliverySpan(tracer: Tracer, def: HookDefinition, t: WebhookTrace, headers: Record<string, string>): Span | undefined {
  const m = TRACEPARENT_RE.exec(t.headers?.traceparent ?? "");
  // An unsampled trace makes no span here: the receiver gets the message's own traceparent.
  if (m && (parseInt(m[3]!, 16) & 1) === 0) {
    headers.traceparent = t.headers!.traceparent!;
    return undefined;
  }
  const parent =
    m && m[1] !== "0".repeat(32) && m[2] !== "0".repeat(16)
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & 1, isRemote: true })
      : ROOT_CONTEXT;
  let host: string;
  try {
    host = new URL(def.url).host;
  } catch {
    host = "";
  }
  const span = tracer.startSpan(
    "webhook deliver",
    {
      kind: SpanKind.CLIENT,
      attributes: {
        "http.request.method": "POST",
        "server.address": host,
        "arqon.tenant": def.tenant,
        "arqon.webhook.name": def.name,
        "arqon.webhook.attempt": t.attempt,
        "messaging.destination.name": def.room,
      },
    },
    parent,
  );
  const sc = span.spanContext();
  if (trace.isSpanContextValid(sc)) headers.traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? "01" : "00"}`;
  return span;
}
