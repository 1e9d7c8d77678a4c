/**
 * @arqon/sdk — the ArqonBus client for browsers and Node. JSON only; `import "@arqon/sdk/protobuf"` adds the
 * protobuf codec.
 *
 * @module @arqon/sdk
 */
export { ArqonClient, DEFAULT_URL, type ArqonClientOptions, type ClientEvents } from "./client.js";
export { SseSocket, StreamSocket, type FallbackEnv } from "./fallback.js";
export { Room, RoomPresence, RoomState, type SubscribeOptions, type PublishOptions, type RoomEvents, type PresenceEvents, type StateEvents } from "./room.js";
export { ArqonRequestError, ClientErrorCode } from "./errors.js";
export { backoffDelay, type ReconnectOptions } from "./backoff.js";
export { registerCodec } from "./codec.js";
export { Emitter, type Listener } from "./emitter.js";
export type * from "./types.js";
export { ArqonError, CloseCode, ErrorCode, shouldReconnect, type Position, type Limits, type Frame, type Codec } from "@arqon/core";
