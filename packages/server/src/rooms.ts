import {
  ArqonError,
  DEFAULT_TWIST_ID,
  ErrorCode,
  escapeToken,
  isRoomPattern,
  roomPatternProblem,
  HEADER_TIMESTAMP,
  HEADER_TWIST_ID,
  isValidTenant,
  roomKey,
  roomNameProblem,
  type Envelope,
  type Frame,
  type InspectionPath,
  type Member,
  type PayloadFormat,
  type Position,
  type AppendResult,
  type RecoveryResult,
  type RoomKey,
  type StateEntry,
} from "@arqon/core";
import { can } from "./auth.js";
import type { Inspected } from "./inspect.js";
import { endWithError, injectTraceHeaders, type Tracing } from "./tracing.js";
import type { Span } from "@opentelemetry/api";
import { retainable } from "./slab.js";
import type { Connection, PatternSubscription, Subscription } from "./connection.js";
import type { HandlerContext } from "./context.js";

export interface PublishInput {
  tenant: string;
  room: string;
  payload: Uint8Array;
  payloadFormat?: PayloadFormat;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** `sub` of the publisher (a client's token, or the server/admin token of the HTTP API). */
  sender?: string;
  originClientId?: string;
  echo?: boolean;
  path: InspectionPath;
  /** @internal The publish's span while tracing is on (set by {@link publishNow}). */
  span?: Span;
}

/** What a publish resolves with: where the message was stored. */
export interface PublishResult {
  /** The message id (for a duplicate: the id of the message first stored under the idempotency key). */
  id: string;
  /** The message's offset in the room's history (from 1, one per message, within an epoch). */
  offset: number;
  /** The epoch of the room's history the offset belongs to. */
  epoch: string;
  /** True when the idempotency key was seen within the dedupe window: nothing new was stored or delivered. */
  duplicate: boolean;
}


/**
 * The `reason` of a `subscribed` or `unsubscribed` frame the server sends on its own because the server API
 * subscribed or unsubscribed the connection (docs/protocol.md, "Server-side subscriptions").
 */
export const SERVER_SUBSCRIPTION_REASON = "server";

const TWIST_ID_RE = /^[A-Za-z0-9_\-.:]{1,64}$/;

/**
 * The one publish path (client frames, the HTTP API, in-process `publish` and operators): the tenant's status and
 * limits (message size; the tenant-wide publish rate for every path but client frames, whose handler took it with the
 * connection's), inspect, register the room against the tenant's room limit, append to history (offset, epoch,
 * idempotency), then hand to the bus. Nothing is stored or delivered when any of them refuses.
 */
export async function publishMessage(ctx: HandlerContext, input: PublishInput): Promise<PublishResult> {
  return publishNow(ctx, input);
}

/**
 * {@link publishMessage} without a promise when nothing on the way needs one: with the in-process backends
 * (`appendNow`, `publishNow`), a synchronous CASIL answer and a known room, the message is stored, delivered and
 * answered within the call. Errors are thrown, or rejected once a step went asynchronous.
 */
export function publishNow(ctx: HandlerContext, input: PublishInput): PublishResult | Promise<PublishResult> {
  if (ctx.tracing !== undefined && input.span === undefined) return tracedPublish(ctx, ctx.tracing, input);
  const { tenant } = input;
  const refusal = ctx.tenants.refusal(tenant);
  if (refusal) throw refusal;
  const tenantLimits = ctx.tenants.runtime(tenant);
  const maxBytes = Math.min(ctx.limits.maxPayloadBytes, tenantLimits.limits.maxMessageBytes);
  if (input.payload.length > maxBytes) {
    throw new ArqonError(ErrorCode.PAYLOAD_TOO_LARGE, `payload exceeds ${maxBytes} bytes`, { detail: { limit: maxBytes } });
  }
  if (input.path !== "publish" && tenantLimits.publishBucket && !tenantLimits.publishBucket.take()) {
    throw new ArqonError(ErrorCode.RATE_LIMITED, "the tenant's publish rate is exceeded");
  }
  const inspection = {
    tenant,
    room: input.room,
    path: input.path,
    subject: input.sender,
    payload: input.payload,
    payloadFormat: input.payloadFormat,
    headers: input.headers,
  };
  const inspecting = input.span === undefined ? ctx.inspect(inspection) : tracedInspect(ctx, input.span, inspection);
  if (inspecting instanceof Promise) return inspecting.then((inspected) => storeInspected(ctx, input, inspected, tenantLimits.limits.maxRooms));
  return storeInspected(ctx, input, inspecting, tenantLimits.limits.maxRooms);
}

/** The publish path after inspection: the message frame, the room's registration, the append and the bus. */
function storeInspected(ctx: HandlerContext, input: PublishInput, inspected: Inspected, maxRooms: number): PublishResult | Promise<PublishResult> {
  const { tenant, room } = input;
  const { payload, decision } = inspected;
  const twist = input.headers?.[HEADER_TWIST_ID];
  if (twist !== undefined && !TWIST_ID_RE.test(twist)) {
    // Client frames were checked by the codec; this covers the HTTP API and in-process publishes.
    throw new ArqonError(ErrorCode.HEADER_INVALID, "x-twist-id must be 1-64 characters of letters, digits and _ - . :", {
      detail: { header: HEADER_TWIST_ID },
    });
  }
  const now = Date.now();
  // Object.assign, not a spread (V8's spread of a parsed object is the slow clone path, see MemoryHistoryStore).
  const headers: Record<string, string> = input.headers === undefined ? {} : Object.assign({}, input.headers);
  headers[HEADER_TIMESTAMP] = String(now);
  headers[HEADER_TWIST_ID] = twist ?? DEFAULT_TWIST_ID;
  // Tracing on: the message carries the publish span's context to every node, subscriber and webhook. An unsampled
  // publish leaves the headers as they came (a client's own traceparent goes on; none is added to the message).
  if (input.span !== undefined && input.span.isRecording()) injectTraceHeaders(input.span, headers);
  const message: Frame = { type: "message", id: ctx.nextMessageId(), room, payload: retainable(payload), headers, timestamp: now };
  if (input.payloadFormat === "binary") message.payloadFormat = "binary";
  if (input.sender) message.sender = input.sender;
  if (decision.action === "redact") {
    message.inspection = { decision: "redact", reasonCode: decision.reasonCode };
    if (decision.flags?.length) message.inspection.flags = decision.flags;
    if (decision.policyVersion) message.inspection.policyVersion = decision.policyVersion;
  }
  const key = roomKey(tenant, room);
  const registering = ctx.rooms.ensure(tenant, room, maxRooms);
  if (registering) return registering.then(() => appendAndPublish(ctx, key, message, input));
  return appendAndPublish(ctx, key, message, input);
}

function appendAndPublish(ctx: HandlerContext, key: RoomKey, message: Frame, input: PublishInput): PublishResult | Promise<PublishResult> {
  const { history, bus } = ctx.backends;
  const dedupe = input.idempotencyKey ? { idempotencyKey: input.idempotencyKey, dedupeWindowMs: ctx.limits.dedupeWindowMs } : undefined;
  // In-process backends and no earlier publish of this room still on its way to the bus: store and deliver now,
  // which keeps offset order on the bus as `inOrder` would.
  const span = input.span === undefined ? undefined : ctx.tracing!.child(input.span, "history append", { "arqon.history.dedupe": dedupe !== undefined });
  if (history.appendNow !== undefined && bus.publishNow !== undefined && !ctx.publishOrder.has(key)) {
    let appended: AppendResult;
    try {
      appended = history.appendNow(key, message, dedupe);
    } catch (err) {
      if (span !== undefined) endWithError(span, err);
      throw err;
    }
    span?.end();
    if (!appended.duplicate) bus.publishNow(key, envelopeOf(appended.message, input));
    return resultOf(appended, message);
  }
  let appending = history.append(key, message, dedupe);
  if (span !== undefined) {
    appending = appending.then(
      (appended) => {
        span.end();
        return appended;
      },
      (err: unknown) => {
        endWithError(span, err);
        throw err;
      },
    );
  }
  return inOrder(ctx, key, appending, (result) => (result.duplicate ? Promise.resolve() : bus.publish(key, envelopeOf(result.message, input)))).then((appended) => resultOf(appended, message));
}

/** {@link publishNow} inside a `publish <room>` span (tracing on): the span ends with the result or the refusal. */
function tracedPublish(ctx: HandlerContext, tracing: Tracing, input: PublishInput): PublishResult | Promise<PublishResult> {
  const span = tracing.publish(input.tenant, input.room, input.path, input.headers);
  const traced: PublishInput = Object.assign({}, input, { span });
  const done = (result: PublishResult): PublishResult => {
    if (span.isRecording()) span.setAttributes({ "messaging.message.id": result.id, "arqon.offset": result.offset, "arqon.epoch": result.epoch, "arqon.duplicate": result.duplicate });
    span.end();
    return result;
  };
  let result: PublishResult | Promise<PublishResult>;
  try {
    result = publishNow(ctx, traced);
  } catch (err) {
    endWithError(span, err);
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(done, (err: unknown) => {
      endWithError(span, err);
      throw err;
    });
  }
  return done(result);
}

/** CASIL's inspection inside a `casil inspect` span: the decision (or the block's reason) goes on the span. */
function tracedInspect(ctx: HandlerContext, parent: Span, input: Parameters<HandlerContext["inspect"]>[0]): Inspected | Promise<Inspected> {
  const span = ctx.tracing!.child(parent, "casil inspect", { "arqon.casil.path": input.path });
  const done = (inspected: Inspected): Inspected => {
    span.setAttribute("arqon.casil.decision", inspected.decision.action);
    const decision = inspected.decision;
    if (decision.action === "redact" && decision.reasonCode) span.setAttribute("arqon.casil.reason", decision.reasonCode);
    span.end();
    return inspected;
  };
  let inspecting: Inspected | Promise<Inspected>;
  try {
    inspecting = ctx.inspect(input);
  } catch (err) {
    span.setAttribute("arqon.casil.decision", "block");
    endWithError(span, err);
    throw err;
  }
  if (inspecting instanceof Promise) {
    return inspecting.then(done, (err: unknown) => {
      span.setAttribute("arqon.casil.decision", "block");
      endWithError(span, err);
      throw err;
    });
  }
  return done(inspecting);
}

function envelopeOf(frame: Frame, input: PublishInput): Envelope {
  const envelope: Envelope = { frame };
  if (input.originClientId) envelope.originClientId = input.originClientId;
  if (input.echo) envelope.echo = true;
  return envelope;
}

function resultOf(appended: AppendResult, message: Frame): PublishResult {
  return { id: appended.message.id ?? message.id!, offset: appended.offset, epoch: appended.epoch, duplicate: appended.duplicate };
}

/**
 * Hands appended messages to the bus in the order their appends were started on this node, which is their offset
 * order (stores assign offsets in call order). Appends still run concurrently (a durable store batches their
 * commits); only the bus publishes wait for the earlier ones. Without this, two publishers in one room could reach
 * the bus out of offset order, and a subscriber would drop the late one as already seen.
 */
async function inOrder(
  ctx: HandlerContext,
  key: string,
  appending: Promise<AppendResult>,
  publish: (result: AppendResult) => Promise<void>,
): Promise<AppendResult> {
  const previous = ctx.publishOrder.get(key);
  const task = (async () => {
    let result: AppendResult;
    try {
      result = await appending;
    } finally {
      if (previous) await previous;
    }
    await publish(result);
    return result;
  })();
  const settled = task.then(
    () => undefined,
    () => undefined,
  );
  ctx.publishOrder.set(key, settled);
  void settled.then(() => {
    if (ctx.publishOrder.get(key) === settled) ctx.publishOrder.delete(key);
  });
  return task;
}

/** In-process server publish: the tenant and room are checked here, as nothing upstream did. */
export async function serverPublish(
  ctx: HandlerContext,
  tenant: string,
  room: string,
  payload: Uint8Array,
  options: {
    payloadFormat?: PayloadFormat;
    headers?: Record<string, string>;
    idempotencyKey?: string;
    sender?: string;
    path?: "server_publish" | "operator";
  } = {},
): Promise<PublishResult> {
  if (!isValidTenant(tenant)) throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
  const problem = roomNameProblem(room);
  if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, problem);
  return publishMessage(ctx, { tenant, room, payload, ...options, path: options.path ?? "server_publish" });
}

