/**
 * @arqon/core — the transport-agnostic heart of ArqonBus, identical in browsers and Node: the frame type and its two
 * codecs, room names and tenant-scoped routing keys, error and close codes, the CASIL hook, and the interfaces (with
 * their written guarantees) that every backend implements.
 *
 * @module @arqon/core
 */
export * from "./frame/types.js";
export * from "./errors.js";
export * from "./codec/index.js";
export * from "./delta/index.js";
export * from "./room/names.js";
export type * from "./bus/types.js";
export type * from "./history/types.js";
export type * from "./presence/types.js";
export type * from "./state/types.js";
export type * from "./kv/types.js";
export * from "./casil/types.js";
export * from "./backends.js";
export * from "./casil/index.js";
