import { ArqonError, ErrorCode, isValidTenant } from "@arqon/core";

/** One Pusher app: the Pusher face of one tenant (`/app/{key}` and `/apps/{appId}/...` reach that tenant only). */
export interface PusherAppOptions {
  /** The tenant the app belongs to: its channels are that tenant's rooms. One app per tenant. */
  tenant: string;
  /** The app id of the HTTP API (`/apps/{appId}/events`): 1-64 letters, digits, `_` and `-`. */
  appId: string;
  /** The app key pusher-js connects with (`/app/{key}`) and signatures name: 1-64 letters, digits, `_` and `-`. */
  key: string;
  /** The app secret: signs channel authorizations and HTTP API requests (at least 16 characters). Never sent to clients. */
  secret: string;
  /** Whether clients may send `client-` events on private and presence channels. @default false */
  clientEvents?: boolean;
}

/** The Pusher Channels protocol mode (`ArqonServerOptions.pusher`): off unless set. */
export interface PusherOptions {
  /** The Pusher apps, one per tenant. */
  apps: PusherAppOptions[];
  /** Seconds of silence after which a client pings (`activity_timeout` of `pusher:connection_established`). @default 120 */
  activityTimeoutSec?: number;
  /** How long the server waits for the `pusher:pong` to its own `pusher:ping` before closing with 4201. @default 30000 */
  pongTimeoutMs?: number;
  /** Events one `POST /apps/{id}/batch_events` may carry. @default 10 */
  maxBatchEvents?: number;
  /** Channels one `POST /apps/{id}/events` may name. @default 100 */
  maxChannelsPerEvent?: number;
  /** How far (seconds) an HTTP API request's `auth_timestamp` may be from the server's clock. @default 600 */
  timestampWindowSec?: number;
}

/** {@link PusherOptions} with every default applied and the apps indexed. */
export interface ResolvedPusherOptions {
  /** The apps by key. */
  byKey: ReadonlyMap<string, Readonly<PusherAppOptions>>;
  /** The apps by app id. */
  byId: ReadonlyMap<string, Readonly<PusherAppOptions>>;
  /** See {@link PusherOptions.activityTimeoutSec}. */
  activityTimeoutSec: number;
  /** See {@link PusherOptions.pongTimeoutMs}. */
  pongTimeoutMs: number;
  /** See {@link PusherOptions.maxBatchEvents}. */
  maxBatchEvents: number;
  /** See {@link PusherOptions.maxChannelsPerEvent}. */
  maxChannelsPerEvent: number;
  /** See {@link PusherOptions.timestampWindowSec}. */
  timestampWindowSec: number;
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

function positive(value: number | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `pusher.${name} must be a whole number from 1 to ${max}`);
  return value;
}

/** Checks the Pusher options (ids, keys, secrets, one app per tenant, bounds) and applies the defaults. */
export function resolvePusherOptions(options: PusherOptions): ResolvedPusherOptions {
  if (!options || !Array.isArray(options.apps)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "pusher.apps must be an array");
  const byKey = new Map<string, PusherAppOptions>();
  const byId = new Map<string, PusherAppOptions>();
  const tenants = new Set<string>();
  options.apps.forEach((app, i) => {
    const where = `pusher.apps[${i}]`;
    if (!isValidTenant(app?.tenant)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}.tenant must be a tenant id`);
    if (typeof app.appId !== "string" || !ID_RE.test(app.appId)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}.appId must be 1-64 letters, digits, _ and -`);
    if (typeof app.key !== "string" || !ID_RE.test(app.key)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}.key must be 1-64 letters, digits, _ and -`);
    if (typeof app.secret !== "string" || app.secret.length < 16 || app.secret.length > 1024) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}.secret must be 16-1024 characters`);
    }
    if (tenants.has(app.tenant)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}: tenant "${app.tenant}" already has a Pusher app`);
    if (byKey.has(app.key)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}: key "${app.key}" is used twice`);
    if (byId.has(app.appId)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${where}: appId "${app.appId}" is used twice`);
    const frozen = Object.freeze({ tenant: app.tenant, appId: app.appId, key: app.key, secret: app.secret, clientEvents: app.clientEvents === true });
    tenants.add(app.tenant);
    byKey.set(app.key, frozen);
    byId.set(app.appId, frozen);
  });
  return {
    byKey,
    byId,
    activityTimeoutSec: positive(options.activityTimeoutSec, 120, "activityTimeoutSec", 3600),
    pongTimeoutMs: positive(options.pongTimeoutMs, 30_000, "pongTimeoutMs", 600_000),
    maxBatchEvents: positive(options.maxBatchEvents, 10, "maxBatchEvents", 1000),
    maxChannelsPerEvent: positive(options.maxChannelsPerEvent, 100, "maxChannelsPerEvent", 10_000),
    timestampWindowSec: positive(options.timestampWindowSec, 600, "timestampWindowSec", 86_400),
  };
}