export function handlePublish(ctx: HandlerContext, conn: Connection, frame: Frame): void | Promise<void> {
  const room = frame.room!;
  const runtime = ctx.tenants.runtime(conn.tenant);
  const tenantBucket = runtime.publishBucket;
  if (!conn.bucket.take() || (tenantBucket && !tenantBucket.take())) {
    if (conn.abuse.hit(Date.now())) {
      ctx.sendError(conn, frame.requestId, ErrorCode.RATE_LIMITED, "publish rate exceeded", true);
      ctx.closeConnection(conn, 4002, "publish rate abuse", "abuse");
      return;
    }
    throw new ArqonError(ErrorCode.RATE_LIMITED, "publish rate exceeded");
  }
  const input: PublishInput = {
    tenant: conn.tenant,
    room,
    payload: frame.payload!,
    payloadFormat: frame.payloadFormat,
    headers: frame.headers,
    idempotencyKey: frame.idempotencyKey,
    sender: conn.auth.sub,
    originClientId: conn.id,
    echo: frame.echo,
    path: "publish",
  };
  // With a publish proxy hook the backend sees (and may change) the publish before CASIL does; without one this is
  // the whole cost of the feature.
  const hook = runtime.hooks?.publish;
  if (hook !== undefined) {
    return ctx.proxy
      .publish(hook, conn, input)
      .then((changed) => publishNow(ctx, changed))
      .then((stored) => sendAck(conn, frame, stored));
  }
  const result = publishNow(ctx, input);
  if (result instanceof Promise) return result.then((stored) => sendAck(conn, frame, stored));
  sendAck(conn, frame, result);
}

