/**
 * Entry for sibling ArqonBus packages only (server, nats, sdk): details that are not part of the public API and may
 * change in any release.
 */
export { SCHEMA, BY_JSON_KEY, type FieldSpec, type FieldKind, type MessageName } from "./codec/schema.js";
export { arqon as protoRoot } from "./gen/arqon.js";
export { assertRecoveryOffset, recoveryRefusal } from "./history/recovery.js";
export { assertRoomKeyArgument } from "./history/tenant.js";
