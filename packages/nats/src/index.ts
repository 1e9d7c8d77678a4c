/**
 * @arqon/nats — ArqonBus's cluster backend: core's bus and store interfaces on NATS core subjects, JetStream and KV.
 * Start with `connectNatsBackends({ servers })`.
 *
 * @module @arqon/nats
 */
export { NatsLink, type NatsConnectOptions, type NatsStatus } from "./link.js";
export { NatsBus, NatsControlPlane, HEADER_ORIGIN, HEADER_ECHO } from "./bus.js";
export type { NatsBusOptions, NatsControlPlaneOptions, HandlerErrorReporter } from "./bus.js";

/** The NATS server a cluster node connects to when none is configured. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
export { NatsKvKeyValueStore, DEFAULT_KV_BUCKET, type NatsKvKeyValueOptions } from "./kv.js";
export {
  JetStreamHistoryStore,
  DEFAULT_HISTORY_STREAM,
  DEFAULT_EPOCH_BUCKET,
  HEADER_OFFSET,
  HEADER_APPENDED_AT,
  HEADER_EPOCH,
  type JetStreamHistoryOptions,
} from "./history.js";
export { NatsKvRoomStateStore, DEFAULT_STATE_BUCKET, type NatsKvRoomStateOptions } from "./state.js";
export { NatsKvPresenceStore, DEFAULT_PRESENCE_BUCKET, type NatsKvPresenceOptions } from "./presence.js";
export { connectNatsBackends, type NatsBackends, type NatsBackendsOptions } from "./backends.js";