function sendAck(conn: Connection, frame: Frame, result: PublishResult): void {
  const ack: Frame = { type: "ack", id: result.id, room: frame.room, offset: result.offset, epoch: result.epoch };
  if (result.duplicate) ack.duplicate = true;
  if (frame.requestId) ack.requestId = frame.requestId;
  conn.send(ack);
}

function positionOf(frame: Frame): number | undefined {
  return frame.type === "message" ? frame.offset : undefined;
}

/**
 * Subscribe: the subscription starts buffering live frames at once, then the snapshot (position or recovered
 * messages, presence, state) is read and sent, then the buffer is flushed without what the snapshot already covered.
 * So a subscriber sees `subscribed`, the recovered messages, then live messages, with no gap and no duplicate.
 * `origin` "server" is a subscribe the server API made (api-subscriptions.ts): its `subscribed` carries
 * `reason: "server"` and no requestId.
 */
export async function handleSubscribe(ctx: HandlerContext, conn: Connection, frame: Frame, origin: "client" | "server" = "client"): Promise<void> {
  const room = frame.room!;
  if (isRoomPattern(room)) return subscribePattern(ctx, conn, frame);
  const key = roomKey(conn.tenant, room);
  let sub = conn.subscriptions.get(key);
  const fresh = sub === undefined;
  if (fresh && conn.subscriptions.size + conn.patterns.size >= ctx.limits.maxSubscriptions) {
    throw new ArqonError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `at most ${ctx.limits.maxSubscriptions} subscriptions per connection`);
  }
  let info = frame.info?.info;
  // The subscribe proxy hook runs after the capability check (authority.ts) and can only refuse more, or set info. A
  // server-side subscribe skips it as it skips the caps: the backend the hook would ask made the subscription.
  const hook = origin === "client" ? ctx.tenants.runtime(conn.tenant).hooks?.subscribe : undefined;
  const presenceOn = ctx.presence.enabled(room);
  if (hook !== undefined) {
    const answered = await ctx.proxy.subscribe(hook, conn, room, info);
    if (presenceOn) info = answered;
  }
  if (info === undefined && presenceOn) info = conn.auth.info;
  if (info !== undefined) info = await ctx.presence.checkInfo(conn, room, info);
  if (sub === undefined) {
    sub = {
      conn,
      key,
      room,
      seesPresence: presenceOn && can(conn.auth, "presence", room),
      buffer: [],
      inPresence: false,
      joinedAt: Date.now(),
      closed: false,
      lastOffset: 0,
      epoch: undefined,
      toldEpoch: undefined,
      delta: frame.delta === true,
      deltaBase: 0,
    };
    conn.subscriptions.set(key, sub);
    const { room: local, created } = ctx.fanout.add(sub, conn.tenant);
    try {
      if (created) {
        local.ready = ctx.backends.bus.subscribe(key);
        ctx.presence.roomCreated(key, room);
      }
      await local.ready;
    } catch (err) {
      await leaveRoom(ctx, sub, "disconnect");
      conn.subscriptions.delete(key);
      throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "could not subscribe on the bus", { cause: err });
    }
  } else {
    sub.buffer ??= [];
    sub.delta = frame.delta === true;
  }
  // After a (re)subscribe the next live message goes out whole: the client's delta base starts over.
  sub.deltaBase = 0;
  try {
    if (sub.closed) return;
    if (presenceOn && (!sub.inPresence || info !== undefined)) {
      const member: Member = { clientId: conn.id, userId: conn.auth.sub, joinedAt: sub.joinedAt };
      if (info !== undefined) member.info = info;
      const maxMembers = ctx.tenants.runtime(conn.tenant).limits.maxPresencePerRoom;
      if (maxMembers > 0 && !sub.inPresence && (await ctx.backends.presence.list(key)).length >= maxMembers) {
        throw new ArqonError(ErrorCode.QUOTA_EXCEEDED, `room "${room}" has as many presence members as the tenant allows (limit ${maxMembers})`, {
          detail: { quota: "maxPresencePerRoom", limit: maxMembers },
        });
      }
      await ctx.backends.presence.join(key, member);
      if (sub.closed) {
        // The connection went away while joining: take the entry back out.
        await ctx.backends.presence.leave(key, conn.id, "disconnect");
        return;
      }
      sub.inPresence = true;
    }
    const reply: Frame = { type: "subscribed", room };
    if (frame.requestId) reply.requestId = frame.requestId;
    if (origin === "server") reply.reason = SERVER_SUBSCRIPTION_REASON;
    let recovered: Frame[] = [];
    let position: Position;
    if (frame.since) {
      // Offset 0 ("before the first message") is the default value, so the codecs leave it out of `since`.
      const since: Position = { offset: frame.since.offset ?? 0, epoch: frame.since.epoch ?? "" };
      let result: RecoveryResult | undefined;
      try {
        result = await ctx.backends.history.recover(key, since, ctx.limits.maxRecoveryMessages);
      } catch (err) {
        if (err instanceof ArqonError && err.code !== ErrorCode.BACKEND_UNAVAILABLE) throw err;
        // The history store cannot answer: live delivery still works, and the client is told recovery did not happen.
        ctx.logger.warn({ err, room }, "recovery failed: history unavailable");
      }
      if (result) {
        position = result.position;
        reply.recovered = result.recovered;
        if (result.recovered) recovered = result.messages;
        else reply.reason = result.reason;
      } else {
        position = { offset: 0, epoch: "" };
        reply.recovered = false;
        reply.reason = "unavailable";
      }
    } else {
      position = await ctx.backends.history.position(key);
    }
    let covered = position.offset;
    for (const m of recovered) if (m.offset !== undefined && m.offset > covered) covered = m.offset;
    if (position.offset) reply.offset = position.offset;
    if (position.epoch) reply.epoch = position.epoch;
    const [members, state] = await Promise.all([
      sub.seesPresence ? ctx.presence.list(key) : Promise.resolve(undefined),
      ctx.backends.state.get(key),
    ]);
    if (members?.length) reply.members = members;
    if (state.length) reply.state = state;
    if (sub.closed || conn.closing) return;
    // Protocol 1.1: the recovered messages ride in the reply (one frame, each written against the reply's epoch), as
    // many as fit in `maxFrameBytes`; the rest follow as message frames. Protocol 1.0: one message frame each.
    let inReply = 0;
    if (conn.protocol === "1.1" && recovered.length > 0) {
      inReply = fitInReply(recovered, ctx.limits.maxFrameBytes, conn.codec === "json");
      if (inReply > 0) reply.messages = recovered.slice(0, inReply).map((m) => (m.room === undefined ? { ...m, room } : m));
    }
    conn.send(reply);
    // The client now knows the room's epoch: protocol 1.1 messages carry theirs only when it differs.
    sub.toldEpoch = position.epoch || undefined;
    for (let i = inReply; i < recovered.length; i++) {
      const m = recovered[i]!;
      conn.sendMessage(sub, m.room === undefined ? { ...m, room } : m);
    }
    // What the client has now: the snapshot position or the last recovered message. Live frames at or below it
    // (held in the buffer, or still on their way from a publish that raced with this subscribe) are dropped.
    sub.lastOffset = covered;
    sub.epoch = position.epoch;
    flushBuffer(ctx, sub, position.epoch, covered, state);
  } catch (err) {
    if (fresh) {
      conn.subscriptions.delete(key);
      await leaveRoom(ctx, sub, "disconnect");
    } else {
      sub.buffer = null;
    }
    throw err;
  }
}

