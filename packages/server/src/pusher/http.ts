import type { IncomingMessage, ServerResponse } from "node:http";
import { ArqonError, ErrorCode, roomKey } from "@arqon/core";
import { httpStatusOf } from "../admin-http.js";
import { readBody, sendError, sendJson } from "../http-util.js";
import { aggregateByUser } from "../presence.js";
import { publishMessage } from "../rooms.js";
import type { PusherAppOptions } from "./config.js";
import type { PusherGateway } from "./gateway.js";
import { MAX_EVENT_NAME, PUSHER_EVENT_HEADER, channelKind, channelProblem, hmacHex, isSocketId, md5Hex, payloadOfData, roomOfChannel, safeEqual, userIdProblem } from "./protocol.js";

/** The sender (`sub`) of messages published through the Pusher HTTP API. */
export const PUSHER_API_SENDER = "pusher-api";

/** Query parameters in the order the request had them, decoded without turning "+" into a space (as Pusher signs them). */
function parseQuery(query: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  if (query === "") return out;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    try {
      out.set(decodeURIComponent(rawKey).toLowerCase(), decodeURIComponent(rawValue));
    } catch {
      return undefined;
    }
  }
  return out;
}

function fail(code: string, message: string): never {
  throw new ArqonError(code, message);
}

/**
 * Checks Pusher's signed-query authentication: `auth_key` is the app's key, `auth_timestamp` within the window,
 * `auth_version` 1.0, `body_md5` the body's MD5 when there is a body, and `auth_signature` the HMAC-SHA256 (app
 * secret) of `METHOD\nPATH\n` + every other parameter, keys lowercased and sorted, as `key=value` joined by `&`.
 */
export function verifySignedQuery(
  app: Readonly<PusherAppOptions>,
  method: string,
  path: string,
  params: Map<string, string>,
  body: Buffer,
  windowSec: number,
  nowMs = Date.now(),
): void {
  const signature = params.get("auth_signature");
  const key = params.get("auth_key");
  const timestamp = params.get("auth_timestamp");
  if (signature === undefined || key === undefined || timestamp === undefined) fail(ErrorCode.AUTH_MISSING, "auth_key, auth_timestamp and auth_signature are required");
  if (!safeEqual(key, app.key)) fail(ErrorCode.AUTH_INVALID, "auth_key does not match the app");
  const version = params.get("auth_version");
  if (version !== undefined && version !== "1.0") fail(ErrorCode.AUTH_INVALID, "auth_version must be 1.0");
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > windowSec) {
    fail(ErrorCode.AUTH_EXPIRED, `auth_timestamp must be within ${windowSec} seconds of the server's time`);
  }
  if (body.length > 0) {
    const md5 = params.get("body_md5");
    if (md5 === undefined || !safeEqual(md5, md5Hex(body))) fail(ErrorCode.AUTH_INVALID, "body_md5 does not match the body");
  }
  const signed = [...params]
    .filter(([k]) => k !== "auth_signature")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  if (!safeEqual(signature, hmacHex(app.secret, `${method}\n${path}\n${signed}`))) fail(ErrorCode.AUTH_INVALID, "invalid auth_signature");
}

interface EventInput {
  name: string;
  data: unknown;
  channels: string[];
  socketId?: string;
  info?: string;
}

function eventOf(value: unknown, maxChannels: number, batch: boolean): EventInput {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(ErrorCode.FRAME_MALFORMED, "an event must be a JSON object");
  const v = value as Record<string, unknown>;
  if (typeof v.name !== "string" || v.name.length === 0 || v.name.length > MAX_EVENT_NAME) fail(ErrorCode.VALIDATION_ERROR, `"name" must be 1-${MAX_EVENT_NAME} characters`);
  if (v.data === undefined) fail(ErrorCode.FRAME_MISSING_FIELD, 'an event needs "data"');
  let channels: unknown[];
  if (!batch && Array.isArray(v.channels)) channels = v.channels;
  else if (typeof v.channel === "string") channels = [v.channel];
  else fail(ErrorCode.FRAME_MISSING_FIELD, batch ? 'a batch event needs "channel"' : 'an event needs "channels" or "channel"');
  if (channels.length === 0 || channels.length > maxChannels) fail(ErrorCode.VALIDATION_ERROR, `an event goes to 1-${maxChannels} channels`);
  for (const c of channels) {
    const mapped = roomOfChannel(c);
    if ("problem" in mapped) fail(ErrorCode.ROOM_INVALID, `${String(c).slice(0, 164)}: ${mapped.problem}`);
  }
  if (v.socket_id !== undefined && !isSocketId(v.socket_id)) fail(ErrorCode.VALIDATION_ERROR, '"socket_id" must look like "123.456"');
  if (v.info !== undefined && typeof v.info !== "string") fail(ErrorCode.VALIDATION_ERROR, '"info" must be a string');
  return {
    name: v.name,
    data: v.data,
    channels: [...new Set(channels as string[])],
    ...(v.socket_id !== undefined ? { socketId: v.socket_id as string } : {}),
    ...(v.info !== undefined ? { info: v.info as string } : {}),
  };
}