/** Room for everything in a `subscribed` reply but its messages (room, ids, position, presence, state estimated). */
const REPLY_OVERHEAD_BYTES = 16 * 1024;
/** What one message adds to a list beyond its payload and headers (keys, id, offset, timestamp, sender, room). */
const MESSAGE_OVERHEAD_BYTES = 256;

/**
 * How many of the recovered messages (from the first) fit in one `subscribed` reply of at most `maxBytes`: an
 * estimate from payload and header sizes, so a reply stays within what a client
 * accepts by default (`maxFrameBytes`, 1 MiB). At least one message goes in unless the first alone is over the bound.
 */
export function fitInReply(messages: readonly Frame[], maxBytes: number, json: boolean): number {
  let size = REPLY_OVERHEAD_BYTES;
  let n = 0;
  for (const m of messages) {
    let bytes = MESSAGE_OVERHEAD_BYTES;
    const payload = m.payload?.byteLength ?? 0;
    // A JSON payload is written as its text; a binary one as base64 in JSON (an escaped JSON text is rarer: margin).
    bytes += json && m.payloadFormat === "binary" ? Math.ceil(payload / 3) * 4 : payload + (payload >> 3);
    if (m.headers) for (const k in m.headers) bytes += (k.length + (m.headers[k]?.length ?? 0)) * 3 + 8;
    if (size + bytes > maxBytes) break;
    size += bytes;
    n++;
  }
  return n;
}

function flushBuffer(ctx: HandlerContext, sub: Subscription, epoch: string, covered: number, state: StateEntry[]): void {
  const buffer = sub.buffer;
  sub.buffer = null;
  if (!buffer) return;
  let versions: Map<string, number> | undefined;
  for (const envelope of buffer) {
    const frame = envelope.frame;
    const offset = positionOf(frame);
    if (offset !== undefined && frame.epoch === epoch && offset <= covered) continue;
    if (frame.type === "state_changed" && frame.state?.length === 1) {
      versions ??= new Map(state.map((e) => [e.key, e.version ?? 0]));
      const entry = frame.state[0]!;
      if ((entry.version ?? 0) <= (versions.get(entry.key) ?? 0)) continue;
    }
    ctx.fanout.deliverOne(sub, envelope);
  }
}

/** Ends one subscription: local fan-out, bus interest when it was the room's last local subscriber, presence. */
export async function leaveRoom(ctx: HandlerContext, sub: Subscription, reason: string): Promise<void> {
  if (sub.closed) return;
  sub.closed = true;
  sub.buffer = null;
  const emptied = ctx.fanout.remove(sub);
  const tasks: Array<Promise<unknown>> = [];
  if (sub.inPresence) {
    sub.inPresence = false;
    tasks.push(ctx.backends.presence.leave(sub.key, sub.conn.id, reason));
  }
  if (emptied) {
    ctx.presence.roomDropped(sub.key);
    tasks.push(ctx.backends.bus.unsubscribe(sub.key));
  }
  const results = await Promise.allSettled(tasks);
  for (const r of results) if (r.status === "rejected") ctx.logger.warn({ err: r.reason, room: sub.room }, "leave failed");
}