function infoFields(info: string | undefined): Set<string> {
  return new Set((info ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""));
}

/** The Pusher HTTP API under `/apps/{appId}/...`, authenticated by Pusher's signed query. */
export class PusherHttpApi {
  constructor(
    private readonly pusher: PusherGateway,
    private readonly maxBodyBytes: number | undefined,
  ) {}

  /** Whether a request path is this API's (`/apps/...`). */
  matches(path: string): boolean {
    return path.startsWith("/apps/");
  }

  /** Serves one request; answers every outcome itself. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gw = this.pusher.gw;
    try {
      const target = req.url ?? "/";
      const q = target.indexOf("?");
      const path = q < 0 ? target : target.slice(0, q);
      const params = parseQuery(q < 0 ? "" : target.slice(q + 1));
      if (!params) fail(ErrorCode.HEADER_INVALID, "the query string is not valid");
      const m = /^\/apps\/([A-Za-z0-9_-]{1,64})\/(.+)$/.exec(path);
      if (!m) fail(ErrorCode.NOT_FOUND, "not found");
      const app = this.pusher.options.byId.get(m[1]!);
      if (!app) fail(ErrorCode.NOT_FOUND, `unknown app id "${m[1]!}"`);
      const method = req.method ?? "GET";
      const limit = this.maxBodyBytes ?? gw.limits.maxPayloadBytes * 2 + 64 * 1024;
      const body = method === "POST" ? await readBody(req, limit) : Buffer.alloc(0);
      if (body === undefined) fail(ErrorCode.PAYLOAD_TOO_LARGE, `request body larger than ${limit} bytes`);
      verifySignedQuery(app, method, path, params, body, this.pusher.options.timestampWindowSec);
      await gw.tenancy.ready;
      const refusal = gw.tenancy.tenants.refusal(app.tenant);
      if (refusal) throw refusal;
      const rest = m[2]!;
      const terminate = /^users\/([^/]+)\/terminate_connections$/.exec(rest);
      if (terminate) {
        if (method !== "POST") return void sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use POST", { allow: "POST" });
        let userId: string;
        try {
          userId = decodeURIComponent(terminate[1]!);
        } catch {
          fail(ErrorCode.VALIDATION_ERROR, "user id is not valid");
        }
        const problem = userIdProblem(userId);
        if (problem) fail(ErrorCode.VALIDATION_ERROR, problem);
        await this.pusher.terminateUser(app.tenant, userId);
        return void sendJson(res, 200, {});
      }
      if (rest === "events" || rest === "batch_events") {
        if (method !== "POST") return void sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use POST", { allow: "POST" });
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString("utf8"));
        } catch {
          fail(ErrorCode.FRAME_MALFORMED, "body is not valid JSON");
        }
        if (rest === "events") return void sendJson(res, 200, await this.trigger(app, eventOf(parsed, this.pusher.options.maxChannelsPerEvent, false)));
        return void sendJson(res, 200, await this.batch(app, parsed));
      }
      if (method !== "GET" && method !== "HEAD") return void sendError(res, 405, ErrorCode.VALIDATION_ERROR, "use GET", { allow: "GET" });
      if (rest === "channels") return void sendJson(res, 200, await this.channels(app, params));
      const ch = /^channels\/([^/]+)(\/users)?$/.exec(rest);
      if (ch) {
        let channel: string;
        try {
          channel = decodeURIComponent(ch[1]!);
        } catch {
          fail(ErrorCode.ROOM_INVALID, "channel name is not valid");
        }
        const problem = channelProblem(channel);
        if (problem) fail(ErrorCode.ROOM_INVALID, problem);
        if (ch[2]) return void sendJson(res, 200, await this.users(app, channel));
        return void sendJson(res, 200, await this.channel(app, channel, params));
      }
      fail(ErrorCode.NOT_FOUND, "not found");
    } catch (err) {
      if (err instanceof ArqonError) return void sendError(res, httpStatusOf(err.code), err.code, err.message);
      gw.logger.error({ err }, "pusher HTTP API failed");
      sendError(res, 500, ErrorCode.INTERNAL, "internal error");
    }
  }

  private async trigger(app: Readonly<PusherAppOptions>, event: EventInput): Promise<Record<string, unknown>> {
    const ctx = this.pusher.gw.ctx;
    const payload = payloadOfData(event.data);
    for (const channel of event.channels) {
      await publishMessage(ctx, {
        tenant: app.tenant,
        room: (roomOfChannel(channel) as { room: string }).room,
        payload,
        headers: { [PUSHER_EVENT_HEADER]: event.name },
        sender: PUSHER_API_SENDER,
        ...(event.socketId !== undefined ? { originClientId: event.socketId } : {}),
        path: "server_publish",
      });
    }
    if (event.info === undefined) return {};
    const channels: Record<string, unknown> = {};
    for (const channel of event.channels) channels[channel] = await this.channelInfo(app, channel, infoFields(event.info));
    return { channels };
  }

  private async batch(app: Readonly<PusherAppOptions>, parsed: unknown): Promise<Record<string, unknown>> {
    const list = (parsed as { batch?: unknown } | null)?.batch;
    if (!Array.isArray(list)) fail(ErrorCode.FRAME_MISSING_FIELD, 'body needs "batch", an array of events');
    const max = this.pusher.options.maxBatchEvents;
    if (list.length === 0 || list.length > max) fail(ErrorCode.VALIDATION_ERROR, `a batch holds 1-${max} events`);
    // Every event is checked before any is published.
    const events = list.map((e) => eventOf(e, 1, true));
    const results: Array<Record<string, unknown>> = [];
    let withInfo = false;
    for (const event of events) {
      const answer = await this.trigger(app, event);
      const info = (answer.channels as Record<string, unknown> | undefined)?.[event.channels[0]!];
      if (info !== undefined) withInfo = true;
      results.push((info as Record<string, unknown> | undefined) ?? {});
    }
    return withInfo ? { batch: results } : {};
  }

  private async channelInfo(app: Readonly<PusherAppOptions>, channel: string, fields: Set<string>): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (fields.has("subscription_count")) out.subscription_count = this.pusher.localSubscriptions(app.tenant, channel);
    if (fields.has("user_count")) {
      if (channelKind(channel) !== "presence") fail(ErrorCode.VALIDATION_ERROR, "user_count is only available for presence channels");
      out.user_count = (await this.presenceUsers(app, channel)).length;
    }
    return out;
  }

  private async presenceUsers(app: Readonly<PusherAppOptions>, channel: string): Promise<string[]> {
    const members = await this.pusher.gw.backends.presence.list(roomKey(app.tenant, channel));
    return aggregateByUser(members).map((m) => m.userId ?? "");
  }

  private async channels(app: Readonly<PusherAppOptions>, params: Map<string, string>): Promise<Record<string, unknown>> {
    const prefix = params.get("filter_by_prefix") ?? "";
    const fields = infoFields(params.get("info"));
    const userCount = fields.has("user_count");
    if (userCount && !prefix.startsWith("presence-")) fail(ErrorCode.VALIDATION_ERROR, "info=user_count needs filter_by_prefix=presence-");
    const channels: Record<string, Record<string, unknown>> = {};
    for (const name of this.pusher.localChannels(app.tenant)) {
      if (!name.startsWith(prefix)) continue;
      channels[name] = userCount ? { user_count: (await this.presenceUsers(app, name)).length } : {};
    }
    return { channels };
  }

  private async channel(app: Readonly<PusherAppOptions>, channel: string, params: Map<string, string>): Promise<Record<string, unknown>> {
    const info = await this.channelInfo(app, channel, infoFields(params.get("info")));
    let occupied = this.pusher.localSubscriptions(app.tenant, channel) > 0;
    if (!occupied && channelKind(channel) === "presence") occupied = (await this.presenceUsers(app, channel)).length > 0;
    return { occupied, ...info };
  }

  private async users(app: Readonly<PusherAppOptions>, channel: string): Promise<Record<string, unknown>> {
    if (channelKind(channel) !== "presence") fail(ErrorCode.VALIDATION_ERROR, "users are only listed for presence channels");
    return { users: (await this.presenceUsers(app, channel)).map((id) => ({ id })) };
  }
}