/**
 * A wildcard subscribe (`room` is a pattern): the connection receives every message of its tenant's rooms that the
 * pattern matches and its token may subscribe to (checked per room at delivery; the gateway checked the pattern
 * itself against the caps before). Live messages only: no presence, state or snapshot, and `since` is refused —
 * a pattern subscriber recovers per room with `history` (docs/protocol.md). Answers `subscribed` with the pattern.
 */
async function subscribePattern(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const pattern = frame.room!;
  const problem = roomPatternProblem(pattern);
  if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, problem, { detail: { field: "room" } });
  const bus = ctx.backends.bus;
  if (bus.subscribeTenant === undefined) throw new ArqonError(ErrorCode.FRAME_FEATURE_DISABLED, "this server's bus has no wildcard subscriptions");
  if (frame.since) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, "a wildcard subscription has no position: recover each room with history since its last offset", {
      detail: { field: "since" },
    });
  }
  // A subscribe proxy hook decides wildcard subscriptions too: the backend sees the pattern as the room.
  const hook = ctx.tenants.runtime(conn.tenant).hooks?.subscribe;
  if (hook !== undefined) await ctx.proxy.subscribe(hook, conn, pattern, frame.info?.info);
  if (!conn.patterns.has(pattern)) {
    if (conn.subscriptions.size + conn.patterns.size >= ctx.limits.maxSubscriptions) {
      throw new ArqonError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `at most ${ctx.limits.maxSubscriptions} subscriptions per connection`);
    }
    const ps: PatternSubscription = {
      conn,
      pattern,
      tenantToken: escapeToken(conn.tenant),
      allowed: new Map(),
      allowedFor: conn.auth,
      seen: new Map(),
      closed: false,
    };
    conn.patterns.set(pattern, ps);
    ctx.fanout.addPattern(ps);
    try {
      await bus.subscribeTenant(conn.tenant);
    } catch (err) {
      await leavePattern(ctx, ps);
      throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "could not subscribe on the bus", { cause: err });
    }
    if (ps.closed) return;
  }
  const reply: Frame = { type: "subscribed", room: pattern };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

/** Ends one wildcard subscription, and the node's tenant-wide bus interest with its tenant's last one. */
export async function leavePattern(ctx: HandlerContext, ps: PatternSubscription): Promise<void> {
  if (ps.closed) return;
  ps.closed = true;
  if (ps.conn.patterns.get(ps.pattern) === ps) ps.conn.patterns.delete(ps.pattern);
  if (ctx.fanout.removePattern(ps)) {
    try {
      await ctx.backends.bus.unsubscribeTenant?.(ps.conn.tenant);
    } catch (err) {
      ctx.logger.warn({ err, pattern: ps.pattern }, "leave failed");
    }
  }
}

export async function handleUnsubscribe(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  if (isRoomPattern(room)) {
    const problem = roomPatternProblem(room);
    if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, problem, { detail: { field: "room" } });
    const ps = conn.patterns.get(room);
    if (!ps) throw new ArqonError(ErrorCode.NOT_SUBSCRIBED, `not subscribed to "${room}"`);
    await leavePattern(ctx, ps);
    const reply: Frame = { type: "unsubscribed", room };
    if (frame.requestId) reply.requestId = frame.requestId;
    conn.send(reply);
    return;
  }
  const key = roomKey(conn.tenant, room);
  const sub = conn.subscriptions.get(key);
  if (!sub) throw new ArqonError(ErrorCode.NOT_SUBSCRIBED, `not subscribed to "${room}"`);
  conn.subscriptions.delete(key);
  await leaveRoom(ctx, sub, "unsubscribe");
  const reply: Frame = { type: "unsubscribed", room };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}

export async function handleHistory(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const room = frame.room!;
  const query = { ...frame.history };
  query.limit = Math.min(query.limit || ctx.limits.maxHistoryPage, ctx.limits.maxHistoryPage);
  const page = await ctx.backends.history.read(roomKey(conn.tenant, room), query);
  const reply: Frame = { type: "history_page", room, epoch: page.position.epoch };
  if (page.position.offset) reply.offset = page.position.offset;
  if (page.messages.length) reply.messages = page.messages;
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}
